"""Local OCR speed and accuracy: the bare engines and the workflow, side by side in one run.

    python scripts/bench/speed.py DATA [--count 60] [--cores 2] [--rounds 3]
        [--bare rapidocr faster-paddle:model_size=small faster-paddle:model_size=tiny]
        [--workflow rapidocr faster_paddle faster_paddle:faster_paddle.model=tiny]
        [--baseline faster-paddle:model_size=small] [--json figures.json]

DATA is a folder in the SROIE 2019 layout (``img/NNN.jpg``, ``box/NNN.csv``, ``key/NNN.json``;
docs/engines-speed.md says where to get it); the first ``--count`` images in name
order are read.

``--bare`` engines run alone, each at the setting that is fastest on a CPU with several cores:
``--cores`` worker processes with one thread each, one engine per worker, images handed out
one at a time so that no worker idles early. The clock starts when every worker has loaded
its model and read one warm-up image, and stops when the last image is read. A spec is the
engine and its settings, ``:``-separated:

- ``rapidocr[:Section.key=value...]``: rapidocr as the workflow's ``rapidocr`` engine runs it
  (one line per recognition batch), with rapidocr params changed (``Rec.rec_batch_num=6``).
- ``faster-paddle[:key=value...]``: ``faster_paddle.OcrEngine(threads=1, **settings)``
  (``model_size=small``, ``rec_min_width=320`` ...).
- either with ``procs=1:threads=N`` reads in one process of N threads instead; faster-paddle
  then hands it ``batch=B`` images a call (``ocr_batch``).

``--workflow`` specs run the whole workflow end to end (``snakemake --profile
profiles/local-gpu --cores N``: start-up, planning, model loads, OCR, KIE with
``kie_backend: rules``, records, exports, summary) in a fresh working folder with the cache
off: ``BACKEND[:block.key=value...]`` (``faster_paddle:faster_paddle.model=tiny``).

Every spec runs once a round, in the order given, for ``--rounds`` rounds: the machine may be
shared, so each ratio compares runs made minutes apart. The table gives images per second
(wall clock, median of the rounds) and each run's ratio to the ``--baseline`` bare spec of its
round (median); CPU seconds per image (user and system time of every process of the run: the
workers, or Snakemake and all its jobs) and the same ratio of those, which other work on a
shared machine disturbs far less than the wall clock; word F1 and CER (``ocrkie.evaluate``, on
the last round's records); and the peak resident memory of one engine process (bare: a
worker; workflow: a shard job's engine process).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from common import REPO, SROIE_HELP

from ocrkie.evaluate import evaluate, page_text
from ocrkie.page import Line

# -- bare engines ------------------------------------------------------------------------------

RAPIDOCR = {  # what the workflow's local engine runs with (engines/rapid.py), on the CPU
    "Global.return_word_box": True,
    "Global.log_level": "warning",
    "Global.text_score": 0.5,
    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    "Rec.rec_batch_num": 1,
}
META = ("procs", "threads", "batch")


def parse_spec(spec: str) -> tuple[str, dict[str, Any], dict[str, int]]:
    name, *items = spec.split(":")
    settings: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        settings[key] = yaml.safe_load(value)
    meta = {k: int(settings.pop(k)) for k in META if k in settings}
    return name, settings, meta


class BareEngine:
    """One engine, built in a worker: ``read(path)`` gives the page's lines."""

    def __init__(self, name: str, settings: dict[str, Any], threads: int):
        self.name = name
        if name == "rapidocr":
            from rapidocr import RapidOCR

            params = {**RAPIDOCR, "EngineConfig.onnxruntime.intra_op_num_threads": threads}
            self.engine = RapidOCR(params={**params, **settings})
        elif name == "faster-paddle":
            import faster_paddle

            self.engine = faster_paddle.OcrEngine(threads=threads, **settings)
        else:
            raise SystemExit(f"unknown bare engine {name!r}: rapidocr or faster-paddle")

    def read(self, path: str) -> list[Line]:
        if self.name == "rapidocr":
            found = self.engine(path)
            boxes = [] if found.boxes is None else found.boxes
            return [
                Line(text, float(score), [[float(x), float(y)] for x, y in box])
                for box, text, score in zip(boxes, found.txts, found.scores, strict=True)
            ]
        with open(path, "rb") as file:
            return fp_lines(self.engine.ocr(file.read()))

    def read_many(self, paths: list[str]) -> list[list[Line]]:
        if self.name == "rapidocr":
            return [self.read(p) for p in paths]
        images = []
        for path in paths:
            with open(path, "rb") as file:
                images.append(file.read())
        return [fp_lines(r) for r in self.engine.ocr_batch(images, batch_size=len(images))]


