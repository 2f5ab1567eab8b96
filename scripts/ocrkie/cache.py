"""The content cache: results keyed by image content and engine identity, never by name.

A shard job that reruns (after a crash, a settings change that affects only some images, or
a deleted record) and a duplicate file under another name find their results here instead
of recomputing them or paying an API again. Snakemake deletes a job's outputs before
rerunning it; this cache is not a Snakemake output, so it survives.

This module alone decides where the cache lives (``cache_location``): locally one LMDB
environment (safe for many processes on one machine, not on NFS); with S3 storage (jobs that
share no disk) one S3 object per key, written idempotently, so no locking is needed. On a
filesystem that several machines share (a cluster's NFS, Lustre or GPFS), where LMDB's locks
and memory map hold on one machine only, ``cache_format: files`` keeps one file per key the
same way, each written under a temporary name and renamed into place. Values are
zlib-compressed JSON in all three.

The cache is best effort (``BestEffort``): a write that fails (a full disk or LMDB map, an S3
error) is a warning and the result it would have kept is used all the same; an entry that
cannot be read back (corrupt) is a miss, and is replaced by the next write.
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from pathlib import Path
from typing import Any, Protocol

import lmdb

from .formats import digest
from .storage import LocalFolder, S3Folder

_MAP_SIZE = 1 << 40  # address space only; the file grows with use
log = logging.getLogger(__name__)


def cache_key(stage: str, sha256: str, identity: dict[str, Any]) -> str:
    """``stage/<image sha256>/<hash of the engine identity and parameters>``."""
    return f"{stage}/{sha256}/{digest(identity)}"


class ContentCache(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any]) -> None: ...


class NoCache:
    def get(self, key: str) -> dict[str, Any] | None:
        return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        pass


def encode(value: dict[str, Any]) -> bytes:
    return zlib.compress(json.dumps(value, ensure_ascii=False).encode("utf-8"), 3)


def decode(blob: bytes) -> dict[str, Any]:
    return json.loads(zlib.decompress(blob))


class LmdbCache:
    def __init__(self, path: str | Path, map_size: int = _MAP_SIZE, readonly: bool = False):
        if not readonly:
            Path(path).mkdir(parents=True, exist_ok=True)
        self._env = lmdb.open(str(path), map_size=map_size, max_readers=512, readonly=readonly)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._env.begin() as txn:
            blob = txn.get(key.encode())
        return None if blob is None else decode(blob)

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._env.begin(write=True) as txn:
            txn.put(key.encode(), encode(value))

    def close(self) -> None:
        self._env.close()


class FolderCache:
    """``ContentCache`` backed by one object per key in a folder (``storage``'s S3 or local
    folder), written whole or not at all."""

    def __init__(self, folder: Any):
        self._folder = folder

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return decode(self._folder.read_bytes(key))
        except FileNotFoundError:
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._folder.write_bytes(key, encode(value))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._folder.location!r})"


class S3Cache(FolderCache):
    """One S3 object per key under ``location`` (``s3://b/prefix``)."""

    def __init__(self, location: str, client: Any = None):
        super().__init__(S3Folder(location, client))


class FileCache(FolderCache):
    """One file per key under a local folder (``cache_format: files``; a temporary name,
    fsync, rename): safe for jobs on many machines that share the folder, with no lock."""

    def __init__(self, location: str | Path):
        super().__init__(LocalFolder(location))


class BestEffort:
    """A cache whose failures cost a warning, never a result: see the module's docstring."""

    def __init__(self, cache: ContentCache, location: str = ""):
        self.cache = cache
        self.location = location
        self.failed_writes = 0
        self.unreadable = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return self.cache.get(key)
        except Exception as exc:  # zlib.error, a JSON error, an LMDB or S3 read error
            with self._lock:
                self.unreadable += 1
            log.warning("cache entry %s unreadable (%s): computed again", key, _short(exc))
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        try:
            self.cache.put(key, value)
        except Exception as exc:  # MapFullError, a full disk, an S3 error
            with self._lock:
                self.failed_writes += 1
                first = self.failed_writes == 1
            log.warning(
                "cache %s: a result could not be kept (%s); it is used all the same%s",
                self.location,
                _short(exc),
                "" if first else f" ({self.failed_writes} so far)",
            )

    def close(self) -> None:
        close = getattr(self.cache, "close", None)
        if close is not None:
            close()


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def cache_location(config: dict[str, Any], results_location: str) -> str:
    """Where the content cache is: ``auto`` means beside the results (``<results>/cache``,
    which with S3 default storage, jobs that share no disk, is in S3); ``""`` is off.

    Jobs work this out for themselves rather than take it as a rule parameter: moving the
    cache changes no record, so it must not look to Snakemake like a reason to rerun."""
    if config["cache"] != "auto":
        return config["cache"]
    return f"{results_location.rstrip('/')}/cache"


def open_cache(location: str | None, layout: str = "lmdb") -> BestEffort:
    """An LMDB cache at ``location`` (``layout`` ``files``: one file per key), an S3 one at
    ``s3://...``; none when it is empty. One that cannot be opened is a warning: the job runs
    without it."""
    if not location:
        return BestEffort(NoCache())
    try:
        cache: ContentCache
        if location.startswith("s3://"):
            cache = S3Cache(location)
        else:
            cache = FileCache(location) if layout == "files" else LmdbCache(location)
    except Exception as exc:
        log.warning("cache %s cannot be opened (%s): running without it", location, _short(exc))
        cache = NoCache()
    return BestEffort(cache, location)


def open_existing_cache(location: str, layout: str = "lmdb") -> ContentCache:
    """The cache for reading only (a dry run's forecast): nothing is created or written."""
    if not location or location.startswith("s3://") or layout == "files":
        return open_cache(location, layout)  # reading files creates nothing
    if not Path(location, "data.mdb").exists():
        return NoCache()
    return BestEffort(LmdbCache(location, readonly=True), location)
