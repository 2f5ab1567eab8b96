"""How a run ends: the closing block it prints (images ok, failed by class, skipped and from
the cache; time and throughput; what the API cost; where the failures are) and its verdict:
a run in which more images failed than ``max_failed`` allows exits with status 3, after every
other image is done."""

from __future__ import annotations

import math
from typing import Any

from .errors import TooManyFailures
from .formats import read_json, write_json_atomic
from .progress import LABELS, Count, duration

EXIT_FAILED_IMAGES = 3  # docs/exit-codes.md
ENDPOINT_NAMES = {
    "ocr": "OCR",
    "information-extract": "Information Extraction",
    "document-parse": "Document Parse",
}


def allowed_failures(max_failed: float, images: int) -> int:
    """``max_failed`` below 1 is a share of the images (0.01: 1%, rounded down), from 1 up a
    count."""
    if max_failed >= 1:
        return int(max_failed)
    return math.floor(max_failed * images + 1e-9)


def too_many_failures(summary: dict[str, Any], max_failed: float) -> str | None:
    """Why the run's exit status is ``EXIT_FAILED_IMAGES``, or None when its failures are
    within ``max_failed``."""
    failed, images = summary["failed_images"], summary["images"]
    allowed = allowed_failures(max_failed, images)
    if failed <= allowed:
        return None
    share = f" ({100 * max_failed:.3g}% of {images} images)" if 0 < max_failed < 1 else ""
    return f"{failed} of {images} images failed; max_failed {max_failed:g}{share} allows {allowed}"


def closing_lines(
    summary: dict[str, Any],
    results: str,
    seconds: float,
    counts: dict[str, Count],
    prices: dict[str, float],
    max_failed: float,
) -> list[str]:
    """The block printed at the end of a run. ``counts``: what this run's jobs did, per
    stage (empty when it ran none)."""
    images, failed = summary["images"], summary["failed_images"]
    skipped = sum(summary.get("skipped", {}).values())
    head = f"ocrkie: {images} images, {images - failed} ok, {failed} failed"
    head += f", {skipped} inputs skipped (skipped.csv)" if skipped else ""
    lines = [head + f"; this run took {duration(seconds)}"]
    lines += _this_run(counts)
    if failed:
        classes = ", ".join(f"{n} {c}" for c, n in summary.get("failed_by_class", {}).items())
        lines.append(f"  failed: {classes}")
        lines.append(
            f"  every failure in {results}/failures.csv; the jobs' logs in {results}/logs/"
        )
    lines += _api_lines(summary.get("api", {}), prices)
    lines += cascade_lines(summary.get("kie", {}).get("cascade"), prices)
    verdict = too_many_failures(summary, max_failed)
    if verdict:
        lines.append(
            f"  exit status {EXIT_FAILED_IMAGES}: {verdict}; every other image is done, and a "
            "rerun redoes none of it (see docs/exit-codes.md)"
        )
    elif failed:
        allowed = allowed_failures(max_failed, images)
        lines.append(f"  exit status 0: max_failed allows {allowed} failed images")
    return lines


def _this_run(counts: dict[str, Count]) -> list[str]:
    """Per stage: the images this run's jobs did, how many came from the cache, how fast."""
    lines = []
    for stage, count in counts.items():
        if not count.done:
            continue
        computed = count.done - count.cached
        line = f"  {LABELS.get(stage, stage)}: {count.done} images this run"
        line += f" ({count.cached} from the cache)" if count.cached else ""
        if computed and count.seconds > 0:
            line += f", {count.done / count.seconds:.3g} images/s"
        lines.append(line)
    return lines


def _api_lines(api: dict[str, Any], prices: dict[str, float]) -> list[str]:
    """What every run into this results folder paid the service, and what the cache saved."""
    lines = []
    saved = api.get("saved_by_cache", {})
    possibly = api.get("possibly_billed", {})
    for endpoint in sorted({*api.get("spent", {}), *saved}):
        pages = api.get("spent", {}).get(endpoint, {}).get("billed_pages", 0)
        price = prices.get(endpoint, 0.0)
        name = ENDPOINT_NAMES.get(endpoint, endpoint)
        line = f"  API, Upstage {name}: {pages} pages billed"
        line += f" ({money(pages * price)} at {money(price)} a page)" if price else ""
        if extra := possibly.get(endpoint, {}).get("pages", 0):
            line += f", {extra} more possibly billed"
        if kept := saved.get(endpoint, {}).get("billed_pages", 0):
            line += f"; {kept} pages from the cache"
            line += f" ({money(kept * price)} saved)" if price else ""
        lines.append(line + " (every run into this results folder)")
    if lines and not any(prices.get(e) for e in {*api.get("spent", {}), *saved}):
        lines.append("  (set upstage.price_per_page to see these in money)")
    return lines


def cascade_lines(cascade: dict[str, int] | None, prices: dict[str, float]) -> list[str]:
    """``kie_backend: cascade``: the documents sent to the API of all read, and what they
    cost against sending all."""
    if not cascade:
        return []
    sent, documents = cascade["sent"], cascade["documents"]
    line = (
        f"  KIE cascade: {sent} of {documents} documents sent to Upstage Information "
        f"Extraction ({sent / documents:.0%}; the others read by the local model alone)"
    )
    if price := prices.get("information-extract", 0.0):
        line += (
            f"; {money(cascade['sent_pages'] * price)} against "
            f"{money(cascade['pages'] * price)} for sending all"
        )
    else:
        line += f"; {cascade['sent_pages']} pages against {cascade['pages']} for sending all"
    return [line]


def money(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 1 or amount == 0 else f"${amount:.4g}"


def check_failures(summary_path: str, max_failed: float, accepted_path: str) -> None:
    """Write ``accepted_path`` when the run's failures are within ``max_failed``; else raise
    ``TooManyFailures`` (the check's job fails, and nothing is written, so that every rerun
    checks again, and only this)."""
    summary = read_json(summary_path)
    verdict = too_many_failures(summary, max_failed)
    if verdict:
        raise TooManyFailures(verdict)
    allowed = allowed_failures(max_failed, summary["images"])
    document = {"images": summary["images"], "failed_images": summary["failed_images"]}
    write_json_atomic(accepted_path, {**document, "max_failed": max_failed, "allowed": allowed})
