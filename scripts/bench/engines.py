"""The local OCR engines side by side: accuracy and speed on the same receipts, in one run.

    python scripts/bench/engines.py [--images DIR] [--count 60] [--engines rapidocr easyocr]
                                    [--cores 2] [--rounds 1] [--set easyocr.batch_size=32]

Each engine runs the whole workflow (``snakemake --profile profiles/local-gpu``, OCR only,
cache off, a fresh results folder) on the same images, engines alternating when there is
more than one round. It prints, per engine: word-level F1 and CER against the SROIE box
truth (``ocrkie.evaluate``), images per second of the OCR stage (the summary's: pages over
the time from the first OCR job's start to the last one's end, model loads included) and of
the whole run, the device, the line batch size the engine chose, the engine process's peak
resident memory, and on a GPU the mean and peak utilisation (nvidia-smi, sampled every half
second). ``--images`` is a folder in the SROIE 2019 layout (``img/``, ``box/``): the figures
of the benchmark docs were measured on 60 receipts never used to build or tune any engine.
``--set block.key=value`` changes an engine setting for every
engine; an engine named ``NAME:block.key=value:...`` runs with settings of its own, so that
one engine can be set two ways side by side
(``rapidocr rapidocr:rapidocr.batch_size=6:rapidocr.turn=line``: rapidocr as this workflow
reads, and as it comes).

``--bare`` runs each engine alone, in the benchmark's process, on the same images (model
load and one warm-up page excluded): for a machine with the engines' packages but not the
workflow's, such as a lent GPU machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from common import REPO, SROIE_HELP

from ocrkie.evaluate import evaluate


class GpuSampler:
    """Utilisation of GPU 0 while a run goes on (nothing where nvidia-smi is missing)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _run(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
        while not self._stop.wait(0.5):
            out = subprocess.run(query, capture_output=True, text=True).stdout.split()
            if out:
                self.samples.append(float(out[0]))


def overrides(settings: list[str]) -> dict[str, dict[str, Any]]:
    """``block.key=value`` items as nested config."""
    nested: dict[str, dict[str, Any]] = {}
    for item in settings:
        key, _, value = item.partition("=")
        block, _, name = key.partition(".")
        nested.setdefault(block, {})[name] = yaml.safe_load(value)
    return nested


def run_engine(spec: str, images: Path, work: Path, cores: int, extra: list[str]) -> dict:
    engine, *own = spec.split(":")
    extra = [*extra, *own]
    results = work / safe_name(spec)
    shutil.rmtree(results, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    settings = {
        "input_dir": str(images),
        "results_dir": str(results),
        "ocr_backend": engine,
        "kie_backend": "none",
        "cache": "",
        "exports": ["json"],
        **overrides(extra),
    }
    config_file = work / f"{safe_name(spec)}.json"
    config_file.write_text(json.dumps(settings))
    command = [sys.executable, "-m", "snakemake", "--profile", "profiles/local-gpu"]
    command += ["--cores", str(cores), "--configfile", "config/config.yaml", str(config_file)]
    started = time.perf_counter()
    with GpuSampler() as gpu:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{engine}: snakemake failed:\n{done.stderr[-3000:]}")
    wall = time.perf_counter() - started
    summary = json.loads((results / "summary.json").read_text())
    records = [json.loads(p.read_text()) for p in sorted((results / "ocr").glob("*.json"))]
    engine_info = records[0]["engine"]
    manifests = [json.loads(p.read_text()) for p in (results / "shards" / "ocr").glob("*.json")]
    peak_rss = max(m.get("worker", {}).get("peak_rss_mb", 0.0) for m in manifests)
    return {
        "engine": engine_info["name"],
        "device": engine_info.get("device"),
        "line_batch": engine_info.get(
            "line_batch", engine_info.get("params", {}).get("batch_size", "-")
        ),
        "pages": len(records),
        "wall_s": wall,
        "ocr_rate": summary["ocr"]["images_per_second"],
        "peak_rss_mb": peak_rss,
        "gpu": gpu.samples,
        "results": results,
    }


def safe_name(spec: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in spec)


def run_bare(spec: str, images: list[Path], results: Path, settings: list[str]) -> dict:
    """The engine alone, in this process, without Snakemake: for a machine that has the
    engine's packages but not the workflow's (the lent GPU machine). Model load excluded."""
    from ocrkie.engines.registry import build
    from ocrkie.evaluate import page_text
    from ocrkie.images import load_page

    engine, *own = spec.split(":")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for block, values in overrides([*settings, *own]).items():
        config[block].update(values)
    config["ocr_backend"] = engine
    ocr = build("ocr", config, threads=int(config["resources"]["ocr"]["threads"]))
    pages = [load_page(str(p), 178956970, 4096) for p in images]
    ocr.recognize_many(pages[:1])  # load the model (and warm up) before the clock starts
    shutil.rmtree(results, ignore_errors=True)
    (results / "ocr").mkdir(parents=True)
    size = max(1, ocr.batch_size)
    started = time.perf_counter()
    with GpuSampler() as gpu:
        found = []
        for start in range(0, len(pages), size):
            found += ocr.recognize_many(pages[start : start + size])
    seconds = time.perf_counter() - started
    for path, recognition in zip(images, found, strict=True):
        record = {
            "image": {"path": path.name},
            "status": "ok",
            "text": page_text(recognition.lines),
        }
        (results / "ocr" / f"{path.stem}.json").write_text(json.dumps(record))
    return {
        "engine": engine,
        "device": ocr.device,
        "line_batch": found[-1].facts.get("line_batch", getattr(ocr, "line_batch", "-")),
        "pages": len(pages),
        "wall_s": seconds,
        "ocr_rate": len(pages) / seconds,
        "peak_rss_mb": 0.0,
        "gpu": gpu.samples,
        "results": results,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--images",
        type=Path,
        required=True,
        help=SROIE_HELP,
    )
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--engines", nargs="+", default=["rapidocr", "easyocr"])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], help="engine settings: block.key=value")
    parser.add_argument("--work", type=Path, default=REPO / ".bench-engines")
    parser.add_argument(
        "--bare", action="store_true", help="each engine in this process, without Snakemake"
    )
    args = parser.parse_args()

    truth = args.images
    chosen = sorted((truth / "img").iterdir())[: args.count]
    with tempfile.TemporaryDirectory() as folder:
        images = Path(folder) / "img"
        images.mkdir()
        for path in chosen:
            (images / path.name).symlink_to(path.resolve())
        runs: dict[str, list[dict[str, Any]]] = {e: [] for e in args.engines}
        for round_ in range(args.rounds):
            for engine in args.engines:
                if args.bare:
                    paths = sorted(images.iterdir())
                    run = run_bare(engine, paths, args.work / safe_name(engine), args.set)
                else:
                    run = run_engine(engine, images, args.work, args.cores, args.set)
                runs[engine].append(run)
                print(f"round {round_ + 1}: {engine} {run['wall_s']:.1f} s", flush=True)

    print(f"\n{len(chosen)} images of {truth}, {args.cores} cores, {args.rounds} round(s)")
    wide = max(10, *(len(e) for e in args.engines))
    header = (
        f"{'engine':<{wide}} {'device':<8} {'batch':>5} {'word F1':>8} {'CER':>7} "
        f"{'img/s OCR':>9} {'img/s run':>9} {'peak RSS':>9} {'GPU util':>14}"
    )
    print(header)
    for engine, done in runs.items():
        last = done[-1]
        score = evaluate(last["results"], truth)
        ocr_rate = statistics.median(r["ocr_rate"] for r in done)
        run_rate = statistics.median(r["pages"] / r["wall_s"] for r in done)
        samples = [s for r in done for s in r["gpu"]]
        gpu = f"{statistics.mean(samples):.0f}% (max {max(samples):.0f})" if samples else "-"
        print(
            f"{engine:<{wide}} {last['device']:<8} {last['line_batch']!s:>5} "
            f"{score['word_f1']:>8.3f} {score['cer']:>7.2%} {ocr_rate:>9.3f} "
            f"{run_rate:>9.3f} {max(r['peak_rss_mb'] for r in done):>6.0f} MB {gpu:>14}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
