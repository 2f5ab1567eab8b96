"""The learned local KIE engine: a trained ranking model (``ocrkie.learn``) over OCR records.

Its identity holds the model's weights digest, so a retrained model reruns KIE and nothing
else. The model folder is checked when the workflow is parsed: missing, damaged, or trained for
another field schema is a clear error before any job; OCR from an engine it was neither trained
nor measured on is a warning, from one it was measured to read worse than the rules on, an
error.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from ..errors import ModelError
from ..evidence import source_of
from ..fields import FieldSchema, load_field_schema
from ..learn.candidates import (
    CANDIDATE_REVISION,
    CHOICE_REVISION,
    FEATURES,
    Candidate,
    read_sheet,
)
from ..learn.folder import read_card
from ..learn.known import KnownValues, load_known
from ..rules import REVISION
from . import Document, Extraction, Extractor
from .guardrails import Guardrails

if TYPE_CHECKING:
    from ..learn.inference import Pick


def ocr_kind(identity: dict[str, Any]) -> dict[str, Any]:
    """What of an OCR engine's identity a model depends on: the engine and its model."""
    return {"name": identity.get("name"), "model": identity.get("model")}


def fitting_card(folder: Path, schema: FieldSchema) -> dict[str, Any]:
    """The card of the model in ``folder`` if this ocrkie can use it with ``schema`` (the
    features it makes, the schema's fields); else a ModelError."""
    card = read_card(folder)
    if card.get("features") != FEATURES:
        raise ModelError(
            f"the KIE model in {folder} reads features of version {card.get('features')}, "
            f"this ocrkie makes version {FEATURES}: retrain it with train_kie"
        )
    if card["fields_sha256"] != schema.fields_sha256:
        raise ModelError(
            f"the KIE model in {folder} was trained for the field schema "
            f"{card['schema_title']!r} (fields {', '.join(card['fields'])}), not for "
            f"{schema.document.get('title', '')!r} (fields "
            f"{', '.join(f.name for f in schema.fields)}, "
            "or other hints): train one for it with train_kie, or use kie_backend: rules"
        )
    return card


def check_ocr(folder: Path, card: dict[str, Any], ocr_identity: dict[str, Any]) -> list[str]:
    """Whether the model in ``folder`` serves this OCR engine's records: none to say where it
    was trained or measured on them and reads better than the rules; a warning where its
    accuracy on them is unknown; a ModelError where it was measured to read worse than the
    rules on them (the rules are then the backend to use)."""
    ocr = ocr_kind(ocr_identity)
    trained = [ocr_kind(e) for e in card.get("ocr_engines", [card["ocr_engine"]])]
    if ocr in trained:
        return []
    measured = next((m for m in card.get("measured", []) if ocr_kind(m["ocr"]) == ocr), None)
    if measured is None:
        names = " and ".join(dict.fromkeys(e["name"] for e in trained))
        return [
            f"the KIE model in {folder} was trained on OCR from {names}; its accuracy "
            f"on OCR from {ocr['name']} ({ocr['model']}) is unknown: check the fields of a "
            "sample of this run (results/review.csv), or use kie_backend: rules"
        ]
    if measured["mean_model"] < measured["mean_rules"]:
        raise ModelError(
            f"the KIE model in {folder} reads fields from {ocr['name']}'s OCR worse than the "
            f"rules do ({measured['mean_model']} against {measured['mean_rules']} on "
            f"{measured['documents']} documents): use kie_backend: rules, or train one on this "
            "engine's records with train_kie"
        )
    return []


class LearnedExtractor(Extractor):
    """Candidates from the OCR rows, ranked by a small torch model; batched over a shard.

    It computes on the CPU, GPU or not: the model is a few small matrix products a document
    (under 0.5 ms of its 13), and on an H100 a pass was no faster than on one CPU thread, the
    tensors' trips to the card included (docs/benchmarks.md). A KIE job holds no GPU either.
    """

    batch_size = 64  # documents per pass of the model (their tensors: a few MB)
    guardrails = Guardrails(typical_seconds={"cpu": 0.05})  # candidates and model: ~13 ms

    def __init__(
        self,
        folder: Path,
        schema: FieldSchema,
        card: dict[str, Any],
        known: KnownValues | None = None,
    ):
        self.folder, self.schema, self.card = folder, schema, card
        self.known = known or KnownValues()
        self.model: Any = None

    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        folder = Path(config["learned_model"])
        schema = load_field_schema(config["kie_schema"])
        card = fitting_card(folder, schema)
        return cls(folder, schema, card, load_known(folder, card))

    def check_upstream(self, ocr_identity: dict[str, Any]) -> list[str]:
        return check_ocr(self.folder, self.card, ocr_identity)

    def identity(self) -> dict[str, Any]:
        return {
            "name": "ocrkie-learned",
            "version": version("ocrkie"),
            "schema": self.schema.sha256,
            "model": self.card["weights_sha256"],
            "readings": self.card["readings"],
            "known": self.card.get("known_sha256"),  # the values it mends misreadings to
            "words": self.card.get("words_sha256"),  # and the words
            "rules": REVISION,  # their pick and cuts are among what the model reads
            "candidates": CANDIDATE_REVISION,  # the values it chooses among
            "choice": CHOICE_REVISION,  # how it chooses among them
            # how its odds become confidence, where training fitted it
            **({"calibration": c} if (c := self.card.get("calibration")) else {}),
        }

    def _load(self) -> Any:
        if self.model is None:
            from ..learn.model import load

            self.model = load(self.folder, self.card, self.device)
        return self.model

    def extract(self, document: Document) -> Extraction:
        return self.extract_many([document])[0]

    def extract_many(self, documents: Sequence[Document]) -> list[Extraction]:
        """The documents read in one pass of the model (the KIE stage hands it a shard
        ``batch_size`` documents at a time)."""
        from ..learn.inference import read_many

        model = self._load()
        sheets = [read_sheet(document.ocr, self.schema) for document in documents]
        calibration = self.card.get("calibration")
        picks = read_many(
            model, sheets, self.card["readings"], self.known, self.device, calibration
        )
        return [self._extraction(chosen) for chosen in picks]

    def _extraction(self, picks: dict[str, Pick]) -> Extraction:
        fields = {}
        for spec in self.schema.fields:
            pick = picks[spec.name]
            fields[spec.name] = {"type": spec.type, **_value(pick.candidate, pick.confidence)}
        return Extraction(fields)

    def close(self) -> None:
        self.model = None


def _value(candidate: Candidate | None, odds: float) -> dict[str, Any]:
    if candidate is None:
        return {"value": None, "normalized": None, "confidence": 0.0, "source": None}
    source, _ = source_of(candidate.pieces)
    value = {
        "value": candidate.value,
        "normalized": candidate.normalized,
        "confidence": round(odds, 4),
        "source": source,
    }
    if candidate.mended is not None:  # a misreading of a value the model was taught
        value["ocr_value"] = candidate.mended
    return value
