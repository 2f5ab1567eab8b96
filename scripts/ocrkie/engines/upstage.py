"""Upstage Document AI as a backend: OCR, Information Extraction and Document Parse.

Each adapter turns the service's answer into the canonical results and keeps the answer
itself (``raw``), so results can be re-derived later without paying again.

What goes up (``uploads``): a document of several pages in as few requests as the service
allows (OCR reads up to 30 pages a request, Document Parse and Information Extraction 100),
the original file whenever it can be, and every answer is split back into its pages, each
page billed once. A single page goes as the original file when the service takes its format
and normalisation left its geometry alone; else the normalised page goes as PNG (upright,
downscaled). Word boxes are mapped from the page size the service reports to the record's
frame (the page upright at its own size; for a PDF, rendered at ``images.pdf_dpi``).

The client (and with it the key) is created on the first request, so an engine built only
for its identity or resources (when the workflow is parsed) needs no key.
"""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, ClassVar, Self

from ..errors import ImageError, RejectedByService, TransientError, UnexpectedAnswer
from ..fields import FieldSchema, load_field_schema
from ..images import PageImage
from ..normalize import normalize
from ..page import Line, Word, scaled, upright_box
from ..upstage import Answer, Listener, UpstageClient, extracted_fields
from . import (
    Document,
    Engine,
    Extraction,
    Extractor,
    Layout,
    LayoutParser,
    OcrEngine,
    Recognition,
)

# 2: each page of a document of several pages is read from its own part of the answer (1 sent
# the whole file once a page and read its first page every time). Single pages read alike.
REVISION = 2
# Formats the service takes as they are (notes: JPEG, PNG, BMP, TIFF, PDF, HEIC, ...).
ACCEPTED = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "TIFF": ".tif", "PDF": ".pdf"}
OCR_PAGES = 30  # pages the OCR service reads in one request
PARSE_PAGES = 100  # Document Parse (sync) and Information Extraction


@dataclass
class Upload:
    """One request's document and the pages it holds, in order."""

    data: bytes
    filename: str
    pages: list[PageImage]
    sizes: list[tuple[int, int] | None]  # each page as sent; None: the service renders it


def uploads(pages: Sequence[PageImage], max_pages: int) -> list[Upload]:
    """How ``pages`` (of one file, carrying its bytes) go to the service: the fewest requests
    of at most ``max_pages`` pages, the original file where it can be."""
    pages = sorted(pages, key=lambda page: page.number)
    if pages[0].count == 1:
        return [_single(pages[0])]
    return [_several(group) for group in _chunks(pages, max_pages)]


