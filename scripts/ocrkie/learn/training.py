"""Fit a ranking model to labelled documents, and read fields with it.

Labels are the fields' values (a key file, or the KIE record of a service). Each is looked
for among the document's candidates by its normalised value; a text the OCR misread is
matched fuzzily (the closest candidates, if close enough). Documents are split into training
and validation by their image's sha256, so the split never depends on file names or order.
"""

from __future__ import annotations

import csv
import math
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rapidfuzz import fuzz

from ..fields import FieldSchema, FieldSpec
from ..formats import split_of
from ..normalize import normalize
from .candidates import FEATURES, Candidate, Sheet, read_sheet
from .folder import MANIFEST, read_card
from .inference import Calibration, Readings, as_read, read_many
from .known import KINDS, KnownValues, load_known
from .model import (
    Ensemble,
    FieldRanker,
    Ranker,
    Tensors,
    batched,
    load,
    rankers,
    rounded_to_half,
    save,
    tensors,
)
from .noise import noisy_copy

FUZZY = 90  # a text label matches OCR'd candidates at least this similar (0-100)
SETTINGS = {
    "dim": 16,
    "hidden": 64,
    "dropout": 0.5,  # chosen by cross-validation over vendors unseen in training
    "weight_decay": 0.01,
    "epochs": 30,
    "batch": 8,
    "lr": 3e-3,
    "members": 3,  # rankers averaged (model.Ensemble)
    "val_fraction": 0.1,
    # noisy copies of each training document (``noise``): what the model learns stays when
    # the OCR engine, and so its slips, change
    "noisy_copies": 0,
    "noise_rate": 0.04,  # share of characters misread in a copy
    "calibrate": True,  # fit each field's confidence to how often it was right (calibration)
}
CALIBRATION_MIN = 40  # training documents at least, to fit confidences on held-out halves


def truth_value(spec: FieldSpec, value: Any) -> str | None:
    """A label as the scorer compares it: dates ISO, amounts decimal, text upper-cased."""
    if value is None:
        return None
    kind = "text" if spec.type == "address" else spec.type
    return normalize(kind, str(value), spec.date_order)


def positives(spec: FieldSpec, found: list[Candidate], truth: str | None) -> tuple[list[int], str]:
    """The candidates that hold the label, and how they were found: exact, fuzzy or none."""
    if truth is None:
        return [], "none"
    exact = [i for i, c in enumerate(found) if c.normalized == truth]
    if exact or spec.type in ("date", "amount") or not found:
        return exact, "exact" if exact else "none"
    ratios = [fuzz.ratio(c.normalized, truth) for c in found]
    best = max(ratios)
    if best < FUZZY:
        return [], "none"
    return [i for i, r in enumerate(ratios) if r == best], "fuzzy"


@dataclass
class Example:
    sha256: str
    path: str
    split: str
    sheet: Sheet
    tensors: Tensors
    truth: dict[str, str | None]
    positives: dict[str, list[int]]
    found: dict[str, str]  # how each label was found among the candidates


def examples(
    labelled: Iterable[tuple[dict[str, Any], dict[str, Any]]],
    schema: FieldSchema,
    val_fraction: float,
) -> list[Example]:
    """(OCR record, labels) pairs as training examples."""
    made = []
    for ocr, labels in labelled:
        sheet = read_sheet(ocr, schema)
        truth, wanted, found = {}, {}, {}
        for spec in schema.fields:
            truth[spec.name] = truth_value(spec, labels.get(spec.name))
            hits, how = positives(spec, sheet.candidates[spec.name], truth[spec.name])
            wanted[spec.name], found[spec.name] = hits, how
        image = ocr["image"]
        split = split_of(image["sha256"], val_fraction)
        made.append(
            Example(
                image["sha256"], image["path"], split, sheet, tensors(sheet), truth, wanted, found
            )
        )
    return made


def _loss(model: FieldRanker, batch: list[Example], device: str = "cpu") -> torch.Tensor:
    """The mean over ``batch`` of each document's loss: per field, the negative log of the
    probability its candidates that hold the label get (the batch read in one pass)."""
    prepared = batched([example.tensors for example in batch]).to(device)
    units = model.units(prepared)
    terms = []
    for name, field in prepared.fields.items():
        for example, scores in zip(
            batch, model.scores(units, field).split(field.sizes), strict=True
        ):
            if hits := example.positives[name]:
                terms.append(torch.logsumexp(scores, 0) - torch.logsumexp(scores[hits], 0))
    return torch.stack(terms).sum() / len(batch)