def fp_lines(result: dict[str, Any]) -> list[Line]:
    lines = []
    for bound in result["bounds"].values():
        (x0, y0), (x1, y1) = bound["topLeftCoord"], bound["bottomRightCoord"]
        polygon = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
        lines.append(Line(bound["text"], float(bound["confidence"]), polygon))
    return lines


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds() -> float:
    """CPU time of this process so far, user and system, all its threads."""
    times = os.times()
    return times.user + times.system


def _worker(spec: str, threads: int, warm_up: str, ready: Any, todo: Any, done: Any) -> None:
    name, settings, _ = parse_spec(spec)
    engine = BareEngine(name, settings, threads)
    engine.read(warm_up)  # the first call sets things up: not part of the steady state
    ready.wait()
    started = cpu_seconds()
    while (path := todo.get()) is not None:
        done.put((path, page_text(engine.read(path))))
    done.put((None, (peak_rss_mb(), cpu_seconds() - started)))


def run_bare(spec: str, paths: list[str], cores: int, records: Path) -> dict[str, Any]:
    """Seconds to read every image (model load and warm-up excluded); writes the records."""
    _, _, meta = parse_spec(spec)
    procs = meta.get("procs", cores)
    threads = meta.get("threads", 1)
    if procs == 1:
        return run_bare_inline(spec, paths, threads, meta.get("batch", 1), records)
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(procs + 1)
    todo, done = context.Queue(), context.Queue()
    for path in paths:
        todo.put(path)
    for _ in range(procs):
        todo.put(None)
    args = (spec, threads, paths[0], ready, todo, done)
    workers = [context.Process(target=_worker, args=args) for _ in range(procs)]
    for worker in workers:
        worker.start()
    ready.wait()  # every worker has its model
    started = time.perf_counter()
    texts, peaks, cpu = {}, [], 0.0
    while len(peaks) < procs:
        path, value = done.get()
        if path is None:
            peaks.append(value[0])
            cpu += value[1]
        else:
            texts[path] = value
            if len(texts) == len(paths):
                seconds = time.perf_counter() - started
    for worker in workers:
        worker.join()
    write_records(records, texts)
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": max(peaks)}


