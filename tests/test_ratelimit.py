"""The cross-process rate limiter: real processes sharing one state directory."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import stat
import statistics
import tempfile
import threading
import time
from pathlib import Path

import pytest

from ocrkie import ratelimit
from ocrkie.engines.upstage import UpstageOcrEngine
from ocrkie.errors import FatalError
from ocrkie.ratelimit import DEFAULT_RATES, RateLimiter, default_directory, node_local_locks


def _worker(directory: str, rate: float, calls: int, start: float, queue) -> None:
    limiter = RateLimiter({"ocr": rate}, directory)
    time.sleep(max(0.0, start - time.time()))  # all processes begin together
    stamps = []
    for _ in range(calls):
        limiter.acquire("ocr")
        stamps.append(time.time())
    queue.put(stamps)


def test_processes_share_one_limit(tmp_path: Path) -> None:
    rate, processes, calls = 20.0, 4, 8
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start = time.time() + 0.3
    workers = [
        context.Process(target=_worker, args=(str(tmp_path), rate, calls, start, queue))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    stamps = sorted(t for _ in workers for t in queue.get(timeout=30))
    for worker in workers:
        worker.join(timeout=10)
        assert worker.exitcode == 0

    assert len(stamps) == processes * calls
    measured = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert measured <= 1.02 * rate  # strict: the service must never see more
    # ...and no slower than it must. Not the mean rate: on a loaded machine a waiter that wakes
    # late delays the ones after it, and one stall drags the mean down. Most gaps stay near one
    # interval all the same, where a limiter that spaced them a quarter wider would not.
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert statistics.median(gaps) <= 1.25 / rate


def test_single_process_spacing(tmp_path: Path) -> None:
    limiter = RateLimiter({"ocr": 20.0}, tmp_path)
    started = time.monotonic()
    for _ in range(6):
        limiter.acquire("ocr")
    assert time.monotonic() - started >= 5 / 20 - 0.005


def test_first_request_does_not_wait(tmp_path: Path) -> None:
    assert RateLimiter({"ocr": 1.0}, tmp_path).acquire("ocr") < 0.05


def test_zero_rate_means_unlimited(tmp_path: Path) -> None:
    limiter = RateLimiter({"ocr": 0}, tmp_path / "slots")
    assert all(limiter.acquire("ocr") == 0.0 for _ in range(100))
    assert limiter.acquire("unknown-endpoint") == 0.0
    assert not (tmp_path / "slots").exists()


def test_defaults_are_the_documented_base_tier() -> None:
    assert DEFAULT_RATES == {"ocr": 3.0, "document-parse": 3.0, "information-extract": 1.0}
    limiter = RateLimiter({"ocr": 5.0})
    assert limiter.rates["ocr"] == 5.0 and limiter.rates["information-extract"] == 1.0


def test_pause_holds_back_other_limiters(tmp_path: Path) -> None:
    throttled, other = RateLimiter({"ocr": 50}, tmp_path), RateLimiter({"ocr": 50}, tmp_path)
    started = time.monotonic()  # the pause runs from its call, however late the next line
    throttled.pause("ocr", 0.3)  # as after a 429
    other.acquire("ocr")
    assert time.monotonic() - started >= 0.29
    assert RateLimiter({"document-parse": 50}, tmp_path).acquire("document-parse") < 0.05


def test_pause_reaches_a_process_already_waiting(tmp_path: Path) -> None:
    limiter = RateLimiter({"ocr": 4.0}, tmp_path)
    limiter.acquire("ocr")  # the next slot is 0.25 s away
    started = time.monotonic()
    waiter = threading.Thread(target=limiter.acquire, args=("ocr",))
    waiter.start()
    time.sleep(0.1)
    RateLimiter({"ocr": 4.0}, tmp_path).pause("ocr", 0.5)  # lands while the waiter sleeps
    waiter.join(timeout=5)
    assert time.monotonic() - started >= 0.59


def test_namespaces_do_not_share(tmp_path: Path) -> None:
    first = RateLimiter({"ocr": 2.0}, tmp_path, namespace="api.upstage.ai-")
    second = RateLimiter({"ocr": 2.0}, tmp_path, namespace="127.0.0.1_8080-")
    first.acquire("ocr")
    assert second.acquire("ocr") < 0.05


def test_corrupt_or_absurd_state_is_ignored(tmp_path: Path) -> None:
    limiter = RateLimiter({"ocr": 10.0}, tmp_path)
    for content in ("garbage\n", "1e15 1e15\n", "nan inf\n", ""):
        limiter.path("ocr").write_text(content)
        before = time.time()
        assert limiter.acquire("ocr") < 0.05
        next_free, paused_until = map(float, limiter.path("ocr").read_text().split())
        # the next slot is one interval after the claim (however late this looks at it)
        interval = limiter.interval("ocr")
        assert before + interval <= next_free <= time.time() + interval
        assert paused_until == 0.0


def test_state_directory_made_private(tmp_path: Path) -> None:
    RateLimiter({"ocr": 10.0}, tmp_path / "slots").acquire("ocr")
    info = (tmp_path / "slots").lstat()
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()
    assert stat.S_IMODE((tmp_path / "slots" / "ocr.slots").lstat().st_mode) == 0o600


def test_symlinked_state_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(FatalError, match=r"link is a symbolic link"):
        RateLimiter({"ocr": 10.0}, tmp_path / "link").acquire("ocr")
    assert not list((tmp_path / "real").iterdir())


def test_state_directory_open_to_others_is_refused(tmp_path: Path) -> None:
    (tmp_path / "slots").mkdir()
    (tmp_path / "slots").chmod(0o777)
    with pytest.raises(FatalError, match=r"slots is open to other users \(mode 0777\)"):
        RateLimiter({"ocr": 10.0}, tmp_path / "slots").pause("ocr", 1.0)
    assert not list((tmp_path / "slots").iterdir())


def test_state_directory_of_another_user_is_refused(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "slots").mkdir(mode=0o700)
    owner = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: owner + 1)  # as seen by someone else
    with pytest.raises(FatalError, match=rf"belongs to uid {owner}, not to you"):
        RateLimiter({"ocr": 10.0}, tmp_path / "slots").acquire("ocr")


def test_state_file_links_are_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "slots").mkdir(mode=0o700)
    (tmp_path / "slots" / "ocr.slots").symlink_to(victim)
    with pytest.raises(FatalError, match=r"ocr\.slots: it is a symbolic link"):
        RateLimiter({"ocr": 10.0}, tmp_path / "slots").acquire("ocr")
    assert victim.read_text() == "precious\n"


def test_default_directory_is_private_per_user(tmp_path: Path, monkeypatch) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert default_directory() == runtime / "ocrkie-ratelimit"
    runtime.chmod(0o755)  # not what the XDG spec promises: not used
    fallback = Path(tempfile.gettempdir()) / f"ocrkie-ratelimit-{os.getuid()}"
    assert default_directory() == fallback
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_directory() == fallback


# -- several machines: a folder on a filesystem they share --------------------------------------

MOUNTS = """/dev/vda / ext4 rw,relatime 0 0
server:/home /home nfs rw,relatime,vers=3,nolock,addr=10.0.0.1 0 0
server:/proj /proj nfs4 rw,relatime,vers=4.2,local_lock=none,addr=10.0.0.1 0 0
10.0.0.2@o2ib:/scratch /scratch lustre rw,localflock 0 0
10.0.0.2@o2ib:/work /work lustre rw,flock 0 0
server:/a\\040b /mnt/a\\040b nfs rw,vers=4.1,local_lock=flock 0 0
"""


def test_mounts_whose_locks_stay_on_one_machine_are_recognised(tmp_path: Path) -> None:
    table = tmp_path / "mounts"
    table.write_text(MOUNTS)

    def found(path: str) -> str | None:
        return node_local_locks(Path(path), table)

    assert found("/home/me/ocrkie/.snakemake") == "nfs mounted at /home with nolock"
    assert found("/scratch/me") == "lustre mounted at /scratch with localflock"
    assert found("/mnt/a b/x") == "nfs mounted at /mnt/a b with local_lock=flock"
    # NFS with its lock manager, Lustre with flock, a local disk: locks every machine sees
    assert found("/proj/x") is None and found("/work/x") is None and found("/srv") is None
    assert found("/homework") is None  # not under /home
    assert node_local_locks(Path("/home"), tmp_path / "no-such-table") is None


def test_a_shared_folder_whose_locks_stay_on_one_machine_is_refused(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(ratelimit, "node_local_locks", lambda path: "nfs mounted at /h with nolock")
    with pytest.raises(FatalError, match=r"is on nfs mounted at /h with nolock: its locks stay"):
        RateLimiter({"ocr": 10.0}, tmp_path / "slots").acquire("ocr")
    # this machine's own folder (the default) needs no locks beyond it
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert RateLimiter({"ocr": 10.0}).acquire("ocr") < 0.05


def test_the_configured_folder_is_the_limiters_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UPSTAGE_API_KEY", "up_test")
    settings = {
        "base_url": "http://127.0.0.1:9",
        "timeout_s": 10,
        "max_attempts": 1,
        "concurrency": 1,
        "rate_limits": {"ocr": 3},
        "ocr_model": "ocr",
    }
    shared = UpstageOcrEngine({**settings, "rate_limit_dir": ".snakemake/ocrkie/ratelimit"})
    assert shared.client.limiter.directory == tmp_path / ".snakemake" / "ocrkie" / "ratelimit"
    assert UpstageOcrEngine({**settings, "rate_limit_dir": ""}).client.limiter.directory == (
        default_directory()
    )
