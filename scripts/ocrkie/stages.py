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
from functools import partial
from itertools import chain, islice
from pathlib import PurePosixPath
from time import perf_counter
from typing import Any

from .breaker import Breaker
from .cache import ContentCache, cache_key
from .engines import Document, Engine, Extraction, Extractor, LayoutParser, OcrEngine
from .errors import FatalError, OcrkieError, TransientError, UnreadableImage, UpstreamFailure
from .evidence import locate, merge_pages, rows_of
from .formats import (
    KIE_FORMAT,
    LAYOUT_FORMAT,
    OCR_FORMAT,
    digest,
    error_info,
    image_info,
    now_iso,
)
from .images import DocumentFacts, ImageLimits, PageDecoder, PageImage, sha256_of
from .inputs import InputImage
from .page import confidence_bins, lines_record
from .progress import ShardProgress
from .results import Results, record_name
from .storage import read_input

log = logging.getLogger(__name__)
__all__ = ["ImageLimits", "make_stage", "record_identity", "run_shard"]


@dataclass
class Work:
    """One page (for KIE: one document) on its way through a stage."""

    image: InputImage
    page: int = 1
    pages: int = 1
    sha: str | None = None
    key: str = ""
    source: Any = None  # what was read: the file's bytes, or for KIE its OCR records
    facts: DocumentFacts | None = None  # what the file is (stages that read images)
    read: tuple[int, ...] = ()  # KIE: the pages whose OCR it reads
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

    def __init__(
        self,
        engine: Engine,
        cache: ContentCache,
        results: Results,
        limits: ImageLimits,
        decoder: Any = None,
        breaker: Breaker | None = None,
    ):
        self.engine = engine
        self.cache = cache
        self.results = results
        self.limits = limits
        self.identity = engine.identity()
        # where files are decoded: a child process the job can stop (worker.GuardedDecoder),
        # or this one
        self.decoder = decoder if decoder is not None else PageDecoder()
        self.breaker = breaker if breaker is not None else Breaker(self.name, results, 0)
        self.progress: ShardProgress | None = None  # the job's count of images done

    def result_identity(self, pages: int) -> dict[str, Any]:
        return result_identity(self.engine, pages, self.identity)

    def expand(self, work: Work) -> list[Work]:
        """The works of one image: one per page for stages that read pages."""
        return [work]

    def retire_other_pages(self, image: InputImage, pages: int) -> None:  # noqa: B027
        """Remove the records of pages the image no longer has (stages with page records)."""

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

    def forecast(self, work: Work) -> tuple[int, int, int]:
        """What the image would cost a paid engine: the pages and requests it would send,
        and the pages the cache holds (nothing is computed; an image that cannot be read
        sends nothing)."""
        try:
            pages = self.expand(work)
            for page in pages:
                self.look_up(page)
        except OcrkieError:
            return 0, 0, 0
        cached = sum(self.cache.get(page.key) is not None for page in pages)
        todo = len(pages) - cached
        requests = self.engine.requests_for(todo, pages[0].pages) if todo else 0
        return todo, requests, cached


