"""OCR engines: each turns a ``PageImage`` into ``Line`` objects in page pixels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..formats import Line
from ..images import PageImage


@dataclass
class Recognition:
    lines: list[Line]
    raw: dict[str, Any] | None = None  # a service's answer, kept so results can be re-derived
    billing: dict[str, Any] | None = None  # what the answer cost: endpoint, billed_pages
    engine: dict[str, Any] | None = None  # facts learnt from the answer (a model snapshot)


class OcrEngine(Protocol):
    def identity(self) -> dict[str, Any]:
        """Name, version, model and every parameter that changes the output (the cache key)."""
        ...

    def recognize(self, page: PageImage, name: str) -> Recognition:
        """``name`` is the image's file name, for engines that upload files."""
        ...
