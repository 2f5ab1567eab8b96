"""OCR noise for training: copies of an OCR record read as a different engine might read it.

Engines differ in how they slip, not in what is printed: one reads ``O`` for ``0``, another
drops a full stop, writes lower case, runs two words together or parts one. A model trained
on one engine's records alone learns that engine's slips; trained on its records and noisy
copies of them, it learns what stays when the slips change. The copies are made from a seeded
stream, so the same records and seed give the same copies.
"""

from __future__ import annotations

import copy
import random
from typing import Any

# characters engines confuse, each way
_CONFUSED = {
    "O": "0D",
    "0": "OD",
    "D": "0O",
    "I": "1l",
    "1": "Il",
    "l": "1I",
    "S": "5",
    "5": "S",
    "B": "8",
    "8": "B",
    "Z": "2",
    "2": "Z",
    "G": "6",
    "6": "G",
    ",": ".",
    ".": ",",
    ":": ";",
    ";": ":",
}
_DROPPED = set(".,:;'-")


def noisy_copy(ocr: dict[str, Any], rng: random.Random, rate: float) -> dict[str, Any]:
    """``ocr`` with about ``rate`` of its characters misread (confused, punctuation dropped,
    spaces lost or added) and, for some documents, words in lower or title case."""
    noisy = copy.deepcopy(ocr)
    case = rng.choice((None, None, str.lower, str.title))  # a third of documents
    for line in noisy["lines"]:
        words = line.get("words") or []
        for word in words:
            word["text"] = _misread(word["text"], rng, rate, case)
        texts = [w["text"] for w in words if w["text"]]
        line["words"] = [w for w in words if w["text"]]
        if texts:
            line["text"] = " ".join(texts)
        else:
            line["text"] = _misread(line["text"], rng, rate, case)
    return noisy


def _misread(text: str, rng: random.Random, rate: float, case: Any) -> str:
    out = []
    for char in text:
        roll = rng.random()
        if roll < rate and char in _CONFUSED:
            out.append(rng.choice(_CONFUSED[char]))
        elif roll < rate and char in _DROPPED:
            continue
        elif roll < rate / 2 and char == " ":
            continue  # two words run together
        else:
            out.append(char)
        if rng.random() < rate / 4 and char.isalnum():
            out.append(" ")  # a word parted
    read = "".join(out).strip()
    if case is not None and rng.random() < 0.5:
        read = case(read)
    return read
