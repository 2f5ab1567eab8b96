"""One table of the extracted fields per batch, ``kie.csv`` and ``kie.jsonl``, from the KIE
shard manifests (which carry each record's values as it was written): one row per image in
id order, consistent with the records, and cheap at 100,000 images (no record is read).

Each field has three columns: ``<field>`` (the normalised value), ``<field>_raw`` (the text
as the document prints it) and ``<field>_confidence``; a field the batch agrees on
(``agreement``) two more: ``<field>_agreed``, the value more of the batch's images read, where
it mends this image's, and ``<field>_agreed_by``, how many read it (``kie.jsonl``: ``agreed``,
with their ids). Values are text as written: "9.00"
stays "9.00" for a reader that keeps cells as text (``pandas.read_csv(..., dtype=str,
keep_default_na=False)``).

Every CSV the workflow writes is opened in spreadsheets, and its values come from scanned
documents and file names: ``spreadsheet_row`` keeps a spreadsheet from running any as a
formula. The JSON outputs keep the values exact."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .agreement import Agreed, agreed_values
from .formats import atomic_file, read_json

# What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# Image ids (``inputs.image_id``: letters, digits and ``._-`` only) can call no function nor
# reach outside the sheet, and scripts look records up by them: they are written exact.
KEY_COLUMNS = frozenset({"id", "image"})


def kie_columns(fields: list[str], agreed: Sequence[str] = ()) -> list[str]:
    """The CSV's columns: per field its normalised value, its raw text and its confidence, and
    for those of ``agreed`` the batch's agreed value and how many images read it."""
    per_field = [
        c for f in fields for c in (f, f"{f}_raw", f"{f}_confidence", *_agreed_columns(f, agreed))
    ]
    return ["id", "path", "status", *per_field, "error"]


def _agreed_columns(field: str, agreed: Sequence[str]) -> tuple[str, ...]:
    return (f"{field}_agreed", f"{field}_agreed_by") if field in agreed else ()


def write_kie_tables(
    manifest_paths: list[str],
    fields: list[str],
    csv_path: str,
    jsonl_path: str,
    agreed: Sequence[str] = (),
) -> int:
    """Write both tables, rows in id order; returns the number of rows. ``fields``: the
    schema's, in order; ``agreed``: those the batch agrees on. One manifest is read at a
    time; only the rows' text and the agreed fields' values are held, to sort the rows (the
    shards interleave ids) and to agree."""
    rows: list[tuple[str, dict[str, Any], str]] = []
    readings: dict[str, dict[str, str]] = {name: {} for name in agreed}
    for path in manifest_paths:
        for entry in read_json(path)["entries"]:
            csv_row = spreadsheet_row(_csv_row(entry, fields))
            rows.append((entry["id"], csv_row, json.dumps(_json_row(entry), ensure_ascii=False)))
            for name in agreed:
                if value := entry.get("fields", {}).get(name, {}).get("normalized"):
                    readings[name][entry["id"]] = value
    mended = {name: agreed_values(values) for name, values in readings.items()}
    rows.sort(key=lambda row: row[0])
    with atomic_file(csv_path) as table, atomic_file(jsonl_path) as lines:
        columns = kie_columns(fields, agreed)
        writer = csv.DictWriter(table, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for image, csv_row, json_line in rows:
            batch = {name: m[image] for name, m in mended.items() if image in m}
            writer.writerow({**csv_row, **spreadsheet_row(_agreed_cells(agreed, batch))})
            lines.write(_with_agreed(json_line, batch) + "\n")
    return len(rows)


def _agreed_cells(agreed: Sequence[str], batch: dict[str, Agreed]) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for name in agreed:
        value = batch.get(name)
        cells[f"{name}_agreed"] = value.value if value else ""
        cells[f"{name}_agreed_by"] = value.images if value else ""
    return cells


def _with_agreed(json_line: str, batch: dict[str, Agreed]) -> str:
    """The row's JSON with ``agreed`` (field -> value, images, ids) where the batch mends it."""
    if not batch:
        return json_line
    row = json.loads(json_line)
    row["agreed"] = {
        name: {"value": a.value, "images": a.images, "ids": a.ids} for name, a in batch.items()
    }
    return json.dumps(row, ensure_ascii=False)


def spreadsheet_cell(text: str) -> str:
    """``text`` with a leading ``'`` where a spreadsheet would take it for a formula (it starts
    with ``= + - @``, a tab or a carriage return), as OWASP advises; plain numbers such as
    ``-12.50`` or ``+3`` stay as they are, so that number columns stay numbers."""
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def spreadsheet_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A CSV row with each text cell made safe to open in a spreadsheet (ids left exact)."""
    return {
        key: spreadsheet_cell(value) if isinstance(value, str) and key not in KEY_COLUMNS else value
        for key, value in row.items()
    }


def _csv_row(entry: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    row = {"id": entry["id"], "path": entry["path"], "status": entry["status"]}
    values = entry.get("fields", {})
    for name in fields:
        value = values.get(name, {})
        row[name] = _text(value.get("normalized"))
        row[f"{name}_raw"] = _text(value.get("value"))
        confidence = value.get("confidence")
        row[f"{name}_confidence"] = "" if confidence is None else confidence
    error = entry.get("error")
    row["error"] = f"{error['class']}: {error['message']}" if error else ""
    return row


def _text(value: str | None) -> str:
    return "" if value is None else str(value)


def _json_row(entry: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "path", "status", "fields", "error")
    return {key: entry[key] for key in keep if key in entry}
