"""Key-information extraction driven by a field schema.

The field schema is a JSON Schema (one property per field, each with a ``description``): the
same document is sent to Upstage Information Extraction as ``response_format``. Each property
may carry local hints under ``x-ocrkie`` (stripped before anything is sent out):

- ``type``: ``text`` (a single row), ``address`` (a block of rows), ``date`` or ``amount``
- ``keywords``: label phrases, most specific first; a value follows its label on the same row,
  or on the next row
- ``exclude``: regular expressions; a row matching one is never a candidate
- ``patterns``: regular expressions the value's rows may match instead of a keyword
- ``region``: ``top``, ``bottom`` or ``any`` (default) part of the page to search
- ``pick``: among amount candidates, ``first`` (default: the most specific label, then the
  first row), ``last`` or ``max``
- ``adjust``: labels of rows right after an amount that adjust it ("rounding"): the
  normalised value includes them
- ``date_order``: ``DMY`` (default) or ``MDY`` for ambiguous numeric dates
- ``max_lines``: the most rows an address may span (default 4)

The local extractor works over the OCR record's lines (grouped into rows) and word boxes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

from .normalize import AMOUNT_PATTERN, amount_value, find_dates, normalize

HINTS = "x-ocrkie"


@dataclass
class FieldSpec:
    name: str
    type: str = "text"
    keywords: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    region: str = "any"
    pick: str = "first"
    date_order: str = "DMY"
    max_lines: int = 4
    adjust: list[str] = field(default_factory=list)


@dataclass
class FieldSchema:
    document: dict[str, Any]
    fields: list[FieldSpec]
    sha256: str

    def for_api(self) -> dict[str, Any]:
        """The schema without local hints, as sent to a service."""
        doc = copy.deepcopy(self.document)
        doc.pop("$schema", None)
        for prop in doc.get("properties", {}).values():
            prop.pop(HINTS, None)
        return doc


def load_field_schema(path: str | Path) -> FieldSchema:
    text = Path(path).read_text(encoding="utf-8")
    document = json.loads(text)
    properties = document.get("properties")
    if document.get("type") != "object" or not isinstance(properties, dict) or not properties:
        raise ValueError(f"{path}: a field schema is a JSON Schema object with properties")
    fields = [_field_spec(name, prop) for name, prop in properties.items()]
    return FieldSchema(document, fields, hashlib.sha256(text.encode()).hexdigest())


def _field_spec(name: str, prop: dict[str, Any]) -> FieldSpec:
    hints = dict(prop.get(HINTS, {}))
    if "type" not in hints:
        hints["type"] = "amount" if prop.get("type") in ("number", "integer") else "text"
    hints.setdefault("keywords", [name.replace("_", " ")])
    return FieldSpec(name=name, **hints)


# --- rows ------------------------------------------------------------------------------


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


def _region(rows: list[Row], region: str) -> list[Row]:
    if region == "top":
        return rows[: max(8, round(len(rows) * 0.35))]
    if region == "bottom":
        return rows[round(len(rows) * 0.3) :]
    return rows


def _keyword_match(spec: FieldSpec, text: str) -> re.Match[str] | None:
    label = _label(spec, text)
    return label[1] if label else None


def _excluded(spec: FieldSpec, text: str) -> bool:
    return any(re.search(pattern, text, re.I) for pattern in spec.exclude)


def _matches_pattern(spec: FieldSpec, text: str) -> bool:
    return any(re.search(pattern, text, re.I) for pattern in spec.patterns)


# --- evidence --------------------------------------------------------------------------


@dataclass
class Found:
    value: str
    normalized: str | None
    pieces: list[tuple[Row, int, int]]  # (row, start, end) character spans of the value
    certainty: float  # 1.0 when a label or pattern confirmed it, lower for fallbacks


def _source(pieces: list[tuple[Row, int, int]]) -> tuple[dict[str, Any], list[float]]:
    line_ids, words, confidences = [], [], []
    for row, start, end in pieces:
        for line, (lo, hi) in zip(row.lines, row.spans, strict=True):
            if lo < end and start < hi:
                line_ids.append(line["id"])
                chosen = _words_in(line, start - lo, end - lo)
                words.extend({"text": w["text"], "polygon": w["polygon"]} for w in chosen)
                confidences.extend(w["confidence"] for w in chosen)
    points = [p for w in words for p in w["polygon"]]
    polygon = None
    if points:
        x0, y0 = min(p[0] for p in points), min(p[1] for p in points)
        x1, y1 = max(p[0] for p in points), max(p[1] for p in points)
        polygon = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    return {"lines": line_ids, "words": words, "polygon": polygon}, confidences


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


def _field_value(found: Found | None) -> dict[str, Any]:
    if found is None:
        return {"value": None, "normalized": None, "confidence": 0.0, "source": None}
    source, confidences = _source(found.pieces)
    mean = sum(confidences) / len(confidences) if confidences else 0.0
    return {
        "value": found.value,
        "normalized": found.normalized,
        "confidence": round(mean * found.certainty, 4),
        "source": source,
    }


def locate(value: str | None, rows: list[Row]) -> dict[str, Any]:
    """Where a value found by other means (a service) sits in the OCR: its words and box,
    with their mean OCR confidence; ``source`` is None when the OCR does not contain it."""
    found = _span_in_rows(value, rows) if value else None
    if found is None:
        return {"value": value, "confidence": None, "source": None}
    source, confidences = _source(found)
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


# --- strategies ------------------------------------------------------------------------


def _find_text(spec: FieldSpec, rows: list[Row]) -> Found | None:
    candidates = [r for r in _region(rows, spec.region) if not _excluded(spec, r.text)]
    for row in candidates:
        match = _keyword_match(spec, row.text)
        if match and spec.type == "text" and spec.region != "top":
            value = row.text[match.end() :].strip(" :#-")  # "Invoice No: 123" -> "123"
            if value:
                start = row.text.index(value, match.end())
                return _found(spec, value, [(row, start, start + len(value))], 1.0)
        elif match:
            return _found_name(spec, rows, row, match)
    for row in candidates:  # no label anywhere: the first row that reads like a name
        letters = sum(c.isalpha() for c in row.text)
        if letters >= 3 and letters >= 0.5 * len(row.text.replace(" ", "")):
            return _found(spec, row.text, [(row, 0, len(row.text))], 0.5)
    return None


def _found_name(spec: FieldSpec, rows: list[Row], row: Row, label: re.Match[str]) -> Found:
    """A name row, joined with the row above when the label stands alone ("SDN BHD"),
    without a trailing registration number such as "(126926-H)"."""
    pieces = [(row, 0, len(row.text))]
    rest = row.text[: label.start()] + row.text[label.end() :]
    if sum(c.isalpha() for c in rest) < 3 and row.index > 0:
        above = rows[row.index - 1]
        pieces.insert(0, (above, 0, len(above.text)))
    value = " ".join(r.text for r, _, _ in pieces)
    value = re.sub(r"\s*\([^()]*\d[^()]*\)\s*$", "", value)
    return _found(spec, value, pieces, 1.0)


def _find_address(spec: FieldSpec, rows: list[Row], after: int) -> Found | None:
    region = [r for r in _region(rows, spec.region) if r.index > after]
    for position, row in enumerate(region):
        if _excluded(spec, row.text):
            continue
        if _keyword_match(spec, row.text) or _matches_pattern(spec, row.text):
            block = [row]
            for nxt in region[position + 1 :]:
                if len(block) >= spec.max_lines or _excluded(spec, nxt.text):
                    break
                if nxt.index != block[-1].index + 1:
                    break
                if _matches_pattern(spec, block[-1].text) and not _is_place_name(nxt.text):
                    break
                block.append(nxt)
            value = " ".join(r.text for r in block)
            return _found(spec, value, [(r, 0, len(r.text)) for r in block], 1.0)
    return None


def _is_place_name(text: str) -> bool:
    """A short row without digits, such as a state or country after the postcode row."""
    return len(text.split()) <= 3 and not any(c.isdigit() for c in text)


def _find_date(spec: FieldSpec, rows: list[Row]) -> Found | None:
    region = _region(rows, spec.region)
    labelled = [r for r in region if _keyword_match(spec, r.text)]
    for rank, group in enumerate((labelled, region)):
        for row in group:
            if _excluded(spec, row.text):
                continue
            for raw, iso in find_dates(row.text, spec.date_order):
                start = row.text.index(raw)
                return Found(raw, iso, [(row, start, start + len(raw))], 1.0 if rank == 0 else 0.8)
    return None


def _find_amount(spec: FieldSpec, rows: list[Row]) -> Found | None:
    region = _region(rows, spec.region)
    candidates: list[tuple[int, int, Found]] = []  # (label rank, row position, amount)
    for position, row in enumerate(region):
        label = _label(spec, row.text)
        if label is None or _excluded(spec, row.text):
            continue
        rank, match = label
        found = _amounts_in(row, match.end())
        if not found and position + 1 < len(region):
            found = _amounts_in(region[position + 1], 0)[:1]
        candidates.extend((rank, position, amount) for amount in found)
    if not candidates:
        return None
    if spec.pick == "max":
        chosen = max(candidates, key=lambda c: Decimal(c[2].normalized or "0"))
    elif spec.pick == "last":
        chosen = candidates[-1]
    else:  # the most specific label ("grand total" before "total"), then the first such row
        chosen = min(candidates, key=lambda c: (c[0], c[1]))
    return _adjusted(spec, region, chosen[1], chosen[2])


def _label(spec: FieldSpec, text: str) -> tuple[int, re.Match[str]] | None:
    """The first of the field's keywords (they are in priority order) found in ``text``."""
    for rank, keyword in enumerate(spec.keywords):
        match = re.search(rf"(?<![a-z0-9]){re.escape(keyword)}(?![a-z0-9])", text, re.I)
        if match:
            return rank, match
    return None


