"""The ranking model and its folder: weights, the schema it reads, the OCR it was trained on.

One embedding table of hashed text features is shared by all fields; each field has a small
head that scores a candidate from its value, its label, the rows around it and its numeric
features. A document's candidates for a field compete in a softmax; candidates with the
same normalised value pool their probability. The model is an ensemble of such rankers,
trained alike from different random starts, whose probabilities are averaged: one ranker
taught by a few hundred documents leans on its seed, their average much less.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from .candidates import NUMERIC, Sheet
from .features import BUCKETS
from .folder import CARD, MODEL_FORMAT, WEIGHTS


class FieldRanker(nn.Module):
    def __init__(self, fields: list[str], dim: int = 32, hidden: int = 64, dropout: float = 0.0):
        super().__init__()
        self.dim = dim
        self.embed = nn.EmbeddingBag(BUCKETS, dim, mode="mean")
        width = 4 * dim + NUMERIC
        self.heads = nn.ModuleDict(
            {
                name: nn.Sequential(
                    nn.Dropout(dropout), nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, 1)
                )
                for name in fields
            }
        )

    def units(self, sheet: Tensors) -> torch.Tensor:
        """Every text unit's embedding, and a zero row at the end for "none"."""
        embedded = self.embed(sheet.ids, sheet.offsets)
        return torch.cat([embedded, embedded.new_zeros(1, self.dim)])

    def scores(self, units: torch.Tensor, field: FieldTensors) -> torch.Tensor:
        value = F.embedding_bag(
            field.parts, units, field.starts, mode="sum", per_sample_weights=field.shares
        )
        # label, row above, row below; F.embedding, not units[...]: the gradient of indexing
        # is summed by several threads in no fixed order, and training would not repeat
        around = F.embedding(field.context, units).flatten(1)
        return self.heads[field.name](torch.cat([value, around, field.numbers], 1)).squeeze(1)

    def odds(self, sheet: Tensors) -> dict[str, torch.Tensor]:
        """Per field, each candidate's probability of being the field's value: the
        candidates of one document compete (a batch holds several, ``FieldTensors.sizes``)."""
        units = self.units(sheet)
        return {
            name: torch.cat([torch.softmax(s, 0) for s in self.scores(units, f).split(f.sizes)])
            for name, f in sheet.fields.items()
        }


