"""A large batch: shards that grow past shard_size (max_shards), and a dry run that prints
a count per rule and writes its job list to a file rather than printing thousands of jobs."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import SAMPLE_IMAGES, Workdir, make_workdir, planned_jobs

JOB_LIST = ".snakemake/ocrkie/dry-run-jobs.txt"


def many(root: Path, count: int) -> Workdir:
    """``count`` images under scans/ (links to one sample: planning reads no pixels)."""
    workdir = make_workdir(root, SAMPLE_IMAGES[:1])
    first = workdir.scans / SAMPLE_IMAGES[0].name
    for n in range(count):
        os.link(first, workdir.scans / f"receipt_{n:04d}{first.suffix}")
    return workdir


def test_a_dry_run_of_many_jobs_prints_a_count_per_rule_and_lists_the_jobs_in_a_file(
    tmp_path: Path,
):
    workdir = many(tmp_path, 399)
    done = workdir.snakemake("-n", "--config", "input_dir=scans", "shard_size=1")
    lines = done.stdout.splitlines()
    plan = next(n for n, line in enumerate(lines) if line.startswith("ocrkie: 400 images"))
    said = next(n for n, line in enumerate(lines) if "1200 shard jobs" in line)
    assert plan < said < lines.index("Job stats:")  # the plan first, then where the jobs are
    assert f"the count per rule below, each job in {JOB_LIST}" in lines[said]
    assert planned_jobs(done.stdout) == {
        "ocr": 400,
        "kie": 400,
        "export": 400,
        **dict.fromkeys(["kie_tables", "review", "summary", "report_figures"], 1),
        **dict.fromkeys(["check_failures", "all"], 1),
    }
    assert "Reason:" not in done.stdout and len(done.stdout) < 10_000
    listed = (workdir.path / JOB_LIST).read_text().splitlines()
    assert len(listed) == 1200 and len(set(listed)) == 1200
    assert sum(line.startswith("OCR of shard_") for line in listed) == 400
    assert listed[0].endswith(".json") and " (1 image): results/shards/ocr/shard_" in listed[0]
    assert not workdir.results.exists()  # a dry run writes no results


def test_a_batch_beyond_max_shards_makes_larger_shards_and_says_so(tmp_path: Path):
    workdir = many(tmp_path, 39)
    settings = ("--config", "input_dir=scans", "shard_size=2", "max_shards=4")
    done = workdir.snakemake("-n", *settings)
    assert "ocrkie: 40 images from scans in 4 shards (largest 10 images" in done.stdout
    assert "new shards of up to 10 images (more than shard_size" in done.stdout
    assert planned_jobs(done.stdout)["ocr"] == 4 and "Reason: Missing output" in done.stdout
    unlimited = workdir.snakemake("-n", *settings[:-1], "max_shards=0").stdout
    assert "ocrkie: 40 images from scans in 20 shards (largest 2 images" in unlimited
    assert "more than shard_size" not in unlimited
