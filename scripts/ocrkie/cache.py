"""The content cache: results keyed by image content and engine identity, never by name.

A shard job that reruns (after a crash, or because a new image joined it) and a duplicate
file under another name both find their results here instead of recomputing or paying an
API again. Snakemake deletes a job's outputs before rerunning it; this cache is not a
Snakemake output, so it survives.

Locally the cache is one LMDB environment (safe for many processes on one machine, not on
NFS). Values are zlib-compressed JSON.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path
from typing import Any, Protocol

import lmdb

_MAP_SIZE = 1 << 40  # address space only; the file grows with use


def cache_key(stage: str, sha256: str, identity: dict[str, Any]) -> str:
    """``stage/<image sha256>/<hash of the engine identity and parameters>``."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return f"{stage}/{sha256}/{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


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
    def __init__(self, path: str | Path):
        Path(path).mkdir(parents=True, exist_ok=True)
        self._env = lmdb.open(str(path), map_size=_MAP_SIZE, max_readers=512)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._env.begin() as txn:
            blob = txn.get(key.encode())
        return None if blob is None else decode(blob)

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._env.begin(write=True) as txn:
            txn.put(key.encode(), encode(value))

    def close(self) -> None:
        self._env.close()


def open_cache(location: str | None) -> ContentCache:
    """An LMDB cache at ``location``, an S3 one at ``s3://...``; none when it is empty."""
    if not location:
        return NoCache()
    if location.startswith("s3://"):
        from .s3cache import S3Cache  # boto3 only where it is used

        return S3Cache(location)
    return LmdbCache(location)
