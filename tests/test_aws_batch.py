"""The AWS Batch profile, the container image's contract and whole runs, offline against moto.

Runs use ``profiles/aws-batch`` as shipped, plus only what points it at the fake AWS:
``AWS_ENDPOINT_URL`` and dummy credentials, the queue and role through the documented
variables ``SNAKEMAKE_AWS_BATCH_JOB_{QUEUE,ROLE}``, and ``--default-storage-prefix`` naming the
test bucket. Each submitted job is run by the fake worker of ``ocrkie.testing.moto_batch`` with the
environment that the Dockerfile gives the image (parsed from it), with the test venv standing in
for the image's.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from snakemake_executor_plugin_aws_batch.constant import VALID_RESOURCES_MAPPING

from ocrkie.inputs import image_id
from ocrkie.s3 import KEEP_MARKER_KEY, ensure_keep_marker
from ocrkie.testing.aws_batch import (
    Batch,
    Run,
    dockerfile_env,
    dockerfile_instructions,
    git_snapshot,
    image_env,
    load_profile,
    repo_copy,
    requirements,
    rule_of,
    run_snakemake,
    snakemake_call,
)
from ocrkie.testing.moto_batch import FakeAws, fake_aws, wheel_from_installed

pytestmark = pytest.mark.xdist_group("moto")

REPO = Path(__file__).resolve().parents[1]
PROFILE_DIR = REPO / "profiles" / "aws-batch"
UPSTAGE_SENTINEL = "up_SENTINEL_must_never_leave_the_host_3f9c"
AWS_SECRET_SENTINEL = "aws-secret-SENTINEL-never-in-a-job-definition-7d1e"


def load_workflow_config() -> dict[str, Any]:
    return yaml.safe_load((PROFILE_DIR / "workflow-config.yaml").read_text())


# -- the Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_keeps_the_plugin_command_working() -> None:
    instructions = dockerfile_instructions(REPO)
    entrypoints = [rest for instruction, rest in instructions if instruction == "ENTRYPOINT"]
    # The job command is /bin/bash -c "...": an entrypoint would receive it as arguments.
    assert entrypoints and entrypoints[-1] == "[]"
    assert instructions[-1] == ("CMD", '["/bin/bash"]')
    env = dockerfile_env(REPO)
    assert env["PIP_NO_INDEX"] == "1" and env["PIP_NO_DEPS"] == "1"
    run_lines = " ".join(rest for instruction, rest in instructions if instruction == "RUN")
    words = " ".join(run_lines.split())
    assert "--require-hashes --dest /opt/ocrkie/wheels -r /tmp/s3-plugin.txt" in words
    assert "pip install --no-cache-dir --require-hashes -r /tmp/requirements-gpu.txt" in words
    assert "uv venv --seed --python 3.11" in run_lines  # pip inside the venv, Python 3.11
    assert "onnxruntime-gpu==" in run_lines and "torch==2.13.0" in run_lines
    copied = [rest.split()[0] for instruction, rest in instructions if instruction == "COPY"]
    for source in copied:
        if not source.startswith("--from"):
            assert (REPO / source).exists(), source
    assert env["PYTHONPATH"] == "/workflow/scripts"


def lock_pins(name: str) -> list[str]:
    """The ``name==version`` lines of a lock file, without their hashes."""
    lines = (REPO / "envs" / name).read_text().splitlines()
    return [line.rstrip(" \\") for line in lines if re.match(r"[A-Za-z0-9]", line)]


def test_pinned_versions_are_the_ones_proven_together() -> None:
    lock = lock_pins("requirements.txt")
    for pin in (
        "snakemake==9.27.1",
        "snakemake-executor-plugin-aws-batch==0.2.1",
        "snakemake-storage-plugin-s3==0.3.6",
        "onnxruntime==1.31.1",  # onnxruntime-gpu==1.31.1 in the image (CUDA 13)
    ):
        assert pin in lock, pin
    assert "onnxruntime-gpu==1.31.1" in lock_pins("requirements-gpu.txt")


def test_dockerignore_admits_exactly_what_the_image_copies() -> None:
    patterns = (REPO / ".dockerignore").read_text().split()
    assert patterns[patterns.index("*") :][:4] == [
        "*",
        "!envs/requirements-gpu.txt",
        "!pyproject.toml",
        "!scripts/ocrkie/",
    ]


def test_the_build_context_is_enough_to_install_the_package(tmp_path: Path) -> None:
    """What .dockerignore lets into the build, as the Dockerfile copies it, makes a wheel."""
    context = tmp_path / "src"
    (context / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", context / "pyproject.toml")
    shutil.copytree(
        REPO / "scripts" / "ocrkie",
        context / "scripts" / "ocrkie",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(context),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    assert list((tmp_path / "dist").glob("ocrkie-*.whl"))


def test_image_requirements_resolve(tmp_path: Path) -> None:
    """The image's package set, CUDA builds included, resolves on PyPI (metadata only)."""
    # without the hashes: pip would want one for torch too, and download every file to check
    (tmp_path / "req.txt").write_text("\n".join(lock_pins("requirements-gpu.txt")))
    report = tmp_path / "report.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--isolated",
            "install",
            "--dry-run",
            "--quiet",
            "--ignore-installed",
            "--report",
            str(report),
            "torch==2.13.0",
            "-r",
            str(tmp_path / "req.txt"),
        ],
        check=True,
        timeout=900,
    )
    names = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    assert {"onnxruntime-gpu", "torch", "snakemake"} <= names and "onnxruntime" not in names