class PageStage(Stage):
    """Stages that read the image itself, page by page (OCR, layout)."""

    def expand(self, work: Work) -> list[Work]:
        work.sha, work.source = read_image(work.image, self.limits)
        work.facts = self.decoder.describe(work.source, work.sha, self.limits)
        pages, facts = work.facts.pages, work.facts
        return [
            Work(work.image, page=n, pages=pages, sha=work.sha, source=work.source, facts=facts)
            for n in range(1, pages + 1)
        ]

    def retire_other_pages(self, image: InputImage, pages: int) -> None:
        for folder in (self.name, f"raw/{self.name}"):
            self.results.retire_other_pages(folder, image.id, pages, ".json")

    def look_up(self, work: Work) -> None:
        work.key = cache_key(self.name, work.sha or "", self.cache_identity(work))

    def cache_identity(self, work: Work) -> dict[str, Any]:
        """The engine's identity, the page, and where the page is downscaled the size it is
        read at (an image under ``max_side`` keeps its cached result whatever the limit);
        for a PDF, the resolution it is rendered at."""
        identity = dict(self.result_identity(work.pages))
        if work.pages > 1:
            identity["page"] = work.page
        facts = work.facts
        assert facts is not None
        if facts.format == "PDF":
            identity["pdf_dpi"] = self.limits.pdf_dpi
        elif facts.longest_side is not None and facts.longest_side > self.limits.max_side:
            identity["max_side"] = self.limits.max_side
        return identity

    def engine_input(self, work: Work) -> PageImage:
        page = self.decoder.page(work.source, work.sha, work.page, self.limits)
        page.name = PurePosixPath(work.image.relpath).name
        if self.engine.reads_files:
            page.document = work.source
        return page

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
            **lines_record(result.lines),
        }

    def entry_extras(self, record: dict[str, Any]) -> dict[str, Any]:
        """The line count and how many lines fall in each bin of confidence
        (``page.CONFIDENCE_EDGES``), for the report."""
        confidences = [float(line["confidence"]) for line in record["lines"]]
        return {"lines": len(confidences), "confidence_bins": confidence_bins(confidences)}

    def record(self, work: Work) -> dict[str, Any]:
        result = work.payload or {}
        image = image_info(
            work.image.id, work.image.relpath, work.sha, **_page_of(work), **result["page"]
        )
        if work.facts is not None and work.facts.dpi:
            image["dpi"] = list(work.facts.dpi)
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
        work.read = tuple(page["image"].get("page", 1) for page in read)
        work.sha, work.source = ocr["image"]["sha256"], ocr
        identity = self.result_identity(work.pages)
        if self.engine.reads_ocr:
            work.key = kie_cache_key(work.sha, identity, ocr)
        else:  # it reads the pages themselves: which ones, when some could not be read
            some = work.read if len(work.read) < work.pages else None
            work.key = kie_cache_key(work.sha, identity, None, some)

    def engine_input(self, work: Work) -> Document:
        if not self.engine.reads_ocr:
            return Document(work.source, work.image.path, self.pages(work))
        if self.engine.paid_reader() is None:
            return Document(work.source, work.image.path)
        return Document(  # a cascade: the pages and the cache of its service, when asked
            work.source,
            work.image.path,
            load_pages=partial(self.pages, work),
            recall=partial(self.recall, work),
            keep=partial(self.keep, work),
        )

    def pages(self, work: Work) -> list[PageImage]:
        """The pages of the document whose OCR was read, decoded, carrying the file."""
        sha, data = read_image(work.image, self.limits)
        if sha != work.sha:
            raise UnreadableImage("the file changed since its OCR was read: run OCR again")
        pages = []
        for number in work.read:
            page = self.decoder.page(data, sha, number, self.limits)
            page.name, page.document = PurePosixPath(work.image.relpath).name, data
            pages.append(page)
        return pages

    def image_key(self, work: Work, engine: Extractor) -> str:
        """The cache key of the result of ``engine``, which reads the image itself."""
        some = work.read if len(work.read) < work.pages else None
        return kie_cache_key(work.sha or "", result_identity(engine, work.pages), None, some)

    def recall(self, work: Work, engine: Extractor) -> Extraction | None:
        """``engine``'s result of the document, where the cache holds it."""
        payload = self.cache.get(self.image_key(work, engine))
        if payload is None:
            return None
        identity = engine.identity()
        facts = {k: v for k, v in payload["engine"].items() if k not in identity}
        return Extraction(payload["fields"], payload.get("raw"), payload.get("billing"), facts)

    def keep(self, work: Work, engine: Extractor, result: Extraction) -> None:
        """Keep ``engine``'s result of the document as that engine's own run would."""
        payload = {
            "engine": {**engine.identity(), **result.facts},
            "billing": result.billing,
            "raw": result.raw,
            "fields": result.fields,
        }
        self.cache.put(self.image_key(work, engine), payload)

    def entry_extras(self, record: dict[str, Any]) -> dict[str, Any]:
        """The values, for the batch tables (kie.csv, kie.jsonl): no need to read records."""
        keep = ("value", "normalized", "confidence")
        fields = {n: {k: f.get(k) for k in keep} for n, f in record["fields"].items()}
        sent = record["engine"].get("sent")  # a cascade: whether it went to the service
        return {"fields": fields, **({"sent": sent} if sent is not None else {})}

    def forecast(self, work: Work) -> tuple[int, int, int]:
        """For a cascade, what its service would be sent at most: every document."""
        engine = self.engine.paid_reader() or self.engine
        if engine.reads_ocr:
            return super().forecast(work)
        try:  # the key needs no OCR record, which may not exist yet
            sha, data = read_image(work.image, self.limits)
            pages = self.decoder.describe(data, sha, self.limits).pages
        except OcrkieError:
            return 0, 0, 0
        # (as for a document all of whose pages are read)
        key = kie_cache_key(sha, result_identity(engine, pages), None)
        if self.cache.get(key) is not None:
            return 0, 0, pages
        return pages, engine.requests_for(pages, pages), 0

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


