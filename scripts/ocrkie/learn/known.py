"""The values and words a model was taught, to mend the OCR's misreadings of them.

A team's documents come back to the same vendors. Where the span the model picked for a name
or an address reads within a few characters of a value labelled in training, but not
exactly as any, the labelled value is more often what was printed: "NO 290,JALANAIR PANAS"
is "NO 290,JALAN AIR PANAS". Whether it is, per field, training counts say (``mend_rates``).
The values are kept in the model folder (``known.json``), with how many documents bore each.

Names and addresses are also made of words that recur across vendors ("JALAN", "TAMAN",
"SELANGOR", "SDN", "BHD"). A word of a picked name or address that is none of them, but
reads one with a character taken for its look-alike ("JAIAN", "SCLANGOR": I for L, C for E)
or with an accent the OCR added ("JÁLAN"), or both ("JAĪAN"), is that word (``spelled``). Only
words that at least two different labelled values hold are kept (``words.json``), so that no
one vendor's name is learnt whole. A number read with a letter O for a zero ("NO 29O") is the
number.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from ..errors import ModelError
from ..text import edit_limit

KNOWN = "known.json"
WORDS = "words.json"
KINDS = ("text", "address")  # the field types whose values recur per vendor
WORD = re.compile(r"[^\s,.;()/&]+")  # ":", "!" and "_" stay in: "JA:AN" is a misread "JALAN"
MIN_VALUES = 2  # a word is kept where this many different labelled values hold it
# characters an OCR engine takes for one another (measured on receipts' names and addresses)
LOOK_ALIKES = ("IL1T|J!:_", "O0DQ", "S5", "B8", "G6", "Z2", "CEG", "KX", "UV", "MN", "HN")
_LOOK_ALIKE = {(a, b) for group in LOOK_ALIKES for a in group for b in group if a != b}
# digits with an O or a Q among them, two digits at least: "29O", "2O18" (not "NO", "G-5B")
ZEROS_MISREAD = re.compile(r"(?=(?:.*\d){2})[\dOQ]*[OQ][\dOQ]*")


@dataclass
class KnownValues:
    counts: dict[str, Counter[str]] = field(default_factory=dict)  # field -> value -> documents
    words: Counter[str] = field(default_factory=Counter)  # word -> labelled values holding it

    @classmethod
    def of(cls, labels: Iterable[dict[str, str | None]], fields: list[str]) -> KnownValues:
        """From the normalised labels of documents (field -> value)."""
        counts: dict[str, Counter[str]] = {name: Counter() for name in fields}
        for truth in labels:
            for name in fields:
                if truth.get(name):
                    counts[name][truth[name]] += 1  # type: ignore[index]
        return cls({name: c for name, c in counts.items() if c})

    @staticmethod
    def words_of(labels: Iterable[dict[str, str | None]], fields: list[str]) -> Counter[str]:
        """The words that at least ``MIN_VALUES`` different values of ``fields`` hold."""
        values = {(name, truth[name]) for truth in labels for name in fields if truth.get(name)}
        counts = Counter(w for _, value in values for w in set(WORD.findall(value.upper())))
        return Counter({w: n for w, n in counts.items() if n >= MIN_VALUES})

    def merged(self, other: KnownValues) -> KnownValues:
        names = sorted({*self.counts, *other.counts})
        return KnownValues(
            {n: self.counts.get(n, Counter()) + other.counts.get(n, Counter()) for n in names},
            self.words + other.words,
        )

    def spelled(self, text: str) -> str:
        """``text`` with each word that misreads a known one (see the module) mended."""
        if not self.words:
            return text
        return WORD.sub(lambda found: self._word(found.group(0)), text)

    def _word(self, word: str) -> str:
        upper = word.upper()
        if upper in self.words:
            return word
        plain = "".join(
            c for c in unicodedata.normalize("NFKD", upper) if not unicodedata.combining(c)
        )
        if plain in self.words:
            return _cased(plain, word)
        if ZEROS_MISREAD.fullmatch(plain):
            return re.sub("[OQ]", "0", plain)
        if len(plain) < 3:
            return word
        # an added accent and a look-alike at once: "JAĪAN"
        near = [w for w in self._lengths.get(len(plain), []) if _one_look_alike(plain, w)]
        if not near:
            return word
        best = max(near, key=self.words.__getitem__)
        if sum(self.words[w] == self.words[best] for w in near) > 1:
            return word  # no one word it misreads
        return _cased(best, word)

    @cached_property
    def _lengths(self) -> dict[int, list[str]]:
        """The known words by their length (a look-alike keeps it)."""
        lengths: dict[int, list[str]] = {}
        for word in self.words:
            lengths.setdefault(len(word), []).append(word)
        return lengths

    def nearest(self, name: str, value: str, own: str | None = None) -> str | None:
        """The known value ``value`` misreads, if one is close enough; None where ``value``
        is itself known. ``own``: the document's own label, not counted (a document in
        training must not find its own label known)."""
        counts = self.counts.get(name)
        if not counts:
            return None

        def known(v: str) -> bool:
            return counts[v] > (v == own)

        if value in counts and known(value):
            return None
        close = process.extract(
            value,
            list(counts),
            scorer=Levenshtein.distance,
            score_cutoff=edit_limit(len(value)),
            limit=None,
        )
        close = [(v, d) for v, d, _ in close if known(v)]
        if not close:
            return None
        return min(close, key=lambda vd: (vd[1], -counts[vd[0]], vd[0]))[0]

    def words_text(self) -> str:
        return json.dumps(dict(sorted(self.words.items())), indent=0, ensure_ascii=False) + "\n"

    def text(self) -> str:
        data = {n: dict(sorted(c.items())) for n, c in sorted(self.counts.items())}
        return json.dumps(data, indent=1, ensure_ascii=False) + "\n"

    def save(self, folder: Path) -> tuple[str | None, str | None]:
        """Write ``known.json`` and ``words.json`` (each none where nothing is known);
        returns their sha256."""
        return (
            _write(folder / KNOWN, self.text() if self.counts else None),
            _write(folder / WORDS, self.words_text() if self.words else None),
        )


def _write(path: Path, text: str | None) -> str | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if text is None:
        path.unlink(missing_ok=True)
        return None
    path.write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode()).hexdigest()


def _one_look_alike(read: str, word: str) -> bool:
    """Whether ``read`` is ``word`` with one character taken for its look-alike."""
    differ = [(a, b) for a, b in zip(read, word, strict=True) if a != b]
    return len(differ) == 1 and differ[0] in _LOOK_ALIKE


def _cased(word: str, like: str) -> str:
    """``word`` (upper case) in the case of ``like``."""
    return word.lower() if like.islower() else word.title() if like.istitle() else word


def load_known(folder: Path, card: dict[str, Any]) -> KnownValues:
    """The known values and words of a model folder, as its card names them (none: a model
    made without them, or before them)."""
    values = _read(folder / KNOWN, card.get("known_sha256"), "values")
    words = _read(folder / WORDS, card.get("words_sha256"), "words")
    return KnownValues(
        {name: Counter(counts) for name, counts in (values or {}).items()}, Counter(words or {})
    )


def _read(path: Path, digest: str | None, what: str) -> Any:
    if digest is None:
        return None
    if not path.is_file():
        raise ModelError(f"{path} is missing: the model's card names its known {what}")
    text = path.read_text(encoding="utf-8")
    if hashlib.sha256(text.encode()).hexdigest() != digest:
        raise ModelError(f"{path} does not match the model's card (damaged?)")
    return json.loads(text)
