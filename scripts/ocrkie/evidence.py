"""Where a value sits in an OCR record: rows, character spans, words and their box."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .page import upright_box


@dataclass
class Row:
    index: int
    text: str
    lines: list[dict[str, Any]]
    spans: list[tuple[int, int]]  # each line's character span in ``text``


def rows_of(ocr: dict[str, Any]) -> list[Row]:
    grouped: dict[int, list[dict[str, Any]]] = {}
    for line in ocr["lines"]:
        grouped.setdefault(line["row"], []).append(line)
    rows = []
    for index, key in enumerate(sorted(grouped)):
        text, spans = "", []
        for line in grouped[key]:
            if text:
                text += " "
            spans.append((len(text), len(text) + len(line["text"])))
            text += line["text"]
        rows.append(Row(index, text, grouped[key], spans))
    return rows


def merge_pages(pages: list[dict[str, Any]]) -> dict[str, Any]:
    """The OCR records of a document's pages as one record: lines numbered through, rows kept
    apart, each line marked with its page, texts joined by form feeds. One page: as it is."""
    if len(pages) == 1:
        return pages[0]
    lines, row_base = [], 0
    for page in pages:
        number = page["image"].get("page", 1)
        for line in page["lines"]:
            lines.append({**line, "id": len(lines), "row": row_base + line["row"], "page": number})
        row_base += 1 + max((line["row"] for line in page["lines"]), default=-1)
    return {**pages[0], "text": "\f".join(page["text"] for page in pages), "lines": lines}


def source_of(pieces: list[tuple[Row, int, int]]) -> tuple[dict[str, Any], list[float]]:
    """The OCR lines, words and box under character spans of rows, and the words' confidences.
    The box is drawn on the page of the first line (a value rarely spans pages)."""
    line_ids, words, confidences, page = [], [], [], None
    for row, start, end in pieces:
        for line, (lo, hi) in zip(row.lines, row.spans, strict=True):
            if lo < end and start < hi:
                page = page or line.get("page", 1)
                line_ids.append(line["id"])
                chosen = _words_in(line, start - lo, end - lo)
                if line.get("page", 1) == page:
                    words.extend({"text": w["text"], "polygon": w["polygon"]} for w in chosen)
                confidences.extend(w["confidence"] for w in chosen)
    points = [p for w in words for p in w["polygon"]]
    polygon = upright_box(points) if points else None
    return {"page": page or 1, "lines": line_ids, "words": words, "polygon": polygon}, confidences


def _words_in(line: dict[str, Any], start: int, end: int) -> list[dict[str, Any]]:
    """The words of ``line`` overlapping the character span (words joined by single spaces)."""
    chosen, offset = [], 0
    for word in line["words"]:
        lo = line["text"].find(word["text"], offset)
        lo = offset if lo < 0 else lo
        hi = lo + len(word["text"])
        if lo < end and start < hi:
            chosen.append(word)
        offset = hi
    return chosen or line["words"]


def locate(value: str | None, rows: list[Row]) -> dict[str, Any]:
    """Where a value found by other means (a service) sits in the OCR: its words and box,
    with their mean OCR confidence; ``source`` is None when the OCR does not contain it."""
    found = _span_in_rows(value, rows) if value else None
    if found is None:
        return {"value": value, "confidence": None, "source": None}
    source, confidences = source_of(found)
    confidence = round(sum(confidences) / len(confidences), 4) if confidences else None
    return {"value": value, "confidence": confidence, "source": source}


def _span_in_rows(value: str, rows: list[Row]) -> list[tuple[Row, int, int]] | None:
    """The value in one row, or across up to five consecutive rows (case-insensitive)."""
    needle = " ".join(value.split()).lower()
    for first in range(len(rows)):
        joined, offsets = "", []
        for row in rows[first : first + 5]:
            if joined:
                joined += " "
            offsets.append((row, len(joined)))
            joined += row.text.lower()
            start = joined.find(needle)
            if start >= 0:
                end = start + len(needle)
                return [
                    (r, max(0, start - at), min(len(r.text), end - at))
                    for r, at in offsets
                    if at < end and start < at + len(r.text)
                ]
    return None