def _adjusted(spec: FieldSpec, region: list[Row], position: int, found: Found) -> Found:
    """Apply the amounts of ``adjust`` rows (a rounding adjustment) printed right after."""
    total = Decimal(found.normalized or "0")
    pieces = list(found.pieces)
    for row in region[position + 1 : position + 3]:
        if not any(_label(FieldSpec(spec.name, keywords=[k]), row.text) for k in spec.adjust):
            continue
        for amount in _amounts_in(row, 0)[:1]:
            value = Decimal(amount.normalized or "0")
            start = amount.pieces[0][1]
            if value > 0 and re.search(r"-\s*[A-Z$€£¥]{0,3}\s*$", row.text[:start], re.I):
                value = -value  # "-RM 0.02": the sign stands before the currency
            total += value
            pieces.extend(amount.pieces)
    if pieces == found.pieces:
        return found
    return Found(found.value, str(total.quantize(Decimal("0.01"))), pieces, found.certainty)


def _amounts_in(row: Row, start: int) -> list[Found]:
    found = []
    for match in AMOUNT_PATTERN.finditer(row.text, start):
        value = amount_value(match.group(0))
        if value is not None and ("." in match.group(0) or "," in match.group(0)):
            found.append(Found(match.group(0), value, [(row, match.start(), match.end())], 1.0))
    return found


