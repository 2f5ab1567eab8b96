"""Running one stage (OCR, KIE, layout) over one shard: one record per image, always.

The failure policy lives here and only here, for every stage and engine: an ``ImageError``
(or a transient fault that outlived its retries, or an unexpected engine error on one image)
becomes that image's error record and the shard goes on; a ``FatalError`` stops the job.
Results come from the content cache when it has them; the others go to the engine in
batches of its ``batch_size``, up to ``concurrency`` batches at once. A batch call that fails
is retried image by image, so one bad page costs only its own record.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from itertools import islice
from time import perf_counter
from typing import Any

from .cache import ContentCache, cache_key
from .engines import Document, Engine, Extractor, LayoutParser, OcrEngine
from .errors import FatalError, OcrkieError, UnreadableImage
from .evidence import locate, merge_pages, rows_of
from .formats import (
    KIE_FORMAT,
    LAYOUT_FORMAT,
    OCR_FORMAT,
    digest,
    error_info,
    image_info,
    now_iso,
    ocr_lines_payload,
)
from .images import PDF_MAGIC, count_pages, decode_page, longest_side, sha256_of
from .inputs import InputImage
from .results import Results, record_name
from .storage import read_input

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int
    max_side: int
    max_bytes: int = 256 * 2**20
    pdf_dpi: int = 200


class UpstreamFailure(OcrkieError):
    """The OCR record this KIE record depends on is an error record."""

    def __init__(self, error: dict[str, str]):
        super().__init__(error["message"])
        self.error = error

    @property
    def kind(self) -> str:
        return self.error["class"]


@dataclass
class Work:
    """One page (for KIE: one document) on its way through a stage."""

    image: InputImage
    page: int = 1
    pages: int = 1
    sha: str | None = None
    key: str = ""
    source: Any = None  # what was read: the file's bytes, or for KIE its OCR records
    payload: dict[str, Any] | None = None  # the result, cached or computed
    cached: bool = False
    error: BaseException | None = None
    seconds: float = 0.0
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The record's file name without suffix: the image id, and the page if there are
        several."""
        return record_name(self.image.id, self.page, self.pages)


class Stage(ABC):
    """What differs between stages: what is read, what the engine is asked, what is kept."""

    name: str
    format: str

    def __init__(self, engine: Engine, cache: ContentCache, results: Results, limits: ImageLimits):
        self.engine = engine
        self.cache = cache
        self.results = results
        self.limits = limits
        self.identity = engine.identity()

    def expand(self, work: Work) -> list[Work]:
        """The works of one image: one per page for stages that read pages."""
        return [work]

    @abstractmethod
    def look_up(self, work: Work) -> None:
        """Read the input; set ``sha``, ``key`` and ``source``."""

    @abstractmethod
    def engine_input(self, work: Work) -> Any:
        """What the engine reads (decoded only on a cache miss)."""

    @abstractmethod
    def call(self, inputs: list[Any]) -> list[Any]:
        """The engine's batch call."""

    @abstractmethod
    def payload(self, work: Work, item: Any, result: Any, seconds: float) -> dict[str, Any]:
        """What the content cache keeps of a fresh result."""

    @abstractmethod
    def record(self, work: Work) -> dict[str, Any]:
        """The ok record, from ``work.payload``."""

    def entry_extras(self, record: dict[str, Any]) -> dict[str, Any]:
        """What the shard's manifest keeps of an ok record besides status and timing."""
        return {}

    def record_name(self, work: Work) -> str:
        """The record's file name without suffix."""
        return work.name

    def in_cache(self, work: Work) -> bool:
        """Whether the cache holds the image's results, every page's (for a forecast: nothing
        is computed)."""
        try:
            pages = self.expand(work)
            for page in pages:
                self.look_up(page)
        except Exception:
            return False
        return all(self.cache.get(page.key) is not None for page in pages)