def result_identity(
    engine: Engine, pages: int, identity: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The engine's identity as far as a document of ``pages`` pages is concerned: keys that
    change only how documents of several pages are read leave a single page's cached results
    valid."""
    identity = engine.identity() if identity is None else identity
    if pages > 1:
        return identity
    return {k: v for k, v in identity.items() if k not in engine.document_keys}


def kie_cache_key(
    sha: str,
    identity: dict[str, Any],
    ocr: dict[str, Any] | None,
    pages: tuple[int, ...] | None = None,
) -> str:
    """A KIE result depends on the extractor and on what it reads: the OCR record's lines,
    or (for an extractor that reads the image itself) the image, and ``pages``, the pages of
    it that it reads when not all of them could be read."""
    depends_on: dict[str, Any] = {"kie": identity}
    if ocr is not None:
        depends_on["ocr"] = digest(ocr["lines"])
    if pages is not None:
        depends_on["pages"] = list(pages)
    return cache_key("kie", sha, depends_on)


def read_image(image: InputImage, limits: ImageLimits) -> tuple[str, bytes]:
    """The file's sha256 and bytes; an ``UnreadableImage`` says why they cannot be had."""
    try:
        data = read_input(image.path, limits.max_bytes)
    except OSError as exc:
        raise UnreadableImage(f"cannot read the file: {exc.strerror or exc}") from exc
    return sha256_of(data), data


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
            "max_pages": limits.max_pages,
        }
    return identity


def make_stage(name: str, *parts: Any, **options: Any) -> Stage:
    """The stage called ``name``, built from what ``Stage`` is built from."""
    return STAGE_CLASSES[name](*parts, **options)


# -- the runner --------------------------------------------------------------------------------


def run_shard(stage: Stage, images: Sequence[InputImage]) -> list[dict[str, Any]]:
    """Write one record per page (KIE: per document); return the shard's manifest entries, in
    image order. Images are read as their batch comes up, not all at once. An engine that
    reads documents whole (a service that takes many pages a request) gets each image's
    pages in one batch; the others get batches of their ``batch_size`` pages."""
    works: list[Work] = []

    def documents() -> Iterator[list[Work]]:
        for image in images:
            expanded = _expanded(stage, Work(image))
            works.extend(expanded)
            yield expanded

    if stage.engine.reads_documents:
        batches: Iterable[list[Work]] = documents()
    else:
        batches = batched(chain.from_iterable(documents()), max(1, stage.engine.batch_size))
    _for_each(batches, lambda batch: _run_batch(stage, batch), stage.engine.concurrency)
    return [_entry(stage, work) for work in works]


