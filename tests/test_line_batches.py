"""The local engine's lines read in batches across pages (``rapidocr.batch_size`` above 1, as on
a GPU): batches of lines of similar width, the same reading as one line at a time, the batch
sized from free GPU memory (on a CPU: one line), and smaller batches when memory runs out.
The GPU's code path, run here on the CPU."""

from __future__ import annotations

import random

import pytest

from conftest import SAMPLE_IMAGES
from ocrkie.engines.rapid import WIDTH_SLACK, RapidOcrEngine, width_batches
from ocrkie.images import load_page

PAGES = SAMPLE_IMAGES[:3]


def pages():
    return [load_page(str(path), max_pixels=10**8, max_side=4096) for path in PAGES]


def test_every_line_is_in_one_batch_with_lines_of_about_its_width():
    widths = [random.Random(n).randint(96, 1600) for n in range(500)]
    batches = width_batches(widths, 32)
    assert sorted(i for batch in batches for i in batch) == list(range(500))
    for batch in batches:
        assert len(batch) <= 32
        assert max(widths[i] for i in batch) <= WIDTH_SLACK * min(widths[i] for i in batch)


def test_lines_of_several_pages_read_together_read_as_each_line_alone():
    alone = RapidOcrEngine(device="cpu").recognize_many(pages())
    engine = RapidOcrEngine(device="cpu", line_batch=16)
    together = engine.recognize_many(pages())
    assert engine.batch_size > 1  # a job hands it several pages a call
    for one, many in zip(alone, together, strict=True):
        assert many.facts == {"line_batch": 16}
        texts = [line.text for line in many.lines]
        assert len(texts) == len(one.lines)
        assert sum(a.text == b for a, b in zip(one.lines, texts, strict=True)) >= len(texts) - 1
        for line in many.lines:
            assert [w.text for w in line.words] == line.text.split()


def test_on_a_cpu_a_batch_left_to_free_gpu_memory_is_one_line():
    engine = RapidOcrEngine(device="cpu", line_batch=0)
    found = engine.recognize_many(pages()[:1])
    assert engine.device == "cpu" and "line_batch" not in found[0].facts
    assert found[0].lines


def test_out_of_gpu_memory_halves_the_batch_and_reads_every_line(monkeypatch):
    engine = RapidOcrEngine(device="cpu", line_batch=16)
    engine.recognize_many(pages()[:1])  # loads the models
    recognizer = engine._engine._load_rec_model()
    read = type(recognizer).__call__
    sizes = []

    def short_of_memory(self, given):
        sizes.append(len(given.img))
        if len(given.img) > 4:
            raise RuntimeError("Failed to allocate memory for requested buffer")
        return read(self, given)

    monkeypatch.setattr(type(recognizer), "__call__", short_of_memory)
    found = engine.recognize_many(pages())
    assert all(page.lines for page in found)
    fitted = next(n for n, size in enumerate(sizes) if size <= 4)
    assert max(sizes[fitted:]) <= 4  # once a size fits, no batch is larger
    assert found[-1].facts == {"line_batch": 4}


def test_batches_across_pages_are_part_of_the_identity_and_one_line_is_as_before():
    def params(batch: int) -> dict:
        block = {"device": "cpu", "text_score": 0.5, "batch_size": batch}
        return RapidOcrEngine.from_config({"rapidocr": block}).identity()["params"]

    assert "batches" not in params(1)
    assert params(0) == params(1)  # on a CPU, 0 reads one line at a time
    assert params(16)["batches"] and params(16)["batch_size"] == 16


@pytest.mark.parametrize("batch", [1, 16])
def test_a_blank_page_has_no_lines(batch):
    from PIL import Image

    from ocrkie.images import PageImage

    page = PageImage("0" * 64, "blank.png", Image.new("RGB", (600, 800), "white"), 600, 800, 1.0)
    assert RapidOcrEngine(device="cpu", line_batch=batch).recognize_many([page])[0].lines == []
