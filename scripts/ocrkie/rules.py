"""The rules: each field of a schema found in an OCR record's rows by its hints (labels,
patterns, layout; see ``fields``), with the OCR lines and words every value came from. The
rules engine (``engines.rules``) serves them; the learned model reads their pick too."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .evidence import Row, rows_of, source_of
from .fields import FieldSchema, FieldSpec
from .normalize import AMOUNT_PATTERN, amount_value, find_dates, normalize
from .text import (
    REGISTRATION,
    breaks_off,
    excluded,
    keyword_match,
    label_match,
    legal_form_only,
    matches_pattern,
)

REVISION = 5  # raise it with any change to what the rules extract: their records rerun


def _region(rows: list[Row], region: str) -> list[Row]:
    if region == "top":
        return rows[: max(8, round(len(rows) * 0.35))]
    if region == "bottom":
        return rows[round(len(rows) * 0.3) :]
    return rows


@dataclass
class Found:
    value: str
    normalized: str | None
    pieces: list[tuple[Row, int, int]]  # (row, start, end) character spans of the value
    certainty: float  # 1.0 when a label or pattern confirmed it, lower for fallbacks


def _field_value(found: Found | None) -> dict[str, Any]:
    if found is None:
        return {"value": None, "normalized": None, "confidence": 0.0, "source": None}
    source, confidences = source_of(found.pieces)
    mean = sum(confidences) / len(confidences) if confidences else 0.0
    return {
        "value": found.value,
        "normalized": found.normalized,
        "confidence": round(mean * found.certainty, 4),
        "source": source,
    }


# --- strategies ------------------------------------------------------------------------


def _find_text(spec: FieldSpec, rows: list[Row]) -> Found | None:
    candidates = [r for r in _region(rows, spec.region) if not excluded(spec, r.text)]
    for row in candidates:
        match = keyword_match(spec, row.text)
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
    """A name row, joined with the row above when the label or a legal form stands alone
    ("SDN BHD", "CO.(M) SDN BHD") and with the row below when it breaks off at "&", without a
    trailing registration number such as "(126926-H)"."""
    pieces = [(row, 0, len(row.text))]
    rest = row.text[: label.start()] + row.text[label.end() :]
    alone = sum(c.isalpha() for c in rest) < 3 or legal_form_only(row.text)
    if alone and row.index > 0:
        above = rows[row.index - 1]
        pieces.insert(0, (above, 0, len(above.text)))
    if breaks_off(row.text) and row.index + 1 < len(rows):
        below = rows[row.index + 1]
        pieces.append((below, 0, len(below.text)))
    value = " ".join(r.text for r, _, _ in pieces)
    value = REGISTRATION.sub("", value)
    return _found(spec, value, pieces, 1.0)


def _find_address(spec: FieldSpec, rows: list[Row], after: int) -> Found | None:
    region = [r for r in _region(rows, spec.region) if r.index > after]
    for position, row in enumerate(region):
        if excluded(spec, row.text):
            continue
        if keyword_match(spec, row.text) or matches_pattern(spec, row.text):
            block = [row]
            for nxt in region[position + 1 :]:
                if len(block) >= spec.max_lines or excluded(spec, nxt.text):
                    break
                if nxt.index != block[-1].index + 1:
                    break
                if matches_pattern(spec, block[-1].text) and not _is_place_name(nxt.text):
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
    labelled = [r for r in region if keyword_match(spec, r.text)]
    for rank, group in enumerate((labelled, region)):
        for row in group:
            if excluded(spec, row.text):
                continue
            for raw, iso in find_dates(row.text, spec.date_order):
                start = row.text.index(raw)
                return Found(raw, iso, [(row, start, start + len(raw))], 1.0 if rank == 0 else 0.8)
    return None


def _find_amount(spec: FieldSpec, rows: list[Row]) -> Found | None:
    region = _region(rows, spec.region)
    candidates: list[tuple[int, int, Found]] = []  # (label rank, row position, amount)
    for position, row in enumerate(region):
        label = label_match(spec, row.text)
        if label is None or excluded(spec, row.text):
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


def _adjusted(spec: FieldSpec, region: list[Row], position: int, found: Found) -> Found:
    """Apply the amounts of ``adjust`` rows (a rounding adjustment) printed right after."""
    total = Decimal(found.normalized or "0")
    pieces = list(found.pieces)
    for row in region[position + 1 : position + 3]:
        if not any(label_match(FieldSpec(spec.name, keywords=[k]), row.text) for k in spec.adjust):
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


def read_fields(ocr: dict[str, Any], schema: FieldSchema) -> dict[str, dict[str, Any]]:
    """Every field of ``schema`` in an OCR record: ``{type, value, normalized, confidence,
    source}`` (the value None where the rules find none)."""
    rows = rows_of(ocr)
    fields: dict[str, Any] = {}
    text_rows: dict[str, int] = {}
    for spec in schema.fields:
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
    return fields