def run_bare_inline(
    spec: str, paths: list[str], threads: int, batch: int, records: Path
) -> dict[str, Any]:
    """One process of ``threads`` threads, in a child so that its memory is its own."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_inline, (spec, paths, threads, batch, str(records)))


def _inline(spec: str, paths: list[str], threads: int, batch: int, records: str) -> dict:
    name, settings, _ = parse_spec(spec)
    engine = BareEngine(name, settings, threads)
    engine.read_many(paths[:batch])
    started, cpu = time.perf_counter(), cpu_seconds()
    texts = {}
    for start in range(0, len(paths), batch):
        chunk = paths[start : start + batch]
        for path, lines in zip(chunk, engine.read_many(chunk), strict=True):
            texts[path] = page_text(lines)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    write_records(Path(records), texts)
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak_rss_mb()}


def write_records(records: Path, texts: dict[str, str]) -> None:
    """Just enough of an OCR record for ``ocrkie.evaluate``."""
    (records / "ocr").mkdir(parents=True, exist_ok=True)
    for path, text in texts.items():
        record = {"image": {"path": Path(path).name}, "status": "ok", "text": text}
        (records / "ocr" / f"{Path(path).stem}.json").write_text(json.dumps(record))


# -- the workflow ------------------------------------------------------------------------------


def workflow_config(spec: str) -> dict[str, Any]:
    backend, *items = spec.split(":")
    config: dict[str, Any] = {"ocr_backend": backend, "kie_backend": "rules", "cache": ""}
    for item in items:
        key, _, value = item.partition("=")
        block, _, name = key.partition(".")
        config.setdefault(block, {})[name] = yaml.safe_load(value)
    return config


def run_workflow(spec: str, images: Path, cores: int, folder: Path) -> dict[str, Any]:
    """The whole workflow in a fresh working folder (as a user runs it); wall-clock seconds."""
    folder.mkdir(parents=True)
    for name in ("workflow", "config", "scripts", "profiles", "envs", "resources"):
        (folder / name).symlink_to(REPO / name)
    settings = {"input_dir": str(images), "results_dir": "results", **workflow_config(spec)}
    (folder / "bench.yaml").write_text(yaml.safe_dump(settings))
    command = [sys.executable, "-m", "snakemake", "--profile", "profiles/local-gpu"]
    command += ["--cores", str(cores), "--configfile", "config/config.yaml", "bench.yaml"]
    started, cpu = time.perf_counter(), children_cpu_seconds()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - started, children_cpu_seconds() - cpu
    if done.returncode:
        sys.exit(f"{spec}: snakemake failed:\n{done.stderr[-3000:]}")
    results = folder / "results"
    manifests = [json.loads(p.read_text()) for p in (results / "shards" / "ocr").glob("*.json")]
    peak = max(m.get("worker", {}).get("peak_rss_mb", 0.0) for m in manifests)
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak, "results": results}


def children_cpu_seconds() -> float:
    """CPU time of every process this one has waited for (and theirs), user and system."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- the run -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help=SROIE_HELP)
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bare", nargs="*", default=["rapidocr", "faster-paddle:model_size=small"])
    parser.add_argument("--workflow", nargs="*", default=["rapidocr"])
    parser.add_argument("--baseline", help="the bare spec ratios are taken to (default: first)")
    parser.add_argument("--work", type=Path, help="keep the records here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    baseline = args.baseline or (args.bare[0] if args.bare else None)

    chosen = sorted(p for p in (args.data / "img").iterdir() if p.is_file())[: args.count]
    n = len(chosen)
    specs = [("bare", s) for s in args.bare] + [("workflow", s) for s in args.workflow]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in specs}
    print(f"{n} images of {args.data}, {args.cores} cores, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        images = Path(scratch) / "img"
        images.mkdir()
        for path in chosen:
            (images / path.name).symlink_to(path.resolve())
        paths = [str(images / p.name) for p in chosen]
        for round_ in range(1, args.rounds + 1):
            for kind, spec in specs:
                where = work / f"r{round_}-{kind}-{safe_name(spec)}"
                if kind == "bare":
                    run = run_bare(spec, paths, args.cores, where)
                    run["results"] = where
                else:
                    run = run_workflow(spec, images, args.cores, where)
                runs[(kind, spec)].append(run)
                print(
                    f"round {round_}: {kind} {spec}: {n / run['seconds']:.3f} images/s "
                    f"({run['seconds']:.1f} s, {run['cpu_seconds'] / n:.2f} CPU s/image, "
                    f"load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
        rows = table(runs, baseline, n, args.data)
    if args.json:
        args.json.write_text(json.dumps({"images": n, "cores": args.cores, "rows": rows}, indent=1))
    return 0


def table(runs: dict, baseline: str | None, n: int, truth: Path) -> list[dict[str, Any]]:
    base = runs.get(("bare", baseline)) if baseline else None
    print(f"\nratios to: bare {baseline}")
    print(
        f"{'':8} {'engine':<44} {'images/s':>9} {'ratio':>6} {'CPU s/img':>9} {'ratio':>6} "
        f"{'word F1':>8} {'CER':>7} {'peak RSS':>9}"
    )
    rows = []
    for (kind, spec), done in runs.items():
        rate = statistics.median(n / r["seconds"] for r in done)
        cpu = statistics.median(r["cpu_seconds"] / n for r in done)
        ratio = median_ratio(base, done, "seconds")
        cpu_ratio = median_ratio(base, done, "cpu_seconds")
        score = evaluate(done[-1]["results"], truth)
        peak = max(r["peak_rss_mb"] for r in done)
        rows.append(
            {
                "kind": kind,
                "spec": spec,
                "images_per_s": [round(n / r["seconds"], 3) for r in done],
                "ratio": round(ratio, 3),
                "cpu_s_per_image": [round(r["cpu_seconds"] / n, 3) for r in done],
                "cpu_ratio": round(cpu_ratio, 3),
                "word_f1": score["word_f1"],
                "cer": score["cer"],
                "peak_rss_mb": round(peak),
            }
        )
        print(
            f"{kind:8} {spec:<44} {rate:>9.3f} {ratio:>6.3f} {cpu:>9.3f} {cpu_ratio:>6.3f} "
            f"{score['word_f1']:>8.3f} {score['cer']:>7.2%} {peak:>6.0f} MB"
        )
    return rows


def median_ratio(base: list[dict] | None, done: list[dict], key: str) -> float:
    """The baseline's over the run's, round by round: above 1, the run is the faster."""
    if not base:
        return float("nan")
    return statistics.median(b[key] / r[key] for b, r in zip(base, done, strict=True))


def safe_name(spec: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in spec)


if __name__ == "__main__":
    sys.exit(main())
