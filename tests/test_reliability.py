"""Every input accounted for, every page read: a corpus of 35 kinds of good and bad inputs
in one real run, where each file ends as an ok record, an error record saying what is wrong,
or a listed skip with its reason, and the rest of the batch completes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import REPO, SAMPLE_IMAGES, SAMPLES, Workdir, make_workdir, planned_jobs
from ocrkie.inputs import image_id
from ocrkie.testing.corpus import MAX_BYTES, make_corpus

pytestmark = pytest.mark.xdist_group("corpus")


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory) -> tuple[Workdir, dict, str]:
    workdir = make_workdir(tmp_path_factory.mktemp("corpus"), [])
    expected = make_corpus(workdir.scans, SAMPLES / "img")
    (workdir.path / "corpus.yaml").write_text(
        f"input_dir: scans\nimages: {{max_bytes: {MAX_BYTES}}}\nexports: [json, txt, alto]\n"
    )
    done = workdir.snakemake("--configfile", "config/config.yaml", "corpus.yaml", check=False)
    assert done.returncode == 3, done.stdout[-3000:]  # images failed; every other one done
    return workdir, expected, done.stdout


def test_every_input_is_an_ok_record_an_error_record_or_a_listed_skip(corpus_run):
    workdir, expected, _ = corpus_run
    ocr = {p.name: json.loads(p.read_text()) for p in (workdir.results / "ocr").glob("*.json")}
    kie = workdir.records("kie")
    skipped = {
        row["path"]: row["reason"]
        for row in csv.DictReader((workdir.results / "skipped.csv").open(encoding="utf-8"))
    }
    accounted = set()
    for relpath, expect in expected.items():
        ident = image_id(relpath)
        if expect.outcome == "skipped":
            assert expect.detail in skipped.get(relpath, ""), (relpath, skipped.get(relpath))
            assert ident not in kie, relpath
        elif expect.outcome == "ok":
            pages = expect.detail
            names = (
                [f"{ident}.json"]
                if pages == 1
                else [f"{ident}-p{n:04d}.json" for n in range(1, pages + 1)]
            )
            for number, name in enumerate(names, start=1):
                record = ocr[name]
                assert record["status"] == "ok", (relpath, record.get("error"))
                assert (record["image"]["page"], record["image"]["pages"]) == (number, pages)
                assert record["image"]["path"] == relpath
            assert kie[ident]["status"] == "ok" and kie[ident]["image"]["pages"] == pages
            accounted.update(names)
        else:
            record = ocr[f"{ident}.json"]
            assert record["status"] == "error", relpath
            assert record["error"]["class"] == expect.detail, (relpath, record["error"])
            assert record["error"]["message"] != record["error"]["class"]  # says what is wrong
            assert kie[ident]["status"] == "error" and kie[ident]["error"]["stage"] == "ocr"
            accounted.add(f"{ident}.json")
    assert set(ocr) == accounted  # nothing else, nothing twice
    assert set(skipped) == {p for p, e in expected.items() if e.outcome == "skipped"}


def test_the_summary_and_the_failures_count_what_happened(corpus_run):
    workdir, expected, _ = corpus_run
    summary = json.loads((workdir.results / "summary.json").read_text())
    outcomes = [e.outcome for e in expected.values()]
    assert summary["images"] == outcomes.count("ok") + outcomes.count("error")
    ok_pages = sum(e.detail for e in expected.values() if e.outcome == "ok")
    assert summary["pages"] == ok_pages + outcomes.count("error")
    assert summary["failed_images"] == outcomes.count("error")
    assert sum(summary["skipped"].values()) == outcomes.count("skipped")
    rows = list(
        csv.DictReader((workdir.results / "failures.csv").open(encoding="utf-8", newline=""))
    )
    assert sorted(r["path"] for r in rows) == sorted(
        p for p, e in expected.items() if e.outcome == "error"
    )
    assert b"\r\n" not in (workdir.results / "failures.csv").read_bytes()


def test_every_page_of_a_document_is_exported_and_kie_reads_them_all(corpus_run):
    workdir, _, _ = corpus_run
    ident = image_id("three-pages.tif")
    texts = [(workdir.results / "txt" / f"{ident}-p{n:04d}.txt").read_text() for n in (1, 2, 3)]
    assert "KEDAI RUNCIT" in texts[0] and "HARBOUR LIGHT" in texts[1]
    assert (workdir.results / "alto" / f"{ident}-p0003.xml").exists()
    fields = workdir.records("kie")[ident]["fields"]
    assert fields["company"]["source"]["page"] == 1  # found on the first page


def test_each_failed_input_is_one_warning_with_its_class_and_message(corpus_run):
    workdir, expected, stdout = corpus_run
    ocr = {p.name: json.loads(p.read_text()) for p in (workdir.results / "ocr").glob("*.json")}
    failed = [p for p, e in expected.items() if e.outcome == "error"]
    for relpath in failed:
        error = ocr[f"{image_id(relpath)}.json"]["error"]
        assert f" WARNING ocr failed: {relpath}: {error['class']}: {error['message']}\n" in stdout
    assert stdout.count(" WARNING ocr failed: ") == len(failed)
    assert " WARNING kie failed: " not in stdout  # said once, where it failed
    assert " INFO ocr ok " not in stdout  # an ok image is a line of the job's log only


def test_the_run_ends_with_its_counts_the_failures_by_class_and_where_they_are(corpus_run):
    _, expected, stdout = corpus_run
    outcomes = Counter(e.outcome for e in expected.values())
    images, failed = outcomes["ok"] + outcomes["error"], outcomes["error"]
    head = (
        f"ocrkie: {images} images, {outcomes['ok']} ok, {failed} failed, "
        f"{outcomes['skipped']} inputs skipped (skipped.csv); this run took "
    )
    block = stdout[stdout.rindex(head) :].splitlines()
    classes = Counter(e.detail for e in expected.values() if e.outcome == "error")
    (listed,) = [line for line in block if line.startswith("  failed: ")]
    assert set(listed.removeprefix("  failed: ").split(", ")) == {
        f"{n} {c}" for c, n in classes.items()
    }
    assert "  every failure in results/failures.csv; the jobs' logs in results/logs/" in block
    assert any(line.startswith(f"  OCR: {images} images this run") for line in block)
    assert block[-1].startswith(f"  exit status 3: {failed} of {images} images failed")


def test_a_rerun_after_the_corpus_redoes_nothing_and_exits_3_again(corpus_run):
    workdir, _, _ = corpus_run
    records = {p: p.stat().st_mtime_ns for p in workdir.results.rglob("*.json")}
    done = workdir.snakemake("--configfile", "config/config.yaml", "corpus.yaml", check=False)
    assert done.returncode == 3
    assert planned_jobs(done.stdout) == {"check_failures": 1, "all": 1}
    assert {p: p.stat().st_mtime_ns for p in workdir.results.rglob("*.json")} == records


def test_the_retry_script_forgets_failed_images_whatever_their_names(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:1])
    odd = 'bad "one",\nwith a newline.jpg'
    (workdir.scans / odd).write_bytes(b"not an image")
    assert workdir.snakemake("--config", "input_dir=scans", check=False).returncode == 3
    assert (workdir.results / "ocr" / f"{image_id(odd)}.json").exists()
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "tools" / "forget_failures.py"), "results"],
        cwd=workdir.path,
        check=True,
        capture_output=True,
    )
    assert not (workdir.results / "ocr" / f"{image_id(odd)}.json").exists()
    assert len(workdir.records("ocr")) == 1
    plan = workdir.snakemake("-n", "--config", "input_dir=scans").stdout
    assert "records in shards where some were deleted" in plan
