"""The per-image stages run over a shard: OCR, then KIE.

Every image gets exactly one record per stage. The failure policy lives here and only here:
an ``ImageError`` (or a transient fault that outlived its retries, or an unexpected engine
error on one image) becomes that image's error record and the shard goes on; a
``FatalError`` stops the job. Finished results come from the content cache when present.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any, Protocol

from .cache import ContentCache, cache_key
from .engines import OcrEngine
from .errors import FatalError, OcrkieError, UnreadableImage
from .formats import (
    KIE_FORMAT,
    LAYOUT_FORMAT,
    OCR_FORMAT,
    error_info,
    image_info,
    now_iso,
    ocr_lines_payload,
    read_json,
    write_json_atomic,
)
from .images import PageImage, decode_page, sha256_of

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
        """Return ``{"fields": {...}}`` and optionally ``raw`` (a service's answer),
        ``billing`` and ``model_version``."""
        ...


class LayoutParser(Protocol):
    def identity(self) -> dict[str, Any]: ...

    def parse(self, page: Any, name: str) -> dict[str, Any]: ...


class UpstreamFailure(OcrkieError):
    """The OCR record this KIE record depends on is an error record."""

    def __init__(self, error: dict[str, str]):
        super().__init__(error["message"])
        self.error = error

    @property
    def kind(self) -> str:
        return self.error["class"]


def run_ocr_shard(
    tasks: list[Task],
    engine: OcrEngine,
    cache: ContentCache,
    limits: ImageLimits,
    workers: int = 1,
) -> None:
    def one(task: Task) -> None:
        _run_one(task, "ocr", OCR_FORMAT, lambda: _ocr_one(task, engine, cache, limits))

    _for_each(tasks, one, workers)


def run_kie_shard(
    tasks: list[Task], extractor: Extractor, cache: ContentCache, workers: int = 1
) -> None:
    def one(task: Task) -> None:
        _run_one(task, "kie", KIE_FORMAT, lambda: _kie_one(task, extractor, cache))

    _for_each(tasks, one, workers)


def run_layout_shard(
    tasks: list[Task],
    parser: LayoutParser,
    cache: ContentCache,
    limits: ImageLimits,
    workers: int = 1,
) -> None:
    def one(task: Task) -> None:
        _run_one(task, "layout", LAYOUT_FORMAT, lambda: _layout_one(task, parser, cache, limits))

    _for_each(tasks, one, workers)


def _for_each(tasks: list[Task], one: Callable[[Task], None], workers: int) -> None:
    """Run ``one`` over the tasks; with workers > 1 (API backends: the work is waiting on the
    network) several at once. A fatal error stops the rest and is raised."""
    if workers <= 1:
        for task in tasks:
            one(task)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(one, task) for task in tasks]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in done:
            future.result()  # re-raises the first fatal error


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


def _through_cache(
    cache: ContentCache, key: str, compute: Callable[[], dict[str, Any]]
) -> tuple[dict[str, Any], bool]:
    """The cached result for ``key``, or a fresh one, stored; and whether it was cached."""
    result = cache.get(key)
    if result is not None:
        return result, True
    result = compute()
    cache.put(key, result)
    return result, False


def _page_result(
    task: Task,
    stage: str,
    identity: dict[str, Any],
    cache: ContentCache,
    limits: ImageLimits,
    compute: Callable[[PageImage], dict[str, Any]],
) -> tuple[str, dict[str, Any], bool]:
    """Read the image and return its sha256 and the stage's result for it; the page is only
    decoded (and the engine only called) when the cache does not have the result."""
    data = _read(task.image)
    sha = sha256_of(data)

    def fresh() -> dict[str, Any]:
        page = decode_page(data, max_pixels=limits.max_pixels, max_side=limits.max_side)
        return {**compute(page), "size": [page.width, page.height], "normalization": page.steps}

    result, cached = _through_cache(cache, cache_key(stage, sha, identity), fresh)
    return sha, result, cached


def _ocr_one(
    task: Task, engine: OcrEngine, cache: ContentCache, limits: ImageLimits
) -> tuple[dict[str, Any], bool]:
    identity = engine.identity()

    def recognize(page: PageImage) -> dict[str, Any]:
        started = perf_counter()
        recognition = engine.recognize(page, Path(task.image).name)
        device = getattr(engine, "device", None)
        return {
            "engine": {**identity, "device": device, **(recognition.engine or {})},
            "billing": recognition.billing,
            "compute_seconds": round(perf_counter() - started, 4),
            "raw": recognition.raw,
            **ocr_lines_payload(recognition.lines),
        }

    sha, result, cached = _page_result(task, "ocr", identity, cache, limits, recognize)
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
    return _finish(record, result, task), cached


def _finish(record: dict[str, Any], result: dict[str, Any], task: Task) -> dict[str, Any]:
    """Add what the computation cost, and keep a service's raw answer beside the record."""
    if result.get("billing"):
        record["billing"] = result["billing"]
    if result.get("raw") is not None:
        write_json_atomic(_raw_path(task.output), result["raw"])
    return record


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
    ocr_engine = ocr["engine"] if getattr(extractor, "uses_ocr", True) else None
    key = kie_cache_key(sha, identity, ocr_engine)
    result, cached = _through_cache(cache, key, lambda: extractor.extract(ocr, task.image))
    engine = (
        {**identity, "model_version": result["model_version"]}
        if result.get("model_version")
        else identity
    )
    record = {
        "format": KIE_FORMAT,
        "status": "ok",
        "image": image_info(task.image_id, task.relpath, sha),
        "engine": engine,
        "fields": result["fields"],
    }
    return _finish(record, result, task), cached


def kie_cache_key(sha: str, identity: dict[str, Any], ocr_engine: dict[str, Any] | None) -> str:
    """A KIE result depends on the extractor and, unless it reads the image itself, on the
    OCR engine that produced its input (the device aside)."""
    depends_on: dict[str, Any] = {"kie": identity}
    if ocr_engine is not None:
        depends_on["ocr"] = {
            k: v for k, v in ocr_engine.items() if k not in ("device", "model_version")
        }
    return cache_key("kie", sha, depends_on)


def _layout_one(
    task: Task, parser: LayoutParser, cache: ContentCache, limits: ImageLimits
) -> tuple[dict[str, Any], bool]:
    identity = parser.identity()
    sha, result, cached = _page_result(
        task,
        "layout",
        identity,
        cache,
        limits,
        lambda page: parser.parse(page, Path(task.image).name),
    )
    width, height = result["size"]
    record = {
        "format": LAYOUT_FORMAT,
        "status": "ok",
        "image": image_info(task.image_id, task.relpath, sha, width=width, height=height),
        "engine": {**identity, "model_version": result.get("model_version")},
        "elements": result["elements"],
    }
    return _finish(record, result, task), cached