# -- the profile ------------------------------------------------------------------------------


def test_profile_settings() -> None:
    profile = load_profile(REPO)
    assert profile["executor"] == "aws-batch"
    for key in ("aws-batch-region", "aws-batch-job-queue", "aws-batch-job-role"):
        assert profile[key], key  # required even for -n
    assert profile["aws-batch-task-timeout"] >= 1800
    assert profile["default-storage-provider"] == "s3"
    assert profile["default-storage-prefix"].startswith("s3://")
    assert not profile["container-image"].startswith("snakemake/snakemake")
    assert profile["jobs"] >= 1 and profile["keep-going"] is True and profile["retries"] >= 1
    # Settings that would be copied in plain text into every job definition.
    forbidden = {"storage-s3-access-key", "storage-s3-secret-key", "storage-s3-token"}
    assert not forbidden & set(profile)
    assert "UPSTAGE_API_KEY" not in profile.get("envvars", [])
    # A `config:` mapping would arrive as strings and fail the schema's integer types.
    assert "config" not in profile and profile["configfile"] == "workflow-config.yaml"


def test_resource_pairs_are_accepted_unchanged_by_the_plugin() -> None:
    resources = load_workflow_config()["resources"]
    for rule in ("ocr", "kie"):
        pair = resources[rule]
        assert pair["threads"] in VALID_RESOURCES_MAPPING[pair["mem_mb"]], rule
    assert resources["ocr"]["mem_mb"] < 16384  # fits a 16 GiB GPU instance (ECS overhead)


# -- bucket safety ----------------------------------------------------------------------------


