"""The bundled engine needs no network: its models ship inside the rapidocr wheel."""

from __future__ import annotations

import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from conftest import SAMPLE_IMAGES

PROBE = """
import socket, sys
try:
    socket.create_connection(("1.1.1.1", 443), timeout=3)
    sys.exit("the sandbox has network")
except OSError:
    pass
from ocrkie.engines.rapid import RapidOcrEngine
from ocrkie.images import load_page
page = load_page(sys.argv[1], max_pixels=10**8, max_side=4096)
print(RapidOcrEngine(threads=1).recognize(page).lines[0].text)
"""


def test_the_default_models_are_in_the_wheel():
    models = Path(find_spec("rapidocr").origin).parent / "models"
    for name in ("PP-OCRv6_det_small.onnx", "PP-OCRv6_rec_small.onnx"):
        assert (models / name).stat().st_size > 1_000_000


def test_ocr_runs_with_no_network(tmp_path: Path):
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.fail(f"cannot create a network namespace here: {probe.stderr.decode()}")
    done = subprocess.run(
        ["unshare", "-rn", sys.executable, "-c", PROBE, str(SAMPLE_IMAGES[0])],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},  # no caches to lean on
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "KEDAI RUNCIT SRI MURNI SDN BHD"
