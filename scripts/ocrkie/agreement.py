"""Agreement across a batch: the name that more of the batch's documents read.

A batch often holds many documents of one vendor. Where one of them reads the vendor's name a
character or two otherwise than several others do ("LJAN HING STATIONERY SDN BHD" beside
three "LIAN HING STATIONERY SDN BHD"), the name the others agree on is more often what was
printed. Each image's own record keeps its own reading; the batch's tables add the agreed
value beside it, with the images that read it as its sources (``tables``).

A value is mended only to one that at least two images read, more images than read it, and
that is within ``text.edit_limit`` edits: a value each document has its own of (an invoice
number) never is.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from .text import edit_limit

SOURCES = 10  # the ids of the images that read an agreed value, at most this many listed


@dataclass(frozen=True)
class Agreed:
    value: str  # the value the batch agrees on (normalised)
    images: int  # how many images read it
    ids: list[str]  # the first ``SOURCES`` of them, in id order


def agreed_values(readings: dict[str, str]) -> dict[str, Agreed]:
    """The agreed value of each image (id -> its normalised value) the batch mends."""
    by_value: dict[str, list[str]] = {}
    for image, value in readings.items():
        by_value.setdefault(value, []).append(image)
    shared = [value for value, images in by_value.items() if len(images) >= 2]
    mended = {}
    for value, images in by_value.items():
        near = process.extract(
            value,
            shared,
            scorer=Levenshtein.distance,
            score_cutoff=edit_limit(len(value)),
            limit=None,
        )
        more = [(other, edits) for other, edits, _ in near if len(by_value[other]) > len(images)]
        if not more:
            continue
        other = min(more, key=lambda oe: (-len(by_value[oe[0]]), oe[1], oe[0]))[0]
        sources = sorted(by_value[other])
        agreed = Agreed(other, len(sources), sources[:SOURCES])
        mended.update(dict.fromkeys(images, agreed))
    return mended
