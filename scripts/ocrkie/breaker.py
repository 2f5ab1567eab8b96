"""The circuit breaker: a stage whose service keeps failing stops, instead of failing every
remaining image one by one.

An engine call whose transient faults outlive their retries counts as a failure; a call
answered resets the count. The count is shared by the run's jobs where they share the results
folder (a small locked file beside the results; on S3, where jobs run on machines of their
own, each job counts its own). After ``max_in_a_row`` failures in a row the breaker trips:
the job stops with ``ServiceUnavailable``, naming the service and since when it fails, and
leaves a marker in the results folder (``outage/<stage>.json``) so that the run's other jobs
stop before sending anything. The images not yet read are left untouched, and the next run
(which removes the marker when it starts) reads them; what was answered is in the cache.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import ServiceUnavailable, TransientError
from .formats import now_iso
from .results import Results

FOLDER = "outage"
RECHECK_S = 5.0  # how often a job looks for another job's marker


class Streak:
    """Failures in a row and since when, kept in memory (one job)."""

    def __init__(self) -> None:
        self.failures, self.since = 0, ""
        self._lock = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[Streak]:
        with self._lock:
            yield self


class SharedStreak(Streak):
    """The same, in a file every job on this machine locks while it counts."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    @contextmanager
    def held(self) -> Iterator[Streak]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                failures, _, since = os.pread(fd, 256, 0).decode().partition(" ")
                self.failures, self.since = int(failures or 0), since.strip()
                yield self
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{self.failures} {self.since}".encode(), 0)
            finally:
                os.close(fd)


class Breaker:
    def __init__(self, stage: str, results: Results, max_in_a_row: int):
        self.stage = stage
        self.results = results
        self.max_in_a_row = max_in_a_row
        local = not results.location.startswith("s3://")
        path = results.local_path(f"{FOLDER}/{stage}.streak")
        self.streak = SharedStreak(path) if local else Streak()
        self.down = ""  # the outage's message, once this job knows of one
        self._looked = -RECHECK_S
        self._lock = threading.Lock()

    @property
    def marker(self) -> str:
        return f"{FOLDER}/{self.stage}.json"

    def tripped(self) -> bool:
        """Whether the service is taken to be down: by this job, or by another (whose marker
        is looked for every few seconds). Cheap enough to ask before every retry."""
        if not self.max_in_a_row:
            return False
        with self._lock:
            if self.down or time.monotonic() - self._looked < RECHECK_S:
                return bool(self.down)
            self._looked = time.monotonic()
        try:
            outage = json.loads(self.results.folder.read_bytes(self.marker))
        except (FileNotFoundError, ValueError):
            return False
        with self._lock:
            self.down = self.down or outage["message"]
        return True

    def check(self) -> None:
        """Raise ``ServiceUnavailable`` when the service is taken to be down."""
        if self.tripped():
            raise ServiceUnavailable(self.down)

    def failed(self, error: TransientError) -> None:
        if not self.max_in_a_row:
            return
        with self.streak.held() as streak:
            streak.failures += 1
            streak.since = streak.since or now_iso()
            failures, since = streak.failures, streak.since
        if failures < self.max_in_a_row:
            return
        with self._lock:
            first = not self.down
            self.down = self.down or (
                f"{self.stage.upper()}: the service is unavailable since {since}: {failures} "
                f"requests in a row failed after their retries (last: {error}). The job "
                "stopped; images not yet read are untouched. Run again when the service is "
                "back: nothing answered is paid twice."
            )
        if first:
            self._leave_marker({"stage": self.stage, "since": since, "message": self.down})
        raise ServiceUnavailable(self.down)

    def succeeded(self) -> None:
        if not self.max_in_a_row:
            return
        with self.streak.held() as streak:
            streak.failures, streak.since = 0, ""

    def _leave_marker(self, outage: dict[str, Any]) -> None:
        if self.results.folder.exists(self.marker):
            return  # another job found it first: its words stand
        data = (json.dumps(outage, ensure_ascii=False, indent=1) + "\n").encode()
        self.results.folder.write_bytes(self.marker, data)


def clear_outages(results: Results) -> None:
    """Forget the outages an earlier run found (a new run tries the service again)."""
    for name in results.folder.names(FOLDER):
        results.folder.delete(f"{FOLDER}/{name}")


def outages(results: Results) -> list[str]:
    """The messages of the outages this run found, for its closing words."""
    found = []
    for name in sorted(n for n in results.folder.names(FOLDER) if n.endswith(".json")):
        try:
            found.append(json.loads(results.folder.read_bytes(f"{FOLDER}/{name}"))["message"])
        except (FileNotFoundError, ValueError, KeyError):
            continue
    return found
