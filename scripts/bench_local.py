"""Throughput of the local workflow against the bare engine on the same images.

    python scripts/bench_local.py [--images DIR] [--shard-size N] [--cores N]

Runs, in one invocation, (1) a bare loop: one process, one ``RapidOCR()``, every image once;
(2) the whole workflow (``snakemake --profile profiles/local-gpu``) on the same images into a
fresh results folder with the cache off. It prints images per second of each and their
ratio: the share of the engine's speed the workflow keeps after its own overheads
(Snakemake start-up, per-job processes, normalisation, KIE, records, summary).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from ocrkie.inputs import find_images  # noqa: E402


def bare_engine(paths: list[str], threads: int) -> float:
    from rapidocr import RapidOCR

    engine = RapidOCR(
        params={
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "Global.log_level": "warning",
        }
    )
    started = time.perf_counter()
    for path in paths:
        engine(path)
    return time.perf_counter() - started


def workflow(images: Path, shard_size: int, cores: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch, "bench.yaml")
        config.write_text(
            json.dumps(
                {  # JSON is YAML; nested keys need a config file
                    "input_dir": str(images),
                    "results_dir": f"{scratch}/results",
                    "shard_size": shard_size,
                    "cache": "",
                    "resources": {"ocr": {"threads": threads}},
                }
            )
        )
        command = [
            sys.executable,
            "-m",
            "snakemake",
            "--profile",
            "profiles/local-gpu",
            "--cores",
            str(cores),
            "--quiet",
            "all",
            "--configfile",
            str(config),
        ]
        started = time.perf_counter()
        subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path, default=REPO / "resources" / "samples" / "img")
    parser.add_argument("--shard-size", type=int, default=16)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads (engine)")
    parser.add_argument("--job-threads", type=int, help="threads per OCR job (default: same)")
    args = parser.parse_args()
    paths = [image.path for image in find_images(str(args.images))]
    engine_s = bare_engine(paths, args.threads)
    job_threads = args.job_threads or args.threads
    workflow_s = workflow(args.images.resolve(), args.shard_size, args.cores, job_threads)
    n = len(paths)
    print(
        f"images: {n} from {args.images} (shard_size {args.shard_size}, cores {args.cores}, "
        f"engine threads {args.threads}, threads per OCR job {job_threads})"
    )
    print(f"engine alone : {n / engine_s:6.3f} images/s ({engine_s:.1f} s, model load excluded)")
    print(f"workflow     : {n / workflow_s:6.3f} images/s ({workflow_s:.1f} s, end to end)")
    print(f"ratio        : {engine_s / workflow_s:6.3f} (workflow / engine)")


if __name__ == "__main__":
    main()