class Ensemble(nn.Module):
    """Rankers trained alike from different random starts; their probabilities averaged."""

    def __init__(self, members: list[FieldRanker]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def odds(self, sheet: Tensors) -> dict[str, torch.Tensor]:
        each = [member.odds(sheet) for member in self.members]
        return {name: torch.stack([odds[name] for odds in each]).mean(0) for name in sheet.fields}


Ranker = FieldRanker | Ensemble


def rankers(model: Ranker) -> list[FieldRanker]:
    """The rankers of a model (one made before ensembles is one)."""
    return list(model.members) if isinstance(model, Ensemble) else [model]


@dataclass
class FieldTensors:
    name: str
    parts: torch.Tensor  # the text units the candidates' values are made of, one after another
    starts: torch.Tensor  # where each candidate's units start in ``parts``
    shares: torch.Tensor  # each unit's weight in its value
    context: torch.Tensor  # candidates x 3: label, above, below (the last unit: none)
    numbers: torch.Tensor  # candidates x NUMERIC
    sizes: list[int]  # candidates per document, in order (a batch holds several)

    def to(self, device: str | torch.device) -> FieldTensors:
        moved = (t.to(device) for t in (self.parts, self.starts, self.shares))
        return FieldTensors(
            self.name, *moved, self.context.to(device), self.numbers.to(device), self.sizes
        )


@dataclass
class Tensors:
    ids: torch.Tensor
    offsets: torch.Tensor
    fields: dict[str, FieldTensors]

    @property
    def unit_count(self) -> int:
        return len(self.offsets)

    def to(self, device: str | torch.device) -> Tensors:
        fields = {name: field.to(device) for name, field in self.fields.items()}
        return Tensors(self.ids.to(device), self.offsets.to(device), fields)


def tensors(sheet: Sheet) -> Tensors:
    """A sheet as tensors; fields without candidates are left out."""
    lengths = [len(ids) for ids in sheet.units]
    offsets = torch.tensor([0, *lengths[:-1]], dtype=torch.long).cumsum(0)
    none = len(sheet.units)
    fields = {}
    for name, found in sheet.candidates.items():
        if not found:
            continue
        fields[name] = FieldTensors(
            name,
            torch.tensor([unit for c in found for unit in c.units]),
            torch.tensor([0, *(len(c.units) for c in found[:-1])]).cumsum(0),
            torch.tensor([w for c in found for w in c.units.values()], dtype=torch.float32),
            torch.tensor(
                [[u if u >= 0 else none for u in (c.label, c.above, c.below)] for c in found]
            ),
            torch.tensor([c.numbers for c in found], dtype=torch.float32),
            [len(found)],
        )
    flat = torch.tensor([i for ids in sheet.units for i in ids], dtype=torch.long)
    return Tensors(flat, offsets, fields)


def batched(sheets: list[Tensors]) -> Tensors:
    """The tensors of several documents (each of one) as one: their units one after another
    and one "none" after all of them, so that a model reads them in one pass."""
    firsts = list(accumulate((sheet.unit_count for sheet in sheets), initial=0))
    none = firsts[-1]
    fields = {}
    for name in dict.fromkeys(name for sheet in sheets for name in sheet.fields):
        parts, starts, shares, context, numbers, sizes = [], [], [], [], [], []
        total = 0  # units of the candidates so far
        for sheet, first in zip(sheets, firsts[:-1], strict=True):
            field = sheet.fields.get(name)
            if field is None:
                sizes.append(0)
                continue
            parts.append(field.parts + first)
            starts.append(field.starts + total)
            shares.append(field.shares)
            own_none = field.context == sheet.unit_count
            context.append(torch.where(own_none, none, field.context + first))
            numbers.append(field.numbers)
            sizes += field.sizes
            total += len(field.parts)
        fields[name] = FieldTensors(
            name, *map(torch.cat, (parts, starts, shares, context, numbers)), sizes
        )
    ids = list(accumulate((len(sheet.ids) for sheet in sheets), initial=0))
    offsets = [sheet.offsets + first for sheet, first in zip(sheets, ids[:-1], strict=True)]
    return Tensors(torch.cat([sheet.ids for sheet in sheets]), torch.cat(offsets), fields)


def weights_digest(model: nn.Module) -> str:
    """sha256 over the parameters, in order: the model's identity, whatever the file."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def rounded_to_half(model: Ranker) -> Ranker:
    """The weights rounded to float16 in place, as ``save`` stores them (half the file)."""
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.copy_(tensor.half().float())
    return model


def save(folder: Path, model: Ranker, card: dict[str, Any]) -> dict[str, Any]:
    """The weights in float16 (the model is rounded to them, so its digest is theirs)."""
    folder.mkdir(parents=True, exist_ok=True)
    rounded_to_half(model)
    torch.save({k: v.half() for k, v in model.state_dict().items()}, folder / WEIGHTS)
    card = {
        "format": MODEL_FORMAT,
        **card,
        "weights_sha256": weights_digest(model),
    }
    (folder / CARD).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    return card


def load(folder: Path, card: dict[str, Any], device: str = "cpu") -> Ranker:
    """The model of a folder; one made before ensembles (no ``members`` setting) is one ranker."""
    settings = card["settings"]
    rankers = [
        FieldRanker(card["fields"], settings["dim"], settings["hidden"])
        for _ in range(settings.get("members", 1))
    ]
    model: Ranker = Ensemble(rankers) if "members" in settings else rankers[0]
    state = torch.load(folder / WEIGHTS, map_location=device, weights_only=True)
    model.load_state_dict({k: v.float() for k, v in state.items()})  # float16 since ensembles
    if weights_digest(model) != card["weights_sha256"]:
        raise ModelError(f"{folder / WEIGHTS}: its weights do not match {CARD} (damaged?)")
    return model.to(device).eval()
