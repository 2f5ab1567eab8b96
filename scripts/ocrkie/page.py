"""The page model: a page's blocks of lines of words, each with its polygon and box.

Coordinates are pixels of the page upright at its own size (a PDF page rendered at
``images.pdf_dpi``), four points clockwise from the top left. That frame is the file's own
pixels unless the file is EXIF-turned, a PDF or one of several pages (``stored_upright``): an
export then names an upright copy of the page, so that its coordinates fit the image it
names. Engines return ``Line``s of ``Word``s; the OCR stage saves them as a record
(``lines_record``, in reading order); the exports read a ``Page`` back
(``Page.from_record``). The geometry every one of them needs (boxes, baselines, rescaling,
words cut from a line) is here, once. Nothing here reads a clock or a file.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

Point = tuple[float, float]
Polygon = list[list[float]]  # four [x, y] points, clockwise from the top left


# Edges of the bins of line confidence that the OCR manifests count and the report draws:
# engines are sure of most lines, so the bins narrow towards 1.
CONFIDENCE_EDGES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0)


def confidence_bins(confidences: list[float]) -> list[int]:
    """How many of ``confidences`` fall in each bin of ``CONFIDENCE_EDGES`` (the last bin
    holds 1.0 too)."""
    counts = [0] * (len(CONFIDENCE_EDGES) - 1)
    for confidence in confidences:
        index = sum(1 for edge in CONFIDENCE_EDGES[1:-1] if confidence >= edge)
        counts[index] += 1
    return counts


# -- geometry ----------------------------------------------------------------------------------


def bounds(polygon: Polygon) -> tuple[float, float, float, float]:
    """``x0, y0, x1, y1`` of the points."""
    xs = [p[0] for p in polygon]
    ys = [p[1] for p in polygon]
    return min(xs), min(ys), max(xs), max(ys)


def upright_box(polygon: Polygon) -> Polygon:
    """The upright rectangle around the points, as a polygon."""
    x0, y0, x1, y1 = bounds(polygon)
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def scaled(polygon: Any, fx: float, fy: float | None = None) -> Polygon:
    """The points times ``fx`` (across) and ``fy`` (down; ``fx`` when not given): from the
    pixels an engine or a service read at to the page's."""
    fy = fx if fy is None else fy
    return [[float(x) * fx, float(y) * fy] for x, y in polygon]


def baseline(polygon: Polygon, depth: float = 0.8) -> Polygon:
    """Where a line's text rests: from its left edge to its right edge, ``depth`` of the way
    down from the top (a line box holds the descenders below its baseline), two points."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = polygon[:4]
    return [
        [x0 + (x3 - x0) * depth, y0 + (y3 - y0) * depth],
        [x1 + (x2 - x1) * depth, y1 + (y2 - y1) * depth],
    ]


def stored_upright(image: dict[str, Any]) -> bool:
    """Whether the file's own pixels are the page in the frame of its coordinates, as a reader
    of the file sees them: not turned by its EXIF orientation, not a PDF (rendered), not one
    page of several."""
    steps = image.get("normalization") or []
    turned = any(str(step).startswith("exif-orientation") for step in steps)
    pdf = str(image.get("path", "")).lower().endswith(".pdf")
    return not turned and not pdf and int(image.get("pages", 1)) == 1


def is_rectangle(polygon: Polygon, tolerance: float = 0.5) -> bool:
    """Whether the four points are their own upright box, to ``tolerance`` pixels."""
    if len(polygon) != 4:
        return False
    (ax, ay), (bx, by), (cx, cy), (dx, dy) = polygon
    return all(abs(u - v) <= tolerance for u, v in ((ay, by), (bx, cx), (cy, dy), (dx, ax)))


@dataclass(frozen=True)
class Box:
    """An upright integer box that contains a polygon: ``x0, y0`` inclusive, ``x1, y1`` the
    far edges (``width = x1 - x0``)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def around(cls, polygon: Polygon) -> Box:
        left, top, right, bottom = bounds(polygon)
        x0, y0 = max(0, math.floor(left)), max(0, math.floor(top))
        return cls(x0, y0, max(x0 + 1, math.ceil(right)), max(y0 + 1, math.ceil(bottom)))

    @classmethod
    def union(cls, boxes: list[Box]) -> Box:
        return cls(
            min(b.x0 for b in boxes),
            min(b.y0 for b in boxes),
            max(b.x1 for b in boxes),
            max(b.y1 for b in boxes),
        )

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def corners(self) -> list[tuple[int, int]]:
        return [(self.x0, self.y0), (self.x1, self.y0), (self.x1, self.y1), (self.x0, self.y1)]


class _Shape:
    """What a word and a line share: a polygon, and the box and points drawn from it."""

    polygon: Polygon

    @property
    def box(self) -> Box:
        return Box.around(self.polygon)

    @property
    def upright(self) -> bool:
        """Whether the polygon is its own box (an upright rectangle, to half a pixel)."""
        return is_rectangle(self.polygon)

    def points(self) -> list[tuple[int, int]]:
        """The polygon in whole non-negative pixels."""
        return [(max(0, round(x)), max(0, round(y))) for x, y in self.polygon]


# -- the elements ------------------------------------------------------------------------------


@dataclass
class Word(_Shape):
    text: str
    confidence: float  # 0-1
    polygon: Polygon
    id: str = ""  # on a page read from its record: w<line>_<n>


@dataclass
class Line(_Shape):
    text: str
    confidence: float
    polygon: Polygon
    words: list[Word] = field(default_factory=list)
    id: str = ""  # on a page read from its record: l<n>
    model: str = ""  # which model read it, for an engine that reads with several

    @property
    def baseline(self) -> list[tuple[int, int]]:
        """The line's baseline (``baseline``) in whole non-negative pixels."""
        return [(max(0, round(x)), max(0, round(y))) for x, y in baseline(self.polygon)]


