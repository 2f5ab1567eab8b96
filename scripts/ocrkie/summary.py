"""The end-of-run report: ``summary.json`` (counts, timings, throughput) and ``failures.csv``."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from .formats import now_iso, read_json, write_json_atomic

FAILURE_COLUMNS = ["image", "path", "stage", "class", "message"]


def stage_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    timings = [r["timing"] for r in records if "timing" in r]
    computed = [t for t in timings if not t["cached"]]
    busy = sum(t["seconds"] for t in computed)
    summary: dict[str, Any] = {
        "images": len(records),
        "status": dict(Counter(r["status"] for r in records)),
        "cached": len(timings) - len(computed),
        "busy_seconds": round(busy, 3),
        "seconds_per_image": round(busy / len(computed), 4) if computed else None,
    }
    span = _wall_span(computed)
    if span:
        summary["wall_seconds"] = round(span, 3)
        summary["images_per_second"] = round(len(computed) / span, 4)
    return summary


def _wall_span(timings: list[dict[str, Any]]) -> float | None:
    """First start to last finish of the images computed (not cached) in these records."""
    if not timings:
        return None
    ends = [datetime.fromisoformat(t["finished_at"]).timestamp() for t in timings]
    starts = [end - t["seconds"] for end, t in zip(ends, timings, strict=True)]
    return max(ends) - min(starts) or None


def failures(ocr: list[dict[str, Any]], kie: list[dict[str, Any]]) -> list[dict[str, str]]:
    rows = []
    for stage, records in (("ocr", ocr), ("kie", kie)):
        for record in records:
            error = record.get("error")
            if record["status"] == "error" and error and error.get("stage", stage) == stage:
                rows.append(
                    {
                        "image": record["image"]["id"],
                        "path": record["image"]["path"],
                        "stage": stage,
                        "class": error["class"],
                        "message": error["message"],
                    }
                )
    return rows


def write_summary(
    ocr_paths: list[str], kie_paths: list[str], summary_path: str, failures_path: str
) -> dict[str, Any]:
    ocr = [read_json(p) for p in ocr_paths]
    kie = [read_json(p) for p in kie_paths]
    failed = failures(ocr, kie)
    summary = {
        "written_at": now_iso(),
        "images": len(ocr),
        "failed_images": len({f["image"] for f in failed}),
        "ocr": stage_summary(ocr),
        "kie": stage_summary(kie),
    }
    write_json_atomic(summary_path, summary)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FAILURE_COLUMNS)
    writer.writeheader()
    writer.writerows(failed)
    Path(failures_path).write_text(buffer.getvalue(), encoding="utf-8")
    return summary


def summary_job(smk: Any) -> None:
    summary = write_summary(
        list(smk.input.ocr), list(smk.input.kie), smk.output.summary, smk.output.failures
    )
    print(json.dumps({k: summary[k] for k in ("images", "failed_images")}))
