"""Reliability figures: a bad-input corpus in one batch, kill -9 at ten points, and the engine
process's memory over a thousand images.

    python scripts/bench/reliability.py [--part corpus kills memory] [--images 1000]

1. corpus: the 35 kinds of tests/corpus.py (good files, damaged files, odd names, links,
   FIFOs, devices, pages of documents) in one run; prints how each kind ended and whether it
   is the expected end.
2. kills: a reference run over the samples, then ten runs each killed (kill -9 of the whole
   process group) at a different moment, unlocked and resumed with --rerun-incomplete;
   prints, per kill point, whether every record equals the reference's (timing aside).
3. memory: one OCR job over ``--images`` generated receipts (cache off); prints the engine
   process's resident memory every 100 images, from the job's worker statistics.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, SAMPLES
from PIL import Image, ImageDraw, ImageFont

from ocrkie.inputs import image_id
from ocrkie.testing.corpus import MAX_BYTES, make_corpus


def workdir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in ("workflow", "config", "scripts", "profiles", "envs", "resources"):
        (root / name).symlink_to(REPO / name)
    return root


def command(*args: str) -> list[str]:
    """A Snakemake run with the local profile on both cores."""
    profile = ("--profile", "profiles/local-gpu", "--cores", "2")
    return [sys.executable, "-m", "snakemake", *profile, *args]


def snakemake(where: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(command(*args), cwd=where, capture_output=True, text=True)
    if check and done.returncode:
        raise SystemExit(
            f"snakemake {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done


def records(results: Path) -> dict[str, dict]:
    found = {}
    for stage in ("ocr", "kie"):
        for path in (results / stage).glob("*.json"):
            record = json.loads(path.read_text())
            record.pop("timing", None)
            record.pop("compute_seconds", None)
            found[f"{stage}/{path.name}"] = record
    return found


def corpus(root: Path) -> None:
    where = workdir(root / "corpus")
    expected = make_corpus(where / "scans", SAMPLES)
    (where / "corpus.yaml").write_text(f"input_dir: scans\nimages: {{max_bytes: {MAX_BYTES}}}\n")
    started = time.perf_counter()
    snakemake(where, "--configfile", "config/config.yaml", "corpus.yaml")
    seconds = time.perf_counter() - started
    results = where / "results"
    with (results / "skipped.csv").open(encoding="utf-8", newline="") as handle:
        skipped = {row["path"]: row["reason"] for row in csv.DictReader(handle)}
    right = 0
    print(f"corpus: {len(expected)} kinds in one batch, {seconds:.0f} s")
    for relpath, expect in sorted(expected.items()):
        ident = image_id(relpath)
        if relpath in skipped:
            got = f"skipped: {skipped[relpath]}"
            ok = expect.outcome == "skipped" and str(expect.detail) in skipped[relpath]
        else:
            pages = sorted((results / "ocr").glob(f"{ident}*.json"))
            states = [json.loads(p.read_text()) for p in pages]
            if states and all(s["status"] == "ok" for s in states):
                got = f"ok, {len(states)} page(s)"
                ok = (expect.outcome, expect.detail) == ("ok", len(states))
            elif states:
                error = states[0]["error"]
                got = f"error {error['class']}: {error['message'][:70]}"
                ok = expect.outcome == "error" and error["class"] == expect.detail
            else:
                got, ok = "NOT ACCOUNTED FOR", False
        right += ok
        print(f"  {'✓' if ok else '✗'} {relpath!r:32} {got}")
    print(f"corpus: {right} of {len(expected)} kinds ended as expected")


def kills(root: Path, points: int = 10) -> None:
    reference = workdir(root / "reference")
    shutil.copytree(SAMPLES, reference / "scans")
    settings = 'input_dir: scans\nshard_size: 2\ncache: ""\n'  # cache off: all recomputed
    (reference / "kills.yaml").write_text(settings)
    arguments = ("--configfile", "config/config.yaml", "kills.yaml")
    started = time.perf_counter()
    snakemake(reference, *arguments)
    span = time.perf_counter() - started
    expected = records(reference / "results")
    print(f"kills: reference run {span:.0f} s, {len(expected)} records")
    same = 0
    for n in range(points):
        at = span * (n + 0.5) / points
        where = workdir(root / f"kill-{n}")
        shutil.copytree(SAMPLES, where / "scans")
        (where / "kills.yaml").write_text(settings)
        run = subprocess.Popen(
            command(*arguments),
            cwd=where,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(at)
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        before = len(records(where / "results")) if (where / "results").exists() else 0
        snakemake(where, "--unlock", *arguments)
        snakemake(where, "--rerun-incomplete", *arguments)
        got = records(where / "results")
        identical = got == expected
        same += identical
        verdict = "identical" if identical else "DIFFERENT"
        print(f"  kill at {at:5.1f} s ({before:2d} records then): resumed, {verdict}")
    print(f"kills: {same} of {points} resumed runs identical to the uninterrupted one")


def receipts(folder: Path, count: int) -> None:
    """Small distinct receipts with a few lines of text (fast to read: memory, not time)."""
    folder.mkdir(parents=True)
    font = ImageFont.load_default(size=22)
    for n in range(count):
        image = Image.new("RGB", (420, 220), "white")
        draw = ImageDraw.Draw(image)
        for row, text in enumerate(
            (
                f"STORE NO {n:05d}",
                f"ITEM {n % 97:02d}   {n % 50 + 1}.{n % 100:02d}",
                f"TOTAL RM {n % 300}.{n % 100:02d}",
            )
        ):
            draw.text((20, 20 + 60 * row), text, fill="black", font=font)
        image.save(folder / f"r{n:05d}.png")


def memory(root: Path, count: int) -> None:
    where = workdir(root / "memory")
    receipts(where / "scans", count)
    (where / "one-job.yaml").write_text(
        f"input_dir: scans\nshard_size: {count}\ncache: ''\nexports: [json]\n"
    )
    started = time.perf_counter()
    snakemake(where, "--cores", "1", "--configfile", "config/config.yaml", "one-job.yaml")
    seconds = time.perf_counter() - started
    (manifest,) = (where / "results" / "shards" / "ocr").glob("*.json")
    worker = json.loads(manifest.read_text())["worker"]
    rss = worker.pop("rss_mb")
    print(f"memory: {count} images in one OCR job, {seconds:.0f} s; worker {worker}")
    for n in [*range(0, len(rss), max(1, len(rss) // 10)), len(rss) - 1]:
        print(f"  after image {n + 1:5d}: engine process {rss[n]:5d} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", nargs="+", default=["corpus", "kills", "memory"])
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        if "corpus" in args.part:
            corpus(root)
        if "kills" in args.part:
            kills(root)
        if "memory" in args.part:
            memory(root, args.images)


if __name__ == "__main__":
    main()
