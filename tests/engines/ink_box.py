"""An OCR engine of one's own, in one file outside the package: it finds where the ink is
on a page and reports it as one line. The workflow takes it as
``ocr_backend: tests/engines/ink_box.py:InkBoxOcr`` and checks its ``ink_box`` settings."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from ocrkie.engines import OcrEngine, Recognition
from ocrkie.images import PageImage
from ocrkie.page import Line, Word, scaled
from ocrkie.settings import Settings, setting


class InkBoxOcr(OcrEngine):
    """The box around a page's ink, as one line."""

    settings_block = "ink_box"
    settings_schema: ClassVar[Settings] = {
        "threshold": setting(128, "pixels darker than this are ink", minimum=0, maximum=255),
        "label": setting("ink", "the text of the line", minLength=1),
    }

    def __init__(self, threshold: int, label: str):
        self.threshold, self.label = threshold, label

    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        return cls(**cls.settings(config))

    def identity(self) -> dict[str, Any]:
        return {"name": "ink_box", "version": "1", "params": vars(self)}

    def recognize(self, page: PageImage) -> Recognition:
        ink = page.image.convert("L").point(lambda value: 255 if value < self.threshold else 0)
        box = ink.getbbox()
        if box is None:
            return Recognition([])
        x0, y0, x1, y1 = box
        polygon = scaled([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], 1 / page.scale)
        word = Word(self.label, 1.0, polygon)
        return Recognition([Line(text=self.label, confidence=1.0, polygon=polygon, words=[word])])
