"""The torch OCR engines: EasyOCR with its real bundled weights, the TrOCR and kraken
adapters with tiny models built here, and the guardrails that stop a bad setting before any
job runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rapidocr
import torch

from conftest import SAMPLE_IMAGES, SAMPLES, Workdir, make_workdir
from ocrkie.engines.guardrails import Guardrails, cpu_warning, planned_device
from ocrkie.engines.torch_device import in_batches
from ocrkie.errors import DeviceError
from ocrkie.evaluate import evaluate
from ocrkie.page import split_words
from tiny_models import tiny_kraken, tiny_trocr

TWO = SAMPLE_IMAGES[:2]
RAPIDOCR_MODELS = Path(rapidocr.__file__).parent / "models"


def settings(workdir: Path, text: str) -> str:
    (workdir / "engine.yaml").write_text(f"input_dir: scans\nkie_backend: rules\n{text}\n")
    return "engine.yaml"


def run(workdir: Workdir, text: str, *args: str, check: bool = True):
    extra = settings(workdir.path, text)
    return workdir.snakemake(*args, "--configfile", "config/config.yaml", extra, check=check)


def canonical(record: dict) -> None:
    """What every OCR record holds, whichever engine made it."""
    assert record["status"] == "ok" and record["format"] == "ocrkie.ocr/1"
    assert record["lines"]
    for line in record["lines"]:
        assert len(line["polygon"]) == 4 and line["words"]
        assert " ".join(w["text"] for w in line["words"]) == " ".join(line["text"].split())
        xs = [x for x, _ in line["polygon"]]
        for word in line["words"]:
            assert min(xs) - 1 <= word["polygon"][0][0] <= word["polygon"][1][0] <= max(xs) + 1


@pytest.fixture(scope="module")
def easy_run(tmp_path_factory) -> Workdir:
    workdir = make_workdir(tmp_path_factory.mktemp("easyocr"), TWO)
    run(workdir, "ocr_backend: easyocr")
    return workdir


@pytest.mark.xdist_group("easyocr")  # one worker runs both tests of the shared run
def test_easyocr_reads_the_samples_with_its_bundled_weights(easy_run: Workdir):
    records = easy_run.records("ocr")
    assert len(records) == 2
    for record in records.values():
        canonical(record)
        assert record["engine"]["name"] == "easyocr"
        assert record["engine"]["model"] == "craft_mlt_25k+english_g2"
        assert record["engine"]["device"] == "cpu"
        truth = json.loads(
            (SAMPLES / "key" / f"{Path(record['image']['path']).stem}.json").read_text()
        )
        assert truth["company"].upper() in record["text"].upper()
    report = evaluate(easy_run.results, SAMPLES)
    assert report["images"] == 2 and report["cer"] < 0.1 and report["word_f1"] > 0.8
    assert all(r["status"] == "ok" for r in easy_run.records("kie").values())


@pytest.mark.xdist_group("easyocr")
def test_switching_engines_reruns_ocr_and_kie_and_switching_back_is_free(easy_run: Workdir):
    plan = run(easy_run, "ocr_backend: local", "-n").stdout
    assert "made with easyocr, now rapidocr" in plan
    assert "KIE (ocrkie-rules on cpu): 2 of 2 jobs to run" in plan
    run(easy_run, "ocr_backend: local")
    assert {r["engine"]["name"] for r in easy_run.records("ocr").values()} == {"rapidocr"}
    run(easy_run, "ocr_backend: easyocr")  # back: every page from the cache
    records = easy_run.records("ocr").values()
    assert {r["engine"]["name"] for r in records} == {"easyocr"}
    assert all(r["timing"]["cached"] for r in records)


def test_the_dry_run_warns_that_easyocr_is_slow_here(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES)
    plan = run(workdir, "ocr_backend: easyocr", "-n").stdout
    assert "OCR (easyocr on cpu: torch sees no GPU)" in plan
    assert "warning: easyocr is slow on a CPU (about 18 s a page per job): up to 6 pages" in plan
    assert "warning" not in run(workdir, "ocr_backend: local", "-n").stdout.lower()


@pytest.mark.parametrize(
    ("engine", "letter", "expected"),
    [("trocr", "C", "CCC"), ("kraken", "B", "B")],  # kraken is CTC: a repeated letter collapses
)
def test_a_line_recogniser_reads_every_detected_line(tmp_path: Path, engine, letter, expected):
    model = tmp_path / "model"
    if engine == "trocr":
        tiny_trocr(model, letter)
    else:
        model = tiny_kraken(tmp_path / "tiny.mlmodel", letter)
    workdir = make_workdir(tmp_path / "run", TWO)
    block = f"{engine}: {{model: {model}, max_new_tokens: 3}}" if engine == "trocr" else ""
    block = block or f"{engine}: {{model: {model}, batch_size: 5}}"
    run(workdir, f"ocr_backend: {engine}\n{block}")
    local = make_workdir(tmp_path / "local", TWO)
    run(local, "ocr_backend: local")
    for image_id, record in workdir.records("ocr").items():
        canonical(record)
        assert {line["text"] for line in record["lines"]} == {expected}
        assert record["engine"]["detector"]["name"] == "rapidocr"
        assert record["engine"]["line_batch"] == (8 if engine == "trocr" else 5)
        assert len(record["engine"]["model"]) == 64  # the weights' sha256
        # the lines are the detector's: the same boxes as rapidocr's own lines
        boxes = [line["polygon"] for line in local.records("ocr")[image_id]["lines"]]
        assert [line["polygon"] for line in record["lines"]] == boxes
    assert all((workdir.results / "txt").iterdir())


def test_a_retrained_model_reruns_ocr(tmp_path: Path):
    workdir = make_workdir(tmp_path / "run", TWO[:1])
    model = tiny_kraken(tmp_path / "a.mlmodel", "A")
    run(workdir, f"ocr_backend: kraken\nkraken: {{model: {model}}}")
    model.unlink()
    tiny_kraken(model, "D")
    plan = run(workdir, f"ocr_backend: kraken\nkraken: {{model: {model}}}", "-n").stdout
    assert "OCR (kraken on cpu: torch sees no GPU): 1 of 1 jobs to run" in plan


def recogniser_swapping_5_and_6(path: Path) -> Path:
    """A copy of the bundled recogniser whose character list (in its metadata, at the end of
    the file) has 5 and 6 swapped: it reads every 5 as 6 and every 6 as 5."""
    data = (RAPIDOCR_MODELS / "PP-OCRv6_rec_small.onnx").read_bytes()
    start = data.rfind(b"character")
    characters = data[start:]
    assert characters.count(b"\n5\n6\n") == 1  # one character a line, 5 just before 6
    path.write_bytes(data[:start] + characters.replace(b"\n5\n6\n", b"\n6\n5\n"))
    return path


def test_a_recogniser_of_ones_own_reads_the_pages_and_keys_the_cache(tmp_path: Path):
    own = recogniser_swapping_5_and_6(tmp_path / "receipts.onnx")
    workdir = make_workdir(tmp_path / "run", TWO[:1])
    run(workdir, "ocr_backend: rapidocr")
    bundled = workdir.records("ocr")
    run(workdir, f"ocr_backend: rapidocr\nrapidocr: {{recognizer: {own}}}")
    for stem, record in workdir.records("ocr").items():
        assert record["engine"]["model"].split("+")[1].startswith("receipts-")
        swapped = [line["text"] for line in bundled[stem]["lines"]]
        swapped = [text.translate(str.maketrans("56", "65")) for text in swapped]
        assert [line["text"] for line in record["lines"]] == swapped
        assert record["text"] != bundled[stem]["text"]
    run(workdir, "ocr_backend: rapidocr")  # back to the bundled one: from the cache
    assert all(r["timing"]["cached"] for r in workdir.records("ocr").values())


def wrong_model(tmp_path: Path, kind: str) -> Path:
    if kind == "file":
        (tmp_path / "weights.bin").write_bytes(b"\0")
        return tmp_path / "weights.bin"
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "preprocessor_config.json").write_text("{}")
    return folder


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("ocr_backend: trocr", "trocr.model must name a TrOCR folder saved by save_pretrained; "),
        ("ocr_backend: trocr\ntrocr: {model: /no/such/folder}", "/no/such/folder does not exist"),
        ("ocr_backend: trocr\ntrocr: {model: FILE}", "weights.bin is a file"),
        ("ocr_backend: trocr\ntrocr: {model: BERT}", "bert holds a 'bert' model"),
        ("ocr_backend: kraken\nkraken: {model: BERT}", "kraken recognition model; "),
        ("ocr_backend: kraken\nkraken: {model: FILE}", "(.mlmodel, .safetensors)"),
        ("ocr_backend: easyocr\neasyocr: {device: 'cuda:3'}", "easyocr.device is cuda:3, but"),
        ("ocr_backend: easyocr\neasyocr: {batch_size: 1000}", "1000 is outside 1 to 256"),
        (
            "ocr_backend: rapidocr\nrapidocr: {recognizer: /no/such.onnx}",
            "rapidocr.recognizer /no/such.onnx is not a file",
        ),
        ("ocr_backend: rapidocr\nrapidocr: {recognizer: FILE}", "weights.bin is not an ONNX model"),
        (
            "ocr_backend: rapidocr\nrapidocr: {recognizer: DETECTOR}",
            "is not a PP-OCR text recogniser",
        ),
    ],
)
def test_a_bad_engine_setting_stops_the_run_before_any_job(tmp_path: Path, setting, message):
    workdir = make_workdir(tmp_path / "run", TWO)
    setting = setting.replace("FILE", str(wrong_model(tmp_path, "file")))
    setting = setting.replace("BERT", str(wrong_model(tmp_path, "folder")))
    setting = setting.replace("DETECTOR", str(RAPIDOCR_MODELS / "PP-OCRv6_det_small.onnx"))
    done = run(workdir, setting, check=False)
    assert done.returncode != 0 and message in done.stdout, done.stdout[-2000:]
    assert not (workdir.results / "ocr").exists()


def test_a_batch_too_big_for_the_gpu_is_halved_not_failed(monkeypatch):
    seen = []

    def read(batch):
        seen.append(len(batch))
        if len(batch) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return [item * 2 for item in batch]

    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    results, size = in_batches(read, list(range(10)), 16)
    assert results == [i * 2 for i in range(10)] and size == 2
    assert seen == [10, 8, 4, 2, 2, 2, 2, 2]  # 16, 8, 4: too many; then 2 at a time


def test_device_settings_are_checked_against_this_machine():
    assert planned_device("auto", "easyocr") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert planned_device("cpu", "easyocr") == "cpu"
    with pytest.raises(DeviceError, match="not auto, cpu, cuda or cuda:N"):
        planned_device("gpu0", "easyocr")
    with pytest.raises(DeviceError, match=r"cuda:99, but this machine has"):
        planned_device("cuda:99", "easyocr")


def test_the_slow_engine_warning_estimates_the_time():
    slow = Guardrails(devices=("cpu", "cuda"), cpu_seconds_per_page=12)
    assert cpu_warning("x", slow, "cpu", 1000, 2) is not None
    assert "1.7 h" in cpu_warning("x", slow, "cpu", 1000, 2)
    assert cpu_warning("x", slow, "cuda", 1000, 2) is None
    assert cpu_warning("x", Guardrails(), "cpu", 1000, 2) is None


def test_word_boxes_of_a_line_follow_its_slant():
    line = [[0.0, 0.0], [100.0, 10.0], [100.0, 30.0], [0.0, 20.0]]
    words = split_words("AB  CDEF", line, 0.9)
    assert [w.text for w in words] == ["AB", "CDEF"]
    first, second = (w.polygon for w in words)
    assert first[0] == [0.0, 0.0] and second[1] == [100.0, 10.0]
    assert first[1][0] == pytest.approx(25.0) and first[1][1] == pytest.approx(2.5)
    assert second[0][0] == pytest.approx(50.0)
