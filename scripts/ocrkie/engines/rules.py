"""The bundled local KIE engine: the rules (``ocrkie.rules``) over the OCR record's rows:
labels, patterns and layout, fast, offline, no model."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any, Self

from ..fields import FieldSchema, load_field_schema
from ..rules import REVISION, read_fields
from . import Document, Extraction, Extractor
from .guardrails import Guardrails


class RuleExtractor(Extractor):
    """Labels, patterns and layout over OCR rows: fast, offline, no model."""

    guardrails = Guardrails(typical_seconds={"cpu": 0.01})

    def __init__(self, schema: FieldSchema):
        self.schema = schema

    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        return cls(load_field_schema(config["kie_schema"]))

    def identity(self) -> dict[str, Any]:
        return {
            "name": "ocrkie-rules",
            "version": version("ocrkie"),
            "revision": REVISION,
            "schema": self.schema.sha256,
        }

    def extract(self, document: Document) -> Extraction:
        return Extraction(read_fields(document.ocr, self.schema))
