"""Kraken line recognition: a kraken recognition model the user has on disk (.mlmodel or
.safetensors, e.g. from the HTR-United / Zenodo model repository or trained with ketos),
reading the lines a bundled detector finds. Kraken's own segmenter is not used: the lines
come from the same detectors as the other engines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any, ClassVar

from PIL import Image

from ..errors import ModelLoadError
from ..settings import Settings, setting
from .guardrails import Guardrails, ModelKind
from .lines import LINE_READER_SETTINGS, LineReader
from .torch_device import import_torchvision


class KrakenEngine(LineReader):
    name = settings_block = "kraken"
    settings_schema: ClassVar[Settings] = {
        "model": setting("", "a kraken recognition model (.mlmodel or .safetensors)"),
        **LINE_READER_SETTINGS,
    }
    guardrails = Guardrails(
        devices=("cpu", "cuda"),
        batch_sizes=(1, 256),
        cpu_batch=8,
        typical_seconds={"cpu": 5, "cuda": 1},  # estimates
        model=ModelKind(
            "a kraken recognition model", folder=False, suffixes=(".mlmodel", ".safetensors")
        ),
    )
    per_line_mb = 32.0

    def library_version(self) -> str:
        return version("kraken")

    def model_digest(self) -> str:
        with self.model_path.open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()

    def load(self, device: str) -> Any:
        import_torchvision()
        try:
            from kraken.lib.dataset import ImageInputTransforms
            from kraken.lib.models import TorchSeqRecognizer
            from kraken.models import load_models

            nets = load_models(self.model_path, tasks=["recognition"])
            if not nets:
                raise ValueError("it holds no recognition model")
            recogniser = TorchSeqRecognizer(nets[0], device=device)
        except Exception as exc:
            raise ModelLoadError(f"cannot load the kraken model {self.model_path}: {exc}") from exc
        batch, channels, height, width = recogniser.nn.input
        self.transform = ImageInputTransforms(batch, height, width, channels, (16, 0), False)
        return recogniser

    def read(self, crops: Sequence[Image.Image]) -> list[tuple[str, float]]:
        import torch

        lines = [self.transform(crop.convert("L")) for crop in crops]
        widths = torch.tensor([line.shape[2] for line in lines])
        batch = torch.zeros(len(lines), *lines[0].shape[:2], int(widths.max()))
        for i, line in enumerate(lines):
            batch[i, :, :, : line.shape[2]] = line
        with torch.inference_mode():
            decoded = self._model.predict(batch, widths if len(lines) > 1 else None)
        return [
            ("".join(c for c, *_ in chars), _mean(conf for *_, conf in chars)) for chars in decoded
        ]


def _mean(values: Any) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0