class PageStage(Stage):
    """Stages that read the image itself, page by page (OCR, layout)."""

    def expand(self, work: Work) -> list[Work]:
        try:
            data = read_input(work.image.path, self.limits.max_bytes)
        except OSError as exc:
            raise UnreadableImage(f"cannot read the file: {exc.strerror or exc}") from exc
        work.sha, work.source = sha256_of(data), data
        pages = count_pages(data, self.limits.max_pixels)
        return [
            Work(work.image, page=n, pages=pages, sha=work.sha, source=data)
            for n in range(1, pages + 1)
        ]

    def look_up(self, work: Work) -> None:
        work.key = cache_key(self.name, work.sha or "", self.cache_identity(work))

    def cache_identity(self, work: Work) -> dict[str, Any]:
        """The engine's identity, the page, and where the page is downscaled the size it is
        read at (an image under ``max_side`` keeps its cached result whatever the limit);
        for a PDF, the resolution it is rendered at."""
        identity = dict(self.identity)
        if work.pages > 1:
            identity["page"] = work.page
        if work.source.startswith(PDF_MAGIC):
            identity["pdf_dpi"] = self.limits.pdf_dpi
            return identity
        side = longest_side(work.source)
        if side is not None and side > self.limits.max_side:
            identity["max_side"] = self.limits.max_side
        return identity

    def engine_input(self, work: Work) -> Any:
        limits = self.limits
        name = work.image.relpath.rsplit("/", 1)[-1]
        return decode_page(
            work.source, limits.max_pixels, limits.max_side, name, work.page, limits.pdf_dpi
        )

    def page_facts(self, page: Any) -> dict[str, Any]:
        return {"width": page.width, "height": page.height, "normalization": page.steps}


class OcrStage(PageStage):
    name, format = "ocr", OCR_FORMAT
    engine: OcrEngine

    def call(self, inputs: list[Any]) -> list[Any]:
        return self.engine.recognize_many(inputs)

    def payload(self, work: Work, item: Any, result: Any, seconds: float) -> dict[str, Any]:
        return {
            "page": self.page_facts(item),
            "engine": {**self.identity, "device": self.engine.device, **result.facts},
            "billing": result.billing,
            "compute_seconds": round(seconds, 4),
            "raw": result.raw,
            **ocr_lines_payload(result.lines),
        }

    def entry_extras(self, record: dict[str, Any]) -> dict[str, Any]:
        """The line count and a histogram of line confidences (tenths), for the report."""
        histogram = [0] * 10
        for line in record["lines"]:
            histogram[min(9, int(float(line["confidence"]) * 10))] += 1
        return {"lines": len(record["lines"]), "confidence_histogram": histogram}

    def record(self, work: Work) -> dict[str, Any]:
        result = work.payload or {}
        image = image_info(
            work.image.id, work.image.relpath, work.sha, **_page_of(work), **result["page"]
        )
        return {
            "format": OCR_FORMAT,
            "status": "ok",
            "image": image,
            "engine": result["engine"],
            "text": result["text"],
            "lines": result["lines"],
            "compute_seconds": result["compute_seconds"],
        }


class LayoutStage(PageStage):
    name, format = "layout", LAYOUT_FORMAT
    engine: LayoutParser

    def call(self, inputs: list[Any]) -> list[Any]:
        return self.engine.parse_many(inputs)

    def payload(self, work: Work, item: Any, result: Any, seconds: float) -> dict[str, Any]:
        return {
            "page": self.page_facts(item),
            "engine": {**self.identity, **result.facts},
            "billing": result.billing,
            "raw": result.raw,
            "elements": result.elements,
        }

    def record(self, work: Work) -> dict[str, Any]:
        result = work.payload or {}
        page = {k: result["page"][k] for k in ("width", "height")}
        info = image_info(work.image.id, work.image.relpath, work.sha, **_page_of(work), **page)
        return {
            "format": LAYOUT_FORMAT,
            "status": "ok",
            "image": info,
            "engine": result["engine"],
            "elements": result["elements"],
        }


