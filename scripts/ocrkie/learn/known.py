"""The values a model was taught, to mend the OCR's misreadings of them.

A team's documents come back to the same vendors. Where the span the model picked for a name
or an address reads within a few characters of a value labelled in training, but not
exactly as any, the labelled value is more often what was printed: "NO 290,JALANAIR PANAS"
is "NO 290,JALAN AIR PANAS". Whether it is, per field, training counts say (``mend_rates``).
The values are kept in the model folder (``known.json``), with how many documents bore each.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from ..errors import ModelError

KNOWN = "known.json"
KINDS = ("text", "address")  # the field types whose values recur per vendor
EDITS_PER_CHAR = 0.1  # a value this close (at least one edit) is a misreading of a known one


def edit_limit(length: int) -> int:
    """The most edits by which a value of ``length`` characters misreads a known one."""
    return max(1, int(EDITS_PER_CHAR * length))


@dataclass
class KnownValues:
    counts: dict[str, Counter[str]] = field(default_factory=dict)  # field -> value -> documents

    @classmethod
    def of(cls, labels: Iterable[dict[str, str | None]], fields: list[str]) -> KnownValues:
        """From the normalised labels of documents (field -> value)."""
        counts: dict[str, Counter[str]] = {name: Counter() for name in fields}
        for truth in labels:
            for name in fields:
                if truth.get(name):
                    counts[name][truth[name]] += 1  # type: ignore[index]
        return cls({name: c for name, c in counts.items() if c})

    def merged(self, other: KnownValues) -> KnownValues:
        names = sorted({*self.counts, *other.counts})
        return KnownValues(
            {n: self.counts.get(n, Counter()) + other.counts.get(n, Counter()) for n in names}
        )

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

    def text(self) -> str:
        data = {n: dict(sorted(c.items())) for n, c in sorted(self.counts.items())}
        return json.dumps(data, indent=1, ensure_ascii=False) + "\n"

    def sha256(self) -> str:
        return hashlib.sha256(self.text().encode()).hexdigest()

    def save(self, folder: Path) -> str | None:
        """Write ``known.json`` (none where nothing is known); returns its sha256."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / KNOWN
        if not self.counts:
            path.unlink(missing_ok=True)
            return None
        path.write_text(self.text(), encoding="utf-8")
        return self.sha256()


def load_known(folder: Path, card: dict[str, Any]) -> KnownValues:
    """The known values of a model folder, as its card names them (none: a model made
    without them, or before them)."""
    digest = card.get("known_sha256")
    if digest is None:
        return KnownValues()
    path = folder / KNOWN
    if not path.is_file():
        raise ModelError(f"{path} is missing: the model's card names its known values")
    data = json.loads(path.read_text(encoding="utf-8"))
    known = KnownValues({name: Counter(values) for name, values in data.items()})
    if known.sha256() != digest:
        raise ModelError(f"{path} does not match the model's card (damaged?)")
    return known
