"""The values a document could give each field, and what the model reads about each.

A document's text units (its rows, then any line, token or label text a candidate needs) are
hashed once; a candidate points into them: the units its value is made of, the label to its
left, the rows above and below. Numeric features say where it sits and how it relates to the
schema's hints and to the rules' own pick.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..engines import Document
from ..engines.rules import RuleExtractor, excluded, label_match, matches_pattern
from ..evidence import Row, rows_of
from ..fields import FieldSchema, FieldSpec
from ..normalize import AMOUNT_PATTERN, amount_value, find_dates, normalize
from .features import text_ids

NUMERIC = 24  # numeric features per candidate
FEATURES = 1  # the version of what the model reads: a model made for another is refused
MAX_NAME_ROWS = 2  # a text field's value spans at most this many rows
_REGISTRATION = re.compile(r"\s*\([^()]*\d[^()]*\)\s*$")  # "(126926-H)" after a company name


@dataclass
class Candidate:
    value: str
    normalized: str
    pieces: list[tuple[Row, int, int]]  # (row, start, end): where the value is printed
    units: dict[int, float]  # text units the value is made of, with their weights
    label: int  # the text left of the value on its row (-1: none)
    above: int  # the row above (-1: none)
    below: int  # the row below
    numbers: list[float] = field(default_factory=list)


@dataclass
class Sheet:
    """One document as the model reads it."""

    rows: list[Row]
    units: list[list[int]]  # feature ids per text unit (rows first)
    candidates: dict[str, list[Candidate]]  # per field
    rules: dict[str, str | None]  # the rules' pick per field (normalised), a feature


class _Units:
    def __init__(self, rows: list[Row]):
        self.ids = [text_ids(row.text) for row in rows]
        self.index: dict[str, int] = {}

    def of(self, text: str) -> int:
        if text not in self.index:
            self.index[text] = len(self.ids)
            self.ids.append(text_ids(text))
        return self.index[text]


def read_sheet(ocr: dict[str, Any], schema: FieldSchema, rules: RuleExtractor) -> Sheet:
    rows = rows_of(ocr)
    units = _Units(rows)
    picked = {k: v["normalized"] for k, v in rules.extract(Document(ocr, "")).fields.items()}
    geometry = _Geometry(rows)
    candidates = {}
    for spec in schema.fields:
        if spec.type in ("date", "amount"):
            found = _tokens(spec, rows, units)
        else:
            found = _blocks(spec, rows, units)
        _describe(spec, found, rows, geometry, picked[spec.name])
        candidates[spec.name] = found
    return Sheet(rows, units.ids, candidates, picked)


def _blocks(spec: FieldSpec, rows: list[Row], units: _Units) -> list[Candidate]:
    """Runs of whole rows (names, addresses), single lines of rows that hold several, and
    names without a trailing registration number."""
    longest = spec.max_lines if spec.type == "address" else MAX_NAME_ROWS
    found = []
    for first in range(len(rows)):
        for last in range(first, min(first + longest, len(rows))):
            block = rows[first : last + 1]
            lengths = [len(r.text) + 1 for r in block]
            weights = {r.index: n / sum(lengths) for r, n in zip(block, lengths, strict=True)}
            pieces = [(r, 0, len(r.text)) for r in block]
            value = " ".join(r.text for r in block)
            found.append(_candidate(spec, value, pieces, weights, first, last, len(rows)))
            if spec.type == "text" and (short := _REGISTRATION.sub("", value)) != value:
                end = len(block[-1].text) - (len(value) - len(short))
                cut = [*pieces[:-1], (block[-1], 0, max(end, 0))]
                found.append(_candidate(spec, short, cut, weights, first, last, len(rows)))
        row = rows[first]
        for line, (start, end) in zip(row.lines, row.spans, strict=True):
            if len(row.lines) > 1:
                unit = units.of(line["text"])
                pieces = [(row, start, end)]
                found.append(
                    _candidate(spec, line["text"], pieces, {unit: 1.0}, first, first, len(rows))
                )
    return [c for c in found if c.normalized]


def _tokens(spec: FieldSpec, rows: list[Row], units: _Units) -> list[Candidate]:
    """Every date (or amount with decimals) printed, with the text to its left as its label."""
    found = []
    for row in rows:
        if spec.type == "date":
            matches, start = [], 0
            for raw, iso in find_dates(row.text, spec.date_order):
                at = row.text.index(raw, start)
                matches.append((at, at + len(raw), raw, iso))
                start = at + 1
        else:
            matches = [
                (m.start(), m.end(), m.group(0), amount_value(m.group(0)))
                for m in AMOUNT_PATTERN.finditer(row.text)
                if "." in m.group(0) or "," in m.group(0)
            ]
        for start, end, raw, normalized in matches:
            if normalized is None:
                continue
            label = units.of(row.text[:start].strip()[-40:])
            value = units.of(raw)
            candidate = Candidate(
                raw,
                normalized,
                [(row, start, end)],
                {value: 1.0},
                label,
                row.index - 1,
                row.index + 1 if row.index + 1 < len(rows) else -1,
            )
            found.append(candidate)
    return found


def _candidate(  # a block of rows (or part of one): no label of its own
    spec: FieldSpec,
    value: str,
    pieces: list[tuple[Row, int, int]],
    weights: dict[int, float],
    first: int,
    last: int,
    count: int,
) -> Candidate:
    below = last + 1 if last + 1 < count else -1
    normalized = normalize(spec.type if spec.type != "address" else "text", value) or ""
    return Candidate(value, normalized, pieces, weights, -1, first - 1, below)


class _Geometry:
    """Each row's box relative to the page (0-1), its height relative to the page's usual
    line height (a name is often printed larger), and how many wordy rows come before it."""

    def __init__(self, rows: list[Row]):
        points = [p for r in rows for line in r.lines for p in line["polygon"]]
        self.width = max((p[0] for p in points), default=1.0) or 1.0
        self.height = max((p[1] for p in points), default=1.0) or 1.0
        self.boxes = []
        for row in rows:
            xs = [p[0] for line in row.lines for p in line["polygon"]]
            ys = [p[1] for line in row.lines for p in line["polygon"]]
            self.boxes.append((min(xs) / self.width, min(ys) / self.height, max(ys) / self.height))
        heights = [_height(line["polygon"]) for r in rows for line in r.lines]
        usual = sorted(heights)[len(heights) // 2] if heights else 1.0
        self.sizes = [max(_height(line["polygon"]) for line in r.lines) / usual for r in rows]
        self.wordy_before, wordy = [], 0
        for row in rows:
            self.wordy_before.append(wordy)
            wordy += sum(map(str.isalpha, row.text)) >= 3


def _height(polygon: list[list[float]]) -> float:
    (x1, y1), _, _, (x4, y4) = polygon[:4]
    return max(((x4 - x1) ** 2 + (y4 - y1) ** 2) ** 0.5, 1.0)


def _describe(
    spec: FieldSpec,
    found: list[Candidate],
    rows: list[Row],
    geometry: _Geometry,
    rules: str | None,
) -> None:
    """Fill each candidate's numeric features."""
    count = max(len(rows), 1)
    amounts = {Decimal(c.normalized) for c in found} if spec.type == "amount" else set()
    values = sorted(amounts, reverse=True)
    seen: dict[str, int] = {}
    for c in found:
        seen[c.normalized] = seen.get(c.normalized, 0) + 1
    # the schema's hints, row by row (a block has a hint when one of its rows has)
    labelled = [label_match(spec, row.text) is not None for row in rows]
    barred = [excluded(spec, row.text) for row in rows]
    patterned = [matches_pattern(spec, row.text) for row in rows]
    dated = [bool(find_dates(row.text)) for row in rows] if spec.type != "date" else []
    for order, c in enumerate(found):
        first, last = c.pieces[0][0].index, c.pieces[-1][0].index
        left, top, _ = geometry.boxes[first]
        bottom = geometry.boxes[last][2]
        letters = sum(map(str.isalpha, c.value))
        digits = sum(map(str.isdigit, c.value))
        size = max(len(c.value), 1)
        amount = Decimal(c.normalized) if spec.type == "amount" else Decimal(0)
        rank = values.index(amount) / len(values) if values else 0.0
        partial = c.pieces[0][1] > 0 or c.pieces[-1][2] < len(c.pieces[-1][0].text)
        c.numbers = [
            first / count,
            last / count,
            (last - first + 1) / 6,
            top,
            bottom,
            left,
            digits / size,
            letters / size,
            min(len(c.value) / 40, 3.0),
            float(any(labelled[max(first - 1, 0) : last + 1])),
            float(any(barred[first : last + 1])),
            float(any(patterned[first : last + 1])),
            float(rules is not None and c.normalized == rules),
            rank,
            float(rank == 0.0 and bool(values)),
            min(seen[c.normalized] / 4, 1.0),
            float(partial),
            order / max(len(found), 1),
            min(max(geometry.sizes[first : last + 1]), 3.0),
            min(geometry.wordy_before[first] / 10, 1.0),
            sum(map(str.isupper, c.value)) / max(letters, 1),
            min(len(c.value.split()) / 10, 1.0),
            float(any(dated[first : last + 1])),  # a name or an amount's row holds no date
            len(c.value) / max(sum(len(row.text) for row, _, _ in c.pieces), 1),
        ]