class KieStage(Stage):
    name, format = "kie", KIE_FORMAT
    engine: Extractor

    def look_up(self, work: Work) -> None:
        """A document's OCR: its pages that were read, as one record (lines carry a page)."""
        pages = self.results.read_pages("ocr", work.image.id)
        read = [page for page in pages if page["status"] == "ok"]
        if not read:
            raise UpstreamFailure(pages[0]["error"])
        ocr = merge_pages(read)
        work.pages = len(pages)
        work.sha, work.source = ocr["image"]["sha256"], ocr
        work.key = kie_cache_key(work.sha, self.identity, ocr if self.engine.reads_ocr else None)

    def engine_input(self, work: Work) -> Any:
        return Document(work.source, work.image.path)

    def entry_extras(self, record: dict[str, Any]) -> dict[str, Any]:
        """The values, for the batch tables (kie.csv, kie.jsonl): no need to read records."""
        keep = ("value", "normalized", "confidence")
        return {"fields": {n: {k: f.get(k) for k in keep} for n, f in record["fields"].items()}}

    def in_cache(self, work: Work) -> bool:
        if self.engine.reads_ocr:
            return super().in_cache(work)
        try:  # the key needs no OCR record, which may not exist yet
            sha = sha256_of(read_input(work.image.path))
        except OSError:
            return False
        return self.cache.get(kie_cache_key(sha, self.identity, None)) is not None

    def call(self, inputs: list[Any]) -> list[Any]:
        return self.engine.extract_many(inputs)

    def payload(self, work: Work, item: Any, result: Any, seconds: float) -> dict[str, Any]:
        return {
            "engine": {**self.identity, **result.facts},
            "billing": result.billing,
            "raw": result.raw,
            "fields": result.fields,
        }

    def record(self, work: Work) -> dict[str, Any]:
        result = work.payload or {}
        fields = result["fields"]
        if not self.engine.reads_ocr:  # find the service's values in this OCR record
            rows = rows_of(work.source)
            fields = {
                name: {"type": f["type"], **locate(f["value"], rows), "normalized": f["normalized"]}
                for name, f in fields.items()
            }
        return {
            "format": KIE_FORMAT,
            "status": "ok",
            "image": image_info(work.image.id, work.image.relpath, work.sha, pages=work.pages),
            "engine": result["engine"],
            "fields": fields,
        }

    def record_name(self, work: Work) -> str:
        return work.image.id  # one KIE record per document


def kie_cache_key(sha: str, identity: dict[str, Any], ocr: dict[str, Any] | None) -> str:
    """A KIE result depends on the extractor and on what it reads: the OCR record's lines,
    or (for an extractor that reads the image itself) only the image."""
    depends_on: dict[str, Any] = {"kie": identity}
    if ocr is not None:
        depends_on["ocr"] = digest(ocr["lines"])
    return cache_key("kie", sha, depends_on)


STAGE_CLASSES: dict[str, type[Stage]] = {"ocr": OcrStage, "kie": KieStage, "layout": LayoutStage}


def record_identity(stage: str, engine: Engine, limits: ImageLimits) -> dict[str, Any]:
    """Everything a stage's records depend on besides their input: the engine's identity and,
    for stages that read the image, the limits it is read with."""
    identity: dict[str, Any] = {"engine": engine.identity()}
    if issubclass(STAGE_CLASSES[stage], PageStage):
        identity["images"] = {
            "max_side": limits.max_side,
            "max_pixels": limits.max_pixels,
            "max_bytes": limits.max_bytes,
            "pdf_dpi": limits.pdf_dpi,
        }
    return identity


def make_stage(
    name: str, engine: Engine, cache: ContentCache, results: Results, limits: ImageLimits
) -> Stage:
    return STAGE_CLASSES[name](engine, cache, results, limits)


# -- the runner --------------------------------------------------------------------------------


def run_shard(stage: Stage, images: Sequence[InputImage]) -> list[dict[str, Any]]:
    """Write one record per page (KIE: per document); return the shard's manifest entries, in
    image order. Images are read as their batch comes up, not all at once."""
    works: list[Work] = []

    def pages() -> Iterator[Work]:
        for image in images:
            expanded = _expanded(stage, Work(image))
            works.extend(expanded)
            yield from expanded

    size = max(1, stage.engine.batch_size)
    _for_each(
        batched(pages(), size),
        lambda batch: _run_batch(stage, list(batch)),
        stage.engine.concurrency,
    )
    return [_entry(stage, work) for work in works]


def batched(items: Iterable[Work], size: int) -> Iterator[list[Work]]:
    """Lists of ``size`` items (the last may be shorter), taken lazily."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _expanded(stage: Stage, work: Work) -> list[Work]:
    """The image's works, or the image itself carrying the error that stopped it."""
    found: list[Work] = []
    _guarded(stage, work, lambda: found.extend(stage.expand(work)))
    return found if work.error is None else [work]


def _for_each(items: Iterable[Any], one: Callable[[Any], None], workers: int) -> None:
    """Run ``one`` over the items, ``workers`` at once, taking items as workers free up. A
    fatal error stops the rest and is raised."""
    if workers <= 1:
        for item in items:
            one(item)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        running: set[Future[None]] = set()
        try:
            for item in items:
                if len(running) >= 2 * workers:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()  # re-raises a fatal error
                running.add(pool.submit(one, item))
            for future in as_completed(running):
                future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _run_batch(stage: Stage, batch: list[Work]) -> None:
    for work in batch:
        if work.error is None:  # (an image that could not even be read has its error)
            _guarded(stage, work, lambda w=work: _from_cache(stage, w))
    _compute(stage, [w for w in batch if w.error is None and w.payload is None])
    for work in batch:
        _finish(stage, work)


