"""Text as hashed feature ids: character trigrams, words and word shapes.

Hashing (crc32, stable across processes and machines) needs no vocabulary, so a model
trained on one collection reads any other; collisions cost little at this size.
"""

from __future__ import annotations

import re
import string
import zlib

BUCKETS = 1 << 15
_WORD = re.compile(r"\w+|[^\w\s]")


_SHAPES = str.maketrans(
    string.ascii_uppercase + string.ascii_lowercase + string.digits, "A" * 26 + "a" * 26 + "0" * 10
)


def _shape(word: str) -> str:
    """``RM12.50`` -> ``AA00.00``: the form of a token without its content."""
    return word.translate(_SHAPES)


def text_ids(text: str) -> list[int]:
    """Feature ids of ``text``; never empty (an empty text has an id of its own)."""
    lowered = f" {' '.join(text.lower().split())} "
    grams = [f"3{lowered[i : i + 3]}" for i in range(len(lowered) - 2)]
    words = _WORD.findall(text)
    grams += [f"w{w.lower()}" for w in words] + [f"s{_shape(w)[:8]}" for w in words]
    return [zlib.crc32(g.encode()) % BUCKETS for g in grams] or [0]
