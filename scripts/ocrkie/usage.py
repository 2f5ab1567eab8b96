"""A ledger of the API requests a job sends, written as they happen.

One JSON line per request sent, 429 received, answer (with the pages it billed and an id) and
attempt whose answer was lost after the service may have processed it ("possibly billed"),
under ``<results>/usage/<stage>/``; a last line ``finished`` once the job has recorded every
answer it paid for. A local file is appended to (a killed job loses nothing already sent), an
S3 object is put again after every line (S3 has no append; jobs on AWS Batch share no disk).
The summary adds up every ledger, so what a results folder cost is counted exactly after any
crash, and answers a killed job paid for are told apart from the cache's savings.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .formats import now_iso
from .results import Results

FOLDER = "usage"
STAGES = ("ocr", "kie", "layout")
log = logging.getLogger(__name__)


class UsageLedger:
    def __init__(self, results: Results, stage: str, shard: str):
        self.results = results
        self.relpath = f"{FOLDER}/{stage}/{shard}-{uuid.uuid4().hex[:8]}.jsonl"
        self._lines: list[bytes] = []
        self._lock = threading.Lock()
        self._local = not results.location.startswith("s3://")

    def __call__(self, endpoint: str, event: str, pages: int = 0, request: str = "") -> None:
        entry: dict[str, Any] = {"at": now_iso(), "endpoint": endpoint, "event": event}
        if pages:
            entry["pages"] = pages
        if request:
            entry["request"] = request
        self._write(entry)

    def finish(self) -> None:
        """The job has recorded every answer it paid for (its manifest is written)."""
        if self._lines:
            self._write({"at": now_iso(), "event": "finished"})

    def _write(self, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry) + "\n").encode()
        with self._lock:
            self._lines.append(line)
            if self._local:
                path = self.results.local_path(self.relpath)
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("ab") as ledger:
                    ledger.write(line)
            else:
                self.results.folder.write_bytes(self.relpath, b"".join(self._lines))


@dataclass
class Usage:
    """Every ledger of a results folder added up."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)  # endpoint -> counters
    unrecorded: set[str] = field(default_factory=set)  # answers paid by jobs that never finished
    unreadable_lines: int = 0

    def requests(self) -> dict[str, dict[str, int]]:
        """Per endpoint: the requests sent (retries included) and the 429s received."""
        return {
            endpoint: {"requests": c["requests"], "http_429": c["http_429"]}
            for endpoint, c in self.counts.items()
        }

    def spent(self) -> dict[str, dict[str, int]]:
        """Per endpoint: the requests answered and the pages they billed, every run together
        (those of a killed job included)."""
        return {
            endpoint: {"calls": c["answered"], "billed_pages": c["billed_pages"]}
            for endpoint, c in self.counts.items()
            if c["answered"]
        }

    def possibly_billed(self) -> dict[str, dict[str, int]]:
        """Per endpoint: attempts whose answer was lost after the service may have processed
        (and billed) them, and their pages: at most this much more than ``spent``."""
        return {
            endpoint: {"requests": c["possibly_billed"], "pages": c["possibly_billed_pages"]}
            for endpoint, c in self.counts.items()
            if c["possibly_billed"]
        }


def total_usage(results: Results, stages: tuple[str, ...] = STAGES) -> Usage:
    """Every job of every run of this results folder together. A line cut off (a disk that
    filled up mid-write) is skipped and counted, never fatal."""
    usage = Usage()
    for stage in stages:
        for name in sorted(results.folder.names(f"{FOLDER}/{stage}")):
            _add_ledger(usage, results.folder.read_bytes(f"{FOLDER}/{stage}/{name}"))
    if usage.unreadable_lines:
        where = f"{results.location}/{FOLDER}"
        log.warning(
            "%d unreadable lines in the usage ledgers of %s: not counted",
            usage.unreadable_lines,
            where,
        )
    return usage


def _add_ledger(usage: Usage, data: bytes) -> None:
    answered, finished = set(), False
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            kind = event["event"]
        except (ValueError, KeyError, TypeError):
            usage.unreadable_lines += 1
            continue
        if kind == "finished":
            finished = True
            continue
        counts = usage.counts.setdefault(event.get("endpoint", "?"), Counter())
        pages = int(event.get("pages", 0))
        if kind == "answered":
            counts["answered"] += 1
            counts["billed_pages"] += pages
            answered.add(event.get("request", ""))
        elif kind == "possibly_billed":
            counts["possibly_billed"] += 1
            counts["possibly_billed_pages"] += pages
        else:
            counts[kind] += 1
    if not finished:
        usage.unrecorded |= answered - {""}
