"""The values a document could give each field, and what the model reads about each.

A document's text units (its rows, then any line, token or label text a candidate needs) are
hashed once; a candidate points into them: the units its value is made of, the label to its
left, the rows above and below. Numeric features say where it sits and how it relates to the
schema's hints and to the rules' own pick.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

from ..evidence import Row, rows_of
from ..fields import FieldSchema, FieldSpec
from ..normalize import AMOUNT_PATTERN, PUNCTUATION, amount_value, collapse_text, find_dates
from ..rules import read_fields
from ..text import (
    LEGAL_FORM,
    REGISTRATION,
    breaks_off,
    excluded,
    label_match,
    legal_form_only,
    matches_pattern,
)
from .features import text_ids

NUMERIC = 26  # numeric features per candidate
FEATURES = 2  # the version of what the model reads: a model made for another is refused
CANDIDATE_REVISION = 2  # raise it with any change to the values offered: their records rerun
CHOICE_REVISION = 3  # and this with any change to how ``inference.choose`` picks among them
TOKEN_TYPES = ("date", "amount")  # values read from within a row; the others are whole rows
MAX_NAME_ROWS = 2  # a text field's value spans at most this many rows
# "VILLAGE. JALAN", "NO 290. JALAN": a full stop after a word or a number, not after an
# abbreviation of one or two letters ("NO. 7", "D.E.")
_STOP = re.compile(r"(?<![^\W_])(\d+|[^\W\d_]{3,})\.(?=\s|$)")
# "52200KUALA", "U3SHAH", "53300KL": a number run into the word after it (of three letters or
# more, so that "3RD" stays; of two after a five-digit postcode)
_GLUED = re.compile(r"(?<=\d)(?=[^\W\d_]{3})|(?<=(?<!\d)\d{5})(?=[^\W\d_]{2})")


@dataclass
class Candidate:
    value: str
    normalized: str
    pieces: list[tuple[Row, int, int]]  # (row, start, end): where the value is printed
    units: dict[int, float]  # text units the value is made of, with their weights
    label: int  # the text left of the value on its row (-1: none)
    above: int  # the row above (-1: none)
    below: int  # the row below
    commas: int = 0  # full stops read as commas
    spaces: int = 0  # spaces put between a number and the word run into it
    numbers: list[float] = field(default_factory=list)
    mended: str | None = None  # as the OCR read it, where a known value replaced it

    @cached_property
    def span(self) -> tuple[tuple[int, int, int], ...]:
        """Where it is printed: the candidates of one span are readings of the same text."""
        return tuple((row.index, start, end) for row, start, end in self.pieces)

    @property
    def ways(self) -> set[str]:
        """How the printed text was changed to read this value: ``commas`` (full stops read as
        commas), ``spaces`` (a number parted from the word run into it), both or neither."""
        return {way for way, count in (("commas", self.commas), ("spaces", self.spaces)) if count}


@dataclass
class Sheet:
    """One document as the model reads it."""

    rows: list[Row]
    units: list[list[int]]  # feature ids per text unit (rows first)
    candidates: dict[str, list[Candidate]]  # per field
    rules: dict[str, str | None]  # the rules' pick per field (normalised), a feature
    blocks: frozenset[str] = frozenset()  # the fields whose values are rows (names, addresses)


class _Units:
    def __init__(self, rows: list[Row]):
        self.ids = [text_ids(row.text) for row in rows]
        self.index: dict[str, int] = {}

    def of(self, text: str) -> int:
        if text not in self.index:
            self.index[text] = len(self.ids)
            self.ids.append(text_ids(text))
        return self.index[text]


def read_sheet(ocr: dict[str, Any], schema: FieldSchema) -> Sheet:
    rows = rows_of(ocr)
    units = _Units(rows)
    picked = {k: v["normalized"] for k, v in read_fields(ocr, schema).items()}
    geometry = _Geometry(rows)
    labelled = {
        spec.name: [label_match(spec, r.text) is not None for r in rows] for spec in schema.fields
    }
    candidates = {}
    blocks = frozenset(spec.name for spec in schema.fields if spec.type not in TOKEN_TYPES)
    for spec in schema.fields:
        if spec.type in TOKEN_TYPES:
            found = _tokens(spec, rows, units)
        else:
            found = _blocks(spec, rows, units)
        other = [marks for name, marks in labelled.items() if name != spec.name]
        others = [any(marks[i] for marks in other) for i in range(len(rows))]
        _describe(spec, found, rows, geometry, picked[spec.name], labelled[spec.name], others)
        candidates[spec.name] = found
    return Sheet(rows, units.ids, candidates, picked, blocks)


def _blocks(spec: FieldSpec, rows: list[Row], units: _Units) -> list[Candidate]:
    """Runs of whole rows (names, addresses), single lines of rows that hold several, and
    names without a trailing registration number; an address also read the ways of
    ``_ways``."""
    longest = spec.max_lines if spec.type == "address" else MAX_NAME_ROWS
    ways = [_ways(row.text, spec.type == "address") for row in rows]
    found = []
    for first in range(len(rows)):
        for last in range(first, min(first + longest, len(rows))):
            block = rows[first : last + 1]
            lengths = [len(r.text) + 1 for r in block]
            weights = {r.index: n / sum(lengths) for r, n in zip(block, lengths, strict=True)}
            pieces = [(r, 0, len(r.text)) for r in block]
            readings = {}  # normalised value -> the first candidate that reads it
            for parts in dict.fromkeys(zip(*(ways[r.index] for r in block), strict=True)):
                candidate = _block(list(parts), pieces, weights, first, last, len(rows))
                readings.setdefault(candidate.normalized, candidate)
            if spec.type == "text" and (short := _cut(ways[last][0])) is not ways[last][0]:
                cut = [*pieces[:-1], (block[-1], 0, len(short.text))]
                parts = [*(ways[r.index][0] for r in block[:-1]), short]
                candidate = _block(parts, cut, weights, first, last, len(rows))
                readings.setdefault(candidate.normalized, candidate)
            found += readings.values()
        row = rows[first]
        for line, (start, end) in zip(row.lines, row.spans, strict=True):
            if len(row.lines) > 1:
                unit = {units.of(line["text"]): 1.0}
                form = _form(line["text"])
                found.append(_block([form], [(row, start, end)], unit, first, first, len(rows)))
                if spec.type == "text" and (short := _cut(form)) is not form:
                    cut = (row, start, start + len(short.text))
                    found.append(_block([short], [cut], unit, first, first, len(rows)))
    company = _names_company(spec)
    return [c for c in found if c.normalized and not (company and _piece_of_name(c.normalized))]


def _names_company(spec: FieldSpec) -> bool:
    """Whether the field is a company's name: its hints hold a legal form ("sdn bhd")."""
    return spec.type == "text" and any(LEGAL_FORM.search(k) for k in spec.keywords)


