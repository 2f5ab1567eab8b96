"""The local engine's narrowest recognition input (``rapidocr.rec_min_width``): short lines are
read at their own width, the text stays, and the cache key changes only where it is set."""

from __future__ import annotations

from conftest import SAMPLE_IMAGES
from ocrkie.engines.rapid import REC_MIN_WIDTH, RapidOcrEngine
from ocrkie.images import load_page


def test_a_narrower_floor_reads_the_sample_alike():
    page = load_page(str(SAMPLE_IMAGES[0]), max_pixels=10**8, max_side=4096)
    own = RapidOcrEngine(device="cpu").recognize(page).lines
    narrow = RapidOcrEngine(device="cpu", rec_min_width=96).recognize(page).lines
    assert len(own) == len(narrow)
    same = sum(a.text == b.text for a, b in zip(own, narrow, strict=True))
    assert same >= len(own) - 1
    for line in narrow:
        assert [w.text for w in line.words] == line.text.split()


def test_only_a_floor_other_than_rapidocrs_own_is_part_of_the_identity():
    config = {"rapidocr": {"device": "cpu", "text_score": 0.5}}
    assert "rec_min_width" not in RapidOcrEngine.from_config(config).identity()["params"]
    config["rapidocr"]["rec_min_width"] = REC_MIN_WIDTH
    assert "rec_min_width" not in RapidOcrEngine.from_config(config).identity()["params"]
    config["rapidocr"]["rec_min_width"] = 96
    assert RapidOcrEngine.from_config(config).identity()["params"]["rec_min_width"] == 96
