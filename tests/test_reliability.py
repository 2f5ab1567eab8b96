"""Every input accounted for, every page read: a corpus of 35 kinds of good and bad inputs
in one real run, where each file ends as an ok record, an error record saying what is wrong,
or a listed skip with its reason, and the rest of the batch completes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SAMPLE_IMAGES, SAMPLES, Workdir, make_workdir
from ocrkie.inputs import image_id
from ocrkie.testing.corpus import MAX_BYTES, make_corpus

pytestmark = pytest.mark.xdist_group("corpus")


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory) -> tuple[Workdir, dict]:
    workdir = make_workdir(tmp_path_factory.mktemp("corpus"), [])
    expected = make_corpus(workdir.scans, SAMPLES / "img")
    (workdir.path / "corpus.yaml").write_text(
        f"input_dir: scans\nimages: {{max_bytes: {MAX_BYTES}}}\nexports: [json, txt, alto]\n"
    )
    done = workdir.snakemake("--configfile", "config/config.yaml", "corpus.yaml")
    assert done.returncode == 0
    return workdir, expected


def test_every_input_is_an_ok_record_an_error_record_or_a_listed_skip(corpus_run):
    workdir, expected = corpus_run
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
    workdir, expected = corpus_run
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
    workdir, _ = corpus_run
    ident = image_id("three-pages.tif")
    texts = [(workdir.results / "txt" / f"{ident}-p{n:04d}.txt").read_text() for n in (1, 2, 3)]
    assert "KEDAI RUNCIT" in texts[0] and "HARBOUR LIGHT" in texts[1]
    assert (workdir.results / "alto" / f"{ident}-p0003.xml").exists()
    fields = workdir.records("kie")[ident]["fields"]
    assert fields["company"]["source"]["page"] == 1  # found on the first page


def test_a_rerun_after_the_corpus_does_nothing(corpus_run):
    workdir, _ = corpus_run
    done = workdir.snakemake("--configfile", "config/config.yaml", "corpus.yaml")
    assert "Nothing to be done" in done.stdout


def test_the_retry_script_forgets_failed_images_whatever_their_names(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:1])
    odd = 'bad "one",\nwith a newline.jpg'
    (workdir.scans / odd).write_bytes(b"not an image")
    workdir.snakemake("--config", "input_dir=scans")
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