def request_count(pages: int, file_pages: int, max_pages: int) -> int:
    """Requests ``uploads`` makes of ``pages`` pages of a file of ``file_pages`` pages."""
    return 1 if file_pages == 1 else -(-pages // max_pages)


def _single(page: PageImage) -> Upload:
    if page.format in ACCEPTED and not page.reshaped:
        size = None if page.format == "PDF" else (page.width, page.height)
        return Upload(_file(page), _named(page, page.format), [page], [size])
    buffer = io.BytesIO()
    page.image.save(buffer, "PNG")
    return Upload(buffer.getvalue(), _named(page, "PNG"), [page], [page.image.size])


def _several(group: list[PageImage]) -> Upload:
    first = group[0]
    whole = [page.number for page in group] == list(range(1, first.count + 1))
    if first.format == "PDF":
        data = _file(first) if whole else _pdf_pages(_file(first), [p.number for p in group])
        return Upload(data, _named(first, "PDF"), group, [None] * len(group))
    if first.format == "TIFF" and whole and not any(page.reshaped for page in group):
        sizes: list[tuple[int, int] | None] = [(p.width, p.height) for p in group]
        return Upload(_file(first), _named(first, "TIFF"), group, sizes)
    buffer = io.BytesIO()  # the normalised pages, losslessly, one frame each
    images = [page.image for page in group]
    images[0].save(
        buffer, "TIFF", save_all=True, append_images=images[1:], compression="tiff_deflate"
    )
    return Upload(buffer.getvalue(), _named(first, "TIFF"), group, [i.size for i in images])


def _chunks(pages: list[PageImage], size: int) -> list[list[PageImage]]:
    return [pages[i : i + size] for i in range(0, len(pages), size)]


def _file(page: PageImage) -> bytes:
    if page.document is None:
        raise RuntimeError("a page to upload carries no file")  # the stage sets it: a bug
    return page.document


def _named(page: PageImage, file_format: str) -> str:
    return f"{PurePosixPath(page.name or 'page').stem}{ACCEPTED[file_format]}"


def _pdf_pages(data: bytes, numbers: list[int]) -> bytes:
    """A PDF of some pages of another, copied as they are (no rendering)."""
    import pypdfium2

    target = pypdfium2.PdfDocument.new()
    target.import_pages(pypdfium2.PdfDocument(data), [n - 1 for n in numbers])
    buffer = io.BytesIO()
    target.save(buffer)
    return buffer.getvalue()


def _mime(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _shares(total: int, parts: int) -> list[int]:
    """``total`` billed pages over ``parts`` pages, summing to it exactly."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _billing(endpoint: str, answer: Answer, share: int, pages: int) -> dict[str, Any]:
    return {
        "endpoint": endpoint,
        "billed_pages": share,
        "request": answer.request,  # shared by the pages answered together
        "request_pages": pages,
    }


_checked: set[str] = set()  # services whose key this process has checked


ANSWER_SECONDS = 3.0  # a receipt's answer, typically (sent to answered)


def rate_limit_dir(settings: dict[str, Any]) -> str | None:
    """``upstage.rate_limit_dir`` made absolute (a relative one is in the working directory,
    which every job of a cluster run shares); None: this machine's own (the default)."""
    folder = settings.get("rate_limit_dir") or ""
    return os.path.abspath(os.path.expanduser(folder)) if folder else None


class UpstageEngine(Engine):
    """What the three Upstage adapters share: the client, its usage, and the job's slot."""

    device = "upstage"
    paid = True
    reads_files = True
    document_keys: ClassVar[tuple[str, ...]] = ("revision",)

    def __init__(self, settings: dict[str, Any]):
        self.settings = settings
        self.concurrency = settings["concurrency"]
        self._client: UpstageClient | None = None
        self._listener: Listener | None = None
        self._halted: Callable[[], bool] = lambda: False
        self._lock = threading.Lock()

    @property
    def client(self) -> UpstageClient:
        with self._lock:
            if self._client is None:
                from ..secrets import resolve_upstage_key  # boto3 only where a key is needed

                self._client = UpstageClient(
                    resolve_upstage_key(os.environ),
                    base_url=self.settings["base_url"],
                    timeout=(10.0, float(self.settings["timeout_s"])),
                    max_attempts=self.settings["max_attempts"],
                    rate_limits=self.settings["rate_limits"],
                    rate_limit_dir=rate_limit_dir(self.settings),
                )
                self._client.listener = self._listener
                self._client.halted = self._halted
            return self._client

    def estimate(self, images: int, jobs: int) -> tuple[float, str] | None:
        """The rate limit (shared by the jobs), or where there is none the wait for answers
        (``ANSWER_SECONDS`` a request, ``concurrency`` at once per job)."""
        endpoint = getattr(self, "endpoint", "information-extract")
        rate = self.settings["rate_limits"].get(endpoint, 0)
        waiting = images * ANSWER_SECONDS / (self.concurrency * max(1, jobs))
        if rate and images / rate >= waiting:
            return images / rate, f"upstage.rate_limits.{endpoint}: {rate:g} requests/s"
        return (
            waiting,
            f"typically {ANSWER_SECONDS:g} s an answer, {self.concurrency} at once a job",
        )

    def observe(self, listener: Listener) -> None:
        self._listener = listener
        if self._client is not None:
            self._client.listener = listener

    def stop_retrying_when(self, halted: Callable[[], bool]) -> None:
        self._halted = halted
        if self._client is not None:
            self._client.halted = halted

    def threads(self, configured: int) -> int:
        return 0  # the job waits on the network: it takes an `upstage_api` slot, not a core

    def resources(self, remote: bool) -> dict[str, int]:
        return {"upstage_api": 1}

    def preflight(self) -> None:
        """A free GET /models: a missing or refused key stops the run (once per service)."""
        if self.settings["base_url"] not in _checked:
            self.client.check_key()
            _checked.add(self.settings["base_url"])

    def unready(self) -> list[str]:
        from ..secrets import NO_KEY, has_upstage_key

        return [] if has_upstage_key(os.environ) else [f"{NO_KEY}; a run would stop here"]

    def usage(self) -> dict[str, dict[str, int]]:
        if self._client is None:
            return {}
        return {e: c for e, c in self._client.stats.items() if c["requests"]}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class PageReader(UpstageEngine):
    """OCR and Document Parse: an image's pages in one batch, in as few requests as can be."""

    reads_documents = True
    endpoint: ClassVar[str]
    max_pages: ClassVar[int]

    def read_many(self, pages: Sequence[PageImage]) -> list[Any]:
        """Each page's result, or the error of the request that held it: what one request
        was answered is kept whatever becomes of the others. A document the service refuses
        whole (413, too large) is sent again page by page."""
        read: dict[int, Any] = {}
        for upload in uploads(pages, self.max_pages):
            try:
                read.update(self.read(upload))
            except RejectedByService as exc:
                if len(upload.pages) == 1:
                    read[upload.pages[0].number] = exc
                    continue
                for page in upload.pages:
                    read.update(self.read_or_fail(_several([page])))
            except (TransientError, ImageError) as exc:
                read.update(dict.fromkeys((page.number for page in upload.pages), exc))
        return [read[page.number] for page in pages]

    def read_or_fail(self, upload: Upload) -> dict[int, Any]:
        try:
            return self.read(upload)
        except (TransientError, ImageError) as exc:
            return dict.fromkeys((page.number for page in upload.pages), exc)

    def read(self, upload: Upload) -> dict[int, Any]:
        """One request: its pages' results, by page number."""
        answer = self.send(upload)
        parts = self.split(answer, upload)
        if len(parts) != len(upload.pages):
            raise UnexpectedAnswer(
                f"Upstage {self.endpoint} answered {len(parts)} pages for the "
                f"{len(upload.pages)} sent (billed, not used)"
            )
        shares = _shares(answer.billed_pages, len(parts))
        read = {}
        for index, page in enumerate(upload.pages):
            billing = _billing(self.endpoint, answer, shares[index], len(parts))
            read[page.number] = self.result(answer, parts, index, upload, billing)
        return read

    def requests_for(self, pages: int, file_pages: int) -> int:
        return request_count(pages, file_pages, self.max_pages)

    def send(self, upload: Upload) -> Answer:
        raise NotImplementedError

    def split(self, answer: Answer, upload: Upload) -> list[Any]:
        """The answer's part for each page sent, in order."""
        raise NotImplementedError

    def result(
        self, answer: Answer, parts: list[Any], index: int, upload: Upload, billing: dict
    ) -> Any:
        raise NotImplementedError


# -- OCR ---------------------------------------------------------------------------------------


def lines_from_ocr(page: dict[str, Any], fx: float = 1.0, fy: float = 1.0) -> list[Line]:
    """Upstage OCR gives a page's words and text; lines are the text's lines, whose words are
    the next words in order. Words the text does not account for become lines of their own.
    ``fx``, ``fy``: record pixels per pixel of the page as the service measured it."""
    words = [
        Word(
            w.get("text", ""),
            float(w.get("confidence", 0.0)),
            scaled(_vertices(w), fx, fy),
        )
        for w in page.get("words", [])
        if len(w.get("boundingBox", {}).get("vertices", [])) == 4
    ]
    lines: list[Line] = []
    cursor = 0
    for text in page.get("text", "").split("\n"):
        tokens = text.split()
        chunk = words[cursor : cursor + len(tokens)]
        if not tokens or [w.text for w in chunk] != tokens:
            continue
        cursor += len(tokens)
        confidence = sum(w.confidence for w in chunk) / len(chunk)
        box = upright_box([point for word in chunk for point in word.polygon])
        lines.append(Line(" ".join(tokens), confidence, box, chunk))
    used = {id(w) for line in lines for w in line.words}
    lines += [Line(w.text, w.confidence, w.polygon, [w]) for w in words if id(w) not in used]
    return lines


def _vertices(word: dict[str, Any]) -> list[tuple[float, float]]:
    vertices = word.get("boundingBox", {}).get("vertices", [])
    return [(v.get("x", 0), v.get("y", 0)) for v in vertices]


def _page_answer(body: dict[str, Any], index: int) -> dict[str, Any]:
    """The answer as if the service had been sent this page alone (what a page's raw record
    keeps), with where it came from."""
    page = body["pages"][index]
    meta = (body.get("metadata") or {}).get("pages") or []
    return {
        **{k: v for k, v in body.items() if k not in ("pages", "metadata", "text")},
        "metadata": {"pages": meta[index : index + 1]},
        "pages": [page],
        "text": page.get("text", ""),
        "ocrkie_request": {"page": index + 1, "pages": len(body["pages"])},
    }


def _service_size(body: dict[str, Any], index: int) -> tuple[float, float] | None:
    """The page's size as the service measured it (``pages[]``, else ``metadata.pages[]``)."""
    meta = (body.get("metadata") or {}).get("pages") or []
    for source in (body["pages"][index], meta[index] if index < len(meta) else {}):
        width, height = source.get("width"), source.get("height")
        if isinstance(width, int | float) and isinstance(height, int | float) and width and height:
            return float(width), float(height)
    return None


class UpstageOcrEngine(PageReader, OcrEngine):
    endpoint, max_pages = "ocr", OCR_PAGES

    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        return cls(config["upstage"])

    def identity(self) -> dict[str, Any]:
        return {"name": "upstage-ocr", "model": self.settings["ocr_model"], "revision": REVISION}

    def recognize(self, page: PageImage) -> Recognition:
        return self.recognize_many([page])[0]

    def recognize_many(self, pages: Sequence[PageImage]) -> list[Recognition]:
        return self.read_many(pages)

    def send(self, upload: Upload) -> Answer:
        model = self.settings["ocr_model"]
        return self.client.ocr(upload.data, upload.filename, model, pages=len(upload.pages))

    def split(self, answer: Answer, upload: Upload) -> list[Any]:
        pages = answer.body.get("pages")
        return pages if isinstance(pages, list) else []

    def result(
        self, answer: Answer, parts: list[Any], index: int, upload: Upload, billing: dict
    ) -> Recognition:
        page = upload.pages[index]
        size = _service_size(answer.body, index) or upload.sizes[index]
        if size is None:
            raise UnexpectedAnswer("Upstage ocr answered without the page's size")
        fx, fy = page.width / size[0], page.height / size[1]
        facts = {"model_version": answer.body.get("modelVersion")}
        raw = _page_answer(answer.body, index)
        return Recognition(lines_from_ocr(parts[index], fx, fy), raw, billing, facts)


# -- Document Parse ----------------------------------------------------------------------------


class UpstageLayoutParser(PageReader, LayoutParser):
    """Document Parse: layout elements (category, content, box) as an extra per-page record."""

    endpoint, max_pages = "document-parse", PARSE_PAGES

    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        return cls(config["upstage"] | {"document_parse": config["document_parse"]})

    @property
    def options(self) -> dict[str, Any]:
        return {k: v for k, v in self.settings["document_parse"].items() if k != "enabled"}

    def identity(self) -> dict[str, Any]:
        return {"name": "upstage-document-parse", **self.options, "revision": REVISION}

    def parse(self, page: PageImage) -> Layout:
        return self.parse_many([page])[0]

    def parse_many(self, pages: Sequence[PageImage]) -> list[Layout]:
        return self.read_many(pages)

    def send(self, upload: Upload) -> Answer:
        options = {**self.options, "output_formats": tuple(self.options["output_formats"])}
        pages = len(upload.pages)
        return self.client.document_parse(upload.data, upload.filename, **options, pages=pages)

    def split(self, answer: Answer, upload: Upload) -> list[Any]:
        """Elements by the page they are on (``page`` counts the pages sent, from 1)."""
        parts: list[list[dict[str, Any]]] = [[] for _ in upload.pages]
        for element in answer.body.get("elements") or []:
            index = _int(element.get("page"), 1) - 1
            if not 0 <= index < len(parts):
                return []  # an element of a page not sent: the answer is not for these pages
            parts[index].append(element)
        return parts

    def result(
        self, answer: Answer, parts: list[Any], index: int, upload: Upload, billing: dict
    ) -> Layout:
        page = upload.pages[index]
        elements = [_element(element, page) for element in parts[index]]
        raw = {
            **{k: v for k, v in answer.body.items() if k != "elements"},
            "elements": parts[index],
            "ocrkie_request": {"page": index + 1, "pages": len(upload.pages)},
        }
        return Layout(elements, raw, billing, {"model_version": answer.body.get("model")})


def _element(element: dict[str, Any], page: PageImage) -> dict[str, Any]:
    """Relative coordinates (0-1 of the page) become record pixels as well."""
    relative = [[float(p["x"]), float(p["y"])] for p in element.get("coordinates") or []]
    content = element.get("content") or {}
    return {
        "id": element.get("id"),
        "page": page.number,
        "category": element.get("category"),
        "text": content.get("text", ""),
        "html": content.get("html", ""),
        "markdown": content.get("markdown", ""),
        "coordinates": relative,
        "polygon": [[x * page.width, y * page.height] for x, y in relative] or None,
    }


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# -- Information Extraction --------------------------------------------------------------------


class UpstageExtractor(UpstageEngine, Extractor):
    """Universal Information Extraction with the field schema as ``response_format``. The
    service reads the document itself (every page whose OCR was read, in one request); the
    stage finds each value in the OCR afterwards."""

    reads_ocr = False

    def __init__(self, settings: dict[str, Any], schema: FieldSchema):
        super().__init__(settings)
        self.schema = schema
        api_schema = json.dumps(schema.for_api(), sort_keys=True)
        self.schema_sha256 = hashlib.sha256(api_schema.encode()).hexdigest()

    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        return cls(config["upstage"], load_field_schema(config["kie_schema"]))

    def identity(self) -> dict[str, Any]:
        return {
            "name": "upstage-information-extract",
            "model": self.settings["kie_model"],
            "schema": self.schema_sha256,
            "revision": REVISION,
        }

    def requests_for(self, pages: int, file_pages: int) -> int:
        return 1  # a document a request

    def extract(self, document: Document) -> Extraction:
        pages = list(document.pages)
        if len(pages) > PARSE_PAGES:
            raise RejectedByService(
                f"a document of {len(pages)} pages: Information Extraction reads at most "
                f"{PARSE_PAGES} pages in one request"
            )
        (upload,) = uploads(pages, PARSE_PAGES)
        answer = self.client.extract(
            upload.data,
            _mime(upload.filename),
            self.schema.for_api(),
            model=self.settings["kie_model"],
            pages=len(pages),
        )
        values = extracted_fields(answer.body)
        fields = {}
        for spec in self.schema.fields:
            value = values.get(spec.name)
            value = None if value in (None, "") else str(value)
            fields[spec.name] = {
                "type": spec.type,
                "value": value,
                "normalized": normalize(spec.type, value, spec.date_order),
            }
        billing = _billing("information-extract", answer, answer.billed_pages, len(pages))
        return Extraction(fields, answer.body, billing, {"model_version": answer.body.get("model")})