def _found(
    spec: FieldSpec, value: str, pieces: list[tuple[Row, int, int]], certainty: float
) -> Found:
    return Found(value, normalize(spec.type, value, spec.date_order), pieces, certainty)


class RuleExtractor:
    """The bundled local KIE engine: labels, patterns and layout over OCR rows."""

    def __init__(self, schema: FieldSchema):
        self.schema = schema

    def identity(self) -> dict[str, Any]:
        return {"name": "ocrkie-rules", "version": version("ocrkie"), "schema": self.schema.sha256}

    def extract(self, ocr: dict[str, Any], image: str = "") -> dict[str, Any]:
        rows = rows_of(ocr)
        fields: dict[str, Any] = {}
        text_rows: dict[str, int] = {}
        for spec in self.schema.fields:
            if spec.type == "address":
                after = max(text_rows.values(), default=-1)
                found = _find_address(spec, rows, after) or _find_address(spec, rows, -1)
            elif spec.type == "date":
                found = _find_date(spec, rows)
            elif spec.type == "amount":
                found = _find_amount(spec, rows)
            else:
                found = _find_text(spec, rows)
                if found:
                    text_rows[spec.name] = found.pieces[-1][0].index
            fields[spec.name] = {"type": spec.type, **_field_value(found)}
        return {"fields": fields}
