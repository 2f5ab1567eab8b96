"""The fields a person should check: ``review.csv``, one row per field read with a confidence
below the threshold (or not found), with a crop of where on the page it was read.

Rows are the least confident first, so an hour of review goes where errors are likeliest.
The ``corrected`` column is left empty: a reviewer writes the right value there (the value
read, where it was right), and ``snakemake train_kie --config corrections=<review.csv>``
adapts the KIE model to the corrections. A row left empty is a field not reviewed.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

from PIL import Image

from .formats import atomic_file, read_json
from .images import PageImage, crop_line, decode_page
from .results import Results
from .storage import read_input
from .tables import spreadsheet_row

log = logging.getLogger("ocrkie.review")

COLUMNS = ["id", "image", "sha256", "field", "value", "confidence", "crop", "corrected"]
PADDING = 0.3  # line heights of margin around a crop
CROP_SIDE = 1600  # pages are decoded at most this long for crops (as for the report)


def uncertain(entries: list[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
    """The fields of the ok KIE manifest ``entries`` below ``threshold``, least sure first."""
    rows = []
    for entry in entries:
        if entry["status"] != "ok":
            continue
        for name, value in entry.get("fields", {}).items():
            confidence = value.get("confidence")
            if confidence is None or confidence >= threshold:
                continue
            rows.append(
                {
                    "id": entry["id"],
                    "image": entry["path"],
                    "sha256": entry["sha256"],
                    "field": name,
                    "value": value.get("normalized") or "",
                    "confidence": confidence,
                }
            )
    return sorted(rows, key=lambda r: (r["confidence"], r["id"], r["field"]))


def write_review(
    plan_file: str,
    manifest_paths: list[str],
    results_location: str,
    threshold: float,
    max_fields: int,
    csv_path: str,
    crops: Path,
) -> int:
    """Write ``review.csv`` and the crops of its fields (``crops/<id>-<field>.png``); returns
    the number of rows (at most ``max_fields``, 0: no limit)."""
    from .plan import decode_plan

    entries = [entry for path in manifest_paths for entry in read_json(path)["entries"]]
    rows = uncertain(entries, threshold)
    if max_fields:
        rows = rows[:max_fields]
    with open(plan_file, "rb") as handle:
        paths = {i.id: i.path for s in decode_plan(handle.read()) for i in s.images}
    crops.mkdir(parents=True, exist_ok=True)
    results = Results(results_location)
    pages: dict[tuple[str, int], PageImage] = {}
    for row in rows:
        row["crop"] = _crop(results, paths[row["id"]], row, crops, pages)
        row["corrected"] = ""
    with atomic_file(csv_path) as table:
        writer = csv.DictWriter(table, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(spreadsheet_row(row) for row in rows)
    log.info("%d fields below %s to review in %s", len(rows), threshold, csv_path)
    return len(rows)


def _crop(
    results: Results,
    path: str,
    row: dict[str, Any],
    crops: Path,
    pages: dict[tuple[str, int], PageImage],
) -> str:
    """The crop's path relative to the results (beside review.csv); "" where the field has no
    source on the page (not found)."""
    source = results.read_record("kie", row["id"])["fields"][row["field"]].get("source") or {}
    polygon = source.get("polygon")
    if not polygon:
        return ""
    number = source.get("page", 1)
    if (row["id"], number) not in pages:
        pages.clear()  # rows of one image are not all together: keep one page at a time
        data = read_input(path)
        pages[row["id"], number] = decode_page(data, 10**9, CROP_SIDE, row["image"], number)
    image: Image.Image = crop_line(pages[row["id"], number], polygon, PADDING)
    name = f"{row['id']}-{row['field']}.png"
    image.save(crops / name)
    return f"{crops.name}/{name}"
