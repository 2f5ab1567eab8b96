"""Upstage Document AI as a backend: OCR, Information Extraction and Document Parse.

Each adapter turns the service's answer into the canonical results and keeps the answer
itself (``raw``), so results can be re-derived later without paying again. The image sent is
the original file unless normalisation changed its geometry (EXIF rotation, downscaling):
then the normalised page goes as PNG, so that the service sees the page upright and its pixel
coordinates map back through ``scale``.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from ..fields import FieldSchema, load_field_schema
from ..formats import Line, Word
from ..images import PageImage, decode_page
from ..normalize import normalize
from ..storage import read_input
from ..upstage import UpstageClient, extracted_fields
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

# What Information Extraction accepts as an image (notes: JPEG, PNG, BMP, TIFF, HEIC, ...).
IE_TYPES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
# Normalisation steps that change what the service would see (others it undoes itself).
_GEOMETRY_STEPS = ("exif-orientation", "downscaled")


def upload(page: PageImage) -> tuple[bytes, str]:
    """The bytes and file name to send for ``page``."""
    if not any(step.startswith(_GEOMETRY_STEPS) for step in page.steps):
        return page.data, page.name
    buffer = io.BytesIO()
    page.image.save(buffer, "PNG")
    return buffer.getvalue(), f"{Path(page.name).stem}.png"


_checked: set[str] = set()  # services whose key this process has checked


class UpstageEngine(Engine):
    """What the three Upstage adapters share: the client, its usage, and the job's slot."""

    device = "upstage"
    paid = True

    def __init__(self, settings: dict[str, Any]):
        self.settings = settings
        self.concurrency = settings["concurrency"]
        self._client: UpstageClient | None = None
        self._listener: Callable[[str, str], None] | None = None
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
                )
                self._client.listener = self._listener
            return self._client

    def observe(self, listener: Callable[[str, str], None]) -> None:
        self._listener = listener
        if self._client is not None:
            self._client.listener = listener

    def threads(self, configured: int) -> int:
        return 0  # the job waits on the network: it takes an `upstage_api` slot, not a core

    def resources(self, remote: bool) -> dict[str, int]:
        return {"upstage_api": 1}

    def preflight(self) -> None:
        """A free GET /models: a missing or refused key stops the run (once per service)."""
        if self.settings["base_url"] not in _checked:
            self.client.check_key()
            _checked.add(self.settings["base_url"])

    def usage(self) -> dict[str, dict[str, int]]:
        if self._client is None:
            return {}
        return {e: c for e, c in self._client.stats.items() if c["requests"]}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _polygon(vertices: list[dict[str, float]], factor: float) -> list[list[float]]:
    return [[float(v.get("x", 0)) * factor, float(v.get("y", 0)) * factor] for v in vertices]


def _box(words: list[Word]) -> list[list[float]]:
    xs = [p[0] for w in words for p in w.polygon]
    ys = [p[1] for w in words for p in w.polygon]
    return [[min(xs), min(ys)], [max(xs), min(ys)], [max(xs), max(ys)], [min(xs), max(ys)]]


def lines_from_ocr(raw: dict[str, Any], scale: float = 1.0) -> list[Line]:
    """Upstage OCR gives words and the page text; lines are the text's lines, whose words are
    the next words in order. Words the text does not account for become lines of their own."""
    factor = 1.0 / scale
    page = (raw.get("pages") or [{}])[0]
    words = [
        Word(
            w.get("text", ""),
            float(w.get("confidence", 0.0)),
            _polygon(w.get("boundingBox", {}).get("vertices", []), factor),
        )
        for w in page.get("words", [])
        if len(w.get("boundingBox", {}).get("vertices", [])) == 4
    ]
    lines: list[Line] = []
    cursor = 0
    for text in page.get("text", raw.get("text", "")).split("\n"):
        tokens = text.split()
        chunk = words[cursor : cursor + len(tokens)]
        if not tokens or [w.text for w in chunk] != tokens:
            continue
        cursor += len(tokens)
        confidence = sum(w.confidence for w in chunk) / len(chunk)
        lines.append(Line(" ".join(tokens), confidence, _box(chunk), chunk))
    used = {id(w) for line in lines for w in line.words}
    lines += [Line(w.text, w.confidence, w.polygon, [w]) for w in words if id(w) not in used]
    return lines


