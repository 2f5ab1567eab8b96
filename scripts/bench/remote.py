"""How soon a remote (AWS Batch) shard job starts its work when the plan is large.

    python scripts/bench/remote.py [--images 100000] [--shard-size 100]

Offline, as the test suite does it: a moto server with the fake Batch worker of
``ocrkie.testing.moto_batch``, and the aws-batch profile as shipped. A small real run (three
sample images, one per shard) records the jobs' real commands. The plan in S3 is then
replaced by one with ``--images`` images in shards of ``--shard-size`` (the three real shards
among them), and one OCR job's command is run again, as Batch would, against each plan:
the time from the start of the job's Snakemake to its first image (the first record's start)
is printed for the small and the large plan. The job's own set-up before its Snakemake (the
storage plugin install, the source download) does not depend on the plan and is left out.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from common import REPO, SAMPLES

from ocrkie.inputs import InputImage, image_id
from ocrkie.plan import PLAN_FILE, Shard, decode_plan, encode_plan
from ocrkie.testing.aws_batch import (
    Batch,
    image_env,
    load_profile,
    repo_copy,
    rule_of,
    run_snakemake,
)
from ocrkie.testing.moto_batch import FakeAws, fake_aws, wheel_from_installed


def big_plan(real: list[Shard], images: int, shard_size: int, bucket: str) -> bytes:
    """The real shards, plus synthetic ones up to ``images`` images."""
    shards = list(real)
    count = sum(len(s.images) for s in real)
    n = 0
    while count < images:
        members = []
        for _ in range(min(shard_size, images - count)):
            relpath = f"box{n // 1000:04d}/receipt_{n:07d}.jpg"
            path = f"s3://{bucket}/wf/scans/{relpath}"
            members.append(InputImage(image_id(relpath), path, relpath, 250_000, 1))
            n += 1
        shards.append(Shard(f"shard_{n:08x}", tuple(members)))
        count += len(members)
    return encode_plan(shards, "scans")


def job_parts(definition: dict[str, Any]) -> tuple[str, str]:  # (set-up, job)
    command = definition["container_properties"]["command"][2]
    setup, _, job = command.rpartition(" && ")
    return setup, job


def run_job(aws: FakeAws, definition: dict[str, Any], workdir: Path, bucket: str) -> float:
    """Seconds from the start of the job's Snakemake to the start of its first image, run again
    in the folder where the fake worker ran it (its set-up done: the run removed the source
    archive it came from), with nothing left of its files but the sources."""
    image = {k: v.replace("{workdir}", str(workdir)) for k, v in aws.image_env.items()}
    declared = definition["container_properties"]["environment"]
    env = {**image, **aws.ambient_env, **{item["name"]: item["value"] for item in declared}}
    shutil.rmtree(workdir / ".snakemake" / "storage", ignore_errors=True)
    _, job = job_parts(definition)
    started = time.time()
    done = subprocess.run(
        ["/bin/bash", "-c", job], cwd=workdir, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"the job failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    target = shlex.split(job)[shlex.split(job).index("--target-jobs") + 1]  # ocr:shard=..,ocr=..
    wildcards = dict(item.split("=") for item in target.split(":", 1)[1].split(","))
    key = f"wf/results/shards/ocr/{wildcards['shard']}-{wildcards['ocr']}.json"
    body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    entries = json.loads(body)["entries"]
    shard = wildcards["shard"]
    first = min(
        datetime.fromisoformat(e["finished_at"]).timestamp() - e["seconds"] for e in entries
    )
    print(f"  job {shard}: {len(entries)} images, {time.time() - started:.1f} s in all", flush=True)
    return first - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--shard-size", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        wheelhouse, home = root / "wheels", root / "home"
        home.mkdir()
        wheel_from_installed("snakemake-storage-plugin-s3", wheelhouse)
        region = load_profile(REPO)["aws-batch-region"]
        with fake_aws(root / "jobs", image_env(REPO, wheelhouse, home), region=region) as aws:
            (root / "jobs").mkdir(exist_ok=True)
            queue, role = aws.create_batch()
            bucket = f"ocrkie-bench-{uuid.uuid4().hex[:8]}"
            s3 = aws.client("s3")
            s3.create_bucket(Bucket=bucket)
            for sample in SAMPLES:
                s3.upload_file(str(sample), bucket, f"wf/scans/{sample.name}")
            batch = Batch(aws, queue, role, bucket, home)
            workdir = repo_copy(REPO, root / "repo")
            run = run_snakemake(batch, workdir, "wf", "--config", "input_dir=scans")
            if run.returncode != 0:
                raise SystemExit(run.output[-3000:])
            ocr = next(d for d in aws.registered if rule_of(d) == "ocr")
            job_dir = next(j.workdir for j in aws.ran if j.name.startswith("snakejob-ocr-"))
            key = f"wf/results/{PLAN_FILE}"
            small = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            print(f"small plan: {len(decode_plan(small))} shards")
            small_s = run_job(aws, ocr, job_dir, bucket)
            large = big_plan(decode_plan(small), args.images, args.shard_size, bucket)
            s3.put_object(Bucket=bucket, Key=key, Body=large)
            shards = len(decode_plan(large))
            print(f"large plan: {args.images} images in {shards} shards ({len(large):,} bytes)")
            large_s = run_job(aws, ocr, job_dir, bucket)
    for count, seconds in ((len(SAMPLES), small_s), (args.images, large_s)):
        print(f"job Snakemake start -> first image, plan of {count:,} images: {seconds:.2f} s")


if __name__ == "__main__":
    main()