def fit(
    train: list[Example],
    fields: list[str],
    seed: int,
    settings: dict[str, Any],
    start: Ranker | None = None,
    device: str = "cpu",
) -> Ensemble:
    """The same examples, settings, seed (and start) give the same weights on the CPU,
    however many cores it has: training computes on one thread, since a matrix product split
    over two threads sums in another order (and on 2 cores is no faster). From ``start``, a
    trained model is adapted to the examples rather than replaced: each member from its own.
    Otherwise ``settings["members"]`` rankers are trained one after the other from one seeded
    stream, so each starts from other weights and sees another order. ``device`` is for
    benchmarks: on a GPU this model trains no faster (docs/benchmarks.md)."""
    torch.manual_seed(seed)
    order = random.Random(seed)
    fresh: list[FieldRanker | None] = [None] * settings["members"]
    starts = fresh if start is None else [*rankers(start)]
    with torch_threads(1):
        members = [_fit_ranker(train, fields, settings, s, order, device) for s in starts]
    return rounded_to_half(Ensemble(members).cpu().eval())


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch computes on ``count`` threads inside, on as many as before after."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fit_ranker(
    train: list[Example],
    fields: list[str],
    settings: dict[str, Any],
    start: FieldRanker | None,
    order: random.Random,
    device: str,
) -> FieldRanker:
    model = FieldRanker(fields, settings["dim"], settings["hidden"], settings["dropout"])
    if start is not None:
        model.load_state_dict(start.state_dict())
    model.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"]
    )
    usable = [e for e in train if any(e.positives.values())]
    model.train()
    for _ in range(settings["epochs"]):
        order.shuffle(usable)
        for first in range(0, len(usable), settings["batch"]):
            optimizer.zero_grad()
            _loss(model, usable[first : first + settings["batch"]], device).backward()
            optimizer.step()
    return model.eval()


def _taught(
    base: KnownValues, labels: list[dict[str, Any]], schema: FieldSchema, options: dict[str, Any]
) -> KnownValues:
    """The values and words the model keeps: the base model's and those of ``labels``, each
    where ``options`` keep it (``known``, ``words``)."""
    names = [spec.name for spec in schema.fields if spec.type in KINDS]
    new = KnownValues(KnownValues.of(labels, names).counts, KnownValues.words_of(labels, names))
    taught = base.merged(new)
    return KnownValues(
        taught.counts if options.get("known", True) else {},
        taught.words if options.get("words", True) else Counter(),
    )


def mend_rates(train: list[Example], known: KnownValues, readings: Readings) -> Readings:
    """Per name and address field: how often the known value a label's span misread was the
    label, against the span as read, where one of them was (smoothed: never seen is 0.5).
    Each document's own label is not counted as known."""
    right: Counter[tuple[str, bool]] = Counter()
    for example in train:
        for name, hits in example.positives.items():
            found = example.sheet.candidates[name]
            if not hits or name not in known.counts:
                continue
            span = found[hits[0]].span
            read = as_read([c for c in found if c.span == span], readings.get(name, {}))
            truth = example.truth[name]
            value = known.nearest(name, read.normalized, own=truth)
            if value is not None and truth in (value, read.normalized):
                right[name, value == truth] += 1
    rates: Readings = {}
    for name in sorted(known.counts):
        mended, kept = right[name, True], right[name, False]
        rates[name] = {"known": round((mended + 1) / (mended + kept + 2), 4)}
    return rates


def reading_rates(train: list[Example]) -> Readings:
    """Per field and way of reading a span (commas, spaces): how often the label took it where
    the label's span could be read with it (smoothed: never seen is 0.5)."""
    right: Counter[tuple[str, str]] = Counter()
    offered: Counter[tuple[str, str]] = Counter()
    for example in train:
        for name, found in example.sheet.candidates.items():
            hit = next((c for c in found if c.normalized == example.truth[name]), None)
            if hit is None:
                continue
            ways = set().union(*(c.ways for c in found if c.span == hit.span))
            offered.update((name, way) for way in ways)
            right.update((name, way) for way in ways & hit.ways)
    rates: Readings = {}
    for (name, way), count in sorted(offered.items()):
        rates.setdefault(name, {})[way] = round((right[name, way] + 1) / (count + 2), 4)
    return rates


