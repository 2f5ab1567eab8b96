"""Who writes the plan file: a run that executes jobs, one at a time. A dry run, a report or
a DAG writes nothing, so none of them can pull the plan from under a run's pending jobs."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import SAMPLE_IMAGES, Workdir, make_workdir

SETTINGS = ("--config", "input_dir=scans", "shard_size=1")
OTHER_SETTINGS = ("--cores", "1", "--config", "input_dir=scans", "shard_size=3")


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder``: its modification time and size."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in folder.rglob("*")
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Workdir:
    """A finished run on two images."""
    workdir = make_workdir(tmp_path_factory.mktemp("finished"), SAMPLE_IMAGES[:2])
    workdir.snakemake(*SETTINGS)
    return workdir


@pytest.fixture
def grown(finished: Workdir, tmp_path: Path) -> Workdir:
    """A copy of the finished run, and a third image: a plan made now differs."""
    workdir = Workdir(tmp_path / "grown")
    shutil.copytree(finished.path, workdir.path, symlinks=True)
    shutil.copy(SAMPLE_IMAGES[2], workdir.scans / SAMPLE_IMAGES[2].name)
    return workdir


@pytest.mark.parametrize(
    "arguments",
    [
        ("-n", *SETTINGS),
        ("-n", *OTHER_SETTINGS),
        ("--report", "report.html", *SETTINGS),
        ("--dag", *SETTINGS),
    ],
    ids=["dry run", "dry run, other settings", "report", "dag"],
)
def test_a_dry_run_a_report_or_a_dag_writes_nothing(grown: Workdir, arguments):
    workdir = grown
    plan = workdir.results / "plan" / "plan.json.gz"
    before, plan_bytes = snapshot(workdir.results), plan.read_bytes()
    done = workdir.snakemake(*arguments)
    assert plan.read_bytes() == plan_bytes
    assert snapshot(workdir.results) == before
    assert "ocrkie: 3 images from scans" in done.stdout  # the plan it would write
    if arguments == ("-n", *SETTINGS):
        assert "OCR (faster_paddle on cpu): 1 of 3 jobs to run" in done.stdout


def start(workdir: Workdir, log: Path, *args: str) -> subprocess.Popen:
    """A run in the background (its output in ``log``), in a session of its own."""
    with log.open("w") as out:
        return subprocess.Popen(
            workdir.command(*args),
            cwd=workdir.path,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_a_run_keeps_its_plan_while_other_invocations_come_and_go(tmp_path: Path):
    """While a run goes, one job at a time: a dry run with other settings, then a second
    run with other settings (refused), neither of which may make its pending jobs fail."""
    workdir = make_workdir(tmp_path / "wd", SAMPLE_IMAGES[:3])
    log = tmp_path / "run.log"
    run = start(workdir, log, "--cores", "1", *SETTINGS)
    try:
        deadline = time.monotonic() + 180
        while not list((workdir.results / "ocr").glob("*.json")):
            assert run.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        plan = workdir.results / "plan" / "plan.json.gz"
        plan_bytes = plan.read_bytes()

        dry = workdir.snakemake("-n", *OTHER_SETTINGS, check=False)
        assert "ocrkie: 3 images from scans in " in dry.stdout, dry.stdout[-3000:]
        assert plan.read_bytes() == plan_bytes, "the dry run rewrote the running run's plan"

        second = workdir.snakemake(*OTHER_SETTINGS, check=False)
        assert second.returncode != 0
        assert "another run (process " in second.stdout, second.stdout[-3000:]
        assert "is using the plan in results: wait for it to end" in second.stdout
        assert plan.read_bytes() == plan_bytes, "the second run rewrote the running run's plan"

        assert run.wait(timeout=600) == 0, log.read_text()[-5000:]
    finally:
        if run.poll() is None:
            Workdir.kill(run)
    for stage in ("ocr", "kie"):
        records = workdir.records(stage)
        assert len(records) == 3 and {r["status"] for r in records.values()} == {"ok"}, stage
    assert "Nothing to be done" in workdir.snakemake(*SETTINGS).stdout
