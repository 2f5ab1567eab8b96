"""faster-paddle with the models in its wheel: what it reads on the samples, its word boxes,
the cascade (tiny first, the small recogniser for the lines it doubts), and no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SAMPLE_IMAGES, SAMPLES, make_workdir
from ocrkie.engines.faster_paddle import FasterPaddleEngine
from ocrkie.engines.registry import build
from ocrkie.evaluate import evaluate, read_box_lines
from ocrkie.images import decode_page, load_page
from ocrkie.page import Line, lines_record

PAGE = SAMPLE_IMAGES[0]


def page_of(path: Path, max_side: int = 4096):
    return load_page(str(path), max_pixels=10**8, max_side=max_side)


def words_of(lines: list[Line]) -> list[str]:
    return " ".join(line.text for line in lines).upper().split()


@pytest.fixture(scope="module")
def small() -> FasterPaddleEngine:
    return FasterPaddleEngine(threads=1, model="small")


def test_it_reads_the_sample_as_printed_with_word_boxes_inside_each_line(small):
    lines = small.recognize(page_of(PAGE)).lines
    truth = words_of(read_box_lines(SAMPLES / "box" / f"{PAGE.stem}.csv"))
    read = words_of(lines)
    assert len(set(read) & set(truth)) >= 0.9 * len(set(truth))
    assert lines[0].text == "KEDAI RUNCIT SRI MURNI SDN BHD"
    for line in lines:
        assert line.words and [w.text for w in line.words] == line.text.split()
        (left, top), (right, _), (_, bottom), _ = line.polygon
        assert left < right and top < bottom
        edges = [x for word in line.words for x in (word.polygon[0][0], word.polygon[1][0])]
        assert edges == sorted(edges) and left <= edges[0] and edges[-1] <= right
        for word in line.words:
            assert word.confidence == line.confidence
            assert all(top <= y <= bottom for _, y in word.polygon)
    # the first line's box is where the truth has it
    first = read_box_lines(SAMPLES / "box" / f"{PAGE.stem}.csv")[0].polygon
    for p, q in zip(lines[0].polygon, first, strict=True):
        assert abs(p[0] - q[0]) <= 12 and abs(p[1] - q[1]) <= 12


def test_a_downscaled_page_gives_boxes_in_page_pixels(small):
    full = small.recognize(page_of(PAGE)).lines
    half = small.recognize(page_of(PAGE, max_side=500)).lines
    assert page_of(PAGE, max_side=500).scale < 0.7
    assert half[0].text == full[0].text
    for p, q in zip(half[0].polygon, full[0].polygon, strict=True):
        assert abs(p[0] - q[0]) < 8 and abs(p[1] - q[1]) < 8


def test_pages_of_a_batch_read_as_each_alone():
    engine = FasterPaddleEngine(threads=1, model="tiny", batch_size=3)
    pages = [page_of(p) for p in SAMPLE_IMAGES[:3]]
    together = engine.recognize_many(pages)
    for page, result in zip(pages, together, strict=True):
        assert [ln.text for ln in result.lines] == [ln.text for ln in engine.recognize(page).lines]


def test_the_cascade_says_which_model_read_each_line():
    page = page_of(PAGE)
    tiny = FasterPaddleEngine(threads=1, model="tiny").recognize(page)
    assert all(line.model == "" for line in tiny.lines)  # one model: nothing to tell apart
    none = FasterPaddleEngine(threads=1, model="cascade", reread_below=0).recognize(page)
    assert [ln.text for ln in none.lines] == [ln.text for ln in tiny.lines]
    assert none.facts["models"] == {"tiny": len(none.lines)}
    every = FasterPaddleEngine(threads=1, model="cascade", reread_below=1).recognize(page)
    assert every.facts["models"] == {"small": len(every.lines)}
    some = FasterPaddleEngine(threads=1, model="cascade", reread_below=0.97).recognize(page)
    doubted = {ln.text for ln in tiny.lines if ln.confidence < 0.97}
    assert 0 < some.facts["models"].get("small", 0) <= len(doubted)
    for line in some.lines:
        assert line.model in ("tiny", "small")
        assert line.model == "small" or line.confidence >= 0.97
        assert [w.text for w in line.words] == line.text.split()
    record = lines_record(some.lines)
    assert {line["model"] for line in record["lines"]} == {"tiny", "small"}
    truth = words_of(read_box_lines(SAMPLES / "box" / f"{PAGE.stem}.csv"))
    right = [len(set(words_of(r.lines)) & set(truth)) for r in (tiny, every)]
    assert right[1] >= right[0]


def test_its_identity_names_the_models_and_settings():
    config = {"faster_paddle": {"model": "cascade", "reread_below": 0.9}}
    engine = build("ocr", {"ocr_backend": "faster_paddle", **config})
    identity = engine.identity()
    assert identity["name"] == "faster_paddle" and identity["version"]
    assert identity["model"] == "PP-OCRv6_tiny+PP-OCRv6_rec_small"
    assert identity["params"]["reread_below"] == 0.9
    small = build("ocr", {"ocr_backend": "faster_paddle"}).identity()
    assert small["model"] == "PP-OCRv6_small" and "reread_below" not in small["params"]
    with pytest.raises(ValueError, match=r"faster_paddle\.model"):
        FasterPaddleEngine(model="medium")  # downloaded at first use: not offered


def test_the_plan_says_it_leaves_a_gpu_idle_where_onnxruntime_has_one(monkeypatch):
    from ocrkie.engines import faster_paddle

    engine = FasterPaddleEngine()
    assert engine.cpu_because == ""  # this machine: onnxruntime's CPU build
    real = faster_paddle.version
    monkeypatch.setattr(
        faster_paddle, "version", lambda name: "1.31.1" if name == "onnxruntime-gpu" else real(name)
    )
    assert "ocr_backend: rapidocr reads on the GPU" in engine.cpu_because


def test_a_blank_or_tiny_page_reads_as_no_lines(small):
    from PIL import Image

    for size in [(8, 8), (3000, 30)]:
        data = Image.new("RGB", size, "white")
        page = decode_page(_png(data), max_pixels=10**8, max_side=4096)
        assert small.recognize(page).lines == []


def _png(image) -> bytes:
    import io

    data = io.BytesIO()
    image.save(data, "PNG")
    return data.getvalue()


def test_the_workflow_runs_it_and_records_the_cascade(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:2])
    (workdir.path / "engine.yaml").write_text(
        "input_dir: scans\nocr_backend: faster_paddle\nkie_backend: rules\n"
        "faster_paddle: {model: cascade}\n"
    )
    workdir.snakemake("--configfile", "config/config.yaml", "engine.yaml")
    records = workdir.records("ocr")
    assert len(records) == 2
    for record in records.values():
        assert record["status"] == "ok"
        assert record["engine"]["name"] == "faster_paddle"
        counts = record["engine"]["models"]
        assert sum(counts.values()) == len(record["lines"])
        assert {line["model"] for line in record["lines"]} <= {"tiny", "small"}
    report = evaluate(workdir.results, SAMPLES)
    assert report["images"] == 2 and report["word_f1"] > 0.85
    assert all(r["status"] == "ok" for r in workdir.records("kie").values())
