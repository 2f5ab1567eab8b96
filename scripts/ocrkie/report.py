"""The figures and tables of ``snakemake --report``: a batch at a glance.

Everything comes from the shard manifests and summary.json (no record is read), except the
sample pages, which draw a few records' boxes on their images.
"""

from __future__ import annotations

import csv
import html
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen
import matplotlib.pyplot as plt
from PIL import Image, ImageDraw

from .formats import read_json
from .images import PageImage, decode_page
from .results import Results, record_name
from .storage import read_input

COLOURS = {"ok": "#2e7d32", "error": "#c62828", "skipped": "#9e9e9e"}
SAMPLES = 3


def _entries(paths: list[str]) -> list[dict[str, Any]]:
    return [entry for path in paths for entry in read_json(path)["entries"]]


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
    _save(fig, out)


def throughput_figure(entries: list[dict[str, Any]], out: Path) -> None:
    """OCR records finished over time (computed and from the cache)."""
    fig, ax = plt.subplots(figsize=(7, 3))
    for cached, label in ((False, "computed"), (True, "from the cache")):
        times = sorted(
            datetime.fromisoformat(e["finished_at"]) for e in entries if e["cached"] is cached
        )
        if times:
            ax.step(times, range(1, len(times) + 1), where="post", label=label)
    ax.set_ylabel("OCR records")
    ax.set_title("Throughput over time")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    _save(fig, out)


def confidence_figure(entries: list[dict[str, Any]], out: Path) -> None:
    """Histogram of OCR line confidences (in tenths)."""
    totals = [0] * 10
    for entry in entries:
        for n, count in enumerate(entry.get("confidence_histogram", [])):
            totals[n] += count
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar([n / 10 + 0.05 for n in range(10)], totals, width=0.09, color="#1565c0")
    ax.set_xlim(0, 1)
    ax.set_xlabel("line confidence")
    ax.set_ylabel("lines")
    ax.set_title(f"OCR line confidence ({sum(totals)} lines)")
    _save(fig, out)


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
    ax.bar([p - 0.2 for p in positions], fill, width=0.4, label="filled", color="#2e7d32")
    ax.bar(
        [p + 0.2 for p in positions],
        confidence,
        width=0.4,
        label="mean confidence",
        color="#1565c0",
    )
    ax.set_xticks(list(positions), names)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"KIE fields ({len(ok)} images with fields)")
    ax.legend(loc="lower right")
    _save(fig, out)


def costs_table(summary: dict[str, Any], out: Path) -> None:
    """API calls and billed pages: spent, possibly billed besides, saved by the cache, and
    requests (429s)."""
    api = summary.get("api", {})
    sections = ("spent", "possibly_billed", "saved_by_cache", "requests")
    rows = []
    for endpoint in sorted({e for section in sections for e in api.get(section, {})}):
        spent, maybe, saved, sent = (api.get(section, {}).get(endpoint, {}) for section in sections)
        rows.append(
            [
                endpoint,
                spent.get("calls", 0),
                spent.get("billed_pages", 0),
                maybe.get("pages", 0),
                saved.get("calls", 0),
                saved.get("billed_pages", 0),
                sent.get("requests", 0),
                sent.get("http_429", 0),
            ]
        )
    head = [
        "endpoint",
        "calls paid",
        "pages paid",
        "pages possibly billed besides (answers lost)",
        "calls saved by the cache",
        "pages saved by the cache",
        "requests sent",
        "429 answers",
    ]
    note = "" if rows else "<p>No API was used in this run: all engines were local.</p>"
    _html_table(out, "API spend and cache savings", head, rows, note)


def failures_table(failures_csv: Path, out: Path) -> None:
    rows = list(csv.reader(failures_csv.read_text(encoding="utf-8").splitlines()))
    head, body = (rows[0], rows[1:]) if rows else ([], [])
    note = "" if body else "<p>No image failed.</p>"
    _html_table(out, f"Failures ({len(body)})", head, body, note)


def sample_pages(
    results: Results, ocr: list[dict[str, Any]], paths: dict[str, str], folder: Path
) -> None:
    """A few pages with their OCR lines (blue) and KIE values (green) drawn on them."""
    folder.mkdir(parents=True, exist_ok=True)
    chosen = [e for e in ocr if e["status"] == "ok"][:SAMPLES]
    for n, entry in enumerate(chosen, start=1):
        data = read_input(paths[entry["id"]])
        page = decode_page(data, 10**9, 1600, entry["path"], entry.get("page", 1))
        name = record_name(entry["id"], entry.get("page", 1), entry.get("pages", 1))
        ocr_record = results.read_record("ocr", name)
        try:
            kie_record = results.read_record("kie", entry["id"])
        except FileNotFoundError:  # kie_backend: none
            kie_record = {}
        _drawn(page, ocr_record, kie_record).save(folder / f"page_{n}.png")


def _drawn(page: PageImage, ocr: dict[str, Any], kie: dict[str, Any]) -> Image.Image:
    image = page.image.copy()
    draw = ImageDraw.Draw(image)

    def scaled(polygon: list[list[float]]) -> list[tuple[float, float]]:
        return [(x * page.scale, y * page.scale) for x, y in polygon]

    for line in ocr["lines"]:
        draw.polygon(scaled(line["polygon"]), outline="#1565c0", width=2)
    for name, value in kie.get("fields", {}).items():
        polygon = (value.get("source") or {}).get("polygon")
        if polygon:
            corners = scaled(polygon)
            draw.polygon(corners, outline="#2e7d32", width=4)
            draw.text((corners[0][0], max(0, corners[0][1] - 12)), name, fill="#2e7d32")
    return image


def _html_table(out: Path, title: str, head: list[Any], rows: list[list[Any]], note: str) -> None:
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    header = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
    out.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>table{border-collapse:collapse;font-family:sans-serif}"
        "td,th{border:1px solid #bbb;padding:4px 8px;text-align:left}</style></head>"
        f"<body><h3>{title}</h3>{note}<table><tr>{header}</tr>{cells}</table></body></html>\n",
        encoding="utf-8",
    )


def _save(fig: Any, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def draw_report(
    plan_file: str,
    manifests: dict[str, list[str]],
    summary_path: str,
    failures_path: str,
    results_location: str,
    out: dict[str, Path],
) -> None:
    """Every figure and table of the report (``out``: one path per item) from the OCR and
    KIE manifests, the summary, the failures and, for the sample pages, the records."""
    from .plan import decode_plan

    stages = {stage: _entries(manifests[stage]) for stage in ("ocr", "kie")}
    status_figure(stages, out["status"])
    throughput_figure(stages["ocr"], out["throughput"])
    confidence_figure(stages["ocr"], out["confidence"])
    fields_figure(stages["kie"], out["fields"])
    costs_table(json.loads(Path(summary_path).read_text()), out["costs"])
    failures_table(Path(failures_path), out["failures"])
    with open(plan_file, "rb") as handle:
        paths = {i.id: i.path for s in decode_plan(handle.read()) for i in s.images}
    sample_pages(Results(results_location), stages["ocr"], paths, out["samples"])
