"""Running a local engine in a child process that the shard job can stop.

An engine that hangs on one page (native code does: a batch once stalled on file 173 of
7,700) cannot be stopped inside the job's own process. Here the engine lives in a child; a
call that gets no answer within ``timeout_s`` per page has the child killed, the page becomes
an error record (``PageTimeout``) and the next page starts a fresh child. After every call the
child reports its resident memory (and the GPU's, where torch sees one); past ``max_rss_mb``
the child is replaced between pages, rather than the kernel or AWS Batch killing the job.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from .engines import Engine
from .errors import ImageError

log = logging.getLogger(__name__)


class PageTimeout(ImageError):
    """The engine gave no answer in time; it was stopped."""


@dataclass
class WorkerStats:
    started: int = 0  # children started
    timeouts: int = 0
    memory_restarts: int = 0
    peak_rss_mb: float = 0.0
    peak_gpu_mb: float = 0.0
    rss_mb: list[float] = field(default_factory=list)  # after each call, for benchmarks

    def as_dict(self) -> dict[str, Any]:
        keep = ("started", "timeouts", "memory_restarts", "peak_rss_mb", "peak_gpu_mb")
        return {
            **{k: round(getattr(self, k), 1) for k in keep},
            "rss_mb": [round(v) for v in self.rss_mb],  # after each page: a leak shows here
        }


class InWorker:
    """Stands in for an engine; its batch calls run in a child process. Everything else
    (identity, device, batch size, ...) is the engine's own, built here for that alone."""

    def __init__(
        self,
        engine_class: type[Engine],
        config: dict[str, Any],
        threads: int,
        timeout_s: float,
        max_rss_mb: float,
    ):
        self._spec = (engine_class, config, threads)
        self._engine = engine_class.from_config(config, threads)
        self.timeout_s = timeout_s
        self.max_rss_mb = max_rss_mb
        self.stats = WorkerStats()
        self._child: Any = None
        self._conn: Connection | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def recognize_many(self, pages: Sequence[Any]) -> list[Any]:
        return self._call("recognize_many", list(pages))

    def extract_many(self, documents: Sequence[Any]) -> list[Any]:
        return self._call("extract_many", list(documents))

    def parse_many(self, pages: Sequence[Any]) -> list[Any]:
        return self._call("parse_many", list(pages))

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(None)
                self._child.join(timeout=10)
            except (OSError, EOFError):
                pass
        self._stop()

    def _call(self, method: str, items: list[Any]) -> list[Any]:
        if self._child is None:
            self._start()
        assert self._conn is not None
        self._conn.send((method, items))
        limit = self.timeout_s * max(1, len(items))
        if not self._conn.poll(limit):
            self.stats.timeouts += 1
            self._stop()
            raise PageTimeout(
                f"no result from the engine within {limit:g} s (local.timeout_s): it was "
                "stopped, and the next page starts a fresh one"
            )
        try:
            status, value, rss_mb, gpu_mb, device = self._conn.recv()
        except EOFError as exc:  # the child died: out of memory, a crash in native code
            self._stop()
            raise RuntimeError(f"the engine's process ended during {method}") from exc
        self._watch(rss_mb, gpu_mb)
        if device:
            self._engine.device = device
        if status == "error":
            raise value
        return value

    def _watch(self, rss_mb: float, gpu_mb: float) -> None:
        self.stats.rss_mb.append(rss_mb)
        self.stats.peak_rss_mb = max(self.stats.peak_rss_mb, rss_mb)
        self.stats.peak_gpu_mb = max(self.stats.peak_gpu_mb, gpu_mb)
        if self.max_rss_mb and rss_mb > self.max_rss_mb:
            log.warning(
                "engine process at %.0f MB, over local.max_rss_mb %.0f: replacing it",
                rss_mb,
                self.max_rss_mb,
            )
            self.stats.memory_restarts += 1
            self.close()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no fork: onnxruntime runs threads
        self._conn, child_end = context.Pipe()
        self._child = context.Process(target=_serve, args=(child_end, self._spec), daemon=True)
        self._child.start()
        child_end.close()
        self.stats.started += 1

    def _stop(self) -> None:
        if self._child is not None and self._child.is_alive():
            self._child.kill()
            self._child.join()
        if self._conn is not None:
            self._conn.close()
        self._child, self._conn = None, None


def _serve(conn: Connection, spec: tuple[type[Engine], dict[str, Any], int]) -> None:
    """The child: build the engine once, answer calls until told to stop."""
    engine_class, config, threads = spec
    engine = engine_class.from_config(config, threads)
    while (request := conn.recv()) is not None:
        method, items = request
        try:
            reply: tuple[str, Any] = ("ok", getattr(engine, method)(items))
        except Exception as exc:  # sent back: the job's failure policy decides
            reply = ("error", _portable(exc))
        device = str(engine.device)
        conn.send((*reply, rss_mb(), gpu_mb() if device.startswith("cuda") else 0.0, device))
    engine.close()


def _portable(exc: Exception) -> Exception:
    """The exception itself if it survives pickling, else one that says what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def rss_mb() -> float:
    """This process's resident memory now (not its peak)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def gpu_mb() -> float:
    """GPU memory in use on this process's device, where torch sees a GPU; else 0."""
    try:
        import torch

        if not torch.cuda.is_available():
            return 0.0
        free, total = torch.cuda.mem_get_info()
        return (total - free) / 2**20
    except Exception:  # no torch, no driver: nothing to watch
        return 0.0
