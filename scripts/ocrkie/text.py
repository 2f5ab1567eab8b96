"""What a printed value looks like: a company's registration number and legal form, a name
broken over two rows, and a field's labels, patterns and exclusions (its hints in the field
schema) found in a row's text. The rules and the learned model both read text through these."""

from __future__ import annotations

import re
from functools import cache

from .fields import FieldSpec

# A company's registration number after its name: "(126926-H)", "519537-X)", "273500-U (GKJ)",
# "273500-U (KJ1)"
EDITS_PER_CHAR = 0.1  # a value this close (at least one edit) is a misreading of another


def edit_limit(length: int) -> int:
    """The most edits by which a value of ``length`` characters misreads another (a known
    value, the batch's agreed one)."""
    return max(1, int(EDITS_PER_CHAR * length))


REGISTRATION = re.compile(
    r"\s*(?:(?:\([^()]*\d[^()]*\)|\(?\b\d{4,}-[A-Z]\)?)\s*)+(?:\([A-Z]{2,5}\))?\s*$"
)
# A company's legal form, and a country in brackets: "SDN BHD", "S/B", "CO.(M)", "PTE LTD"
LEGAL_FORM = re.compile(
    r"\b(?:SDN|BHD|BERHAD|SENDIRIAN|S/B|PLT|PTE|PTY|LTD|LLC|INC|GMBH|CORP|CO)\b|\([A-Z]\)", re.I
)


def legal_form_only(text: str) -> bool:
    """Whether ``text`` is a legal form and nothing else: the last row of a name printed over
    two ("CO.(M) SDN BHD" below "POPULAR BOOK")."""
    return not any(c.isalnum() for c in LEGAL_FORM.sub("", text))


def breaks_off(text: str) -> bool:
    """Whether ``text`` ends at "&": the first row of a name printed over two ("HOME MASTER
    HARDWARE &" above "ELECTRICAL")."""
    return text.rstrip().endswith("&")


def keyword_match(spec: FieldSpec, text: str) -> re.Match[str] | None:
    label = label_match(spec, text)
    return label[1] if label else None


def excluded(spec: FieldSpec, text: str) -> bool:
    return bool(spec.exclude) and bool(any_of(tuple(spec.exclude)).search(text))


def matches_pattern(spec: FieldSpec, text: str) -> bool:
    return bool(spec.patterns) and bool(any_of(tuple(spec.patterns)).search(text))


@cache
def any_of(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One search for any of the patterns (a row is searched for every field's hints)."""
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns), re.I)


@cache
def keyword_regex(keyword: str) -> re.Pattern[str]:
    return re.compile(keyword_pattern(keyword), re.I)


def keyword_pattern(keyword: str) -> str:
    return rf"(?<![a-z0-9]){re.escape(keyword)}(?![a-z0-9])"


@cache
def any_keyword(keywords: tuple[str, ...]) -> re.Pattern[str]:
    return any_of(tuple(map(keyword_pattern, keywords)))


def label_match(spec: FieldSpec, text: str) -> tuple[int, re.Match[str]] | None:
    """The first of the field's keywords (they are in priority order) found in ``text``."""
    if not spec.keywords or not any_keyword(tuple(spec.keywords)).search(text):
        return None
    for rank, keyword in enumerate(spec.keywords):
        if match := keyword_regex(keyword).search(text):
            return rank, match
    return None
