"""Work that may hang or grow, run in a child process that the shard job can stop.

An engine that hangs on one page (native code does: a batch once stalled on file 173 of
7,700) cannot be stopped inside the job's own process, and neither can a decoder fed a crafted
file (a TIFF frame of 3 gigapixels, a PDF page that never finishes rendering). Here such work
lives in a child: a call that gets no answer within its time limit has the child killed, the
page becomes an error record (``PageTimeout``) and the next call starts a fresh child. After
every call the child reports its resident memory (and the GPU's, where torch sees one); past
``max_rss_mb`` the child is replaced between pages, rather than the kernel or AWS Batch
killing the job. A child that dies (out of memory, a crash in native code) costs the page it
was working on, never the job.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import resource
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from .engines import Engine
from .errors import ChildDied, PageTimeout
from .images import DocumentFacts, ImageLimits, PageDecoder, PageImage

log = logging.getLogger(__name__)


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


class Child:
    """An object built by ``build`` in a child process; ``call`` runs one of its methods there.

    ``address_space_mb`` caps the child's virtual memory (``RLIMIT_AS``), so that an allocation
    past it fails as a ``MemoryError`` of that call instead of waking the kernel's OOM killer.
    """

    def __init__(
        self,
        build: Callable[[], Any],
        what: str,
        max_rss_mb: float = 0,
        address_space_mb: float = 0,
    ):
        self.build = build
        self.what = what  # "the engine", "the decoder": for messages
        self.max_rss_mb = max_rss_mb
        self.address_space_mb = address_space_mb
        self.stats = WorkerStats()
        self._child: Any = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()  # one call at a time: the pipe is not shared

    def call(self, timeout_s: float, method: str, *args: Any) -> tuple[Any, str]:
        """The method's result and the device the child computed on."""
        with self._lock:
            if self._child is None:
                self._start()
            assert self._conn is not None
            self._conn.send((method, args))
            if timeout_s and not self._conn.poll(timeout_s):
                self.stats.timeouts += 1
                self._stop()
                raise PageTimeout(
                    f"no result from {self.what} within {timeout_s:g} s (worker.timeout_s): it "
                    "was stopped, and the next page starts a fresh one"
                )
            try:
                status, value, rss_mb, gpu_mb, device = self._conn.recv()
            except EOFError as exc:
                self._stop()
                raise ChildDied(
                    f"{self.what}'s process ended during {method} (out of memory, or a crash "
                    "in native code); the next page starts a fresh one"
                ) from exc
            self._watch(rss_mb, gpu_mb)
        if status == "error":
            raise value
        return value, device

    @property
    def running(self) -> bool:
        return self._child is not None

    @property
    def generation(self) -> int:
        """Changes whenever a fresh child starts (its state is then lost)."""
        return self.stats.started

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(None)
                self._child.join(timeout=10)
            except (OSError, EOFError):
                pass
        self._stop()

    def _watch(self, rss_mb: float, gpu_mb: float) -> None:
        self.stats.rss_mb.append(rss_mb)
        self.stats.peak_rss_mb = max(self.stats.peak_rss_mb, rss_mb)
        self.stats.peak_gpu_mb = max(self.stats.peak_gpu_mb, gpu_mb)
        if self.max_rss_mb and rss_mb > self.max_rss_mb:
            log.warning(
                "%s's process at %.0f MB, over worker.max_rss_mb %.0f: replacing it",
                self.what,
                rss_mb,
                self.max_rss_mb,
            )
            self.stats.memory_restarts += 1
            self._close()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no fork: onnxruntime runs threads
        self._conn, child_end = context.Pipe()
        target = partial(_serve, child_end, self.build, self.address_space_mb)
        self._child = context.Process(target=target, daemon=True)
        with _ctrl_c_ignored():
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


@contextmanager
def _ctrl_c_ignored() -> Iterator[None]:
    """A child started in here ignores Ctrl-C (an ignored signal stays ignored across exec):
    the job that owns it answers Ctrl-C and ends it, so a terminal shows no traceback from
    the child. Only the main thread may set a signal's handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _next_request(conn: Connection) -> Any:
    """The next call, or None when told to stop or when the job is gone (its end of the pipe
    closed: Ctrl-C, a crash)."""
    try:
        return conn.recv()
    except EOFError:
        return None


def _serve(conn: Connection, build: Callable[[], Any], address_space_mb: float) -> None:
    """The child: build the object once, answer calls until told to stop."""
    if address_space_mb:
        limit = int(address_space_mb * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    target = build()
    while (request := _next_request(conn)) is not None:
        method, args = request
        try:
            reply: tuple[str, Any] = ("ok", getattr(target, method)(*args))
        except Exception as exc:  # sent back: the job's failure policy decides
            reply = ("error", _portable(exc))
        device = str(getattr(target, "device", "cpu"))
        conn.send((*reply, rss_mb(), gpu_mb() if device.startswith("cuda") else 0.0, device))
    close = getattr(target, "close", None)
    if close is not None:
        close()


class InWorker:
    """Stands in for an engine; its batch calls run in a child process. Everything else
    (identity, device, batch size, ...) is the engine's own, built here for that alone."""

    def __init__(self, make: Callable[[], Engine], timeout_s: float, max_rss_mb: float):
        """``make``: builds the engine (picklable: the child builds its own with it)."""
        self._engine = make()
        self._child = Child(make, "the engine", max_rss_mb)
        self.timeout_s = timeout_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    @property
    def stats(self) -> WorkerStats:
        return self._child.stats

    def recognize_many(self, pages: Sequence[Any]) -> list[Any]:
        return self._call("recognize_many", list(pages))

    def extract_many(self, documents: Sequence[Any]) -> list[Any]:
        return self._call("extract_many", list(documents))

    def parse_many(self, pages: Sequence[Any]) -> list[Any]:
        return self._call("parse_many", list(pages))

    def close(self) -> None:
        self._child.close()

    def _call(self, method: str, items: list[Any]) -> list[Any]:
        value, device = self._child.call(self.timeout_s * max(1, len(items)), method, items)
        self._engine.device = device
        return value


class GuardedDecoder:
    """``PageDecoder`` in a child process: a file that hangs the decoder or would take all
    the memory costs its own pages, not the job. The child keeps the document it was last
    given, so the pages of one file travel to it once."""

    def __init__(
        self, timeout_s: float, max_rss_mb: float, decoder: type[PageDecoder] = PageDecoder
    ):
        self.timeout_s = timeout_s
        # the address space holds the libraries' own reservations besides the pages
        headroom = max_rss_mb + 1024 if max_rss_mb else 0
        self._child = Child(decoder, "the decoder", max_rss_mb, address_space_mb=headroom)
        self._holding: tuple[str, int] | None = None  # (sha256, child generation)
        self._lock = threading.Lock()

    def describe(self, data: bytes, sha: str, limits: ImageLimits) -> DocumentFacts:
        return self._call("describe", data, sha, limits)

    def page(self, data: bytes, sha: str, number: int, limits: ImageLimits) -> PageImage:
        return self._call("page", data, sha, number, limits)

    def close(self) -> None:
        self._child.close()

    def _call(self, method: str, data: bytes, sha: str, *args: Any) -> Any:
        with self._lock:
            held = self._holding == (sha, self._child.generation)
            sent = None if held else data
            try:
                value, _ = self._child.call(self.timeout_s, method, sent, sha, *args)
            finally:
                alive = self._child.running
                self._holding = (sha, self._child.generation) if alive else None
            return value


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
