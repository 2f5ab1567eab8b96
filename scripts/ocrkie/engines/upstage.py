"""Upstage Document AI as a backend: OCR, Information Extraction and Document Parse.

Each adapter turns the service's answer into the canonical records and keeps the answer
itself (``raw``), so results can be re-derived later without paying again. The image sent is
the original file when normalisation changed nothing, else the normalised page as PNG (the
service then sees the page upright, and its pixel coordinates map back through ``scale``).
"""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
from pathlib import Path
from typing import Any

from ..formats import Line, Word
from ..images import PageImage, decode_page
from ..kie import FieldSchema, locate, rows_of
from ..normalize import normalize
from ..upstage import UpstageClient, extracted_fields
from . import Recognition

# What Information Extraction accepts as an image (notes: JPEG, PNG, BMP, TIFF, HEIC, ...).
IE_TYPES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}


def upload(page: PageImage, name: str) -> tuple[bytes, str]:
    """The bytes and file name to send for ``page``."""
    if not page.steps:
        return page.data, name
    buffer = io.BytesIO()
    page.image.save(buffer, "PNG")
    return buffer.getvalue(), f"{Path(name).stem}.png"


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


class UpstageOcrEngine:
    device = "upstage"

    def __init__(self, client: UpstageClient, model: str = "ocr"):
        self.client = client
        self.model = model

    def identity(self) -> dict[str, Any]:
        return {"name": "upstage-ocr", "model": self.model}

    def recognize(self, page: PageImage, name: str = "page.png") -> Recognition:
        document, filename = upload(page, name)
        raw = self.client.ocr(document, filename, model=self.model)
        billing = {"endpoint": "ocr", "billed_pages": int(raw.get("numBilledPages", 1) or 1)}
        engine = {"model_version": raw.get("modelVersion")}
        return Recognition(lines_from_ocr(raw, page.scale), raw, billing, engine)


class UpstageExtractor:
    """Universal Information Extraction with the field schema as ``response_format``."""

    uses_ocr = False  # the service reads the image itself; the OCR only locates the values

    def __init__(
        self, client: UpstageClient, schema: FieldSchema, model: str = "information-extract"
    ):
        self.client = client
        self.schema = schema
        self.model = model
        api_schema = json.dumps(schema.for_api(), sort_keys=True)
        self.schema_sha256 = hashlib.sha256(api_schema.encode()).hexdigest()

    def identity(self) -> dict[str, Any]:
        return {
            "name": "upstage-information-extract",
            "model": self.model,
            "schema": self.schema_sha256,
        }

    def extract(self, ocr: dict[str, Any], image: str) -> dict[str, Any]:
        document, mime = _ie_document(image)
        raw = self.client.extract(document, mime, self.schema.for_api(), model=self.model)
        values = extracted_fields(raw)
        rows = rows_of(ocr)
        fields = {}
        for spec in self.schema.fields:
            value = values.get(spec.name)
            value = None if value in (None, "") else str(value)
            fields[spec.name] = {
                "type": spec.type,
                **locate(value, rows),
                "normalized": normalize(spec.type, value, spec.date_order),
            }
        billing = {"endpoint": "information-extract", "billed_pages": 1}
        return {"fields": fields, "raw": raw, "billing": billing, "model_version": raw.get("model")}


def _ie_document(image: str) -> tuple[bytes, str]:
    data = Path(image).read_bytes()
    if Path(image).suffix.lower() in IE_TYPES:
        return data, mimetypes.guess_type(image)[0] or "application/octet-stream"
    page = decode_page(data, max_pixels=200_000_000, max_side=10_000)
    buffer = io.BytesIO()
    page.image.save(buffer, "PNG")
    return buffer.getvalue(), "image/png"


class UpstageLayoutParser:
    """Document Parse: layout elements (category, content, box) as an extra per-image record."""

    def __init__(self, client: UpstageClient, options: dict[str, Any]):
        self.client = client
        self.options = options

    def identity(self) -> dict[str, Any]:
        return {"name": "upstage-document-parse", **self.options}

    def parse(self, page: PageImage, name: str) -> dict[str, Any]:
        document, filename = upload(page, name)
        options = {**self.options, "output_formats": tuple(self.options["output_formats"])}
        raw = self.client.document_parse(document, filename, **options)
        elements = [_element(e, page) for e in raw.get("elements", [])]
        pages = int((raw.get("usage") or {}).get("pages", 1) or 1)
        return {
            "elements": elements,
            "raw": raw,
            "model_version": raw.get("model"),
            "billing": {"endpoint": "document-parse", "billed_pages": pages},
        }


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
