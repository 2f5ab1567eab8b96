"""Sustained request rate of the workflow against a rate-limited API, as a share of the limit.

    python scripts/bench/upstage.py [--images 60] [--latency 0.3 1.5] [--load 2]

Starts the test suite's fake Upstage server on 127.0.0.1 with realistic latency and the
documented base-tier limits enforced (429 above them), runs the whole workflow with the
Upstage OCR and KIE backends on copies of the samples (each copy a distinct file, so nothing
is cached), and prints per endpoint: requests, the sustained rate (requests over the span
from first to last arrival) divided by the configured limit, and the 429s received, also per
1,000 requests. ``--load N`` keeps N busy processes running meanwhile (the machine under
load: the case where encoding a request body used to delay it past its rate-limit slot).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, SAMPLES
from PIL import Image

from ocrkie.testing.upstage_fake import FakeUpstage

KEY = "up_bench_key"
LIMITS = {"ocr": 3.0, "information-extract": 1.0}  # the documented base tier
FAST = 100.0  # the OCR limit while Information Extraction is measured: OCR keeps it fed


def make_images(folder: Path, count: int) -> None:
    """Distinct files (one pixel differs) that still look like the registered samples."""
    samples = sorted(SAMPLES.iterdir())
    folder.mkdir(parents=True)
    for n in range(count):
        source = samples[n % len(samples)]
        image = Image.open(source).convert("RGB")
        image.putpixel((0, 0), (n % 256, n // 256, 7))
        image.save(folder / f"copy_{n:04d}.png")


def busy(stop: object) -> None:
    while not stop.is_set():  # type: ignore[attr-defined]
        sum(i * i for i in range(10_000))


def sustained_rate(arrivals: list[float]) -> float:
    span = max(arrivals) - min(arrivals)
    return (len(arrivals) - 1) / span if span > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--latency", type=float, nargs=2, default=(0.3, 1.5))
    parser.add_argument(
        "--kie-images",
        type=int,
        default=20,
        help="images also sent to Information Extraction (1 request/s)",
    )
    parser.add_argument("--load", type=int, default=2, help="busy processes meanwhile")
    args = parser.parse_args()
    stop = multiprocessing.Event()
    loaders = [multiprocessing.Process(target=busy, args=(stop,)) for _ in range(args.load)]
    for loader in loaders:
        loader.start()
    try:
        stats = run(args)
    finally:
        stop.set()
        for loader in loaders:
            loader.join()
    print(
        f"latency {args.latency[0]}-{args.latency[1]} s per call; limits enforced: {LIMITS}; "
        f"{args.load} busy processes on {os.cpu_count()} cores"
    )
    for endpoint, limit in LIMITS.items():
        arrivals = stats["arrivals"].get(endpoint, [])
        if endpoint == "ocr":
            arrivals = arrivals[: len(arrivals) - args.kie_images]  # the measured phase only
        rate = sustained_rate(arrivals)
        refused = stats["rate_limited"].get(endpoint, 0)
        total = len(stats["arrivals"].get(endpoint, []))
        print(
            f"{endpoint:20s} requests {len(arrivals):4d}  sustained {rate:5.2f}/s  "
            f"= {rate / limit:.3f} x limit  429s {refused} "
            f"({1000 * refused / max(1, total):.1f} per 1,000 requests)"
        )


def run(args: argparse.Namespace) -> dict:
    with (
        tempfile.TemporaryDirectory() as scratch,
        FakeUpstage(
            api_key=KEY, latency=tuple(args.latency), rate_limits=LIMITS, rate_limit_retry_after=1
        ) as fake,
    ):
        fake.register_dir(REPO / "resources" / "samples")
        make_images(Path(scratch, "scans"), args.images)
        runs = [
            ("local", args.images, LIMITS),
            ("upstage", args.kie_images, {**LIMITS, "ocr": FAST}),
        ]
        for kie_backend, count, limits in runs:
            fake.configure(rate_limits=limits)
            ocr_backend = "upstage"
            results = Path(scratch, f"results-{ocr_backend}-{kie_backend}")
            config = {
                "input_list": _list(Path(scratch, "scans"), count, results),
                "results_dir": str(results),
                "shard_size": 16,
                "ocr_backend": ocr_backend,
                "kie_backend": kie_backend,
                "upstage": {"base_url": fake.url, "rate_limits": limits},
            }
            config_file = Path(scratch, "bench.yaml")
            config_file.write_text(json.dumps(config))
            command = [
                sys.executable,
                "-m",
                "snakemake",
                "--profile",
                "profiles/local-gpu",
                "--cores",
                "2",
                "--configfile",
                str(config_file),
            ]
            env = {**os.environ, "UPSTAGE_API_KEY": KEY}
            done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"the workflow failed:\n{done.stderr[-3000:]}")
        return fake.stats()


def _list(folder: Path, count: int, results: Path) -> str:
    listing = results.with_suffix(".txt")
    names = sorted(p.name for p in folder.iterdir())[:count]
    listing.write_text("".join(f"{folder / name}\n" for name in names))
    return str(listing)


if __name__ == "__main__":
    main()
