"""Real Snakemake runs of the whole workflow on small data."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from conftest import REPO, SAMPLE_IMAGES, SAMPLES, Workdir, make_workdir, without_timing
from ocrkie.inputs import find_images, make_shards
from ocrkie.normalize import normalize

pytestmark = pytest.mark.xdist_group("sample_run")


def planned_jobs(dry_run_output: str) -> dict[str, int]:
    """The job-count table that ``snakemake -n`` prints."""
    table = dry_run_output.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\S+)\s+(\d+)$", table, re.M)}


def test_every_sample_gets_ocr_and_kie_records_with_the_right_values(sample_run: Workdir):
    ocr, kie = sample_run.records("ocr"), sample_run.records("kie")
    images = find_images(str(sample_run.scans))
    assert set(ocr) == set(kie) == {image.id for image in images}
    for image in images:
        record = ocr[image.id]
        assert record["status"] == "ok"
        assert record["format"] == "ocrkie.ocr/1"
        assert record["engine"]["name"] == "rapidocr"
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


def test_dry_run_shows_images_jobs_and_engine(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES)
    done = workdir.snakemake("-n", "--config", "input_dir=scans", "shard_size=2")
    shards = make_shards(find_images(str(workdir.scans)), 2)
    assert f"ocrkie: {len(SAMPLE_IMAGES)} images" in done.stdout
    assert f"{len(shards)} OCR jobs [local]" in done.stdout
    assert "local OCR runs on the CPU" in done.stdout
    jobs = planned_jobs(done.stdout)
    assert {name for name in jobs if name.startswith("ocr_")} == {f"ocr_{s.name}" for s in shards}
    assert jobs["summary"] == 1
    assert not workdir.results.exists()


@pytest.mark.parametrize("flag", ["--dag", "--rulegraph"])
def test_dag_and_rulegraph_print_clean_dot(tmp_path: Path, flag: str):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:2])
    dot = workdir.snakemake(flag, "--config", "input_dir=scans", merge=False).stdout
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")  # pipeable into `dot`
    assert "summary" in dot and "ocr_shard_" in dot


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
    done = workdir.snakemake("--config", "input_dir=scans", "shard_size=1")
    assert done.returncode == 0

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


def _name_joining_a_shard(existing: list[str], shard_size: int) -> str:
    """A new file name that joins an existing shard rather than starting one."""
    for n in range(1000):
        name = f"zz_new_{n}.jpg"
        before = make_shards(_images(existing), shard_size)
        after = make_shards(_images([*existing, name]), shard_size)
        if len(after) == len(before):
            return name
    raise AssertionError("no such name")


def _images(names: list[str]):
    from ocrkie.inputs import InputImage, image_id

    return [InputImage(image_id(n), n, n) for n in names]


def test_adding_an_image_reruns_only_the_shard_that_holds_it(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:3])
    workdir.snakemake("--config", "input_dir=scans", "shard_size=2")
    before = {p.name: p.stat().st_mtime_ns for p in (workdir.results / "ocr").iterdir()}

    name = _name_joining_a_shard([p.name for p in SAMPLE_IMAGES[:3]], 2)
    shutil.copy(SAMPLE_IMAGES[3], workdir.scans / name)
    plan = workdir.snakemake("-n", "--config", "input_dir=scans", "shard_size=2")
    jobs = planned_jobs(plan.stdout)
    holder = next(
        s
        for s in make_shards(find_images(str(workdir.scans)), 2)
        if any(i.relpath == name for i in s.images)
    )
    assert {j for j in jobs if j.startswith(("ocr_", "kie_"))} == {
        f"ocr_{holder.name}",
        f"kie_{holder.name}",
    }

    done = workdir.snakemake("--config", "input_dir=scans", "shard_size=2")
    assert done.returncode == 0
    after = {p.name: p.stat().st_mtime_ns for p in (workdir.results / "ocr").iterdir()}
    untouched = {i.id for i in find_images(str(workdir.scans))} - {i.id for i in holder.images}
    assert untouched and all(after[f"{i}.json"] == before[f"{i}.json"] for i in untouched)
    # the holder's old members were served from the content cache, not recomputed
    for image in holder.images:
        record = workdir.records("ocr")[image.id]
        assert record["timing"]["cached"] is (image.relpath != name)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("shard_size=0", "0 is less than the minimum of 1"),
        ("shardsize=3", "'shardsize' was unexpected"),
        ("ocr_backend=tesseract", "'tesseract' is not one of"),
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
