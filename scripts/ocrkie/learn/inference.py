"""Reading fields with a trained model: the candidates of a batch of documents scored in one
pass, each field's value chosen from them (readings pooled, known values mended). What the
KIE engine runs; training (``training``) scores its models through it too."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from .candidates import Candidate, Sheet
from .known import KnownValues
from .model import Ranker, batched, tensors

Readings = dict[str, dict[str, float]]  # field -> way of reading -> how often it was right
Calibration = dict[str, list[float]]  # field -> (slope, offset) on the odds' logit


@dataclass
class Pick:
    candidate: Candidate | None
    confidence: float


def read_many(
    model: Ranker,
    sheets: list[Sheet],
    readings: Readings,
    known: KnownValues | None = None,
    device: str | torch.device = "cpu",
    calibration: Calibration | None = None,
) -> list[dict[str, Pick]]:
    """Each document's fields (``choose``), the documents read in one pass of the model, their
    confidence ``calibrated``."""
    if not sheets:
        return []
    split = odds_many(model, sheets, device)
    every = [
        choose(sheet, {name: odds[i].tolist() for name, odds in split.items()}, readings, known)
        for i, sheet in enumerate(sheets)
    ]
    scales = calibration or {}
    return [
        {name: replace(p, confidence=calibrated(p, scales.get(name))) for name, p in picks.items()}
        for picks in every
    ]


def calibrated(pick: Pick, scale: list[float] | None) -> float:
    """The probability of ``pick`` being right: its pooled odds mapped by the field's
    ``scale`` (fitted on documents held out of training), or as they are without one."""
    if scale is None or pick.candidate is None:
        return pick.confidence
    odds = min(max(pick.confidence, 1e-4), 1 - 1e-4)
    slope, offset = scale
    return 1 / (1 + math.exp(-(slope * math.log(odds / (1 - odds)) + offset)))


def odds_many(
    model: Ranker, sheets: list[Sheet], device: str | torch.device = "cpu"
) -> dict[str, tuple[torch.Tensor, ...]]:
    """Per field, each document's candidates' probabilities (on the CPU), the documents read
    in one pass of the model on ``device``."""
    prepared = batched([tensors(sheet) for sheet in sheets])
    with torch.no_grad():
        every = model.odds(prepared.to(device))
    return {name: p.cpu().split(prepared.fields[name].sizes) for name, p in every.items()}


def choose(
    sheet: Sheet,
    odds: dict[str, list[float]],
    readings: Readings,
    known: KnownValues | None = None,
) -> dict[str, Pick]:
    """Each field's most probable value, from the model's ``odds`` of its candidates. The
    model weighs where a value is printed: the readings of one span pool their odds, and the
    span is read each way (commas, spaces) that training found right more often than not
    (``readings``); candidates with the same value pool their odds. The value picked is then
    mended to the ``known`` one it misreads, where training found that right more often than
    not (``readings[field]["known"]``)."""
    picks = {}
    for name, found in sheet.candidates.items():
        if not found:
            picks[name] = Pick(None, 0.0)
            continue
        spans: dict[tuple, list[Candidate]] = {}
        chances: dict[tuple, float] = {}
        for candidate, p in zip(found, odds[name], strict=True):
            spans.setdefault(candidate.span, []).append(candidate)
            chances[candidate.span] = chances.get(candidate.span, 0.0) + p
        rates = readings.get(name, {})
        read = {span: as_read(ways, rates) for span, ways in spans.items()}
        pooled: dict[str, float] = {}
        for span, candidate in read.items():
            pooled[candidate.normalized] = pooled.get(candidate.normalized, 0.0) + chances[span]
        value = max(pooled, key=pooled.__getitem__)
        best = max((s for s, c in read.items() if c.normalized == value), key=chances.get)
        picks[name] = Pick(_mended(read[best], name, known, rates), pooled[value])
    return picks


def as_read(readings: list[Candidate], rates: dict[str, float]) -> Candidate:
    """The reading of a span that takes the ways training found right more often than not,
    and no other (as printed where none was counted)."""
    wanted = {way for way, rate in rates.items() if rate > 0.5}
    return max(readings, key=lambda c: (len(c.ways & wanted) - len(c.ways - wanted), -len(c.ways)))


def _mended(
    candidate: Candidate, name: str, known: KnownValues | None, rates: dict[str, float]
) -> Candidate:
    if known is None or rates.get("known", 0.0) <= 0.5:
        return candidate
    value = known.nearest(name, candidate.normalized)
    if value is None:
        return candidate
    return replace(candidate, value=value, normalized=value, mended=candidate.value)