class UpstageOcrEngine(UpstageEngine, OcrEngine):
    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        return cls(config["upstage"])

    def identity(self) -> dict[str, Any]:
        return {"name": "upstage-ocr", "model": self.settings["ocr_model"]}

    def recognize(self, page: PageImage) -> Recognition:
        document, filename = upload(page)
        raw = self.client.ocr(document, filename, model=self.settings["ocr_model"])
        billing = {"endpoint": "ocr", "billed_pages": int(raw.get("numBilledPages", 1) or 1)}
        facts = {"model_version": raw.get("modelVersion")}
        return Recognition(lines_from_ocr(raw, page.scale), raw, billing, facts)


class UpstageExtractor(UpstageEngine, Extractor):
    """Universal Information Extraction with the field schema as ``response_format``. The
    service reads the image itself; the stage finds each value in the OCR afterwards."""

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
        }

    def extract(self, document: Document) -> Extraction:
        data, mime = _ie_document(document.image)
        raw = self.client.extract(
            data, mime, self.schema.for_api(), model=self.settings["kie_model"]
        )
        values = extracted_fields(raw)
        fields = {}
        for spec in self.schema.fields:
            value = values.get(spec.name)
            value = None if value in (None, "") else str(value)
            fields[spec.name] = {
                "type": spec.type,
                "value": value,
                "normalized": normalize(spec.type, value, spec.date_order),
            }
        billing = {"endpoint": "information-extract", "billed_pages": 1}
        return Extraction(fields, raw, billing, {"model_version": raw.get("model")})


def _ie_document(image: str) -> tuple[bytes, str]:
    data = read_input(image)
    if Path(image).suffix.lower() in IE_TYPES:
        return data, mimetypes.guess_type(image)[0] or "application/octet-stream"
    page = decode_page(data, max_pixels=200_000_000, max_side=10_000)
    buffer = io.BytesIO()
    page.image.save(buffer, "PNG")
    return buffer.getvalue(), "image/png"


class UpstageLayoutParser(UpstageEngine, LayoutParser):
    """Document Parse: layout elements (category, content, box) as an extra per-image record."""

    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        return cls(config["upstage"] | {"document_parse": config["document_parse"]})

    @property
    def options(self) -> dict[str, Any]:
        return {k: v for k, v in self.settings["document_parse"].items() if k != "enabled"}

    def identity(self) -> dict[str, Any]:
        return {"name": "upstage-document-parse", **self.options}

    def parse(self, page: PageImage) -> Layout:
        document, filename = upload(page)
        options = {**self.options, "output_formats": tuple(self.options["output_formats"])}
        raw = self.client.document_parse(document, filename, **options)
        elements = [_element(e, page) for e in raw.get("elements", [])]
        pages = int((raw.get("usage") or {}).get("pages", 1) or 1)
        billing = {"endpoint": "document-parse", "billed_pages": pages}
        return Layout(elements, raw, billing, {"model_version": raw.get("model")})


def _element(element: dict[str, Any], page: PageImage) -> dict[str, Any]:
    """Relative coordinates (0-1 of the page sent) become page pixels as well."""
    relative = [[float(p["x"]), float(p["y"])] for p in element.get("coordinates") or []]
    content = element.get("content") or {}
    return {
        "id": element.get("id"),
        "page": element.get("page", 1),
        "category": element.get("category"),
        "text": content.get("text", ""),
        "html": content.get("html", ""),
        "markdown": content.get("markdown", ""),
        "coordinates": relative,
        "polygon": [[x * page.width, y * page.height] for x, y in relative] or None,
    }
