"""The end-of-run report: ``summary.json`` (counts, timings, throughput, API costs) and
``failures.csv``, both from the shard manifests, so that neither reads 100,000 records."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime
from typing import Any

from .formats import now_iso, read_json, write_atomic, write_json_atomic
from .tables import spreadsheet_row
from .usage import Usage, total_usage

FAILURE_COLUMNS = ["image", "path", "page", "stage", "class", "message"]
STAGES = ("ocr", "kie", "layout")  # the other manifests are exports


def stage_summary(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and timings of a stage's records (one per page; for KIE, per document)."""
    computed = [e for e in entries if not e["cached"]]
    busy = sum(e["seconds"] for e in computed)
    summary: dict[str, Any] = {
        "images": len({e["id"] for e in entries}),
        "records": len(entries),
        "status": dict(Counter(e["status"] for e in entries)),
        "cached": len(entries) - len(computed),
        "busy_seconds": round(busy, 3),
        "seconds_per_image": round(busy / len(computed), 4) if computed else None,
    }
    if cascade := cascade_summary(entries):
        summary["cascade"] = cascade
    span = _wall_span(computed)
    if span:
        summary["wall_seconds"] = round(span, 3)
        summary["images_per_second"] = round(len(computed) / span, 4)
    return summary


def cascade_summary(entries: list[dict[str, Any]]) -> dict[str, int] | None:
    """``kie_backend: cascade``: the documents (and their pages) read, and those of them sent
    to the API; None for another backend."""
    read = [e for e in entries if e["status"] == "ok" and "sent" in e]
    if not read:
        return None
    sent = [e for e in read if e["sent"]]
    return {
        "documents": len(read),
        "sent": len(sent),
        "pages": sum(e.get("pages", 1) for e in read),
        "sent_pages": sum(e.get("pages", 1) for e in sent),
    }


def _wall_span(entries: list[dict[str, Any]]) -> float | None:
    """First start to last finish of the images computed (not cached)."""
    if not entries:
        return None
    ends = [datetime.fromisoformat(e["finished_at"]).timestamp() for e in entries]
    starts = [end - e["seconds"] for end, e in zip(ends, entries, strict=True)]
    return max(ends) - min(starts) or None


def api_costs(manifests: list[dict[str, Any]], usage: Usage | None = None) -> dict[str, Any]:
    """Per endpoint, from the usage ledgers: what was ``spent`` (requests answered, pages
    billed; every run, killed ones included), what was ``possibly_billed`` besides (answers
    lost after the service may have processed the request), the ``requests`` sent and the
    429s received; and from the manifests, what the cache ``saved``: results reused instead of
    paid again (not those a killed run paid for and the next run recorded: those are spent)."""
    usage = usage or Usage()
    saved: dict[str, Counter[str]] = {}
    requests: dict[str, set[str]] = {}
    for manifest in manifests:
        for entry in manifest["entries"]:
            billing = entry.get("billing")
            if not billing or not entry["cached"] or billing.get("request") in usage.unrecorded:
                continue
            endpoint = billing["endpoint"]
            tally = saved.setdefault(endpoint, Counter())
            tally["billed_pages"] += billing["billed_pages"]
            request = billing.get("request") or f"entry-{len(requests.get(endpoint, ()))}"
            requests.setdefault(endpoint, set()).add(request)
    for endpoint, ids in requests.items():
        saved[endpoint]["calls"] = len(ids)
    return {
        "spent": usage.spent(),
        "possibly_billed": usage.possibly_billed(),
        "saved_by_cache": {
            e: {"calls": c["calls"], "billed_pages": c["billed_pages"]} for e, c in saved.items()
        },
        "requests": usage.requests(),
    }


def failures(stages: dict[str, list[dict[str, Any]]]) -> list[dict[str, str]]:
    """One row per image and stage where it failed (not where an earlier stage's failure
    was passed on)."""
    rows = []
    for stage, entries in stages.items():
        for entry in entries:
            error = entry.get("error")
            if entry["status"] == "error" and error and error.get("stage", stage) == stage:
                rows.append(
                    {
                        "image": entry["id"],
                        "path": entry["path"],
                        "page": entry.get("page", ""),
                        "stage": stage,
                        "class": error["class"],
                        "message": error["message"],
                    }
                )
    return rows


def failed_by_class(rows: list[dict[str, str]]) -> dict[str, int]:
    """Failed images per error class, most first (an image counts once per class)."""
    return dict(Counter(c for _, c in {(r["image"], r["class"]) for r in rows}).most_common())


def write_summary(
    manifest_paths: dict[str, list[str]],
    summary_path: str,
    failures_path: str,
    skipped: list[tuple[str, str]] = (),  # type: ignore[assignment]
    skipped_path: str | None = None,
    usage: Usage | None = None,
) -> dict[str, Any]:
    """``manifest_paths``: the shard manifests of each stage (ocr, kie, layout) and export."""
    manifests = {step: [read_json(p) for p in paths] for step, paths in manifest_paths.items()}
    entries = {
        step: [e for m in step_manifests for e in m["entries"]]
        for step, step_manifests in manifests.items()
        if step_manifests
    }
    failed = failures(entries)
    stages = {s: e for s, e in entries.items() if s in STAGES}
    exports = {
        s: dict(Counter(x["status"] for x in e)) for s, e in entries.items() if s not in STAGES
    }
    summary = {
        "written_at": now_iso(),
        "images": len({entry["id"] for entry in entries.get("ocr", [])}),
        "pages": len(entries.get("ocr", [])),
        "failed_images": len({f["image"] for f in failed}),
        "failed_by_class": failed_by_class(failed),
        "skipped": dict(Counter(reason for _, reason in skipped).most_common()),
        **{stage: stage_summary(stage_entries) for stage, stage_entries in stages.items()},
        "exports": exports,
        "api": api_costs(
            [m for step_manifests in manifests.values() for m in step_manifests], usage
        ),
    }
    write_json_atomic(summary_path, summary)
    _write_csv(failures_path, FAILURE_COLUMNS, failed)
    if skipped_path:
        _write_csv(skipped_path, ["path", "reason"], [{"path": p, "reason": r} for p, r in skipped])
    return summary


def _write_csv(path: str, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Atomically, each text cell made safe to open in a spreadsheet (``tables``)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(spreadsheet_row(row) for row in rows)
    write_atomic(path, buffer.getvalue().encode("utf-8"))


def summarize(
    manifest_paths: dict[str, list[str]],
    plan_file: str,
    results_location: str,
    summary_path: str,
    failures_path: str,
    skipped_path: str,
) -> dict[str, Any]:
    """``summary.json``, ``failures.csv`` and ``skipped.csv`` of a run: the manifests of each
    stage and export, the plan's skipped entries, and the usage ledgers."""
    from .plan import read_skipped
    from .results import Results

    skipped = read_skipped(plan_file)
    usage = total_usage(Results(results_location))
    return write_summary(manifest_paths, summary_path, failures_path, skipped, skipped_path, usage)
