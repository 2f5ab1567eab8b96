"""Line recognisers (TrOCR, kraken, ...): a detector finds the page's text lines, the
recogniser reads each line crop, in batches.

A recogniser is one file: a subclass of ``LineReader`` that loads its model and reads a
batch of crops. Detection, cropping, batching (chosen from free GPU memory, halved on an
out-of-memory), word boxes and the canonical record are done here, once.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from functools import cached_property
from importlib.metadata import version
from typing import Any

from PIL import Image

from ..images import PageImage, crop_line, line_size
from ..page import Line, Polygon, scaled, split_words
from ..settings import Settings, setting
from . import Recognition
from .torch_device import in_batches
from .torch_engine import TORCH_SETTINGS, TorchOcrEngine


class Detector:
    """Finds text lines (4-point polygons in image pixels) with a bundled local detector."""

    def __init__(self, name: str, device: str, threads: int):
        self.name, self.device, self.threads = name, device, threads
        self._model: Any = None

    def identity(self) -> dict[str, str]:
        package = "rapidocr" if self.name == "rapidocr" else "easyocr"
        return {"name": self.name, "version": version(package)}

    def lines(self, image: Image.Image) -> list[Polygon]:
        import numpy as np

        if self._model is None:
            self._model = self._load()
        if self.name == "rapidocr":
            found = self._model(np.asarray(image), use_det=True, use_cls=False, use_rec=False)
            boxes = [] if found.boxes is None else found.boxes
            return [[[float(x), float(y)] for x, y in box] for box in boxes]
        horizontal, free = self._model.detect(np.asarray(image))
        boxes = [[[x0, y0], [x1, y0], [x1, y1], [x0, y1]] for x0, x1, y0, y1 in horizontal[0]]
        boxes += free[0]
        return [[[float(x), float(y)] for x, y in box] for box in boxes]

    def _load(self) -> Any:
        if self.name == "rapidocr":
            from rapidocr import RapidOCR

            return RapidOCR(
                params={
                    "Global.log_level": "warning",
                    "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                }
            )
        from .easy_reader import load_reader

        return load_reader(self.device)


LINE_READER_SETTINGS: Settings = {
    **TORCH_SETTINGS,
    "detector": setting(
        "rapidocr",
        "where the lines come from: rapidocr's or EasyOCR's bundled detector",
        enum=["rapidocr", "easyocr"],
    ),
}

PADDING = 0.1  # around each line crop, in line heights (as for the LMDB training set)


class LineReader(TorchOcrEngine):
    """A line recogniser over a bundled detector. Subclasses set ``name``, ``guardrails``
    and ``per_line_mb``, and implement ``load`` and ``read``."""

    batch_size = 8  # pages per call: the lines of all of them share the recognition batches

    def __init__(self, block: dict[str, Any], threads: int = 1):
        super().__init__(block, threads)
        self.detector = Detector(block["detector"], self.planned_device, threads)
        self.settings = {k: v for k, v in block.items() if k not in ("device", "batch_size")}

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.library_version(),
            "model": self.weights_sha256,
            "detector": self.detector.identity(),
            "params": {k: v for k, v in self.settings.items() if k not in ("model", "detector")},
        }

    @abstractmethod
    def library_version(self) -> str: ...

    @abstractmethod
    def model_digest(self) -> str:
        """What identifies the user's model: a digest of its weights."""

    @cached_property
    def weights_sha256(self) -> str:  # read once: the plan asks for the identity often
        return self.model_digest()

    @abstractmethod
    def read(self, crops: Sequence[Image.Image]) -> list[tuple[str, float]]:
        """Text and confidence of each line crop, in one batch."""

    def recognize_many(self, pages: Sequence[PageImage]) -> list[Recognition]:
        """Lines of every page found first, then read together: a batch spans pages."""
        if self._model is None:
            self._start()
        found = [(page, self._lines(page)) for page in pages]
        crops = [crop_line(page, box, PADDING) for page, boxes in found for box in boxes]
        read, self.line_batch = in_batches(self.read, crops, self.line_batch)
        reads = iter(read)
        return [self._record(boxes, reads) for _, boxes in found]

    def _lines(self, page: PageImage) -> list[Polygon]:
        """The detector's lines in page pixels; slivers too thin to read are left out."""
        boxes = [scaled(box, 1.0 / page.scale) for box in self.detector.lines(page.image)]
        return [box for box in boxes if min(line_size(box)) * page.scale >= 1]

    def _start(self) -> None:
        super()._start()
        self.detector.device = self.device  # the job's own GPU, for the detector too

    def _record(self, boxes: list[Polygon], reads: Any) -> Recognition:
        lines = []
        for polygon in boxes:
            text, confidence = next(reads)
            if text.strip():
                words = split_words(text, polygon, confidence)
                lines.append(Line(text, confidence, polygon, words))
        return Recognition(lines, facts={"line_batch": self.line_batch})
