"""Real Snakemake runs of the whole workflow on small data."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from conftest import (
    REPO,
    SAMPLE_IMAGES,
    SAMPLES,
    Workdir,
    make_workdir,
    planned_jobs,
    without_timing,
)
from ocrkie.inputs import find_images
from ocrkie.normalize import normalize

pytestmark = pytest.mark.xdist_group("sample_run")


def test_every_sample_gets_ocr_and_kie_records_with_the_right_values(sample_run: Workdir):
    ocr, kie = sample_run.records("ocr"), sample_run.records("kie")
    images = find_images(str(sample_run.scans))
    assert set(ocr) == set(kie) == {image.id for image in images}
    for image in images:
        record = ocr[image.id]
        assert record["status"] == "ok"
        assert record["format"] == "ocrkie.ocr/1"
        assert record["engine"]["name"] == "faster_paddle"  # the default engine
        assert record["image"]["path"] == image.relpath
        assert record["lines"] and all(len(line["polygon"]) == 4 for line in record["lines"])
        assert all(word["polygon"] for line in record["lines"] for word in line["words"])
        truth = json.loads((SAMPLES / "key" / f"{Path(image.relpath).stem}.json").read_text())
        fields = kie[image.id]["fields"]
        assert fields["total"]["normalized"] == normalize("amount", truth["total"])
        assert fields["date"]["normalized"] == normalize("date", truth["date"])
        assert fields["total"]["source"]["polygon"]


def test_exif_rotated_sample_is_read_upright(sample_run: Workdir):
    record = next(
        r for r in sample_run.records("ocr").values() if r["image"]["path"] == "sample_003.jpg"
    )
    assert record["image"]["width"] < record["image"]["height"]  # stored sideways
    assert any(step.startswith("exif-orientation") for step in record["image"]["normalization"])
    assert "NORTHWIND HARDWARE INC" in record["text"]


def test_summary_and_failures_report_a_clean_run(sample_run: Workdir):
    summary = json.loads((sample_run.results / "summary.json").read_text())
    assert summary["images"] == len(SAMPLE_IMAGES)
    assert summary["failed_images"] == 0
    assert summary["ocr"]["status"] == {"ok": len(SAMPLE_IMAGES)}
    assert summary["ocr"]["images_per_second"] > 0
    rows = list(csv.DictReader((sample_run.results / "failures.csv").open()))
    assert rows == []


def test_a_second_run_does_nothing(sample_run: Workdir):
    done = sample_run.snakemake("--config", "input_dir=scans", "shard_size=2")
    assert "Nothing to be done" in done.stdout


def test_dry_run_shows_the_plan_first_and_writes_nothing(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES)
    done = workdir.snakemake("-n", "--config", "input_dir=scans", "shard_size=2")
    ours = [n for n, line in enumerate(done.stdout.splitlines()) if line.startswith("ocrkie: ")]
    assert ours == [2]  # after Snakemake's two lines on the profile and the config
    first = done.stdout.splitlines()[2]
    # 6 images, shard_size 2, 2 cores: shards of 2, 2, 1, 1 (two rounds, no idle core)
    assert first.startswith(f"ocrkie: {len(SAMPLE_IMAGES)} images from scans in 4 shards")
    assert "OCR (faster_paddle on cpu): 4 of 4 jobs to run (6 new images" in done.stdout
    # every engine's time: here the typical speeds, 6 images in 2 jobs at once
    assert "  time: about 6s for 6 images, 2 jobs at once (typically 2 s an image a job)" in (
        done.stdout
    )
    assert "  time: under a second for 6 images, 2 jobs at once (typically 0.05 s" in done.stdout
    assert planned_jobs(done.stdout) == {
        **{"ocr": 4, "kie": 4, "export": 4},  # export: the default txt
        **{"summary": 1, "kie_tables": 1, "report_figures": 1, "review": 1},
        **{"check_failures": 1, "all": 1},
    }
    assert not workdir.results.exists()


@pytest.mark.parametrize("flag", ["--dag", "--rulegraph"])
def test_dag_and_rulegraph_print_clean_dot(tmp_path: Path, flag: str):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:2])
    dot = workdir.snakemake(flag, "--config", "input_dir=scans", merge=False).stdout
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")  # pipeable into `dot`
    assert all(rule in dot for rule in ("summary", "ocr", "kie"))


def test_kill_9_then_rerun_incomplete_gives_the_uninterrupted_results(
    sample_run: Workdir, tmp_path: Path
):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES)
    run = workdir.start("--config", "input_dir=scans", "shard_size=2")
    deadline = time.monotonic() + 120
    while not list((workdir.results / "ocr").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    workdir.kill(run)
    assert len(list((workdir.results / "ocr").glob("*.json"))) < len(SAMPLE_IMAGES)

    workdir.snakemake("--unlock", "--config", "input_dir=scans", "shard_size=2")  # stale lock
    workdir.snakemake("--rerun-incomplete", "--config", "input_dir=scans", "shard_size=2")

    for stage in ("ocr", "kie"):
        resumed, reference = workdir.records(stage), sample_run.records(stage)
        assert resumed.keys() == reference.keys()
        for key, record in reference.items():
            assert without_timing(resumed[key]) == without_timing(record), key


def test_a_corrupt_image_gets_one_error_record_and_the_rest_complete(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:2])
    good = SAMPLE_IMAGES[0].read_bytes()
    (workdir.scans / "broken.jpg").write_bytes(good[: len(good) // 3])  # truncated JPEG
    done = workdir.snakemake("--config", "input_dir=scans", "shard_size=1", check=False)
    assert done.returncode == 3  # docs/exit-codes.md

    ocr = workdir.records("ocr")
    failed = {k: r for k, r in ocr.items() if r["status"] == "error"}
    assert len(failed) == 1
    ((broken_id, broken),) = failed.items()
    assert broken["image"]["path"] == "broken.jpg"
    assert broken["error"]["class"] == "UnreadableImage"
    assert workdir.records("kie")[broken_id]["status"] == "error"
    assert sum(r["status"] == "ok" for r in ocr.values()) == 2
    rows = list(csv.DictReader((workdir.results / "failures.csv").open()))
    assert [(r["path"], r["stage"], r["class"]) for r in rows] == [
        ("broken.jpg", "ocr", "UnreadableImage")
    ]
    summary = json.loads((workdir.results / "summary.json").read_text())
    assert summary["ocr"]["status"] == {"ok": 2, "error": 1}


def test_adding_images_runs_only_new_shards(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:3])
    workdir.snakemake("--config", "input_dir=scans", "shard_size=2")
    before = {p.name: p.stat().st_mtime_ns for p in (workdir.results / "ocr").iterdir()}

    for image in SAMPLE_IMAGES[3:5]:
        shutil.copy(image, workdir.scans / f"new_{image.name}")
    plan = workdir.snakemake("-n", "--config", "input_dir=scans", "shard_size=2")
    assert (
        "OCR (faster_paddle on cpu): 2 of 4 jobs to run "
        "(2 new images; 3 records up to date)" in plan.stdout
    )
    workdir.snakemake("--config", "input_dir=scans", "shard_size=2")

    after = {p.name: p.stat().st_mtime_ns for p in (workdir.results / "ocr").iterdir()}
    assert len(after) == 5 and all(after[name] == mtime for name, mtime in before.items())


def test_a_deleted_record_is_rewritten_from_the_cache(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:3])
    workdir.snakemake("--config", "input_dir=scans", "shard_size=1")
    victim = next(iter(workdir.records("ocr")))
    untouched = {p.name: p.stat().st_mtime_ns for p in (workdir.results / "kie").iterdir()}
    (workdir.results / "ocr" / f"{victim}.json").unlink()

    plan = workdir.snakemake("-n", "--config", "input_dir=scans", "shard_size=1").stdout
    assert (
        "OCR (faster_paddle on cpu): 1 of 3 jobs to run "
        "(1 records in shards where some were deleted" in plan
    )
    done = workdir.snakemake("--config", "input_dir=scans", "shard_size=1")
    assert done.returncode == 0
    rewritten = workdir.records("ocr")[victim]
    assert rewritten["status"] == "ok" and rewritten["timing"]["cached"] is True  # no engine call
    assert (
        "Nothing to be done"
        in workdir.snakemake("--config", "input_dir=scans", "shard_size=1").stdout
    )
    kie = {p.name: p.stat().st_mtime_ns for p in (workdir.results / "kie").iterdir()}
    assert [n for n in kie if kie[n] != untouched[n]] == [f"{victim}.json"]  # its KIE, from cache


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("shard_size=0", "0 is less than the minimum of 1"),
        ("shardsize=3", "shardsize: no such setting (did you mean shard_size?)"),
        (
            "ocr_backend=tesseract",
            "ocr_backend: 'tesseract' is not one of easyocr, faster_paddle, kraken, rapidocr, "
            "trocr, upstage",
        ),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(tmp_path: Path, override: str, message: str):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:1])
    done = workdir.snakemake("-n", "--config", "input_dir=scans", override, check=False)
    assert done.returncode != 0
    assert message in done.stdout


def test_missing_input_folder_is_a_clear_error(tmp_path: Path):
    workdir = make_workdir(tmp_path, [])
    done = workdir.snakemake("-n", "--config", "input_dir=nowhere", check=False)
    assert done.returncode != 0
    assert "input_dir 'nowhere' is not a folder" in done.stdout


def test_an_image_list_file_selects_images(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:3])
    (workdir.path / "list.txt").write_text(
        f"# two of three\nscans/sample_000.jpg\n{workdir.scans / 'sample_002.png'}\n"
    )
    done = workdir.snakemake("-n", "--config", "input_list=list.txt")
    assert "ocrkie: 2 images from list.txt" in done.stdout


def test_lint_passes():
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout
    assert "Congratulations, your workflow is in a good condition!" in done.stdout


def test_without_a_gpu_ocr_jobs_share_the_cores_instead_of_queueing(tmp_path: Path):
    """The profile caps `gpu` at 1; on a machine without a usable GPU, OCR jobs must not
    request it, or they would run one at a time however many cores there are."""
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:4])
    (workdir.path / "one-thread.yaml").write_text(
        "input_dir: scans\nshard_size: 1\nresources: {ocr: {threads: 1}}\n"
    )
    workdir.snakemake("--configfile", "one-thread.yaml")
    spans = []
    for record in workdir.records("ocr").values():
        end = datetime.fromisoformat(record["timing"]["finished_at"]).timestamp()
        spans.append((end - record["timing"]["seconds"], end))
    spans.sort()
    assert len(spans) == 4
    assert any(later[0] < earlier[1] for earlier, later in pairwise(spans))


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Workdir:
    """A finished run on two images (two shards: one per core), for dry runs with changed
    settings."""
    workdir = make_workdir(tmp_path_factory.mktemp("finished"), SAMPLE_IMAGES[:2])
    workdir.snakemake("--config", "input_dir=scans", "shard_size=2")
    schema = json.loads((REPO / "config" / "fields" / "receipt.json").read_text())
    schema["properties"]["total"]["description"] += " Includes tax."
    (workdir.path / "receipt-v2.json").write_text(json.dumps(schema, indent=4))
    return workdir


def stage_line(output: str, label: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(f"{label} ("))


@pytest.mark.parametrize(
    ("setting", "ocr", "kie"),
    [
        (
            "faster_paddle: {text_score: 0.6}",
            "text_score 0.5, now 0.6",
            "made from other OCR records",
        ),
        ("images: {max_side: 2048}", "max_side 4096, now 2048", "made from other OCR records"),
        ("images: {max_pixels: 1000000}", "max_pixels 178956970, now 1000000", "from other OCR"),
        ("kie_schema: receipt-v2.json", None, "made with schema "),
        ("kie_backend: upstage", None, "made with ocrkie-learned, now upstage-information-extract"),
        ("kie_backend: rules", None, "made with ocrkie-learned, now ocrkie-rules"),
        (  # OCR by the API, KIE by the rules: both stages rerun
            "ocr_backend: upstage\nkie_backend: rules",
            "made with faster_paddle, now upstage-ocr",
            "now ocrkie-rules",
        ),
    ],
)
def test_a_setting_that_changes_records_reruns_exactly_its_stages(finished, setting, ocr, kie):
    (finished.path / "change.yaml").write_text(f"input_dir: scans\nshard_size: 2\n{setting}\n")
    plan = finished.snakemake("-n", "--configfile", "config/config.yaml", "change.yaml").stdout
    for label, reason in (("OCR", ocr), ("KIE", kie)):
        line = stage_line(plan, label)
        if reason is None:
            assert ": 0 of 2 jobs to run (2 records up to date)" in line, line
        else:
            assert ": 2 of 2 jobs to run (2 records " in line and reason in line, line
    jobs = planned_jobs(plan)
    assert jobs.get("ocr", 0) == (2 if ocr else 0) and jobs["kie"] == 2


# "cache=...": a value of the --config before it; moving the cache changes no record
@pytest.mark.parametrize(
    "arguments", [("--cores", "1"), ("--set-threads", "ocr=2"), ("cache=moved-cache",)]
)
@pytest.mark.parametrize("shard_size", ["1", "50"])
def test_a_setting_that_changes_no_record_reruns_nothing(finished, arguments, shard_size):
    done = finished.snakemake("--config", "input_dir=scans", f"shard_size={shard_size}", *arguments)
    assert "Nothing to be done" in done.stdout


def test_after_a_settings_change_the_records_are_remade_and_then_current(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:2])
    workdir.snakemake("--config", "input_dir=scans")
    (workdir.path / "small.yaml").write_text("input_dir: scans\nimages: {max_side: 400}\n")
    arguments = ("--configfile", "config/config.yaml", "small.yaml")
    workdir.snakemake(*arguments)
    for record in workdir.records("ocr").values():
        assert any(step.startswith("downscaled:") for step in record["image"]["normalization"])
        assert record["timing"]["cached"] is False
    assert "Nothing to be done" in workdir.snakemake(*arguments).stdout
    back = workdir.snakemake("--config", "input_dir=scans")  # the old setting: from the cache
    assert back.returncode == 0
    assert all(r["timing"]["cached"] for r in workdir.records("ocr").values())
    assert not any(
        step.startswith("downscaled:")
        for record in workdir.records("ocr").values()
        for step in record["image"]["normalization"]
    )
