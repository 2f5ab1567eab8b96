"""How well a model reads labelled documents: field accuracy of the model and of the rules on
the same OCR records, under two scorers, and how well its confidence is calibrated.

- strict: the normalised values are equal (what ``evaluate`` scores);
- letters: their letters and digits are equal (case, spaces and punctuation ignored: a comma
  missing from an address is not a wrong address to the person who reads it).

The ceiling: per field, the share of documents whose value the OCR holds at all, so that no
choice among its values can do better. A name or an address is held where its text is in the
document's text (strict: but for spacing; letters: its letters and digits in the document's);
a date or an amount where it is among the candidates (every date and amount printed is one).
A held value the candidates do not offer is the candidates' miss, not the OCR's.

Calibration: the fields' confidences in bins of a tenth; the expected calibration error is
the documents-weighted mean gap between a bin's mean confidence and its strict accuracy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..fields import FieldSchema
from ..normalize import collapse_text, letters, right
from .inference import Pick, read_many
from .known import KnownValues
from .model import Ranker
from .training import Example


def judged(
    model: Ranker,
    readings: dict[str, dict[str, float]],
    held: list[Example],
    known: KnownValues | None = None,
    calibration: dict[str, list[float]] | None = None,
) -> list[dict[str, Any]]:
    """One row per labelled field of each document: the model's value, its confidence, the
    rules' value, and whether each is right under both scorers."""
    rows = []
    sheets = [example.sheet for example in held]
    every = read_many(model, sheets, readings, known, calibration=calibration)
    for example, picks in zip(held, every, strict=True):
        for name, truth in example.truth.items():
            if truth is None:
                continue
            pick: Pick = picks[name]
            value = pick.candidate.normalized if pick.candidate else None
            rules = example.sheet.rules[name]
            rows.append(
                {
                    "path": example.path,
                    "field": name,
                    "value": value,
                    "confidence": pick.confidence,
                    "truth": truth,
                    "model": right(value, truth),
                    "rules": right(rules, truth),
                }
            )
    return rows


def ceiling(held: list[Example], schema: FieldSchema) -> dict[str, Any]:
    """Per field: the share of documents whose value the OCR holds (``held_``) and whose
    value the candidates offer (``offered_``), under both scorers (``strict``, ``letters``)."""
    counts: dict[str, dict[str, int]] = {}
    tokens = {spec.name for spec in schema.fields if spec.type in ("date", "amount")}
    for example in held:
        text = collapse_text(" ".join(row.text for row in example.sheet.rows))
        printed = {"strict": text.replace(" ", ""), "letters": letters(text) or ""}
        for name, truth in example.truth.items():
            if truth is None:
                continue
            tally = counts.setdefault(name, dict.fromkeys(_CEILING, 0))
            tally["documents"] += 1
            for scorer, same in (("strict", _same_strict), ("letters", _same_letters)):
                offered = any(same(c.normalized, truth) for c in example.sheet.candidates[name])
                spelled = name not in tokens and same.key(truth) in printed[scorer]
                tally[f"offered_{scorer}"] += offered
                tally[f"held_{scorer}"] += offered or spelled
    return {
        name: {k: round(v / t["documents"], 4) for k, v in t.items() if k != "documents"}
        for name, t in counts.items()
    }


_CEILING = ("documents", "held_strict", "held_letters", "offered_strict", "offered_letters")


class _Scorer:
    """Equality of two normalised values under a scorer, and a value as the scorer looks for
    it in a document's text (``key``)."""

    def __init__(self, key: Any, exact: bool):
        self.key, self.exact = key, exact

    def __call__(self, value: str, truth: str) -> bool:
        return value == truth if self.exact else letters(value) == letters(truth)


_same_strict = _Scorer(lambda value: value.replace(" ", ""), exact=True)
_same_letters = _Scorer(lambda value: letters(value) or "", exact=False)


def accuracy(rows: list[dict[str, Any]], schema: FieldSchema) -> dict[str, Any]:
    """Per field and mean: the model's and the rules' accuracy under both scorers."""
    table: dict[str, Any] = {}
    for spec in schema.fields:
        mine = [row for row in rows if row["field"] == spec.name]
        table[spec.name] = _rates(mine)
    means = {
        key: round(sum(t[key] for t in table.values()) / len(table), 4)
        for key in next(iter(table.values()))
        if key != "documents"
    }
    return {"fields": table, "mean": means}


def _rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    count = len(rows) or 1
    rates: dict[str, Any] = {}
    for who in ("model", "rules"):
        for index, scorer in enumerate(("strict", "letters")):
            rates[f"{who}_{scorer}"] = round(sum(row[who][index] for row in rows) / count, 4)
    rates["documents"] = len(rows)
    return rates


def calibration(rows: Iterable[dict[str, Any]], threshold: float, bins: int = 10) -> dict:
    """The expected calibration error of the confidences (strict scorer), and the accuracy
    and count of the fields at or above ``threshold`` and below it."""
    rows = list(rows)
    grouped: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(min(int(row["confidence"] * bins), bins - 1), []).append(row)
    gap = 0.0
    for members in grouped.values():
        mean_confidence = sum(r["confidence"] for r in members) / len(members)
        hit = sum(r["model"][0] for r in members) / len(members)
        gap += len(members) * abs(mean_confidence - hit)
    above = [r for r in rows if r["confidence"] >= threshold]
    below = [r for r in rows if r["confidence"] < threshold]
    return {
        "ece": round(gap / len(rows), 4) if rows else None,
        "threshold": threshold,
        "above": _share(above),
        "below": _share(below),
    }


def _share(rows: list[dict[str, Any]]) -> dict[str, Any]:
    hits = sum(r["model"][0] for r in rows)
    return {"fields": len(rows), "accuracy": round(hits / len(rows), 4) if rows else None}
