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
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .candidates import NUMERIC, Sheet
from .features import BUCKETS
from .folder import CARD, MODEL_FORMAT, WEIGHTS, ModelError


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
        value = field.weights @ units[:-1]
        around = units[field.context].flatten(1)  # label, row above, row below
        return self.heads[field.name](torch.cat([value, around, field.numbers], 1)).squeeze(1)

    def odds(self, sheet: Tensors) -> dict[str, torch.Tensor]:
        """Per field, each candidate's probability of being the field's value."""
        units = self.units(sheet)
        fields = sheet.fields.items()
        return {name: torch.softmax(self.scores(units, field), 0) for name, field in fields}


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
    weights: torch.Tensor  # candidates x units: what each value is made of
    context: torch.Tensor  # candidates x 3: label, above, below (the last unit: none)
    numbers: torch.Tensor  # candidates x NUMERIC


@dataclass
class Tensors:
    ids: torch.Tensor
    offsets: torch.Tensor
    fields: dict[str, FieldTensors]


def tensors(sheet: Sheet, device: str | torch.device = "cpu") -> Tensors:
    """A sheet as tensors; fields without candidates are left out."""
    lengths = [len(ids) for ids in sheet.units]
    offsets = torch.tensor([0, *lengths[:-1]], dtype=torch.long).cumsum(0)
    none = len(sheet.units)
    fields = {}
    for name, found in sheet.candidates.items():
        if not found:
            continue
        at = [(row, unit, w) for row, c in enumerate(found) for unit, w in c.units.items()]
        rows, units, values = zip(*at, strict=True)
        weights = torch.zeros(len(found), len(sheet.units))
        weights[torch.tensor(rows), torch.tensor(units)] = torch.tensor(values)
        context = torch.tensor(
            [[u if u >= 0 else none for u in (c.label, c.above, c.below)] for c in found]
        )
        numbers = torch.tensor([c.numbers for c in found], dtype=torch.float32)
        fields[name] = FieldTensors(
            name, weights.to(device), context.to(device), numbers.to(device)
        )
    flat = torch.tensor([i for ids in sheet.units for i in ids], dtype=torch.long)
    return Tensors(flat.to(device), offsets.to(device), fields)


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
