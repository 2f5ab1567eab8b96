"""A request-rate limiter shared by every process on the machine.

Several Snakemake jobs call the same API at once, and the service limits requests per second per
key, so each process alone cannot know how fast to go. All processes share one small state file
per endpoint, locked with ``fcntl.flock``: an acquirer takes the next free slot and moves it one
interval on, then sleeps until its slot. A 429 from the service pauses the endpoint for every
process (``pause``).

The state file holds two wall-clock times: the next free slot and the end of any pause. Wall time
(not ``time.monotonic``) is used so that a file left behind by an earlier boot is merely in the
past; a time absurdly far ahead (a clock that jumped back) is ignored.

The state directory is private to the user: another user who could write there could hold the
lock (stalling every job) or plant a link that turns the state write onto the victim's files. A
directory that is a link, someone else's, or open to others is refused, never used; state files
are opened without following links, and must be the user's own.

Jobs on several machines (a SLURM cluster) share the limits when the directory is on a
filesystem they all mount whose locks reach every machine: NFS (there a ``flock`` is a lock the
server holds), GPFS, Lustre mounted with ``flock``. A directory given explicitly on a mount whose
locks stay on one machine (NFS mounted ``nolock`` or ``local_lock=flock``, Lustre mounted
``localflock``) is refused: each machine would go at the full rate. The machines' clocks must
agree, as they do on a cluster (NTP; munge, which SLURM uses, needs it too).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from .errors import FatalError

# Documented base-tier limits in requests per second (notes/upstage-api.md §4).
DEFAULT_RATES: dict[str, float] = {"ocr": 3.0, "document-parse": 3.0, "information-extract": 1.0}

# Requests go out this much slower than the limit: a server counting requests per second
# sees them with some jitter (tens of milliseconds on a loaded machine: measured with
# scripts/bench/upstage.py --load 2, where 2% still let one request in 61 through too early).
MARGIN = 0.05

# A stored time further ahead than this is treated as garbage (clock jump, corrupt file).
MAX_AHEAD_S = 3600.0


def default_directory() -> Path:
    """``$XDG_RUNTIME_DIR/ocrkie-ratelimit`` where that is a private directory of this user (as
    the XDG spec makes it), else ``ocrkie-ratelimit-<uid>`` under the system temp dir. Processes
    share limits only when they agree on it, as the jobs of one Snakemake run do."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime) and _private_problem(Path(runtime)) is None:
        return Path(runtime) / "ocrkie-ratelimit"
    return Path(tempfile.gettempdir()) / f"ocrkie-ratelimit-{os.getuid()}"


def private_directory(path: Path) -> Path:
    """Create ``path`` (mode 0700) unless it exists, then make sure only this user can use it:
    a real directory, owned by this user, no access for group or others. Raises FatalError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        path.mkdir(mode=0o700)
    problem = _private_problem(path)
    if problem:
        raise FatalError(
            f"rate limiter state directory {path} {problem}: it must be a directory of your own "
            "with mode 0700; remove it (or set XDG_RUNTIME_DIR to a private directory)"
        )
    return path


def _private_problem(path: Path) -> str | None:
    """Why ``path`` is no private directory of this user (its own entry, links not followed)."""
    try:
        info = path.lstat()
    except OSError as exc:
        return f"cannot be examined ({exc.strerror})"
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid != os.getuid():
        return f"belongs to uid {info.st_uid}, not to you (uid {os.getuid()})"
    if info.st_mode & 0o077:
        return f"is open to other users (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


# Mount options under which a lock is kept by this machine alone, by filesystem type.
_NODE_LOCAL_LOCKS = {
    "nfs": {"nolock", "local_lock=flock", "local_lock=all"},
    "nfs4": {"local_lock=flock", "local_lock=all"},
    "lustre": {"localflock"},
}


def node_local_locks(path: Path, mounts: str | Path = "/proc/self/mounts") -> str | None:
    """The mount of ``path`` when it keeps ``flock`` locks on this machine only (other machines
    that mount it would not see them), else None; None also where the table cannot be read."""
    try:
        table = Path(mounts).read_text()
    except OSError:
        return None
    target = os.path.realpath(path)
    best: tuple[str, str, set[str]] | None = None
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        point = fields[1].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, fields[2], set(fields[3].split(",")))
    if best is None:
        return None
    point, kind, options = best
    local = sorted(options & _NODE_LOCAL_LOCKS.get(kind, set()))
    return f"{kind} mounted at {point} with {','.join(local)}" if local else None


class RateLimiter:
    """Spaces requests per endpoint at ``1/rate`` seconds across all processes on the machine.

    ``rates`` overrides ``DEFAULT_RATES`` per endpoint; a rate of 0 (or an endpoint with no rate)
    means unlimited. Processes that share a ``directory`` and ``namespace`` share the limits;
    without a ``directory`` that is those of this user on this machine (``default_directory``).
    A ``directory`` given may be on a shared filesystem, to share them across machines.
    """

    def __init__(
        self,
        rates: Mapping[str, float] | None = None,
        directory: str | Path | None = None,
        namespace: str = "",
    ) -> None:
        self.rates = {**DEFAULT_RATES, **(rates or {})}
        self.directory = Path(directory) if directory is not None else default_directory()
        self.across_machines = directory is not None  # its locks must not stay on one machine
        self.namespace = namespace
        self._checked = False

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
        if not self._checked:
            private_directory(self.directory)
            mount = node_local_locks(self.directory) if self.across_machines else None
            if mount:
                raise FatalError(
                    f"rate limiter state directory {self.directory} is on {mount}: its locks "
                    "stay on each machine, so jobs on other machines would not share the rate "
                    "limits; choose a folder on a filesystem with shared locks, or run one "
                    "Upstage job at a time (resources: upstage_api: 1)"
                )
            self._checked = True
        fd = _open_state(self.path(endpoint))
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            except OSError as exc:  # e.g. Lustre mounted without flock: ENOSYS
                raise FatalError(
                    f"cannot lock the rate limiter state file {self.path(endpoint)}: "
                    f"{exc.strerror}; choose a folder on a filesystem that supports flock"
                ) from exc
            state = _State.parse(os.pread(fd, 128, 0), time.time())
            yield state
            if not shared:
                os.ftruncate(fd, 0)
                os.pwrite(fd, state.dump(), 0)
        finally:
            os.close(fd)  # also releases the lock


def _open_state(path: Path) -> int:
    """The state file, created 0600; a link in its place is refused, as is a file not ours."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        why = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise FatalError(f"cannot open the rate limiter state file {path}: {why}") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
        os.close(fd)
        raise FatalError(
            f"rate limiter state file {path} is not a file of your own (uid {info.st_uid}): "
            "remove it"
        )
    return fd


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
