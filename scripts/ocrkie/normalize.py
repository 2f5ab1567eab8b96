"""Normalised field values: dates as ISO 8601, amounts as decimal strings, text upper-cased.

The evaluator applies the same functions to the ground truth, so "exact match after
normalisation" means the same thing everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache

MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ]
    )
    for m in names
}
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))

Groups = tuple[str, ...]


def _year(text: str) -> int:
    year = int(text)
    return year + 2000 if year < 100 else year


def _safe_date(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _year_first(groups: Groups, order: str) -> str | None:
    return _safe_date(int(groups[0]), int(groups[1]), int(groups[2]))


def _numbers(groups: Groups, order: str) -> str | None:
    """Day and month (or month and day: ``order``, where both could be months), then year."""
    first, second, year = int(groups[0]), int(groups[1]), _year(groups[2])
    if first > 12 or (order == "DMY" and second <= 12):
        return _safe_date(year, second, first)
    return _safe_date(year, first, second)


def _day_month_name(groups: Groups, order: str) -> str | None:
    return _safe_date(_year(groups[2]), MONTHS[groups[1].lower()], int(groups[0]))


def _month_name_day(groups: Groups, order: str) -> str | None:
    return _safe_date(int(groups[2]), MONTHS[groups[0].lower()], int(groups[1]))


# Numeric dates: 25/12/2018, 25-12-18, 25.12.2018, 2018-12-25, 25122018; and 25 Dec 2018,
# 25/DEC/2018, Dec 25, 2018. What OCR does to them is allowed for: the date may run into the time
# ("14/03/20185:57PM", "06/04/1711:43am", "2018-01-0522:55": the space between them was
# dropped), a dash may be read as "~", and in "#2- 25/12/2016" the date is not "2- 25/12"
# (a date does not go on with "/" and more digits).
_CLOCK = r"(?=\d{1,2}:\d{2})"  # a time follows straight away
DATE_PATTERNS: list[tuple[re.Pattern[str], Callable[[Groups, str], str | None]]] = [
    (
        re.compile(rf"(?<!\d)(\d{{4}})[-/.](\d{{1,2}})[-/.](\d{{2}}{_CLOCK}|\d{{1,2}}(?!\d))"),
        _year_first,
    ),
    (
        re.compile(
            r"(?<!\d)(\d{1,2})\s*[-/.~]\s*(\d{1,2})\s*[-/.~]\s*"
            rf"((?:19|20)\d{{2}}{_CLOCK}|(?:19|20)\d{{2}}(?!\d)|\d{{2}}{_CLOCK}|\d{{2}}(?!\d))"
            r"(?!\s*/\s*\d)"
        ),
        _numbers,
    ),
    # 25032018, as some tills print it (or as OCR leaves 25/03/2018 when it drops a
    # separator: 2503/2018): only with a four-digit year, and not inside a longer number
    (re.compile(r"(?<![\d.,])(\d{2})[-/.]?(\d{2})[-/.]?((?:19|20)\d{2})(?![\d.,]\d)"), _numbers),
    (
        re.compile(
            rf"(?<!\d)(\d{{1,2}})[\s/.-]*({_MONTH})\.?[\s,/.-]*(\d{{4}}|\d{{2}})(?!\d)", re.I
        ),
        _day_month_name,
    ),
    (re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}}),?\s+(\d{{4}})(?!\d)", re.I), _month_name_day),
]

# 1,234.50 | 1234.50 | 9.00 | 12,50 (a decimal comma)
AMOUNT_PATTERN = re.compile(
    r"(?<![\d.,])-?(?:\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:[.,]\d{1,2})?)(?![\d])"
)


def find_dates(text: str, order: str = "DMY") -> list[tuple[str, str]]:
    """Every date in ``text`` as ``(raw, iso)``, in order of appearance.

    ``order`` (DMY or MDY) settles numeric dates whose first two parts could both be months.
    """
    found: list[tuple[int, str, str]] = []
    for pattern, read in DATE_PATTERNS:
        position = 0
        while match := pattern.search(text, position):
            iso = read(match.groups(), order)
            if iso:
                found.append((match.start(), match.group(0), iso))
            # "#19- 18/01/2018" first matches "19- 18/01" (no such date): retry just after
            # its start, so that an impossible match does not swallow the real date.
            position = match.end() if iso else match.start() + 1
    return [(raw, iso) for _, raw, iso in sorted(set(found))]  # 25/03/2018 matches twice


# 20180428: how services (Information Extraction) often answer; not searched for in OCR
# rows, where eight digits that start with a year are more often a receipt number than a
# date (the tills seen that print none of a date's separators put the day first).
COMPACT_DATE = re.compile(r"^\s*((?:19|20)\d{2})(\d{2})(\d{2})\s*$")


def normalize_date(text: str, order: str = "DMY") -> str | None:
    dates = find_dates(text, order)
    if dates:
        return dates[0][1]
    compact = COMPACT_DATE.match(text)
    return _safe_date(*map(int, compact.groups())) if compact else None


def normalize_amount(text: str) -> str | None:
    """``"RM 1,234.50"`` -> ``"1234.50"``; a comma before 1-2 final digits is a decimal comma."""
    match = AMOUNT_PATTERN.search(text)
    return amount_value(match.group(0)) if match else None


def amount_value(token: str) -> str | None:
    if re.search(r",\d{1,2}$", token):
        token = token.replace(",", ".")
    try:
        return str(Decimal(token.replace(",", "")).quantize(Decimal("0.01")))
    except InvalidOperation:
        return None


PUNCTUATION = ",.;:"
_SPACED_PUNCTUATION = re.compile(rf"\s*([{re.escape(PUNCTUATION)}])\s*")


def normalize_text(text: str) -> str:
    """Unicode NFKC, upper case, one space between words, none around punctuation.

    Printed and transcribed text disagree mostly on spacing around commas and full stops
    ("BAHRU, JOHOR" vs "BAHRU,JOHOR"), which carries no information.
    """
    return collapse_text(text).strip(" " + PUNCTUATION)


@lru_cache(maxsize=65536)
def collapse_text(text: str) -> str:
    """``normalize_text`` but for trimming punctuation off the ends (cached: the rows of a
    page are read for several fields)."""
    text = " ".join(unicodedata.normalize("NFKC", text).upper().split())
    return _SPACED_PUNCTUATION.sub(r"\1", text)


def normalize(kind: str, text: str | None, date_order: str = "DMY") -> str | None:
    if text is None:
        return None
    if kind == "date":
        return normalize_date(text, date_order)
    if kind == "amount":
        return normalize_amount(text)
    return normalize_text(text) or None


_NOT_LETTERS = re.compile(r"[\W_]+")


def letters(value: str | None) -> str | None:
    """A value as the letters scorer compares it: upper-case letters and digits only (case,
    spaces and punctuation ignored: a comma missing from an address is not a wrong address to
    the person who reads it)."""
    return None if value is None else _NOT_LETTERS.sub("", value.upper())


def right(value: str | None, truth: str | None) -> tuple[bool, bool]:
    """Whether ``value`` matches ``truth`` under the strict scorer (normalised values equal)
    and the letters scorer (``letters`` equal)."""
    if value is None or truth is None:
        return False, False
    return value == truth, letters(value) == letters(truth)
