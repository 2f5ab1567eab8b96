"""A ledger of the API requests a job sends, written as they are sent.

One JSON line per request sent and per 429 received, under ``<results>/usage/<stage>/``: a
local file is appended to (a killed job loses nothing already sent), an S3 object is put
again after every line (S3 has no append; jobs on AWS Batch share no disk). The summary adds
up every ledger, so the requests behind a results folder are counted exactly after any crash.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from typing import Any

from .formats import now_iso
from .results import Results

FOLDER = "usage"


class UsageLedger:
    def __init__(self, results: Results, stage: str, shard: str):
        self.results = results
        self.relpath = f"{FOLDER}/{stage}/{shard}-{uuid.uuid4().hex[:8]}.jsonl"
        self._lines: list[bytes] = []
        self._lock = threading.Lock()
        self._local = not results.location.startswith("s3://")

    def __call__(self, endpoint: str, counter: str) -> None:
        line = (
            json.dumps({"at": now_iso(), "endpoint": endpoint, "event": counter}) + "\n"
        ).encode()
        with self._lock:
            self._lines.append(line)
            if self._local:
                path = self.results.local_path(self.relpath)
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("ab") as ledger:
                    ledger.write(line)
            else:
                self.results.folder.write_bytes(self.relpath, b"".join(self._lines))


def total_usage(
    results: Results, stages: tuple[str, ...] = ("ocr", "kie", "layout")
) -> dict[str, Any]:
    """Per endpoint: the requests sent (retries included) and the 429s received, every job
    of every run of this results folder together."""
    counts: dict[str, Counter[str]] = {}
    for stage in stages:
        for name in sorted(results.folder.names(f"{FOLDER}/{stage}")):
            for line in results.folder.read_bytes(f"{FOLDER}/{stage}/{name}").splitlines():
                if line.strip():
                    event = json.loads(line)
                    counts.setdefault(event["endpoint"], Counter())[event["event"]] += 1
    return {
        endpoint: {"requests": c["requests"], "http_429": c["http_429"]}
        for endpoint, c in counts.items()
    }
