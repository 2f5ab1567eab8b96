"""What the report shows of single pages: the least certain values with a crop of where
each was read, and a few sample pages chosen to inform (the least certain, a failed one) with
their boxes drawn."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from ..errors import ImageError
from ..images import PageImage, decode_page
from ..page import bounds
from ..results import Results, record_name
from ..storage import read_input

REVIEW = 20  # values in the review list
SAMPLES = 3  # least certain sample pages (a failed one besides)
FAILED_TRIES = 5  # failed pages tried until one can be drawn
MAX_SIDE = 1600  # of a page drawn or cropped
MARGIN = 12  # page pixels around a crop
CROP_SIZE = (720, 240)  # the largest a crop is kept


@dataclass
class Value:
    """A value the KIE engine read, and how sure it was."""

    image: str  # id
    path: str
    field: str
    value: str
    confidence: float


def least_certain(kie: list[dict[str, Any]]) -> list[Value]:
    """Every value found, the least certain first (from the KIE manifests)."""
    values = [
        Value(e["id"], e["path"], name, str(field.get("value")), float(field["confidence"]))
        for e in kie
        if e["status"] == "ok"
        for name, field in e.get("fields", {}).items()
        if field.get("value") not in (None, "") and field.get("confidence") is not None
    ]
    return sorted(values, key=lambda v: (v.confidence, v.path, v.field))


class Sources:
    """The pages of the run's images (each decoded once) and their records."""

    def __init__(self, results: Results, paths: dict[str, str]):
        self.results, self.paths = results, paths
        self._decoded: dict[tuple[str, int], PageImage] = {}

    def image(self, image_id: str, page: int = 1) -> PageImage:
        key = (image_id, page)
        if key not in self._decoded:
            data = read_input(self.paths[image_id])
            self._decoded[key] = decode_page(data, 10**9, MAX_SIDE, image_id, page)
        return self._decoded[key]

    def kie(self, image_id: str) -> dict[str, Any]:
        try:
            return self.results.read_record("kie", image_id)
        except FileNotFoundError:  # kie_backend: none, or the image failed before KIE
            return {}

    def ocr(self, image_id: str, page: int, pages: int) -> dict[str, Any]:
        try:
            return self.results.read_record("ocr", record_name(image_id, page, pages))
        except FileNotFoundError:
            return {"lines": []}


def crop(sources: Sources, value: Value) -> Image.Image | None:
    """The region of the page the value was read from, or None when the record has none."""
    source = sources.kie(value.image).get("fields", {}).get(value.field, {}).get("source") or {}
    if not source.get("polygon"):
        return None
    try:
        page = sources.image(value.image, source.get("page", 1))
    except (OSError, ImageError):  # the image moved or cannot be read any more
        return None
    x0, y0, x1, y1 = bounds(source["polygon"])
    box = (x0 - MARGIN, y0 - MARGIN, x1 + MARGIN, y1 + MARGIN)
    width, height = page.image.size
    left, top, right, bottom = (round(c * page.scale) for c in box)
    region = page.image.crop((max(0, left), max(0, top), min(width, right), min(height, bottom)))
    region.thumbnail(CROP_SIZE)
    return region


@dataclass
class Sample:
    entry: dict[str, Any]  # the OCR manifest entry of the page
    why: str


def choose_samples(
    ocr: list[dict[str, Any]], kie: list[dict[str, Any]], count: int = SAMPLES
) -> tuple[list[Sample], list[Sample]]:
    """The ``count`` least certain pages, one per image (the lowest field confidence, a field
    not found counting as 0; without KIE, the most lines under 0.99), and the failed pages
    whose image was read (the report shows the first that it can still draw)."""
    pages = [e for e in ocr if e["status"] == "ok"]
    certainty = {e["id"]: _certainty(e) for e in kie if e["status"] == "ok"}
    if certainty:
        ranked = sorted(pages, key=lambda e: (certainty.get(e["id"], 1.0), e["path"]))
        why = [f"least certain value ({certainty.get(e['id'], 1.0):.2f})" for e in ranked]
    else:
        ranked = sorted(pages, key=lambda e: (-_doubtful_lines(e)[0], e["path"]))
        why = ["{} lines under {} confidence".format(*_doubtful_lines(e)) for e in ranked]
    firsts: dict[str, Sample] = {}  # one page of each document
    for entry, reason in zip(ranked, why, strict=True):
        firsts.setdefault(entry["id"], Sample(entry, reason))
    chosen = list(firsts.values())[:count]
    ocr_by_id = {e["id"]: e for e in ocr}
    failed = [
        Sample(ocr_by_id.get(e["id"], e), f"failed: {e['error']['class']}")
        for e in [*(e for e in kie if e["status"] == "error"), *ocr]
        if e["status"] == "error" and e.get("error") and e.get("sha256")
    ]
    return chosen, failed[:FAILED_TRIES]


def _certainty(kie_entry: dict[str, Any]) -> float:
    fields = kie_entry.get("fields", {}).values()
    return min(
        (float(f.get("confidence") or 0.0) if f.get("value") else 0.0 for f in fields),
        default=1.0,
    )


def _doubtful_lines(ocr_entry: dict[str, Any]) -> tuple[int, float]:
    """How many lines are under 0.99 confidence (under 0.9 for manifests counted in tenths),
    and that threshold."""
    if "confidence_bins" in ocr_entry:
        return sum(ocr_entry["confidence_bins"][:6]), 0.99
    return sum(ocr_entry.get("confidence_histogram", [])[:9]), 0.9


def draw_sample(sources: Sources, sample: Sample, out: Path) -> int | None:
    """The page with its OCR lines (blue) and KIE values (green): of a document, the page of
    its least certain value. Returns the page's number, or None when the image can no longer
    be read."""
    entry = sample.entry
    kie = sources.kie(entry["id"])
    number, count = _page_in_doubt(kie) or entry.get("page", 1), entry.get("pages", 1)
    try:
        page = sources.image(entry["id"], number)
    except (OSError, ImageError):
        return None
    drawn(page, sources.ocr(entry["id"], number, count), kie, number).save(out)
    return number


def _page_in_doubt(kie: dict[str, Any]) -> int | None:
    """The page the least certain value of a KIE record was read from."""
    found = [f for f in kie.get("fields", {}).values() if (f.get("source") or {}).get("page")]
    least = min(found, key=lambda f: f.get("confidence") or 0.0, default=None)
    return least["source"]["page"] if least else None


def drawn(page: PageImage, ocr: dict[str, Any], kie: dict[str, Any], number: int = 1):
    """A copy of the page with the OCR lines and the KIE values' boxes drawn on it."""
    image = page.image.copy()
    draw = ImageDraw.Draw(image)

    def scaled(polygon: list[list[float]]) -> list[tuple[float, float]]:
        return [(x * page.scale, y * page.scale) for x, y in polygon]

    for line in ocr.get("lines", []):
        draw.polygon(scaled(line["polygon"]), outline="#1565c0", width=2)
    for name, value in kie.get("fields", {}).items():
        source = value.get("source") or {}
        if source.get("polygon") and source.get("page", 1) == number:
            corners = scaled(source["polygon"])
            draw.polygon(corners, outline="#2e7d32", width=4)
            draw.text((corners[0][0], max(0, corners[0][1] - 12)), name, fill="#2e7d32")
    return image
