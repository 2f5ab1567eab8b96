"""A request-rate limiter shared by every process on the machine.

Several Snakemake jobs call the same API at once, and the service limits requests per second per
key, so each process alone cannot know how fast to go. All processes share one small state file
per endpoint, locked with ``fcntl.flock``: an acquirer takes the next free slot and moves it one
interval on, then sleeps until its slot. A 429 from the service pauses the endpoint for every
process (``pause``).

The state file holds two wall-clock times: the next free slot and the end of any pause. Wall time
(not ``time.monotonic``) is used so that a file left behind by an earlier boot is merely in the
past; a time absurdly far ahead (a clock that jumped back) is ignored.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Documented base-tier limits in requests per second (notes/upstage-api.md §4).
DEFAULT_RATES: dict[str, float] = {"ocr": 3.0, "document-parse": 3.0, "information-extract": 1.0}

# Requests go out this much slower than the limit: a server counting requests per second
# sees them with some jitter (tens of milliseconds on a loaded machine: measured with
# scripts/bench_upstage.py --load 2, where 2% still let one request in 61 through too early).
MARGIN = 0.05

# A stored time further ahead than this is treated as garbage (clock jump, corrupt file).
MAX_AHEAD_S = 3600.0


def default_directory() -> Path:
    """Per-user directory under the system temp dir, so users never fight over permissions."""
    return Path(tempfile.gettempdir()) / f"ocrkie-ratelimit-{os.getuid()}"


class RateLimiter:
    """Spaces requests per endpoint at ``1/rate`` seconds across all processes on the machine.

    ``rates`` overrides ``DEFAULT_RATES`` per endpoint; a rate of 0 (or an endpoint with no rate)
    means unlimited. Processes that share a ``directory`` and ``namespace`` share the limits.
    """

    def __init__(
        self,
        rates: Mapping[str, float] | None = None,
        directory: str | Path | None = None,
        namespace: str = "",
    ) -> None:
        self.rates = {**DEFAULT_RATES, **(rates or {})}
        self.directory = Path(directory) if directory is not None else default_directory()
        self.namespace = namespace

    def __repr__(self) -> str:
        return f"RateLimiter(rates={self.rates!r}, directory={str(self.directory)!r})"

    def interval(self, endpoint: str) -> float:
        """Seconds between two requests to ``endpoint``; 0 when unlimited. A margin of
        ``MARGIN`` keeps network jitter from pushing requests over the service's limit."""
        rate = self.rates.get(endpoint) or 0.0
        return (1.0 + MARGIN) / rate if rate > 0 else 0.0

    def acquire(self, endpoint: str) -> float:
        """Block until this process may send one request to ``endpoint``; return seconds waited.

        A slot is claimed only once it is due, and the next one is set from the moment of the
        claim: a waiter that wakes late delays the ones after it instead of bunching up with
        them, which a server counting requests per second would answer with 429s.
        """
        interval = self.interval(endpoint)
        if interval == 0.0:
            return 0.0
        start = time.time()
        while True:
            with self._locked(endpoint) as state:
                due = max(state.next_free, state.paused_until)
                if state.now >= due:
                    state.next_free = state.now + interval
                    return time.time() - start
            _sleep_until(due)

    def pause(self, endpoint: str, seconds: float) -> None:
        """Hold back every process's requests to ``endpoint`` for ``seconds`` from now."""
        if self.interval(endpoint) == 0.0 or seconds <= 0:
            return
        with self._locked(endpoint) as state:
            state.paused_until = max(state.paused_until, state.now + seconds)

    def path(self, endpoint: str) -> Path:
        return self.directory / f"{self.namespace}{endpoint}.slots"

    @contextmanager
    def _locked(self, endpoint: str, shared: bool = False) -> Iterator[_State]:
        """Lock the endpoint's state file and yield its state; an exclusive holder's changes
        are written back on exit."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path(endpoint), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            state = _State.parse(os.pread(fd, 128, 0), time.time())
            yield state
            if not shared:
                os.ftruncate(fd, 0)
                os.pwrite(fd, state.dump(), 0)
        finally:
            os.close(fd)  # also releases the lock


@dataclass
class _State:
    now: float
    next_free: float
    paused_until: float

    @classmethod
    def parse(cls, raw: bytes, now: float) -> _State:
        """Anything unreadable or absurdly far ahead counts as 'free now'."""
        try:
            values = [float(v) for v in raw.split()]
        except ValueError:
            values = []
        if len(values) != 2:
            values = [0.0, 0.0]
        next_free, paused_until = (v if v <= now + MAX_AHEAD_S else 0.0 for v in values)
        return cls(now, next_free, paused_until)

    def dump(self) -> bytes:
        return f"{self.next_free:.6f} {self.paused_until:.6f}\n".encode()


def _sleep_until(deadline: float) -> None:
    while (left := deadline - time.time()) > 0:
        time.sleep(left)