def test_storage_plugin_deletes_an_emptied_bucket_unless_the_marker_keeps_it(
    aws: FakeAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from snakemake_storage_plugin_s3 import StorageProvider, StorageProviderSettings

    for name, value in aws.client_env().items():
        monkeypatch.setenv(name, value)
    provider = StorageProvider(
        local_prefix=tmp_path / "storage",
        logger=logging.getLogger("test"),
        settings=StorageProviderSettings(endpoint_url=aws.endpoint),
    )
    s3 = aws.client("s3")
    for guarded in (False, True):
        bucket = f"guard-{guarded!s:.1}-{uuid.uuid4().hex[:8]}".lower()
        s3.create_bucket(Bucket=bucket)
        if guarded:
            assert ensure_keep_marker(f"s3://{bucket}/run")
        s3.put_object(Bucket=bucket, Key="run/snakemake-workflow-sources.x.tar.xz", Body=b"x")
        provider.object(f"s3://{bucket}/run/snakemake-workflow-sources.x.tar.xz").remove()
        assert aws.bucket_exists(bucket) is guarded


# -- runs -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws_batch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batch]:
    root = tmp_path_factory.mktemp("aws")
    wheelhouse = root / "wheels"
    wheel_from_installed("snakemake-storage-plugin-s3", wheelhouse)
    home = root / "home"
    home.mkdir()
    region = load_profile(REPO)["aws-batch-region"]
    with fake_aws(root / "jobs", image_env(REPO, wheelhouse, home), region=region) as aws:
        (root / "jobs").mkdir(exist_ok=True)
        queue, role = aws.create_batch()
        bucket = f"ocrkie-test-{uuid.uuid4().hex[:8]}"
        aws.client("s3").create_bucket(Bucket=bucket)
        ensure_keep_marker(f"s3://{bucket}", client=aws.client("s3"))
        yield Batch(aws, queue, role, bucket, home)


@pytest.fixture(scope="module")
def aws(aws_batch: Batch) -> FakeAws:
    return aws_batch.aws


def assert_no_secrets(batch: Batch, run: Run, since: int) -> None:
    definitions = json.dumps(batch.aws.registered[since:])
    for secret in (UPSTAGE_SENTINEL, AWS_SECRET_SENTINEL):
        assert secret not in definitions
        assert secret not in batch.aws.job_log_text()
        assert secret not in run.output
    env_names = {
        item["name"]
        for d in batch.aws.registered[since:]
        for item in d["container_properties"]["environment"]
    }
    assert not {n for n in env_names if "KEY" in n or "SECRET" in n or "TOKEN" in n}, env_names


# -- a throwaway two-rule workflow: the harness and the profile without the real workflow ----

TOY_SNAKEFILE = """
SAMPLES = ["a", "b"]
FAIL = config.get("fail", "")
SLEEP = config.get("sleep", 0)

rule all:
    input: expand("out/{s}.kie", s=SAMPLES)

rule ocr_toy:
    output: "out/{s}.ocr"
    threads: config["resources"]["ocr"]["threads"]
    resources: gpu=1, _gpus=1, mem_mb=config["resources"]["ocr"]["mem_mb"]
    shell: "sleep {SLEEP}; echo ocr {wildcards.s} > {output}"

rule kie_toy:
    input: "out/{s}.ocr"
    output: "out/{s}.kie"
    threads: config["resources"]["kie"]["threads"]
    resources: mem_mb=config["resources"]["kie"]["mem_mb"]
    shell: "if [ '{wildcards.s}' = '{FAIL}' ]; then exit 3; fi; cat {input} > {output}"
"""


def toy_workflow(path: Path) -> Path:
    (path / "workflow").mkdir(parents=True)
    (path / "workflow" / "Snakefile").write_text(TOY_SNAKEFILE)
    shutil.copytree(PROFILE_DIR, path / "profiles" / "aws-batch")
    git_snapshot(path)
    return path


def test_toy_run_gpu_only_where_declared_and_failures_keep_going(
    aws_batch: Batch, tmp_path: Path
) -> None:
    workdir = toy_workflow(tmp_path / "toy")
    since = len(aws_batch.aws.registered)
    run = run_snakemake(
        aws_batch,
        workdir,
        "toy",
        "--config",
        "fail=b",
        UPSTAGE_API_KEY=UPSTAGE_SENTINEL,
        AWS_SECRET_ACCESS_KEY=AWS_SECRET_SENTINEL,
    )

    assert run.returncode != 0, run.output
    assert "AWS Batch job failed" in run.output
    keys = set(aws_batch.aws.keys(aws_batch.bucket, "toy/"))
    # keep-going: a and b's OCR and a's KIE finished although b's KIE failed
    assert {"toy/out/a.ocr", "toy/out/b.ocr", "toy/out/a.kie"} <= keys
    assert "toy/out/b.kie" not in keys
    assert not any("snakemake-workflow-sources" in k for k in keys)  # cleaned up

    defs = aws_batch.aws.registered[since:]
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for definition in defs:
        by_rule.setdefault(rule_of(definition), []).append(definition)
    assert len(by_rule["ocr_toy"]) == 2
    assert (
        len(by_rule["kie_toy"]) == 2 + load_profile(REPO)["retries"]
    )  # b's retried, then given up
    resources = load_workflow_config()["resources"]
    for definition in by_rule["ocr_toy"]:
        assert requirements(definition) == {
            "VCPU": str(resources["ocr"]["threads"]),
            "MEMORY": str(resources["ocr"]["mem_mb"]),
            "GPU": "1",
        }
    for definition in by_rule["kie_toy"]:
        assert requirements(definition) == {
            "VCPU": str(resources["kie"]["threads"]),
            "MEMORY": str(resources["kie"]["mem_mb"]),
        }
    profile = load_profile(REPO)
    for definition in defs:
        assert definition["container_properties"]["image"] == profile["container-image"]
        assert definition["container_properties"]["jobRoleArn"] == aws_batch.role
        timeout = profile["aws-batch-task-timeout"]
        assert definition["timeout"] == {"attemptDurationSeconds": timeout}
        assert definition["container_properties"]["command"][:2] == ["/bin/bash", "-c"]
    assert_no_secrets(aws_batch, run, since)
    assert aws_batch.aws.bucket_exists(aws_batch.bucket)


def interrupt_toy_run(batch: Batch, workdir: Path, prefix: str, sig: int, sleep: int) -> int:
    """Start the toy workflow, send ``sig`` to Snakemake once both OCR jobs run; its exit code."""
    aws = batch.aws
    started = len(aws.ran)
    log = (workdir / "interrupted.log").open("w")
    command, environment = snakemake_call(batch, workdir, prefix, "--config", f"sleep={sleep}")
    main = subprocess.Popen(
        command,
        cwd=workdir,
        env=environment,
        stdout=log,
        stderr=log,
        # as at a terminal: a launcher in the background (`cmd &` in a script) leaves SIGINT
        # ignored, and a child inherits that, so Ctrl-C would never reach Snakemake
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while len(aws.ran) < started + 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(aws.ran) == started + 2, "the OCR jobs never started"
    time.sleep(1)
    main.send_signal(sig)
    return main.wait(timeout=120)


def test_ctrl_c_terminates_the_batch_jobs(aws_batch: Batch, tmp_path: Path) -> None:
    aws = aws_batch.aws
    workdir = toy_workflow(tmp_path / "toy")
    started = len(aws.ran)
    assert interrupt_toy_run(aws_batch, workdir, "sigint", signal.SIGINT, sleep=60) != 0
    aws.wait_idle(timeout=30)
    ocr_jobs = aws.ran[started : started + 2]
    assert all(job.returncode == 137 and job.reason for job in ocr_jobs), ocr_jobs
    assert not aws.keys(aws_batch.bucket, "sigint/out/")

    # The terminated jobs uploaded nothing, so nothing is incomplete: just run again.
    rerun = run_snakemake(aws_batch, workdir, "sigint")
    assert rerun.returncode == 0, rerun.output[-3000:]
    assert len(aws.keys(aws_batch.bucket, "sigint/out/")) == 4


def test_crash_recovery_is_unlock_then_rerun_incomplete(aws_batch: Batch, tmp_path: Path) -> None:
    """docs/aws-batch.md's procedure after the submitting process died (kill -9, lost laptop)."""
    aws = aws_batch.aws
    workdir = toy_workflow(tmp_path / "toy")
    assert interrupt_toy_run(aws_batch, workdir, "crash", signal.SIGKILL, sleep=8) == -9
    aws.wait_idle()  # the orphaned Batch jobs run to completion anyway

    refused = run_snakemake(aws_batch, workdir, "crash")
    assert refused.returncode != 0 and "IncompleteFilesException" in refused.output
    locked = run_snakemake(aws_batch, workdir, "crash", "--rerun-incomplete")
    assert locked.returncode != 0 and "LockException" in locked.output

    assert run_snakemake(aws_batch, workdir, "crash", "--unlock").returncode == 0
    rerun = run_snakemake(aws_batch, workdir, "crash", "--rerun-incomplete")
    assert rerun.returncode == 0, rerun.output[-3000:]
    keys = set(aws.keys(aws_batch.bucket, "crash/out/"))
    assert keys == {f"crash/out/{s}.{stage}" for s in "ab" for stage in ("ocr", "kie")}


# -- the real workflow ------------------------------------------------------------------------


SAMPLES = sorted((REPO / "resources" / "samples" / "img").iterdir())[:3]


@pytest.fixture(scope="module")
def real_workdir(aws_batch: Batch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository, and three sample scans both under the run's prefix
    (``wf/scans``) and in a separate inbox (``s3://bucket/inbox``)."""
    s3 = aws_batch.aws.client("s3")
    for image in SAMPLES:
        s3.upload_file(str(image), aws_batch.bucket, f"wf/scans/{image.name}")
        s3.upload_file(str(image), aws_batch.bucket, f"inbox/{image.name}")
    return repo_copy(REPO, tmp_path_factory.mktemp("real") / "repo")


def test_dry_run_lists_the_shards_from_s3(aws_batch: Batch, real_workdir: Path) -> None:
    run = run_snakemake(
        aws_batch, real_workdir, "wf", "-n", "--config", "input_dir=scans", "shard_size=2"
    )
    assert run.returncode == 0, run.output[-3000:]
    assert re.search(rf"\b{len(SAMPLES)} images\b", run.output)  # listed under the prefix
    assert "32 job slots" in run.output  # the profile's `jobs`: one machine per job
    assert re.search(r"^ocr\s+3$", run.output, re.M)  # so 3 shards of one image
    assert "summary" in run.output
    # nothing ran, nothing was written: the run writes the plan, where its jobs read it
    assert aws_batch.aws.keys(aws_batch.bucket, "wf/results") == []


def test_real_workflow_end_to_end(aws_batch: Batch, real_workdir: Path) -> None:
    aws = aws_batch.aws
    since = len(aws.registered)
    inbox = f"s3://{aws_batch.bucket}/inbox"
    run = run_snakemake(
        aws_batch,
        real_workdir,
        "run",
        "--config",
        f"input_dir={inbox}",
        "shard_size=2",
        UPSTAGE_API_KEY=UPSTAGE_SENTINEL,
        AWS_SECRET_ACCESS_KEY=AWS_SECRET_SENTINEL,
    )
    assert run.returncode == 0, run.output[-5000:]

    keys = set(aws.keys(aws_batch.bucket, "run/"))
    ids = [image_id(image.name) for image in SAMPLES]
    for stage in ("ocr", "kie"):
        assert {f"run/results/{stage}/{i}.json" for i in ids} <= keys, stage
    assert {"run/results/summary.json", "run/results/failures.csv"} <= keys
    assert "run/results/accepted.json" in keys  # no image failed: the run's check passed
    assert any(k.startswith("run/results/progress/ocr/") for k in keys)  # the jobs' progress
    assert {f"run/results/txt/{i}.txt" for i in ids} <= keys  # exports: from the submitting host
    assert {"run/results/kie.csv", "run/results/report/samples/page_1.png"} <= keys
    assert any(k.startswith("run/results/cache/ocr/") for k in keys)  # the S3 content cache
    s3 = aws.client("s3")
    record = json.loads(
        s3.get_object(Bucket=aws_batch.bucket, Key=f"run/results/ocr/{ids[0]}.json")["Body"].read()
    )
    assert record["status"] == "ok" and record["lines"], record

    defs = aws.registered[since:]
    rules = [rule_of(d) for d in defs]
    ocr = [d for d, r in zip(defs, rules, strict=True) if r == "ocr"]
    kie = [d for d, r in zip(defs, rules, strict=True) if r == "kie"]
    assert ocr and len(ocr) == len(kie) == len(defs) / 2  # summary is a local rule
    resources = load_workflow_config()["resources"]
    assert all(
        requirements(d)
        == {
            "VCPU": str(resources["ocr"]["threads"]),
            "MEMORY": str(resources["ocr"]["mem_mb"]),
            "GPU": "1",
        }
        for d in ocr
    )
    assert all(
        requirements(d)
        == {"VCPU": str(resources["kie"]["threads"]), "MEMORY": str(resources["kie"]["mem_mb"])}
        for d in kie
    )
    assert_no_secrets(aws_batch, run, since)
    assert aws.bucket_exists(aws_batch.bucket)
    assert KEEP_MARKER_KEY in aws.keys(aws_batch.bucket, ".")

    again = run_snakemake(
        aws_batch, real_workdir, "run", "--config", f"input_dir={inbox}", "shard_size=2"
    )
    assert again.returncode == 0 and "Nothing to be done" in again.output, again.output[-3000:]


def test_the_lmdb_set_is_made_by_a_batch_job_from_s3(aws_batch: Batch, real_workdir: Path) -> None:
    """The training set from the OCR records in S3 (those of the end-to-end run, if it ran),
    made in a Batch job that uploads the LMDB files itself."""
    aws = aws_batch.aws
    since = len(aws.registered)
    inbox = f"s3://{aws_batch.bucket}/inbox"
    run = run_snakemake(
        aws_batch, real_workdir, "run", "lmdb", "--config", f"input_dir={inbox}", "shard_size=2"
    )
    assert run.returncode == 0, run.output[-5000:]
    rules = [rule_of(d) for d in aws.registered[since:]]
    assert rules[-1] == "lmdb" and set(rules) <= {"ocr", "lmdb"}, rules
    keys = set(aws.keys(aws_batch.bucket, "run/results/lmdb/"))
    assert {f"run/results/lmdb/{s}/data.mdb" for s in ("train", "val")} | {
        "run/results/lmdb/manifest.json"
    } <= keys
    s3 = aws.client("s3")
    body = s3.get_object(Bucket=aws_batch.bucket, Key="run/results/lmdb/manifest.json")["Body"]
    manifest = json.loads(body.read())
    assert manifest["counts"]["images"] == len(SAMPLES)
    assert manifest["counts"].get("train", 0) + manifest["counts"].get("val", 0) > 20


def test_upstage_backends_read_the_key_from_ssm_in_the_job(
    aws_batch: Batch, real_workdir: Path
) -> None:
    """Both stages on the (fake) Upstage API: the key lives only in SSM, jobs read it with
    the job role through the name the image provides, and it leaks nowhere."""
    from ocrkie.testing.upstage_fake import FakeUpstage

    aws = aws_batch.aws
    key = "up_SSM_ONLY_key_5a1b2c3d4e"
    parameter = dockerfile_env(REPO)["UPSTAGE_API_KEY_SSM_PARAMETER"]
    aws.client("ssm").put_parameter(Name=parameter, Value=key, Type="SecureString", Overwrite=True)
    with FakeUpstage(api_key=key, retry_after=0.1) as upstage:
        upstage.register_dir(REPO / "resources" / "samples")
        config = {
            "input_dir": "scans",
            "shard_size": 3,
            "ocr_backend": "upstage",
            "kie_backend": "upstage",
            "upstage": {
                "base_url": upstage.url,
                "rate_limits": {"ocr": 50, "information-extract": 50},
            },
        }
        (real_workdir / "upstage-test.yaml").write_text(yaml.safe_dump(config))
        subprocess.run(["git", "add", "upstage-test.yaml"], cwd=real_workdir, check=True)
        since = len(aws.registered)
        run = run_snakemake(
            aws_batch,
            real_workdir,
            "wf",
            "--configfile",
            "profiles/aws-batch/workflow-config.yaml",
            "upstage-test.yaml",
            UPSTAGE_API_KEY_SSM_PARAMETER=parameter,
        )
        answered = dict(upstage.answers)
    assert run.returncode == 0, run.output[-5000:]

    ids = [image_id(image.name) for image in SAMPLES]
    keys = set(aws.keys(aws_batch.bucket, "wf/results/"))
    for stage in ("ocr", "kie"):
        assert {f"wf/results/{stage}/{i}.json" for i in ids} <= keys, stage
    assert sum(answered.values()) >= 2 * len(SAMPLES)  # OCR and extraction of each image
    defs = aws.registered[since:]
    assert defs and all(requirements(d) == {"VCPU": "1", "MEMORY": "2048"} for d in defs)
    for text in (json.dumps(defs), aws.job_log_text(), run.output):
        assert key not in text


# -- a new user's mistakes, caught by the dry run ----------------------------------------------


NO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_CONFIG_FILE": "/nonexistent",
}
MISTAKES = {
    "bucket": (
        ["--default-storage-prefix", "s3://no-such-bucket-ocrkie/run"],
        {},
        "the bucket no-such-bucket-ocrkie of the storage prefix s3://no-such-bucket-ocrkie/run "
        "does not exist",
    ),
    "queue": (
        [],
        {"SNAKEMAKE_AWS_BATCH_JOB_QUEUE": "no-such-queue"},
        "the job queue no-such-queue does not exist",
    ),
    "role": (
        [],
        {"SNAKEMAKE_AWS_BATCH_JOB_ROLE": "CHANGE-ME"},
        "the job role CHANGE-ME is not a role ARN: set aws-batch-job-role in "
        "profiles/aws-batch/config.yaml",
    ),
    "credentials": ([], NO_CREDENTIALS, "no AWS credentials: set AWS_PROFILE"),
    "empty-input": (["--config", "input_dir=scans-mistyped"], {}, "no images in s3://"),
}


@pytest.mark.parametrize(("arguments", "env", "message"), MISTAKES.values(), ids=MISTAKES)
def test_the_dry_run_says_in_one_line_what_is_wrong_on_the_aws_side(
    aws_batch: Batch, real_workdir: Path, arguments: list[str], env: dict[str, str], message: str
) -> None:
    run = run_snakemake(aws_batch, real_workdir, "wf", "-n", *arguments, **env)
    assert run.returncode != 0
    assert message in run.output, run.output[-3000:]
    assert "Traceback (most recent call last)" not in run.output
