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


def api_costs(records: list[dict[str, Any]], logs: Path) -> dict[str, Any]:
    """Per endpoint: answered calls and billed pages behind the results, those the cache saved
    (results reused instead of paid again), and the requests and 429s the jobs saw."""
    spent: dict[str, Counter[str]] = {}
    saved: dict[str, Counter[str]] = {}
    for record in records:
        billing = record.get("billing")
        if not billing:
            continue
        bucket = saved if record["timing"]["cached"] else spent
        tally = bucket.setdefault(billing["endpoint"], Counter())
        tally["calls"] += 1
        tally["billed_pages"] += billing["billed_pages"]
    traffic: dict[str, Counter[str]] = {}
    for usage_file in sorted(logs.glob("**/*.api.json")):
        for endpoint, counts in json.loads(usage_file.read_text()).items():
            traffic.setdefault(endpoint, Counter()).update(counts)
    return {
        "spent": {e: dict(c) for e, c in spent.items()},
        "saved_by_cache": {e: dict(c) for e, c in saved.items()},
        "requests": {e: dict(c) for e, c in traffic.items()},
    }


def failures(stages: dict[str, list[dict[str, Any]]]) -> list[dict[str, str]]:
    rows = []
    for stage, records in stages.items():
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
    paths: dict[str, list[str]], logs: str, summary_path: str, failures_path: str
) -> dict[str, Any]:
    """``paths``: the record files of each stage (ocr, kie, and optionally layout)."""
    stages = {stage: [read_json(p) for p in files] for stage, files in paths.items() if files}
    failed = failures(stages)
    summary = {
        "written_at": now_iso(),
        "images": len(stages.get("ocr", [])),
        "failed_images": len({f["image"] for f in failed}),
        **{stage: stage_summary(records) for stage, records in stages.items()},
        "api": api_costs([r for records in stages.values() for r in records], Path(logs)),
    }
    write_json_atomic(summary_path, summary)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FAILURE_COLUMNS)
    writer.writeheader()
    writer.writerows(failed)
    Path(failures_path).write_text(buffer.getvalue(), encoding="utf-8")
    return summary


def summary_job(smk: Any) -> None:
    paths = {stage: list(getattr(smk.input, stage)) for stage in ("ocr", "kie", "layout")}
    summary = write_summary(paths, smk.params.logs, smk.output.summary, smk.output.failures)
    print(json.dumps({k: summary[k] for k in ("images", "failed_images")}))
