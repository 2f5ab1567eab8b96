"""Field schemas: what KIE extracts, as a JSON Schema (one property per field).

The same document is sent to Upstage Information Extraction as ``response_format``. Each
property may carry hints for the local extractor under ``x-ocrkie`` (stripped before anything
is sent out):

- ``type``: ``text`` (a single row), ``address`` (a block of rows), ``date`` or ``amount``
- ``keywords``: label phrases, most specific first; a value follows its label on the same row,
  or on the next row
- ``exclude``: regular expressions; a row matching one is never a candidate
- ``patterns``: regular expressions the value's rows may match instead of a keyword
- ``region``: ``top``, ``bottom`` or ``any`` (default) part of the page to search
- ``pick``: among amount candidates, ``first`` (default: the most specific label, then the
  first row), ``last`` or ``max``
- ``adjust``: labels of rows right after an amount that adjust it ("rounding"): the
  normalised value includes them
- ``date_order``: ``DMY`` (default) or ``MDY`` for ambiguous numeric dates
- ``max_lines``: the most rows an address may span (default 4)
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .formats import digest

HINTS = "x-ocrkie"


@dataclass
class FieldSpec:
    name: str
    type: str = "text"
    keywords: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    region: str = "any"
    pick: str = "first"
    date_order: str = "DMY"
    max_lines: int = 4
    adjust: list[str] = field(default_factory=list)


@dataclass
class FieldSchema:
    document: dict[str, Any]
    fields: list[FieldSpec]
    sha256: str

    @property
    def fields_sha256(self) -> str:
        """The fields' names, types and local hints: what a local extractor reads of the
        schema (descriptions are for services)."""
        return digest([asdict(spec) for spec in self.fields], 64)

    def for_api(self) -> dict[str, Any]:
        """The schema without local hints, as sent to a service."""
        doc = copy.deepcopy(self.document)
        doc.pop("$schema", None)
        for prop in doc.get("properties", {}).values():
            prop.pop(HINTS, None)
        return doc


def load_field_schema(path: str | Path) -> FieldSchema:
    """The schema at ``path``; its digest covers its content, not its formatting."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    properties = document.get("properties")
    if document.get("type") != "object" or not isinstance(properties, dict) or not properties:
        raise ConfigError(f"{path}: a field schema is a JSON Schema object with properties")
    fields = [_field_spec(name, prop) for name, prop in properties.items()]
    return FieldSchema(document, fields, digest(document, 64))


def _field_spec(name: str, prop: dict[str, Any]) -> FieldSpec:
    hints = dict(prop.get(HINTS, {}))
    if "type" not in hints:
        hints["type"] = "amount" if prop.get("type") in ("number", "integer") else "text"
    hints.setdefault("keywords", [name.replace("_", " ")])
    return FieldSpec(name=name, **hints)
