"""How a run ends and says how far it is: a WARNING per failed image, progress every so many
images, one closing block, and an exit status that says whether images failed (3) beyond
what ``max_failed`` allows, after every other image is done and without redoing any."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest

from conftest import SAMPLE_IMAGES, Workdir, make_workdir, planned_jobs
from ocrkie.outcome import allowed_failures, closing_lines, too_many_failures
from ocrkie.progress import Count, ShardProgress, run_counts
from ocrkie.results import Results


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory) -> tuple[Workdir, str]:
    """Two samples and two files that are no images, in two shards."""
    workdir = make_workdir(tmp_path_factory.mktemp("failed"), SAMPLE_IMAGES[:2])
    (workdir.scans / "notes.jpg").write_text("a shopping list, not a picture")
    cut = SAMPLE_IMAGES[0].read_bytes()
    (workdir.scans / "cut.jpg").write_bytes(cut[: len(cut) // 4])
    done = workdir.snakemake("--config", "input_dir=scans", "shard_size=2", check=False)
    assert done.returncode == 3, done.stdout[-3000:]
    return workdir, done.stdout


def rerun(workdir: Workdir, *config: str):
    return workdir.snakemake("--config", "input_dir=scans", "shard_size=2", *config, check=False)


def test_failed_images_end_the_run_with_status_3_after_the_others_are_done(failed_run):
    workdir, stdout = failed_run
    status = {r["image"]["path"]: r["status"] for r in workdir.records("kie").values()}
    assert status == {
        SAMPLE_IMAGES[0].name: "ok",
        SAMPLE_IMAGES[1].name: "ok",
        "notes.jpg": "error",
        "cut.jpg": "error",
    }
    for output in ("summary.json", "kie.csv", "report/status.png", "txt"):
        assert (workdir.results / output).exists(), output
    assert not (workdir.results / "accepted.json").exists()
    assert (
        " WARNING ocr failed: notes.jpg: UnreadableImage: not a recognised image format" in stdout
    )
    assert " WARNING ocr failed: cut.jpg: UnreadableImage: " in stdout


def test_the_closing_block_counts_images_failures_and_says_where(failed_run):
    _, stdout = failed_run
    block = stdout[stdout.rindex("ocrkie: 4 images, 2 ok, 2 failed; this run took ") :]
    lines = block.splitlines()
    assert "  OCR: 4 images this run" in block
    assert "  failed: 2 UnreadableImage" in lines
    assert "  every failure in results/failures.csv; the jobs' logs in results/logs/" in lines
    assert (
        "  exit status 3: 2 of 4 images failed; max_failed 0 allows 0; every other image is "
        "done, and a rerun redoes none of it (see docs/exit-codes.md)"
    ) in lines


def test_a_rerun_redoes_nothing_and_exits_3_again_until_max_failed_allows(failed_run):
    workdir, _ = failed_run
    before = {p: p.stat().st_mtime_ns for p in workdir.results.rglob("*.json")}
    again = rerun(workdir)
    assert again.returncode == 3
    assert planned_jobs(again.stdout) == {"check_failures": 1, "all": 1}
    assert {p: p.stat().st_mtime_ns for p in workdir.results.rglob("*.json")} == before

    for max_failed, status in [("2", 0), ("0.5", 0), ("1", 3), ("0.4", 3), ("0.5", 0)]:
        done = rerun(workdir, f"max_failed={max_failed}")
        assert done.returncode == status, (max_failed, done.stdout[-2000:])
        assert planned_jobs(done.stdout) == {"check_failures": 1, "all": 1}
    accepted = json.loads((workdir.results / "accepted.json").read_text())
    assert accepted == {"images": 4, "failed_images": 2, "max_failed": 0.5, "allowed": 2}
    assert "Nothing to be done" in rerun(workdir, "max_failed=0.5").stdout
    assert {p: p.stat().st_mtime_ns for p in workdir.results.rglob("*.json")} == {
        **before,
        workdir.results / "accepted.json": (workdir.results / "accepted.json").stat().st_mtime_ns,
    }


def test_a_job_log_keeps_one_line_per_image_and_its_progress(failed_run):
    workdir, stdout = failed_run
    logs = [p.read_text() for p in (workdir.results / "logs" / "ocr").glob("*.log")]
    assert any(f" DEBUG ocr ok {SAMPLE_IMAGES[0].name} " in log for log in logs)
    assert " DEBUG ocr ok " not in stdout
    for log in logs:  # each shard: 1 sample, 1 file that is none
        told = [line for line in log.splitlines() if " INFO OCR shard_" in line]
        assert told[-1].split(": ", 1)[1].startswith("2/2 images (100%), ")
        assert told[-1].endswith(", 1 failed") and told[-1] in stdout


def test_the_dry_run_estimates_from_the_timings_of_this_results_folder(failed_run):
    workdir, _ = failed_run
    more = workdir.path / "more"
    shutil.copytree(workdir.scans, more)
    shutil.copy(SAMPLE_IMAGES[2], more)
    plan = workdir.snakemake("-n", "--config", "input_dir=more", "shard_size=2").stdout
    estimate = r"  time: about \w+ for 1 image, 1 job at once \(([\d.]+) s an image, measured"
    ocr = re.search(estimate, plan)
    records = [r for r in workdir.records("ocr").values() if r["status"] == "ok"]
    taken = [r["timing"]["seconds"] for r in records]
    assert ocr and float(ocr[1]) == pytest.approx(sum(taken) / len(taken), rel=0.01)
    assert "measured in this results folder" in plan
    shutil.rmtree(more)


@pytest.mark.parametrize(
    ("max_failed", "images", "allowed"),
    [(0, 100, 0), (0.01, 100, 1), (0.01, 99, 0), (0.5, 4, 2), (1, 4, 1), (5, 3, 5)],
)
def test_max_failed_is_a_share_below_1_and_a_count_from_1(max_failed, images, allowed):
    assert allowed_failures(max_failed, images) == allowed
    summary = {"images": images, "failed_images": allowed}
    assert too_many_failures(summary, max_failed) is None
    assert too_many_failures({**summary, "failed_images": allowed + 1}, max_failed)


def test_the_verdict_says_what_max_failed_allows():
    summary = {"images": 200, "failed_images": 3}
    assert too_many_failures(summary, 0.01) == (
        "3 of 200 images failed; max_failed 0.01 (1% of 200 images) allows 2"
    )
    assert too_many_failures(summary, 2) == "3 of 200 images failed; max_failed 2 allows 2"


def test_the_closing_block_states_the_api_spend_in_money():
    summary = {
        "images": 10,
        "failed_images": 0,
        "api": {
            "spent": {"ocr": {"calls": 8, "billed_pages": 8}},
            "saved_by_cache": {"ocr": {"calls": 2, "billed_pages": 2}},
            "possibly_billed": {"ocr": {"requests": 1, "pages": 1}},
        },
    }
    counts = {"ocr": Count(10, done=10, cached=2, seconds=4.0)}
    lines = closing_lines(summary, "results", 75, counts, {"ocr": 0.5}, 0)
    assert lines == [
        "ocrkie: 10 images, 10 ok, 0 failed; this run took 1m15s",
        "  OCR: 10 images this run (2 from the cache), 2.5 images/s",
        "  API, Upstage OCR: 8 pages billed ($4.00 at $0.5 a page), 1 more possibly billed; "
        "2 pages from the cache ($1.00 saved) (every run into this results folder)",
    ]
    unpriced = closing_lines(summary, "results", 75, counts, {}, 0)
    assert unpriced[-1] == "  (set upstage.price_per_page to see these in money)"


def test_a_job_tells_its_progress_every_n_images_or_seconds(tmp_path: Path, caplog):
    now = [0.0]
    results = Results(str(tmp_path))
    progress = ShardProgress(
        "ocr", "shard_1", results, 6, every_images=3, every_seconds=60, clock=lambda: now[0]
    )
    caplog.set_level(logging.INFO, logger="ocrkie.progress")
    progress.page_done("a", 1, failed=False, cached=True)
    progress.page_done("b", 2, failed=True, cached=False)  # page 1 of 2: not done yet
    now[0] = 10.0
    progress.page_done("b", 2, failed=False, cached=False)
    progress.page_done("c", 1, failed=False, cached=False)
    now[0] = 100.0  # a minute past the last line: the next image says so
    progress.page_done("d", 1, failed=False, cached=False)
    assert [r.getMessage() for r in caplog.records] == [
        "OCR shard_1: 3/6 images (50%), 0.3 images/s, ETA 10s, 1 from the cache, 1 failed",
        "OCR shard_1: 4/6 images (66%), 0.04 images/s, ETA 50s, 1 from the cache, 1 failed",
    ]
    written = json.loads((tmp_path / "progress" / "ocr" / "shard_1.json").read_text())
    assert {k: written[k] for k in ("total", "done", "failed", "cached")} == {
        "total": 6,
        "done": 4,
        "failed": 1,
        "cached": 1,
    }


def test_the_run_adds_up_the_progress_of_its_own_jobs(tmp_path: Path):
    folder = tmp_path / "progress" / "ocr"
    folder.mkdir(parents=True)
    earlier = {"total": 5, "done": 5, "failed": 2, "cached": 0, "started_at": 100.0}
    (folder / "shard_a.json").write_text(json.dumps(earlier))  # a previous run's job
    for name, done, failed in [("shard_b", 3, 1), ("shard_c", 5, 0)]:
        document = {"total": 5, "done": done, "failed": failed, "cached": 1, "started_at": 200.0}
        (folder / f"{name}.json").write_text(json.dumps(document))
    counts = run_counts(Results(str(tmp_path)), {"ocr": 10, "kie": 10}, since=150.0)
    assert counts["ocr"].as_dict() == {"total": 10, "done": 8, "failed": 1, "cached": 2}
    assert counts["kie"].as_dict() == {"total": 10, "done": 0, "failed": 0, "cached": 0}
    assert counts["ocr"].line("OCR").startswith("OCR 8/10 images (80%), ")