def _guarded(stage: Stage, work: Work, step: Callable[[], None], timed: bool = True) -> None:
    """Run one image's step; a non-fatal failure becomes the image's error."""
    started = perf_counter()
    try:
        step()
    except FatalError:
        raise
    except OcrkieError as exc:
        work.error = exc
    except Exception as exc:  # an engine bug on one odd image must not sink the shard
        log.exception("%s failed on %s", stage.name, work.image.relpath)
        work.error = exc
    finally:
        if timed:
            work.seconds += perf_counter() - started


def _from_cache(stage: Stage, work: Work) -> None:
    stage.look_up(work)
    work.payload = stage.cache.get(work.key)
    work.cached = work.payload is not None


def _compute(stage: Stage, todo: list[Work]) -> None:
    """Ask the engine for the works' results: the batch at once, or image by image when the
    batch call fails (so that the failure lands on the image that caused it)."""
    ready: list[tuple[Work, Any]] = []
    for work in todo:
        _guarded(stage, work, lambda w=work: ready.append((w, stage.engine_input(w))))
    if not ready:
        return
    if len(ready) > 1:
        try:
            _call(stage, ready)
            return
        except FatalError:
            raise
        except Exception:
            log.warning("%s batch of %d failed: retrying one by one", stage.name, len(ready))
    for work, item in ready:
        _guarded(stage, work, lambda w=work, i=item: _call(stage, [(w, i)]), timed=False)


def _call(stage: Stage, ready: list[tuple[Work, Any]]) -> None:
    """One engine call; each work is charged its share of the time."""
    started = perf_counter()
    results = stage.call([item for _, item in ready])
    if len(results) != len(ready):
        raise RuntimeError(f"the engine answered {len(results)} results for {len(ready)} inputs")
    share = (perf_counter() - started) / len(ready)
    for (work, item), result in zip(ready, results, strict=True):
        work.payload = stage.payload(work, item, result, share)
        work.seconds += share
        stage.cache.put(work.key, work.payload)


def _finish(stage: Stage, work: Work) -> None:
    if work.error is None:
        _guarded(stage, work, lambda: _ok_record(stage, work))
    if work.error is not None:
        work.record = _error_record(stage, work)
    work.record["timing"] = {
        "seconds": round(work.seconds, 4),
        "cached": work.cached,
        "finished_at": now_iso(),
    }
    stage.results.write_record(stage.name, stage.record_name(work), work.record)
    work.source = None  # the file's bytes: the shard's other images need the memory
    cached = " (cached)" if work.cached else ""
    log.info(
        "%s %s %s %.2fs%s",
        stage.name,
        work.record["status"],
        work.image.relpath,
        work.seconds,
        cached,
    )


def _ok_record(stage: Stage, work: Work) -> None:
    payload = work.payload or {}
    record = stage.record(work)
    if payload.get("billing"):
        record["billing"] = payload["billing"]
    if payload.get("raw") is not None:
        stage.results.write_raw(stage.name, stage.record_name(work), payload["raw"])
    work.record = record


def _error_record(stage: Stage, work: Work) -> dict[str, Any]:
    error = work.error or RuntimeError("unknown")
    failed_stage = "ocr" if isinstance(error, UpstreamFailure) else stage.name
    return {
        "format": stage.format,
        "status": "error",
        "image": image_info(work.image.id, work.image.relpath, work.sha, **_page_of(work)),
        "error": {**error_info(error), "stage": failed_stage},
    }


def _page_of(work: Work) -> dict[str, int]:
    return {"page": work.page, "pages": work.pages}


def _entry(stage: Stage, work: Work) -> dict[str, Any]:
    """What the shard's manifest keeps of a record: enough for the summary and the tables."""
    record = work.record
    entry = {
        "id": work.image.id,
        "path": work.image.relpath,
        **({"page": work.page, "pages": work.pages} if work.pages > 1 else {}),
        "status": record["status"],
        "sha256": work.sha,
        **record["timing"],
    }
    for optional in ("billing", "error"):
        if optional in record:
            entry[optional] = record[optional]
    if record["status"] == "ok":
        entry.update(stage.entry_extras(record))
    return entry
