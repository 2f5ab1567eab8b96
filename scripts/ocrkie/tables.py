"""One table of the extracted fields per batch, ``kie.csv`` and ``kie.jsonl``, from the KIE
shard manifests (which carry each record's values as it was written): one row per image,
consistent with the records, and cheap at 100,000 images (no record is read)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from .formats import read_json


def write_kie_tables(
    manifest_paths: list[str], fields: list[str], csv_path: str, jsonl_path: str
) -> int:
    """Write both tables, streaming (one manifest in memory at a time); returns the number of
    rows. ``fields``: the schema's, in order; rows follow the shards, each in id order."""
    columns = [
        "id",
        "path",
        "status",
        *[c for f in fields for c in (f, f"{f}_confidence")],
        "error",
    ]
    count = 0
    with _atomic(csv_path) as table, _atomic(jsonl_path) as lines:
        writer = csv.DictWriter(table, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for path in sorted(manifest_paths, key=lambda p: Path(p).name):
            for entry in read_json(path)["entries"]:
                writer.writerow(_csv_row(entry, fields))
                lines.write(json.dumps(_json_row(entry), ensure_ascii=False) + "\n")
                count += 1
    return count


@contextmanager
def _atomic(path: str) -> Iterator[TextIO]:
    """A text file written under a temporary name, renamed into place when complete."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    partial = Path(f"{path}.partial")
    with partial.open("w", encoding="utf-8", newline="") as handle:
        yield handle
    partial.replace(path)


def _csv_row(entry: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    row = {"id": entry["id"], "path": entry["path"], "status": entry["status"]}
    values = entry.get("fields", {})
    for name in fields:
        value = values.get(name, {})
        row[name] = value.get("normalized") if value.get("normalized") is not None else ""
        confidence = value.get("confidence")
        row[f"{name}_confidence"] = "" if confidence is None else confidence
    error = entry.get("error")
    row["error"] = f"{error['class']}: {error['message']}" if error else ""
    return row


def _json_row(entry: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "path", "status", "fields", "error")
    return {key: entry[key] for key in keep if key in entry}


def kie_tables_job(smk: Any) -> None:
    from .fields import load_field_schema

    fields = [spec.name for spec in load_field_schema(smk.config["kie_schema"]).fields]
    count = write_kie_tables(list(smk.input.kie), fields, smk.output.csv, smk.output.jsonl)
    print(f"{count} rows in {smk.output.csv} and {smk.output.jsonl}")
