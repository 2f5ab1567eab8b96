"""A model folder: ``weights.pt``, and ``model.json``, its card (read without torch).

The card names the field schema (and its digest), the OCR engine the model was trained on,
the settings and seed, the validation scores, and the weights' digest: the model's identity.
``manifest.csv`` beside them lists every training image by sha256, with its split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ModelError

MODEL_FORMAT = "ocrkie.kie-model/1"
WEIGHTS = "weights.pt"
CARD = "model.json"
MANIFEST = "manifest.csv"


def read_card(folder: Path) -> dict[str, Any]:
    path = folder / CARD
    if not path.is_file() or not (folder / WEIGHTS).is_file():
        raise ModelError(
            f"no KIE model in {folder} (it needs {CARD} and {WEIGHTS}): train one with "
            "`snakemake --profile profiles/local-gpu train_kie --config train_dir=...`, "
            "or set learned_model to a model folder"
        )
    card = json.loads(path.read_text(encoding="utf-8"))
    if card.get("format") != MODEL_FORMAT:
        raise ModelError(f"{path}: not an ocrkie KIE model ({card.get('format')!r})")
    return card
