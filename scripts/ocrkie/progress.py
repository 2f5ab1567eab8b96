"""How far a run is: each shard job counts its images and says so every so many images or
seconds (in its log, and in a small file under ``<results>/progress/<stage>/``); the run
that submitted the jobs adds up those files into one line per stage."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .results import Results

FOLDER = "progress"
LABELS = {"ocr": "OCR", "kie": "KIE", "layout": "Layout"}
log = logging.getLogger(__name__)


def duration(seconds: float) -> str:
    """``45s``, ``12m05s``, ``3h20m``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass
class Count:
    """Images of one stage: how many there are to do, done, failed and from the cache."""

    total: int
    done: int = 0
    failed: int = 0
    cached: int = 0
    seconds: float = 0.0  # since the first image started

    def line(self, label: str) -> str:
        """``OCR 240/500 images (48%), 3.2 images/s, ETA 1m21s, 4 failed``."""
        share = f" ({100 * self.done // self.total}%)" if self.total else ""
        parts = [f"{label} {self.done}/{self.total} images{share}"]
        rate = self.done / self.seconds if self.seconds > 0 else 0.0
        if rate:
            parts.append(f"{rate:.2g} images/s" if rate < 10 else f"{rate:.0f} images/s")
            if self.done < self.total:
                parts.append(f"ETA {duration((self.total - self.done) / rate)}")
        if self.cached:
            parts.append(f"{self.cached} from the cache")
        parts.append(f"{self.failed} failed")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "cached": self.cached,
        }


@dataclass
class ShardProgress:
    """A shard job's count, told every ``every_images`` images or ``every_seconds`` seconds
    (whichever comes first), and once at the end. Pages of one image count once, when the
    last of them is written."""

    stage: str
    shard: str
    results: Results
    total: int
    every_images: int = 50
    every_seconds: float = 30.0
    clock: Callable[[], float] = time.monotonic
    count: Count = field(init=False)
    _pages: dict[str, int] = field(default_factory=dict, init=False)
    _failed: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.count = Count(self.total)
        self._lock = threading.Lock()
        self._started = self.clock()
        self._told_at, self._told_done = self._started, 0
        self._started_at = time.time()
        self._write()

    def page_done(self, image_id: str, pages: int, failed: bool, cached: bool) -> None:
        with self._lock:
            self._pages[image_id] = self._pages.get(image_id, 0) + 1
            if failed:
                self._failed.add(image_id)
            if self._pages[image_id] < pages:
                return
            self.count.done += 1
            self.count.failed += image_id in self._failed
            self.count.cached += cached and image_id not in self._failed
            now = self.clock()
            due = self.count.done - self._told_done >= self.every_images
            late = self.every_seconds > 0 and now - self._told_at >= self.every_seconds
            if due or late:
                self._tell(now)

    def finish(self) -> None:
        """The last line, unless the last image said it."""
        with self._lock:
            if self._told_done != self.count.done or not self.count.done:
                self._tell(self.clock())

    def _tell(self, now: float) -> None:
        self.count.seconds = now - self._started
        self._told_at, self._told_done = now, self.count.done
        log.info("%s", self.count.line(f"{LABELS.get(self.stage, self.stage)} {self.shard}:"))
        self._write()

    def _write(self) -> None:
        document = {
            **self.count.as_dict(),
            "seconds": round(self.count.seconds, 3),
            "started_at": self._started_at,
            "updated_at": time.time(),
        }
        try:
            self.results.folder.write_bytes(
                f"{FOLDER}/{self.stage}/{self.shard}.json", json.dumps(document).encode()
            )
        except Exception as exc:  # progress is for people: never a reason to fail a job
            log.debug("progress file not written: %s", exc)


def run_counts(
    results: Results,
    totals: dict[str, int],
    since: float,
    finished: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Count]:
    """Per stage, the progress files of jobs started since ``since`` (epoch seconds) added up;
    ``totals``: the images each stage has to do in this run. ``finished`` keeps the files of
    shards that are done, which are not read again."""
    finished = {} if finished is None else finished
    counts = {stage: Count(total) for stage, total in totals.items()}
    for stage, count in counts.items():
        starts, ends = [], []
        for path, document in _documents(results, stage, finished):
            if document.get("started_at", 0) < since:
                continue  # an earlier run's
            if document["done"] == document["total"]:
                finished[path] = document
                ends.append(document.get("updated_at", time.time()))
            else:
                ends.append(time.time())  # still running
            count.done += document["done"]
            count.failed += document["failed"]
            count.cached += document["cached"]
            starts.append(document["started_at"])
        count.seconds = max(ends) - min(starts) if starts else 0.0
    return counts


def _documents(
    results: Results, stage: str, finished: dict[str, dict[str, Any]]
) -> Iterable[tuple[str, dict[str, Any]]]:
    try:
        names = sorted(results.folder.names(f"{FOLDER}/{stage}"))
    except (FileNotFoundError, OSError):
        return
    for name in names:
        path = f"{FOLDER}/{stage}/{name}"
        if path in finished:
            yield path, finished[path]
            continue
        try:
            yield path, json.loads(results.folder.read_bytes(path))
        except (FileNotFoundError, ValueError, OSError):
            continue  # being rewritten, or gone


class RunProgress:
    """In the run that submits the jobs: one line per stage with images left to do, every
    ``every_seconds``, while the run lasts (a daemon thread; lines only when they change)."""

    def __init__(
        self,
        results: Results,
        totals: dict[str, int],
        every_seconds: float,
        say: Callable[[str], None],
    ):
        self.results, self.every_seconds, self.say = results, every_seconds, say
        self.totals = {stage: total for stage, total in totals.items() if total}
        self.since = time.time()
        self._stop = threading.Event()
        self._last: list[tuple[int, int]] = []
        self._finished: dict[str, dict[str, Any]] = {}  # progress files of shards done
        self._thread = threading.Thread(target=self._loop, name="ocrkie-progress", daemon=True)

    def start(self) -> None:
        if self.totals and self.every_seconds > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def counts(self) -> dict[str, Count]:
        return run_counts(self.results, self.totals, self.since, self._finished)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_seconds):
            try:
                counts = self.counts()
            except Exception as exc:  # never in the run's way
                log.debug("progress not read: %s", exc)
                continue
            state = [(c.done, c.failed) for c in counts.values()]
            if state != self._last:
                self._last = state
                self.say(
                    "progress: " + "; ".join(c.line(LABELS.get(s, s)) for s, c in counts.items())
                )
