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
    (``readings``); candidates with the same value pool their odds. Names and addresses never
    share printed text: they are chosen together (``_together``), so that a shop's name above
    its address is the name's. The value picked is then mended to what is ``known``
    (``_mended``)."""
    spans = {
        name: _spans(found, odds.get(name, []), readings.get(name, {}))
        for name, found in sheet.candidates.items()
    }
    chosen = _together({name: spans[name] for name in spans if name in sheet.blocks})
    picks = {}
    for name, options in spans.items():
        if name in chosen:
            others = [p for field, span in chosen.items() if field != name and span for p in span]
            options = {span: read for span, read in options.items() if not _overlaps(span, others)}
        pooled = _pooled(options)
        best = chosen[name] if name in chosen else next(iter(_ranked(options, pooled)), None)
        if best is None:
            picks[name] = Pick(None, 0.0)
            continue
        candidate = options[best][0]
        mended = _mended(candidate, name, known, readings.get(name, {}), name in sheet.blocks)
        picks[name] = Pick(mended, pooled[candidate.normalized])
    return picks


Piece = tuple[int, int, int]  # (row, start, end): where a candidate's text is printed
Span = tuple[Piece, ...]
Options = dict[Span, tuple[Candidate, float]]  # each span as read, and its pooled odds
TOGETHER = 8  # the most probable spans of each name or address weighed together


def _spans(found: list[Candidate], odds: list[float], rates: dict[str, float]) -> Options:
    """Each span printed, read as training found right (``as_read``), and its pooled odds."""
    readings: dict[Span, list[Candidate]] = {}
    chances: dict[Span, float] = {}
    for candidate, p in zip(found, odds, strict=True):
        readings.setdefault(candidate.span, []).append(candidate)
        chances[candidate.span] = chances.get(candidate.span, 0.0) + p
    return {span: (as_read(ways, rates), chances[span]) for span, ways in readings.items()}


def _pooled(options: Options) -> dict[str, float]:
    """Each value's probability: the odds of the spans that read it, pooled."""
    pooled: dict[str, float] = {}
    for candidate, chance in options.values():
        pooled[candidate.normalized] = pooled.get(candidate.normalized, 0.0) + chance
    return pooled


def _ranked(options: Options, pooled: dict[str, float]) -> list[Span]:
    """The spans, those of the most probable value first, the most probable of them first."""
    return sorted(options, key=lambda s: (-pooled[options[s][0].normalized], -options[s][1]))


def _together(fields: dict[str, Options]) -> dict[str, Span | None]:
    """The spans of the names and addresses that share no printed text and whose values are
    the most probable together (the product of their probabilities), among each field's
    ``TOGETHER`` most probable spans; a field with none left free has none."""
    ranked = {}
    for name, options in fields.items():
        pooled = _pooled(options)
        top = _ranked(options, pooled)[:TOGETHER]
        ranked[name] = [(span, pooled[options[span][0].normalized]) for span in top]
    names = list(ranked)
    best: tuple[float, dict[str, Span | None]] = (-1.0, {})

    def search(i: int, taken: list[Piece], score: float, chosen: dict[str, Span | None]) -> None:
        nonlocal best
        if score <= best[0]:
            return
        if i == len(names):
            best = (score, chosen)
            return
        for span, chance in ranked[names[i]]:
            if not _overlaps(span, taken):
                search(i + 1, [*taken, *span], score * chance, {**chosen, names[i]: span})
        search(i + 1, taken, score * _NONE, {**chosen, names[i]: None})

    search(0, [], 1.0, {})
    return best[1]


_NONE = 1e-6  # the probability ``_together`` gives a field no span: the last resort


def _overlaps(span: Span, taken: list[Piece]) -> bool:
    return any(
        row == other and start < stop and first < end
        for row, start, end in span
        for other, first, stop in taken
    )


def as_read(readings: list[Candidate], rates: dict[str, float]) -> Candidate:
    """The reading of a span that takes the ways training found right more often than not,
    and no other (as printed where none was counted)."""
    wanted = {way for way, rate in rates.items() if rate > 0.5}
    return max(readings, key=lambda c: (len(c.ways & wanted) - len(c.ways - wanted), -len(c.ways)))


def _mended(
    candidate: Candidate,
    name: str,
    known: KnownValues | None,
    rates: dict[str, float],
    words: bool,
) -> Candidate:
    """``candidate`` mended to the known value it misreads (where training found that right
    more often than not), else, for a name or an address (``words``), its words that misread
    known ones mended (``KnownValues.spelled``); ``mended`` keeps the OCR's reading."""
    if known is None:
        return candidate
    value = known.nearest(name, candidate.normalized) if rates.get("known", 0.0) > 0.5 else None
    if value is not None:
        return replace(candidate, value=value, normalized=value, mended=candidate.value)
    if not words or (spelled := known.spelled(candidate.value)) == candidate.value:
        return candidate
    normalized = known.spelled(candidate.normalized)
    return replace(candidate, value=spelled, normalized=normalized, mended=candidate.value)