def batched(items: Iterable[Work], size: int) -> Iterator[list[Work]]:
    """Lists of ``size`` items (the last may be shorter), taken lazily."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _expanded(stage: Stage, work: Work) -> list[Work]:
    """The image's works, or the image itself carrying the error that stopped it; the
    records of pages it no longer has are removed first."""
    found: list[Work] = []
    _guarded(stage, work, lambda: found.extend(stage.expand(work)))
    works = found if work.error is None else [work]
    try:
        stage.retire_other_pages(work.image, len(works))
    except Exception as exc:  # the records are still written; a reader may find old pages
        log.warning(
            "%s: old page records of %s not removed: %s", stage.name, work.image.relpath, exc
        )
    return works


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
    """Ask the engine for the works' results: the batch at once, or page by page when the
    batch call fails on something other than the service (so that the failure lands on the
    page that caused it)."""
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
        _call(stage, [(work, item)])


def _call(stage: Stage, ready: list[tuple[Work, Any]]) -> None:
    """One engine call; each work is charged its share of the time. A transient fault (the
    service, after its retries) is every work's error and counts towards the breaker; so is
    one the engine answers in place of some pages' results (a service read in several
    requests, one of which failed). A fresh result is kept in the cache."""
    stage.breaker.check()  # another job found the service down: send nothing
    started = perf_counter()
    try:
        results = stage.call([item for _, item in ready])
        if len(results) != len(ready):
            raise RuntimeError(
                f"the engine answered {len(results)} results for {len(ready)} inputs"
            )
    except TransientError as exc:
        results = [exc] * len(ready)
    except FatalError:
        raise
    except Exception as exc:
        if len(ready) > 1:
            raise  # the batch is retried page by page
        if not isinstance(exc, OcrkieError):
            log.exception("%s failed on %s", stage.name, ready[0][0].image.relpath)
        results = [exc]
    share = (perf_counter() - started) / len(ready)
    for (work, item), result in zip(ready, results, strict=True):
        work.seconds += share
        if isinstance(result, BaseException):
            work.error = result
        else:
            keep = partial(_keep, stage, work, item, result, share)
            _guarded(stage, work, keep, timed=False)
    _tell_breaker(stage.breaker, results)


def _keep(stage: Stage, work: Work, item: Any, result: Any, share: float) -> None:
    work.payload = stage.payload(work, item, result, share)
    stage.cache.put(work.key, work.payload)  # best effort: the result is kept regardless


def _tell_breaker(breaker: Breaker, results: list[Any]) -> None:
    """An answer means the service is up; a call with nothing but failures, a transient one
    among them, counts towards taking it to be down (and raises once it is)."""
    if not all(isinstance(r, BaseException) for r in results):
        breaker.succeeded()
    elif transient := next((r for r in results if isinstance(r, TransientError)), None):
        breaker.failed(transient)


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
    _tell(stage, work)


def _tell(stage: Stage, work: Work) -> None:
    """A failed image is a warning with its class and message; an ok one a debug line
    (the job's log file keeps those); the shard's progress counts it."""
    where = work.image.relpath + (f" page {work.page}" if work.pages > 1 else "")
    error = work.record.get("error")
    if error and error["stage"] != stage.name:  # said where it failed
        log.debug(
            "%s skipped: %s: its %s failed (%s)", stage.name, where, error["stage"], error["class"]
        )
    elif error:
        log.warning("%s failed: %s: %s: %s", stage.name, where, error["class"], error["message"])
    else:
        cached = " (cached)" if work.cached else ""
        log.debug("%s ok %s %.2fs%s", stage.name, where, work.seconds, cached)
    if stage.progress is not None:
        failed = work.record["status"] == "error"
        stage.progress.page_done(work.image.id, work.pages, failed, work.cached)


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
    info = {**error_info(error), "stage": failed_stage}
    if is_transient(error):
        info["retry"] = True  # the next run tries it again
    return {
        "format": stage.format,
        "status": "error",
        "image": image_info(work.image.id, work.image.relpath, work.sha, **_page_of(work)),
        "error": info,
    }


def is_transient(error: BaseException) -> bool:
    """A fault of the service, not of the image (passed on from OCR to KIE too)."""
    if isinstance(error, UpstreamFailure):
        return bool(error.error.get("retry"))
    return isinstance(error, TransientError)


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