@dataclass
class Block:
    id: str
    lines: list[Line]

    @property
    def box(self) -> Box:
        return Box.union([line.box for line in self.lines])

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


@dataclass
class Page:
    image_id: str
    filename: str  # the image's path relative to the input folder
    sha256: str
    width: int
    height: int
    engine: dict[str, Any]
    text: str
    blocks: list[Block]
    made_at: str  # when the OCR was made (ISO 8601), for formats that date their content
    stored_upright: bool = True  # the file's pixels are this page's frame (``stored_upright``)
    image_ref: str = ""  # the image as the exports name it (``filename`` unless set)
    number: int = 1  # the page's number in its file
    pages: int = 1  # the file's pages
    dpi: tuple[float, float] | None = None  # across and down, where the file declares them
    languages: tuple[str, ...] = ()  # BCP 47 tags of the text, the main one first (the exports')

    @property
    def image(self) -> str:
        """The image an export names: an upright copy, or the file, from where the export is."""
        return self.image_ref or self.filename

    @property
    def lines(self) -> list[Line]:
        return [line for block in self.blocks for line in block.lines]

    @classmethod
    def from_record(cls, record: dict[str, Any], made_at: str) -> Page:
        """The page of an ``ocrkie.ocr/1`` record with status ok; ``made_at`` when the
        record does not say when it was made."""
        image = record["image"]
        lines, rows = [], []
        for n, line in enumerate(record["lines"], start=1):
            words = line.get("words") or [{**line, "words": []}]  # an engine without words
            typed = [
                Word(w["text"], float(w["confidence"]), _points(w["polygon"]), f"w{n}_{k}")
                for k, w in enumerate(words, start=1)
                if w["text"].strip()
            ]
            polygon = _points(line["polygon"])
            lines.append(Line(line["text"], float(line["confidence"]), polygon, typed, f"l{n}"))
            rows.append(line["row"])
        return cls(
            image_id=image["id"],
            filename=image["path"],
            sha256=image.get("sha256") or "",
            width=int(image["width"]),
            height=int(image["height"]),
            engine=record["engine"],
            text=record["text"],
            blocks=_blocks(lines, rows),
            made_at=record.get("timing", {}).get("finished_at") or made_at,
            stored_upright=stored_upright(image),
            number=int(image.get("page", 1)),
            pages=int(image.get("pages", 1)),
            dpi=(float(image["dpi"][0]), float(image["dpi"][1])) if image.get("dpi") else None,
        )


def _points(polygon: list[list[float]]) -> Polygon:
    return [[float(x), float(y)] for x, y in polygon]


def _blocks(lines: list[Line], rows: list[int]) -> list[Block]:
    """Consecutive rows form a block until a gap taller than a typical line: on a receipt,
    the header, the items and the totals."""
    if not lines:
        return []
    typical = statistics.median(line.box.height for line in lines)
    groups: list[list[Line]] = [[lines[0]]]
    for line, row, last_row in zip(lines[1:], rows[1:], rows, strict=False):
        gap = line.box.y0 - max(other.box.y1 for other in groups[-1])
        if row != last_row and gap > typical:
            groups.append([])
        groups[-1].append(line)
    return [Block(f"b{n}", group) for n, group in enumerate(groups, start=1)]


# -- what engines make of lines, and the record of them ----------------------------------------


def split_words(text: str, polygon: Polygon, confidence: float) -> list[Word]:
    """Word boxes for a recogniser that reads whole lines: the line's box cut along its
    length in proportion to the characters before and in each word."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = polygon[:4]
    total = max(1, len(text))

    def at(fraction: float) -> tuple[list[float], list[float]]:
        top = [x0 + (x1 - x0) * fraction, y0 + (y1 - y0) * fraction]
        bottom = [x3 + (x2 - x3) * fraction, y3 + (y2 - y3) * fraction]
        return top, bottom

    words, start = [], 0
    for word in text.split():
        start = text.index(word, start)
        (a, d), (b, c) = at(start / total), at((start + len(word)) / total)
        words.append(Word(word, confidence, [a, b, c, d]))
        start += len(word)
    return words


def reading_order(lines: list[Line]) -> list[list[Line]]:
    """Group lines into visual rows (top to bottom), each row sorted left to right.

    A line joins the current row when its vertical centre lies within the row's first
    line's vertical extent; this keeps "TOTAL ..... 9.00" on one row of a receipt.
    """
    rows: list[list[Line]] = []
    for line in sorted(lines, key=lambda ln: (_centre_y(ln), bounds(ln.polygon)[0])):
        if rows:
            _, top, _, bottom = bounds(rows[-1][0].polygon)
            if top <= _centre_y(line) <= bottom:
                rows[-1].append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda ln: bounds(ln.polygon)[0]) for row in rows]


def _centre_y(line: Line) -> float:
    _, top, _, bottom = bounds(line.polygon)
    return (top + bottom) / 2


def lines_record(lines: list[Line]) -> dict[str, Any]:
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
                    "polygon": _rounded(line.polygon),
                    "words": [_word_record(w) for w in line.words],
                    **({"model": line.model} if line.model else {}),
                }
            )
    text = "\n".join(" ".join(line.text for line in row) for row in rows)
    return {"text": text, "lines": out_lines}


def _word_record(word: Word) -> dict[str, Any]:
    return {
        "text": word.text,
        "confidence": round(float(word.confidence), 4),
        "polygon": _rounded(word.polygon),
    }


def _rounded(polygon: Polygon) -> Polygon:
    return [[round(float(x), 1), round(float(y), 1)] for x, y in polygon]
