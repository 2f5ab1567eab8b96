"""The bundled engine, rapidocr, with its real models: how it turns a page's lines, and the
characters it may read."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from conftest import SAMPLE_IMAGES, SAMPLES
from ocrkie.engines.rapid import RapidOcrEngine, _turn_page_lines
from ocrkie.evaluate import read_box_lines
from ocrkie.images import decode_page

PAGE = SAMPLE_IMAGES[0]


@pytest.fixture(scope="module")
def engine() -> RapidOcrEngine:
    return RapidOcrEngine(threads=1, device="cpu")


def read(engine: RapidOcrEngine, image: Image.Image) -> list[str]:
    data = io.BytesIO()
    image.save(data, "PNG")
    page = decode_page(data.getvalue(), max_pixels=10**8, max_side=4096, name="page.png")
    return [line.text for line in engine.recognize(page).lines]


def line_crops() -> list[np.ndarray]:
    """The sample page's printed lines, cut out as rapidocr cuts the lines it finds."""
    page = Image.open(PAGE).convert("RGB")
    crops = []
    for line in read_box_lines(SAMPLES / "box" / f"{PAGE.stem}.csv"):
        xs, ys = [x for x, _ in line.polygon], [y for _, y in line.polygon]
        crops.append(np.asarray(page.crop((min(xs), min(ys), max(xs), max(ys)))))
    return crops


def test_an_upside_down_page_reads_as_the_upright_one(engine: RapidOcrEngine):
    upright = read(engine, Image.open(PAGE))
    assert sorted(read(engine, Image.open(PAGE).rotate(180))) == sorted(upright)
    assert len(upright) >= 20


def test_a_page_turns_its_lines_together_or_not_at_all(engine: RapidOcrEngine):
    rapid = engine._load()  # rapidocr itself, as the engine sets it up
    crops = line_crops()
    one_turned = [np.rot90(crops[0], 2), *crops[1:]]
    # the classifier takes that line for upside down; the page is upright: it stays as it is
    classifier = rapid._load_cls_model()
    assert "180" in classifier(one_turned).cls_res[0][0]
    kept, _ = _turn_page_lines(rapid, one_turned)
    assert all(a is b for a, b in zip(kept, one_turned, strict=True))
    # a page upside down: every line is turned, whatever the classifier said of each
    all_turned = [np.rot90(crop, 2) for crop in crops]
    upright, _ = _turn_page_lines(rapid, all_turned)
    assert all(np.array_equal(a, b) for a, b in zip(upright, crops, strict=True))


def test_an_ascii_alphabet_reads_accented_print_as_plain_letters():
    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSansMono.ttf"
    page = Image.new("RGB", (700, 160), "white")
    draw = ImageDraw.Draw(page)
    for row, text in enumerate(["CAFÉ NOËL SDN BHD", "TOTAL: 12.50"]):
        draw.text((20, 20 + 70 * row), text, fill=20, font=ImageFont.truetype(str(font), 30))
    text = {
        alphabet: " ".join(read(RapidOcrEngine(alphabet=alphabet), page)).split()
        for alphabet in ("all", "ascii")
    }
    assert text["all"] == ["CAFÉ", "NOËL", "SDN", "BHD", "TOTAL:", "12.50"]
    assert text["ascii"] == ["CAFE", "NOEL", "SDN", "BHD", "TOTAL:", "12.50"]
