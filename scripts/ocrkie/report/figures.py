"""The report's figures (PNG, drawn with matplotlib): images by status, throughput over time,
OCR line confidence, and the fields found with their confidence."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen
import matplotlib.pyplot as plt

from ..page import CONFIDENCE_EDGES

COLOURS = {"ok": "#2e7d32", "error": "#c62828", "skipped": "#9e9e9e"}
TENTHS = tuple(n / 10 for n in range(11))  # the bins of manifests written before the edges


def status_figure(stages: dict[str, list[dict[str, Any]]], out: Path) -> None:
    """Images by status, per stage."""
    fig, ax = plt.subplots(figsize=(7, 2.6))
    for row, entries in enumerate(stages.values()):
        left = 0
        for status, count in sorted(Counter(e["status"] for e in entries).items()):
            ax.barh(row, count, left=left, color=COLOURS.get(status, "#1565c0"), label=status)
            ax.text(
                left + count / 2, row, f"{status} {count}", ha="center", va="center", color="white"
            )
            left += count
    ax.set_yticks(range(len(stages)), [s.upper() for s in stages])
    ax.set_xlabel("images")
    ax.set_title("Images by status")
    save(fig, out)


def throughput_figure(stages: dict[str, list[dict[str, Any]]], out: Path) -> None:
    """Records finished against the time since the run began, per stage (computed, and taken
    from the content cache)."""
    curves = {
        f"{stage.upper()} {label}": sorted(
            _stamp(e["finished_at"]) for e in entries if e["cached"] is cached
        )
        for stage, entries in stages.items()
        for cached, label in ((False, "computed"), (True, "from the cache"))
    }
    curves = {label: times for label, times in curves.items() if times}
    start = min(
        (_stamp(e["finished_at"]) - e["seconds"] for es in stages.values() for e in es),
        default=0.0,
    )
    span = max((times[-1] for times in curves.values()), default=start) - start
    unit, size = elapsed_unit(span)
    fig, ax = plt.subplots(figsize=(7, 3))
    for label, times in curves.items():
        xs = [0.0] + [(t - start) / size for t in times]
        ax.step(xs, range(len(xs)), where="post", label=label)
    ax.set_xlabel(f"{unit} since the run began")
    ax.set_ylabel("records finished")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_title("Throughput")
    if curves:
        ax.legend(loc="upper left")
    save(fig, out)


def elapsed_unit(seconds: float) -> tuple[str, float]:
    """The unit a time axis reads best in, and its length in seconds."""
    if seconds < 120:
        return "seconds", 1.0
    if seconds < 3 * 3600:
        return "minutes", 60.0
    return "hours", 3600.0


def confidence_figure(entries: list[dict[str, Any]], out: Path) -> None:
    """How many OCR lines fall in each bin of confidence; the bins narrow towards 1."""
    edges, counts = confidence_counts(entries)
    labels = [f"{low:g}–{high:g}" for low, high in itertools.pairwise(edges)]
    fig, ax = plt.subplots(figsize=(7, 3))
    bars = ax.bar(range(len(counts)), counts, color="#1565c0")
    ax.bar_label(bars, [str(c) if c else "" for c in counts], fontsize=8)
    ax.set_xticks(range(len(counts)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_xlabel("line confidence")
    ax.set_ylabel("lines")
    ax.set_title(f"OCR line confidence ({sum(counts)} lines)")
    save(fig, out)


def confidence_counts(entries: list[dict[str, Any]]) -> tuple[tuple[float, ...], list[int]]:
    """The bin edges and the lines in each bin, over every page (in tenths when any manifest
    predates the finer bins)."""
    key, edges = "confidence_bins", CONFIDENCE_EDGES
    if any("confidence_histogram" in e for e in entries):
        key, edges = "confidence_histogram", TENTHS
    counts = [0] * (len(edges) - 1)
    for entry in entries:
        for n, count in enumerate(entry.get(key, [])):
            counts[n] += count
    return edges, counts


def fields_figure(entries: list[dict[str, Any]], out: Path) -> None:
    """Per field: the share of images with a value, and the mean confidence of those values."""
    ok = [e for e in entries if e["status"] == "ok"]
    names = list(ok[0]["fields"]) if ok else []
    fill, confidence = [], []
    for name in names:
        values = [e["fields"][name] for e in ok if e["fields"].get(name, {}).get("normalized")]
        fill.append(len(values) / len(ok))
        scores = [v["confidence"] for v in values if v.get("confidence") is not None]
        confidence.append(sum(scores) / len(scores) if scores else 0.0)
    fig, ax = plt.subplots(figsize=(7, 3))
    positions = range(len(names))
    for shift, heights, label, colour in (
        (-0.2, fill, "share of images where found", "#2e7d32"),
        (0.2, confidence, "mean confidence when found", "#1565c0"),
    ):
        bars = ax.bar([p + shift for p in positions], heights, 0.4, label=label, color=colour)
        ax.bar_label(bars, [f"{h:.2f}" for h in heights], fontsize=8)
    ax.set_xticks(list(positions), names)
    ax.set_ylim(0, 1.25)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_title(f"KIE fields ({len(ok)} images with fields)")
    ax.legend(loc="upper right", ncols=2, fontsize=8)
    save(fig, out)


def save(fig: Any, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _stamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
