"""The records' envelope: their formats, what they say of the image and of an error, digests,
and writing them atomically so that a killed job never leaves half a file (the page model,
``page``, makes their lines)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

OCR_FORMAT = "ocrkie.ocr/1"
KIE_FORMAT = "ocrkie.kie/1"
LAYOUT_FORMAT = "ocrkie.layout/1"


def image_info(image_id: str, relpath: str, sha256: str | None, **extra: Any) -> dict[str, Any]:
    return {"id": image_id, "path": relpath, "sha256": sha256, **extra}


def error_info(exc: BaseException) -> dict[str, str]:
    kind = getattr(exc, "kind", type(exc).__name__)
    return {"class": kind, "message": str(exc) or f"{kind} (raised without a message)"}


def digest(value: Any, length: int = 16) -> str:
    """A short hash of a JSON-able value, independent of key order."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def dump_json(record: dict[str, Any]) -> bytes:
    """A record as the files hold it: UTF-8 JSON, one member per line, a final newline."""
    return (json.dumps(record, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def write_json_atomic(path: str | Path, record: dict[str, Any]) -> None:
    write_atomic(path, dump_json(record))


def read_json(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync it, then rename it into place."""
    with atomic_file(path, "wb") as handle:
        handle.write(data)


@contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A file written under a temporary name in its folder, flushed to disk and renamed into
    place only once complete: a killed job or a full disk never leaves half a file. ``mode``:
    ``w`` (UTF-8 text, newlines as written) or ``wb``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it private; results are for others to read too
        text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **text) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def split_score(sha256: str) -> float:
    """A fixed number in [0, 1] drawn from an image's content: below the validation share,
    the image is held out."""
    return int(hashlib.sha256(f"ocrkie-split:{sha256}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def split_of(sha256: str, val_fraction: float) -> str:
    """``val`` for a fixed, content-determined share of images; the rest ``train``."""
    return "val" if split_score(sha256) < val_fraction else "train"
