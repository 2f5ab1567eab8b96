"""The canonical OCR and KIE records every backend writes (documented in README.md).

Engines return plain ``Line`` objects in page pixels; this module orders them, builds the
records, and writes them atomically so that a killed job never leaves half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

OCR_FORMAT = "ocrkie.ocr/1"
KIE_FORMAT = "ocrkie.kie/1"
LAYOUT_FORMAT = "ocrkie.layout/1"

Polygon = list[list[float]]  # four [x, y] points, clockwise from top-left, page pixels


@dataclass
class Word:
    text: str
    confidence: float
    polygon: Polygon


@dataclass
class Line:
    text: str
    confidence: float
    polygon: Polygon
    words: list[Word] = field(default_factory=list)


def _bounds(polygon: Polygon) -> tuple[float, float, float, float]:
    xs = [p[0] for p in polygon]
    ys = [p[1] for p in polygon]
    return min(xs), min(ys), max(xs), max(ys)


def reading_order(lines: list[Line]) -> list[list[Line]]:
    """Group lines into visual rows (top to bottom), each row sorted left to right.

    A line joins the current row when its vertical centre lies within the row's first
    line's vertical extent; this keeps "TOTAL ..... 9.00" on one row of a receipt.
    """
    rows: list[list[Line]] = []
    for line in sorted(lines, key=lambda ln: (_centre_y(ln), _bounds(ln.polygon)[0])):
        if rows:
            _, top, _, bottom = _bounds(rows[-1][0].polygon)
            if top <= _centre_y(line) <= bottom:
                rows[-1].append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda ln: _bounds(ln.polygon)[0]) for row in rows]


def _centre_y(line: Line) -> float:
    _, top, _, bottom = _bounds(line.polygon)
    return (top + bottom) / 2


def _round_polygon(polygon: Polygon) -> Polygon:
    return [[round(float(x), 1), round(float(y), 1)] for x, y in polygon]


def _word_dict(word: Word) -> dict[str, Any]:
    return {
        "text": word.text,
        "confidence": round(float(word.confidence), 4),
        "polygon": _round_polygon(word.polygon),
    }


def ocr_lines_payload(lines: list[Line]) -> dict[str, Any]:
    """The ``text`` and ``lines`` members of an OCR record, in reading order."""
    rows = reading_order(lines)
    out_lines = []
    for row_index, row in enumerate(rows):
        for line in row:
            out_lines.append(
                {
                    "id": len(out_lines),
                    "row": row_index,
                    "text": line.text,
                    "confidence": round(float(line.confidence), 4),
                    "polygon": _round_polygon(line.polygon),
                    "words": [_word_dict(w) for w in line.words],
                }
            )
    text = "\n".join(" ".join(line.text for line in row) for row in rows)
    return {"text": text, "lines": out_lines}


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


def split_of(sha256: str, val_fraction: float) -> str:
    """``val`` for a fixed, content-determined share of images; the rest ``train``."""
    bucket = int(hashlib.sha256(f"ocrkie-split:{sha256}".encode()).hexdigest()[:8], 16)
    return "val" if bucket / 0xFFFFFFFF < val_fraction else "train"
