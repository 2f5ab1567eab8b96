"""EasyOCR's reader, built offline from the bundled weights: for the EasyOCR engine and for
the line recognisers that use its detector."""

from __future__ import annotations

import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ModelLoadError


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
