"""TrOCR-style line recognition: a transformers ``VisionEncoderDecoderModel`` the user has
on disk (a folder saved by ``save_pretrained``: config.json, the weights, the tokenizer
and preprocessor_config.json), loaded offline, reading the lines a bundled detector finds.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any, ClassVar

from PIL import Image

from ..errors import ModelLoadError
from ..settings import Settings, setting
from .guardrails import Guardrails, ModelKind
from .lines import LINE_READER_SETTINGS, LineReader
from .torch_device import import_torchvision

WEIGHTS = ("model.safetensors", "pytorch_model.bin")


class TrOcrEngine(LineReader):
    name = settings_block = "trocr"
    settings_schema: ClassVar[Settings] = {
        "model": setting("", "a VisionEncoderDecoder folder (save_pretrained)"),
        **LINE_READER_SETTINGS,
        "max_new_tokens": setting(64, "the longest line read, in tokens", minimum=1),
        "num_beams": setting(1, "beams of the search (1: greedy)", minimum=1),
    }
    guardrails = Guardrails(
        devices=("cpu", "cuda"),
        batch_sizes=(1, 128),
        cpu_batch=8,
        cpu_seconds_per_page=20,  # trocr-base: about half a second a line, 40 lines a receipt
        typical_seconds={"cpu": 20, "cuda": 2},  # estimates
        model=ModelKind(
            "a TrOCR folder saved by save_pretrained",
            folder=True,
            contains=("config.json", "preprocessor_config.json"),
            model_type="vision-encoder-decoder",
        ),
    )
    per_line_mb = 96.0

    def library_version(self) -> str:
        return version("transformers")

    def model_digest(self) -> str:
        digest = hashlib.sha256()
        for name in ("config.json", "generation_config.json", *WEIGHTS):
            path = self.model_path / name
            if path.is_file():
                with path.open("rb") as file:
                    digest.update(name.encode() + hashlib.file_digest(file, "sha256").digest())
        return digest.hexdigest()

    def load(self, device: str) -> Any:
        os.environ["HF_HUB_OFFLINE"] = "1"  # the user's folder, never the hub
        import_torchvision()  # transformers' image processors import it
        try:
            from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()

            folder = str(self.model_path)
            self.processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            model = VisionEncoderDecoderModel.from_pretrained(folder, local_files_only=True)
        except Exception as exc:
            raise ModelLoadError(f"cannot load the TrOCR model {self.model_path}: {exc}") from exc
        return model.to(device).eval()

    def read(self, crops: Sequence[Image.Image]) -> list[tuple[str, float]]:
        import torch

        pixels = self.processor(images=list(crops), return_tensors="pt").pixel_values
        with torch.inference_mode():
            out = self._model.generate(
                pixels.to(self.device),
                max_new_tokens=self.settings["max_new_tokens"],
                num_beams=self.settings["num_beams"],
                output_scores=True,
                return_dict_in_generate=True,
            )
            scores = self._model.compute_transition_scores(
                out.sequences, out.scores, out.get("beam_indices"), normalize_logits=True
            )
        texts = self.tokenizer.batch_decode(out.sequences, skip_special_tokens=True)
        generated = out.sequences[:, -scores.shape[1] :]
        kept = generated != self.tokenizer.pad_token_id
        mean = (scores * kept).sum(1) / kept.sum(1).clamp(min=1)
        return [(text.strip(), float(p)) for text, p in zip(texts, mean.exp(), strict=True)]
