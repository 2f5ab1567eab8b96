"""The per-image stages run over a shard: OCR, then KIE.

Every image gets exactly one record per stage. The failure policy lives here and only here:
an ``ImageError`` (or a transient fault that outlived its retries, or an unexpected engine
error on one image) becomes that image's error record and the shard goes on; a
``FatalError`` stops the job. Finished results come from the content cache when present.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any, Protocol

from .cache import ContentCache, cache_key
from .engines import OcrEngine
from .errors import FatalError, OcrkieError, UnreadableImage
from .formats import (
    KIE_FORMAT,
    OCR_FORMAT,
    error_info,
    image_info,
    now_iso,
    ocr_lines_payload,
    read_json,
    write_json_atomic,
)
from .images import decode_page, sha256_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    image_id: str
    relpath: str
    image: str  # the image file
    output: str  # the record to write
    ocr: str = ""  # for KIE: the OCR record it reads


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int
    max_side: int


class Extractor(Protocol):
    def identity(self) -> dict[str, Any]: ...

    def extract(self, ocr: dict[str, Any], image: str) -> dict[str, Any]:
        """Return ``{"fields": {...}}`` and optionally ``"raw"``, a service's answer."""
        ...


class UpstreamFailure(OcrkieError):
    """The OCR record this KIE record depends on is an error record."""

    def __init__(self, error: dict[str, str]):
        super().__init__(error["message"])
        self.error = error

    @property
    def kind(self) -> str:
        return self.error["class"]


def run_ocr_shard(
    tasks: list[Task], engine: OcrEngine, cache: ContentCache, limits: ImageLimits
) -> None:
    for task in tasks:
        _run_one(task, "ocr", OCR_FORMAT, lambda t=task: _ocr_one(t, engine, cache, limits))


def run_kie_shard(tasks: list[Task], extractor: Extractor, cache: ContentCache) -> None:
    for task in tasks:
        _run_one(task, "kie", KIE_FORMAT, lambda t=task: _kie_one(t, extractor, cache))


def _run_one(
    task: Task, stage: str, fmt: str, compute: Callable[[], tuple[dict[str, Any], bool]]
) -> None:
    started = perf_counter()
    try:
        record, cached = compute()
    except FatalError:
        raise
    except OcrkieError as exc:
        record, cached = _error_record(task, fmt, exc, stage), False
    except Exception as exc:  # an engine bug on one odd image must not sink the shard
        log.exception("%s failed on %s", stage, task.relpath)
        record, cached = _error_record(task, fmt, exc, stage), False
    seconds = perf_counter() - started
    record["timing"] = {"seconds": round(seconds, 4), "cached": cached, "finished_at": now_iso()}
    write_json_atomic(task.output, record)
    log.info(
        "%s %s %s %.2fs%s",
        stage,
        record["status"],
        task.relpath,
        seconds,
        " (cached)" if cached else "",
    )


def _error_record(task: Task, fmt: str, exc: BaseException, stage: str) -> dict[str, Any]:
    failed_stage = "ocr" if isinstance(exc, UpstreamFailure) else stage
    sha = _sha_if_readable(task.image)
    return {
        "format": fmt,
        "status": "error",
        "image": image_info(task.image_id, task.relpath, sha),
        "error": {**error_info(exc), "stage": failed_stage},
    }


def _sha_if_readable(path: str) -> str | None:
    try:
        return sha256_of(Path(path).read_bytes())
    except OSError:
        return None


def _ocr_one(
    task: Task, engine: OcrEngine, cache: ContentCache, limits: ImageLimits
) -> tuple[dict[str, Any], bool]:
    data = _read(task.image)
    sha = sha256_of(data)
    identity = engine.identity()
    key = cache_key("ocr", sha, identity)
    result = cache.get(key)
    cached = result is not None
    if result is None:
        page = decode_page(data, max_pixels=limits.max_pixels, max_side=limits.max_side)
        started = perf_counter()
        recognition = engine.recognize(page)
        result = {
            "engine": {**identity, "device": getattr(engine, "device", None)},
            "size": [page.width, page.height],
            "normalization": page.steps,
            "compute_seconds": round(perf_counter() - started, 4),
            "raw": recognition.raw,
            **ocr_lines_payload(recognition.lines),
        }
        cache.put(key, result)
    width, height = result["size"]
    record = {
        "format": OCR_FORMAT,
        "status": "ok",
        "image": image_info(
            task.image_id,
            task.relpath,
            sha,
            width=width,
            height=height,
            normalization=result["normalization"],
        ),
        "engine": result["engine"],
        "text": result["text"],
        "lines": result["lines"],
        "compute_seconds": result["compute_seconds"],
    }
    if result.get("raw") is not None:
        write_json_atomic(_raw_path(task.output), result["raw"])
    return record, cached


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableImage(f"cannot read the file: {exc.strerror}") from exc


def _raw_path(output: str) -> Path:
    """``results/ocr/x.json`` -> ``results/raw/ocr/x.json``: the service's answer, kept."""
    out = Path(output)
    return out.parent.parent / "raw" / out.parent.name / out.name


def _kie_one(task: Task, extractor: Extractor, cache: ContentCache) -> tuple[dict[str, Any], bool]:
    ocr = read_json(task.ocr)
    if ocr["status"] != "ok":
        raise UpstreamFailure(ocr["error"])
    sha = ocr["image"]["sha256"]
    identity = extractor.identity()
    ocr_engine = {k: v for k, v in ocr["engine"].items() if k != "device"}
    key = cache_key("kie", sha, {"kie": identity, "ocr": ocr_engine})
    result = cache.get(key)
    cached = result is not None
    if result is None:
        result = extractor.extract(ocr, task.image)
        cache.put(key, result)
    record = {
        "format": KIE_FORMAT,
        "status": "ok",
        "image": image_info(task.image_id, task.relpath, sha),
        "engine": identity,
        "fields": result["fields"],
    }
    if result.get("raw") is not None:
        write_json_atomic(_raw_path(task.output), result["raw"])
    return record, cached
