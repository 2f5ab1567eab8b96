"""Throughput of the local workflow against the bare engine at its best, on the same images.

    python scripts/bench/local.py [--images DIR] [--count 40] [--cores N] [--rounds 3]

In one invocation, on the same images (the first ``--count`` in name order):

1. the bare engine at its best setting here: ``--cores`` worker processes x 1 onnxruntime
   thread each, one ``RapidOCR`` per worker (model load excluded: the clock starts when every
   worker has loaded its model), images handed out one at a time so no worker idles early;
2. the same engine as one process with ``--cores`` threads (for reference);
3. the whole workflow end to end (``snakemake --profile profiles/local-gpu``: start-up,
   planning, OCR, KIE, records, summary) into a fresh results folder with the cache off.

1 and 3 alternate for ``--rounds`` rounds (the machine is shared: each ratio compares runs
made minutes apart); it prints images per second of each, each round's ratio workflow / best
bare engine, and their median.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import REPO

_engine: Any = None


def engine_params(threads: int) -> dict[str, Any]:
    """What the workflow's local engine runs with (engines/rapid.py), on the CPU."""
    return {
        "Global.return_word_box": True,
        "Global.log_level": "warning",
        "Global.text_score": 0.5,
        "EngineConfig.onnxruntime.intra_op_num_threads": threads,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        "Rec.rec_batch_num": 1,  # rapidocr.batch_size; on a CPU faster than rapidocr's own 6
    }


def _load(threads: int, ready: Any, warm_up: str) -> None:
    global _engine
    from rapidocr import RapidOCR

    _engine = RapidOCR(params=engine_params(threads))
    _engine(warm_up)  # the first call sets things up: not part of the steady state
    ready.wait()


def _recognize(path: str) -> int:
    return len(_engine(path).txts or ())


def bare_processes(paths: list[str], workers: int) -> float:
    """Seconds for ``workers`` processes x 1 thread to read every image (model load excluded)."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(workers + 1)
    with context.Pool(workers, initializer=_load, initargs=(1, ready, paths[0])) as pool:
        ready.wait()  # every worker has its model
        started = time.perf_counter()
        list(pool.imap_unordered(_recognize, paths, chunksize=1))
        return time.perf_counter() - started


def bare_threads(paths: list[str], threads: int) -> float:
    from rapidocr import RapidOCR

    engine = RapidOCR(params=engine_params(threads))
    engine(paths[0])
    started = time.perf_counter()
    for path in paths:
        engine(path)
    return time.perf_counter() - started


def workflow(images: Path, cores: int) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch, "bench.yaml")
        config.write_text(
            json.dumps({"input_dir": str(images), "results_dir": f"{scratch}/results", "cache": ""})
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
            "config/config.yaml",
            str(config),
        ]
        started = time.perf_counter()
        subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--images", type=Path, required=True, help="a folder of receipts (SROIE's img/, say)"
    )
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--cores", type=int, default=multiprocessing.cpu_count())
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    chosen = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    chosen = chosen[: args.count]
    n, cores = len(chosen), args.cores
    print(f"images: {n} from {args.images} on {cores} cores", flush=True)
    ratios = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for path in chosen:
            (folder / path.name).symlink_to(path)
        paths = [str(p) for p in chosen]
        threaded = bare_threads(paths, cores)
        print(
            f"bare engine, 1 process x {cores} threads : {n / threaded:6.3f} images/s", flush=True
        )
        for round_ in range(1, args.rounds + 1):
            best = bare_processes(paths, cores)
            flow = workflow(folder, cores)
            ratios.append(best / flow)
            print(
                f"round {round_}: bare engine {cores} processes x 1 thread {n / best:6.3f} "
                f"images/s ({best:.1f} s); workflow end to end {n / flow:6.3f} images/s "
                f"({flow:.1f} s); ratio {best / flow:.3f}",
                flush=True,
            )
    median = statistics.median(ratios)
    print(f"ratio workflow / best bare engine, median of {len(ratios)}: {median:.3f}")


if __name__ == "__main__":
    main()
