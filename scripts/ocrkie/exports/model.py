"""One typed page model, built from the canonical OCR record of any backend, that every
export renders: blocks of lines of words, with integer pixel boxes and polygons."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from ..formats import now_iso

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    """An upright integer box that contains a polygon: ``x0, y0`` inclusive, ``x1, y1`` the
    far edges (``width = x1 - x0``)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def around(cls, points: list[Point]) -> Box:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, y0 = max(0, math.floor(min(xs))), max(0, math.floor(min(ys)))
        return cls(x0, y0, max(x0 + 1, math.ceil(max(xs))), max(y0 + 1, math.ceil(max(ys))))

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


@dataclass(frozen=True)
class Word:
    id: str
    text: str
    confidence: float  # 0-1
    polygon: list[Point]
    box: Box

    @property
    def upright(self) -> bool:
        """Whether the polygon is its own box (an upright rectangle, to half a pixel)."""
        return _is_rectangle(self.polygon)

    def points(self) -> list[tuple[int, int]]:
        """The polygon in whole non-negative pixels."""
        return [(max(0, round(x)), max(0, round(y))) for x, y in self.polygon]


@dataclass(frozen=True)
class TextLine(Word):
    """A line: a word's shape and text, and the words it holds."""

    words: list[Word]


@dataclass(frozen=True)
class Block:
    id: str
    lines: list[TextLine]
    box: Box

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


@dataclass(frozen=True)
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

    @property
    def lines(self) -> list[TextLine]:
        return [line for block in self.blocks for line in block.lines]

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Page:
        """The page of an ``ocrkie.ocr/1`` record with status ok."""
        image = record["image"]
        lines, rows = [], []
        for n, line in enumerate(record["lines"], start=1):
            words = line.get("words") or [{**line, "words": []}]  # an engine without words
            typed = [
                Word(
                    f"w{n}_{k}",
                    w["text"],
                    float(w["confidence"]),
                    _points(w["polygon"]),
                    Box.around(_points(w["polygon"])),
                )
                for k, w in enumerate(words, start=1)
                if w["text"].strip()
            ]
            polygon = _points(line["polygon"])
            lines.append(
                TextLine(
                    f"l{n}",
                    line["text"],
                    float(line["confidence"]),
                    polygon,
                    Box.around(polygon),
                    typed,
                )
            )
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
            made_at=record.get("timing", {}).get("finished_at") or now_iso(),
        )


def _points(polygon: list[list[float]]) -> list[Point]:
    return [(float(x), float(y)) for x, y in polygon]


def _is_rectangle(polygon: list[Point], tolerance: float = 0.5) -> bool:
    if len(polygon) != 4:
        return False
    (ax, ay), (bx, by), (cx, cy), (dx, dy) = polygon
    return all(abs(u - v) <= tolerance for u, v in ((ay, by), (bx, cx), (cy, dy), (dx, ax)))


def _blocks(lines: list[TextLine], rows: list[int]) -> list[Block]:
    """Consecutive rows form a block until a gap taller than a typical line: on a receipt,
    the header, the items and the totals."""
    if not lines:
        return []
    typical = statistics.median(line.box.height for line in lines)
    groups: list[list[TextLine]] = [[lines[0]]]
    for line, row, last_row in zip(lines[1:], rows[1:], rows, strict=False):
        gap = line.box.y0 - max(other.box.y1 for other in groups[-1])
        if row != last_row and gap > typical:
            groups.append([])
        groups[-1].append(line)
    return [
        Block(f"b{n}", group, Box.union([line.box for line in group]))
        for n, group in enumerate(groups, start=1)
    ]
