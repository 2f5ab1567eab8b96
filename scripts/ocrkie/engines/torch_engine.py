"""What every OCR engine on torch shares: its device and batch size, from its config block
and checked against its guardrails when the workflow is parsed, and its model loaded on the
job's own device when the first page that is not in the cache comes."""

from __future__ import annotations

import logging
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

from ..gpu import gpu_request
from ..images import PageImage
from ..settings import Settings, setting
from . import OcrEngine, Recognition
from .guardrails import DEVICE_SETTING, NO_GPU, check_settings
from .torch_device import batch_size, job_device

log = logging.getLogger(__name__)


TORCH_SETTINGS: Settings = {
    "device": DEVICE_SETTING,
    "batch_size": setting(0, "text lines per batch; 0: from free GPU memory", minimum=0),
}


class TorchOcrEngine(OcrEngine):
    name: ClassVar[str]  # also the name of its config block
    per_line_mb: ClassVar[float] = 64.0  # GPU memory one line of a batch takes, roughly
    in_worker = True  # native code that may hang or grow

    def __init__(self, block: dict[str, Any], threads: int = 1):
        self.planned_device, model = check_settings(self.name, self.guardrails, block)
        self.model_path: Path | None = model
        self.device = self.planned_device
        if self.device == "cpu" and block["device"] == "auto":
            self.cpu_because = NO_GPU
        self.configured_batch = block["batch_size"]
        self.threads_per_job = threads
        self.line_batch = 0  # lines per recognition batch: chosen when the model loads
        self._model: Any = None

    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        return cls(cls.settings(config), threads)

    def resources(self, remote: bool) -> dict[str, int]:
        return gpu_request(remote, self.planned_device)

    @abstractmethod
    def load(self, device: str) -> Any:
        """The model on ``device``."""

    def recognize(self, page: PageImage) -> Recognition:
        return self.recognize_many([page])[0]

    def _start(self) -> None:
        import torch

        torch.set_num_threads(self.threads_per_job)
        self.device = job_device(self.planned_device)
        self._model = self.load(self.device)
        self.line_batch = batch_size(
            self.device, self.configured_batch, self.per_line_mb, self.guardrails
        )
        log.info("%s on %s, %d lines per batch", self.name, self.device, self.line_batch)

    def close(self) -> None:
        self._model = None