def _piece_of_name(name: str) -> bool:
    """A piece of a name printed over two rows, never the name itself: its legal form alone
    ("CO.(M) SDN BHD" below "POPULAR BOOK"), or a row that breaks off at "&"."""
    return breaks_off(name) or legal_form_only(name)


@dataclass(frozen=True)
class _Form:
    """One reading of a row's text. ``spaced`` is it normalised but for the trimming of its
    ends, so that a block's normalised value is its rows' joined (``_joined``)."""

    text: str
    spaced: str
    commas: int = 0  # full stops read as commas
    spaces: int = 0  # spaces put between a number and a word


def _form(text: str, commas: int = 0, spaces: int = 0) -> _Form:
    return _Form(text, collapse_text(text), commas, spaces)


def _ways(text: str, address: bool) -> tuple[_Form, ...]:
    """A row as printed; an address's row also with a space where a number runs into a word,
    with its parting full stops as commas, and with both (each the same as the form it
    changes where it changes nothing)."""
    printed = _form(text)
    if not address:
        return (printed,)
    spaced = _with_spaces(printed)
    return printed, spaced, _with_commas(printed), _with_commas(spaced)


def _with_spaces(form: _Form) -> _Form:
    text, gaps = _GLUED.subn(" ", form.text)
    return _form(text, form.commas, gaps) if gaps else form


def _with_commas(form: _Form) -> _Form:
    text, stops = _STOP.subn(r"\1,", form.text)
    return _form(text, stops, form.spaces) if stops else form


def _cut(form: _Form) -> _Form:
    """The row without the registration number it ends with, if it does."""
    text = REGISTRATION.sub("", form.text)
    return _form(text, form.commas, form.spaces) if text != form.text else form