def scores(
    model: Ranker,
    readings: Readings,
    held: list[Example],
    schema: FieldSchema,
    known: KnownValues | None = None,
) -> dict[str, Any]:
    """Field accuracy of the model and of the rules on the same documents."""
    tally = {spec.name: {"model": 0, "rules": 0, "documents": 0} for spec in schema.fields}
    every = read_many(model, [example.sheet for example in held], readings, known)
    for example, picks in zip(held, every, strict=True):
        for name, counts in tally.items():
            truth = example.truth[name]
            if truth is None:
                continue
            pick = picks[name].candidate
            counts["model"] += pick is not None and pick.normalized == truth
            counts["rules"] += example.sheet.rules[name] == truth
            counts["documents"] += 1
    return {
        name: {
            "model": round(c["model"] / c["documents"], 4) if c["documents"] else None,
            "rules": round(c["rules"] / c["documents"], 4) if c["documents"] else None,
            "documents": c["documents"],
        }
        for name, c in tally.items()
    }


def train_model(
    pairs: Iterable[tuple[dict[str, Any], dict[str, Any]]],
    schema: FieldSchema,
    ocr_engine: dict[str, Any],
    options: dict[str, Any],
    folder: Path,
    documents: dict[str, int] | None = None,
    base: Path | None = None,
    also_engines: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train on (OCR record, labels) pairs and write the model folder; returns its card.
    With ``base`` (a model folder that fits the schema and OCR), training starts from its
    weights: a few labelled documents of new layouts adapt it instead of replacing it.
    ``also_engines``: the other OCR engines whose records are among the pairs (the card's
    ``ocr_engines`` lists them after ``ocr_engine``)."""
    settings = {**SETTINGS, **{k: v for k, v in options.items() if k in SETTINGS}}
    seed = options.get("seed", 0)
    started = time.perf_counter()
    start, base_card, base_known = None, None, KnownValues()
    if base is not None:
        base_card = read_card(base)
        start = load(base, base_card)
        base_known = load_known(base, base_card)
        settings.update({k: base_card["settings"][k] for k in ("dim", "hidden")})
        settings["members"] = len(rankers(start))
    pairs = list(pairs)
    made = examples(pairs, schema, settings["val_fraction"])
    train = [e for e in made if e.split == "train"]
    held = [e for e in made if e.split == "val"]
    noisy = examples(noisy_pairs(pairs, train, settings, seed), schema, 0.0)
    model = fit(train + noisy, [spec.name for spec in schema.fields], seed, settings, start)
    known = _taught(base_known, [e.truth for e in train], schema, options)
    readings = reading_rates(train)
    readings = _merged(readings, mend_rates(train, known, readings))
    if base_card is not None:  # where the new documents offer no choice, the base's rates
        readings = _merged(base_card["readings"], readings)
    calibration = (
        base_card.get("calibration", {})
        if base_card is not None
        else calibration_of(train, noisy, seed, settings, readings)
    )
    validation = scores(model, readings, held, schema, known)
    if start is not None:  # did adapting help? the base as it was, on the same documents
        before = scores(start, base_card["readings"], held, schema, base_known)
        for name, score in validation.items():
            score["base"] = before[name]["model"]
    card = {
        "schema_title": schema.document.get("title", ""),
        "schema_sha256": schema.sha256,
        "fields_sha256": schema.fields_sha256,
        "schema": schema.document,
        "fields": [spec.name for spec in schema.fields],
        "features": FEATURES,
        "ocr_engine": ocr_engine,
        **({"ocr_engines": [ocr_engine, *also_engines]} if also_engines else {}),
        "settings": settings,
        "seed": seed,
        **({"base": base_card["weights_sha256"]} if base_card else {}),
        "documents": {**(documents or {}), "train": len(train), "val": len(held)},
        "labels_found": {
            spec.name: dict(Counter(e.found[spec.name] for e in train)) for spec in schema.fields
        },
        "readings": readings,
        "calibration": calibration,
        "known": {name: len(values) for name, values in known.counts.items()},
        **dict(zip(("known_sha256", "words_sha256"), known.save(folder), strict=True)),
        "words": len(known.words),
        "validation": {"documents": len(held), "fields": validation, **_means(validation)},
        "torch": torch.__version__,
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    card = save(folder, model, card)
    _write_manifest(folder / MANIFEST, made, _base_rows(base) if base else [])
    return card


def noisy_pairs(
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
    train: list[Example],
    settings: dict[str, Any],
    seed: int,
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``noisy_copies`` noisy copies of each training document's OCR record, with its labels."""
    rng = random.Random(seed)
    training = {example.sha256 for example in train}
    return [
        (noisy_copy(ocr, rng, settings["noise_rate"]), labels)
        for ocr, labels in pairs
        if ocr["image"]["sha256"] in training
        for _ in range(settings["noisy_copies"])
    ]


def calibration_of(
    train: list[Example],
    noisy: list[Example],
    seed: int,
    settings: dict[str, Any],
    readings: Readings,
) -> Calibration:
    """Per field, the (slope, offset) on the logit of the pooled odds that makes them how
    often the value was right, on documents held out of training: two models, each trained
    on half the documents (with their noisy copies), read the other half. Too few documents
    (``CALIBRATION_MIN``) or ``calibrate`` off: none (the odds as they are)."""
    if not settings["calibrate"] or len(train) < CALIBRATION_MIN:
        return {}
    fields = list(train[0].truth)
    half = {e.sha256: split_of(f"{e.sha256}:half", 0.5) for e in train}
    halves = [[e for e in train if half[e.sha256] == h] for h in ("train", "val")]
    points: dict[str, list[tuple[float, bool]]] = {name: [] for name in fields}
    for taught, held in (halves, halves[::-1]):
        shas = {e.sha256 for e in taught}
        copies = [e for e in noisy if e.sha256 in shas]
        model = fit(taught + copies, fields, seed, settings)
        read = read_many(model, [e.sheet for e in held], readings)
        for example, picks in zip(held, read, strict=True):
            for name in fields:
                pick, truth = picks[name], example.truth[name]
                if truth is not None and pick.candidate is not None:
                    points[name].append((pick.confidence, pick.candidate.normalized == truth))
    return {name: _platt(found) for name, found in points.items() if found}


def _platt(points: list[tuple[float, bool]]) -> list[float]:
    """Platt scaling: the slope and offset on the logit of the odds that fit the outcomes
    (held lightly towards (1, 0), so that a field always right stays finite)."""
    odds = [min(max(p, 1e-4), 1 - 1e-4) for p, _ in points]
    x = torch.tensor([math.log(p / (1 - p)) for p in odds])
    y = torch.tensor([float(hit) for _, hit in points])
    scale = torch.tensor([1.0, 0.0], requires_grad=True)
    optimizer = torch.optim.LBFGS([scale], max_iter=200)

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        fitted = F.binary_cross_entropy_with_logits(scale[0] * x + scale[1], y)
        value = fitted + 0.01 * ((scale[0] - 1) ** 2 + scale[1] ** 2)
        value.backward()
        return value

    with torch_threads(1):
        optimizer.step(loss)
    return [round(float(v), 4) for v in scale.detach()]


def _merged(readings: Readings, over: Readings) -> Readings:
    """``readings`` with the rates of ``over`` put over them, field by field."""
    names = sorted({*readings, *over})
    return {name: {**readings.get(name, {}), **over.get(name, {})} for name in names}


def _means(validation: dict[str, Any]) -> dict[str, float | None]:
    means = {}
    scored = [who for who in next(iter(validation.values())) if who != "documents"]
    for who in scored:  # the model, the rules, and the base it was adapted from, if any
        values = [v[who] for v in validation.values() if v[who] is not None]
        means[f"mean_{who}"] = round(sum(values) / len(values), 4) if values else None
    return means


def _base_rows(base: Path) -> list[list[str]]:
    """The images that shaped a base model's weights, from its manifest: split ``base``."""
    if not (base / MANIFEST).is_file():
        return []
    with (base / MANIFEST).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    return [[sha, path, "base", *found] for sha, path, split, *found in rows if split != "val"]


def _write_manifest(path: Path, made: list[Example], base_rows: list[list[str]]) -> None:
    """Every image that shaped the weights, by sha256: its split (``base``: the base
    model's), and how each label was found."""
    fields = list(made[0].found) if made else []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["sha256", "path", "split", *(f"label_{name}" for name in fields)])
        for e in sorted(made, key=lambda e: e.sha256):
            writer.writerow([e.sha256, e.path, e.split, *(e.found[name] for name in fields)])
        writer.writerows(base_rows)