def _block(
    parts: list[_Form],
    pieces: list[tuple[Row, int, int]],
    weights: dict[int, float],
    first: int,
    last: int,
    count: int,
) -> Candidate:  # rows (or part of one): no label of their own
    return Candidate(
        " ".join(part.text for part in parts),
        _joined([part.spaced for part in parts]),
        pieces,
        weights,
        -1,
        first - 1,
        last + 1 if last + 1 < count else -1,
        commas=sum(part.commas for part in parts),
        spaces=sum(part.spaces for part in parts),
    )


def _joined(spaced: list[str]) -> str:
    """``normalize_text`` of texts joined by spaces, from each one's ``collapse_text``."""
    text = ""
    for part in spaced:
        if text and part and text[-1] not in PUNCTUATION and part[0] not in PUNCTUATION:
            text += " "
        text += part
    return text.strip(" " + PUNCTUATION)


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
        # running counts of letters, digits and capitals along each row's text
        self.kinds = [[_running(kind, row.text) for kind in _KINDS] for row in rows]

    def characters(self, pieces: list[tuple[Row, int, int]]) -> list[int]:
        """How many letters, digits and capitals the pieces of printed text hold."""
        counts = [0, 0, 0]
        for row, start, end in pieces:
            for i, running in enumerate(self.kinds[row.index]):
                counts[i] += running[end] - running[start]
        return counts


_KINDS = (str.isalpha, str.isdigit, str.isupper)


def _running(kind: Callable[[str], bool], text: str) -> list[int]:
    counts = [0]
    for char in text:
        counts.append(counts[-1] + kind(char))
    return counts


def _height(polygon: list[list[float]]) -> float:
    (x1, y1), _, _, (x4, y4) = polygon[:4]
    return max(((x4 - x1) ** 2 + (y4 - y1) ** 2) ** 0.5, 1.0)


def _describe(
    spec: FieldSpec,
    found: list[Candidate],
    rows: list[Row],
    geometry: _Geometry,
    rules: str | None,
    labelled: list[bool],
    others: list[bool],
) -> None:
    """Fill each candidate's numeric features. ``labelled`` marks the rows that this field's
    hints match, ``others`` those that another field's do (a name is not an address)."""
    count = max(len(rows), 1)
    amounts = {Decimal(c.normalized) for c in found} if spec.type == "amount" else set()
    values = sorted(amounts, reverse=True)
    seen: dict[str, int] = {}
    for c in found:
        seen[c.normalized] = seen.get(c.normalized, 0) + 1
    # the schema's hints, row by row (a block has a hint when one of its rows has)
    barred = [excluded(spec, row.text) for row in rows]
    patterned = [matches_pattern(spec, row.text) for row in rows]
    dated = [spec.type != "date" and bool(find_dates(row.text)) for row in rows]
    labelled, others, barred, patterned, dated = map(
        _counts, (labelled, others, barred, patterned, dated)
    )
    for order, c in enumerate(found):
        first, last = c.pieces[0][0].index, c.pieces[-1][0].index
        left, top, _ = geometry.boxes[first]
        bottom = geometry.boxes[last][2]
        letters, digits, capitals = geometry.characters(c.pieces)
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
            float(labelled[last + 1] > labelled[max(first - 1, 0)]),
            float(barred[last + 1] > barred[first]),
            float(patterned[last + 1] > patterned[first]),
            float(rules is not None and c.normalized == rules),
            rank,
            float(rank == 0.0 and bool(values)),
            min(seen[c.normalized] / 4, 1.0),
            float(partial),
            order / max(len(found), 1),
            min(max(geometry.sizes[first : last + 1]), 3.0),
            min(geometry.wordy_before[first] / 10, 1.0),
            capitals / max(letters, 1),
            min(len(c.value.split()) / 10, 1.0),
            float(dated[last + 1] > dated[first]),  # a name or an amount's row holds no date
            len(c.value) / max(sum(len(row.text) for row, _, _ in c.pieces), 1),
            min(c.commas / 3, 1.0),
            float(others[last + 1] > others[first]),
        ]


def _counts(marks: list[bool]) -> list[int]:
    """Running counts: rows first..last hold a mark when counts[last + 1] > counts[first]."""
    counts = [0]
    for mark in marks:
        counts.append(counts[-1] + mark)
    return counts
