"""Whole-workflow runs with the Upstage backends, against the local fake of the API."""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conftest import SAMPLE_IMAGES, SAMPLES, Workdir, make_workdir
from ocrkie.evaluate import evaluate
from ocrkie.images import sha256_of
from ocrkie.inputs import image_id
from ocrkie.normalize import normalize
from ocrkie.results import Results
from ocrkie.testing.upstage_fake import FakeUpstage, read_box_csv
from ocrkie.usage import total_usage

KEY = "up_test_key_0123456789"


@pytest.fixture
def fake():
    with FakeUpstage(api_key=KEY, retry_after=0.1) as server:
        server.register_dir(SAMPLES)
        yield server


def ledger_requests(workdir: Workdir) -> dict[str, int]:
    """Requests the jobs have counted so far, per endpoint (their usage ledgers)."""
    usage = total_usage(Results(str(workdir.results))).requests()
    return {endpoint: counts["requests"] for endpoint, counts in usage.items()}


def arrived(fake: FakeUpstage) -> dict[str, int]:
    """Requests the service has received, per endpoint (its model listing aside)."""
    totals = fake.stats()["calls_total"]
    return {endpoint: n for endpoint, n in totals.items() if endpoint != "models"}


def configure(
    workdir: Workdir, fake: FakeUpstage, upstage: dict | None = None, **overrides
) -> list[str]:
    """A config file pointing the workflow at the fake; returns the snakemake arguments.
    ``upstage`` adds to the ``upstage`` settings, ``overrides`` replace top-level keys."""
    config = {
        "input_dir": "scans",
        "shard_size": 3,
        "ocr_backend": "upstage",
        "kie_backend": "upstage",
        "upstage": {
            "base_url": fake.url,
            "max_attempts": 8,
            "rate_limits": {"ocr": 50, "information-extract": 50, "document-parse": 50},
            **(upstage or {}),
        },
        **overrides,
    }
    (workdir.path / "test-config.yaml").write_text(yaml.safe_dump(config))
    return ["--configfile", "test-config.yaml"]


@pytest.fixture
def with_key(monkeypatch):
    monkeypatch.setenv("UPSTAGE_API_KEY", KEY)


def answers(fake: FakeUpstage) -> dict[tuple[str, str], int]:
    return dict(fake.answers)


def assert_every_image_answered_once(fake: FakeUpstage, images: list[Path], endpoints) -> None:
    for image in images:
        sha = sha256_of(image.read_bytes())
        for endpoint in endpoints:
            assert fake.answers[(sha, endpoint)] == 1, (image.name, endpoint)


def test_both_backends_on_upstage_survive_faults_with_correct_values(
    tmp_path: Path, fake: FakeUpstage, with_key
):
    fake.configure(fault_rate=0.2, latency=(0.0, 0.05))
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES)
    workdir.snakemake(*configure(workdir, fake))

    assert sum(fake.faults_injected.values()) > 0
    report = evaluate(workdir.results, SAMPLES)
    assert report["images"] == len(SAMPLE_IMAGES) and report["failed"] == 0
    assert report["cer"] == 0.0  # the fake answers with the ground truth
    assert all(f["accuracy"] == 1.0 for f in report["fields"].values())
    # an upright page went up for the EXIF-rotated sample; boxes are in its displayed frame
    sample_003 = next(
        r for r in workdir.records("ocr").values() if r["image"]["path"] == "sample_003.jpg"
    )
    assert sample_003["lines"] and sample_003["image"]["width"] < sample_003["image"]["height"]
    # every value is located in the OCR, with the words it came from
    for record in workdir.records("kie").values():
        assert record["engine"]["name"] == "upstage-information-extract"
        assert all(f["source"] for f in record["fields"].values())
    raw = json.loads(next((workdir.results / "raw" / "ocr").glob("*.json")).read_text())
    assert raw["modelVersion"].startswith("ocr-")
    assert_every_image_answered_once(fake, SAMPLE_IMAGES, ("ocr", "information-extract"))

    summary = json.loads((workdir.results / "summary.json").read_text())
    assert summary["api"]["spent"]["ocr"] == {"calls": 6, "billed_pages": 6}
    assert summary["api"]["spent"]["information-extract"]["calls"] == 6
    sent = sum(c["requests"] for c in summary["api"]["requests"].values())
    assert sent == sum(n for (_, endpoint), n in fake.calls.items() if endpoint != "models")


def test_a_rerun_after_deleting_results_pays_nothing_and_says_so(
    tmp_path: Path, fake: FakeUpstage, with_key
):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:3])
    arguments = configure(workdir, fake, upstage={"price_per_page": {"ocr": 0.0015}})
    workdir.snakemake(*arguments)
    for stage in ("ocr", "kie"):
        for record in (workdir.results / stage).glob("*.json"):
            record.unlink()

    plan = workdir.snakemake("-n", *arguments).stdout
    assert "Upstage ocr: 0 requests (0 pages) will be sent" in plan
    assert "3 pages are in the cache (free)" in plan
    took = r"  time: (about \d+s|under a second) for 3 images, \d jobs? at once"
    assert re.search(took + r" \(typically 3 s an answer, 8 at once a job\)", plan)

    calls_before = sum(fake.calls.values())
    done = workdir.snakemake(*arguments)
    assert sum(fake.calls.values()) == calls_before + 1  # the key check, nothing else
    assert (  # the closing block, in money at the configured price
        "API, Upstage OCR: 3 pages billed ($0.0045 at $0.0015 a page); 3 pages from the "
        "cache ($0.0045 saved)" in done.stdout
    )
    summary = json.loads((workdir.results / "summary.json").read_text())
    assert summary["api"]["saved_by_cache"]["ocr"] == {"calls": 3, "billed_pages": 3}
    assert summary["api"]["spent"]["ocr"] == {"calls": 3, "billed_pages": 3}  # paid once


def test_kill_9_then_resume_resends_only_unanswered_images(
    tmp_path: Path, fake: FakeUpstage, with_key
):
    fake.configure(latency=(0.4, 0.6))
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES)
    arguments = configure(workdir, fake, shard_size=6, upstage={"concurrency": 2})
    run = workdir.start(*arguments)
    deadline = time.monotonic() + 60
    while len(list(workdir.results.glob("ocr/*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    fake.hold()  # answers not yet sent wait; those sent get a moment to be stored
    time.sleep(1.0)
    # The kill lands once every request the jobs counted has reached the service: one cut
    # off while it is being sent is counted by the ledger but never read by the service
    # (docs/upstage.md), and this test asserts the count exactly.
    deadline = time.monotonic() + 30
    while ledger_requests(workdir) != arrived(fake) and time.monotonic() < deadline:
        time.sleep(0.05)
    answered_before = set(fake.answers)
    workdir.kill(run)
    fake.release(drop=True)  # the held requests' client is gone: they are never answered
    assert 0 < len(answered_before) < 2 * len(SAMPLE_IMAGES)

    workdir.snakemake("--unlock", *arguments)
    # The forecast is exact: what was answered before the kill is free now (in the cache,
    # or in a finished shard); only the rest will be sent.
    answered_ocr = sum(1 for _, endpoint in answered_before if endpoint == "ocr")
    plan = workdir.snakemake("-n", "--rerun-incomplete", *arguments).stdout
    forecast = re.search(
        r"Upstage ocr: (\d+) requests \((\d+) pages\) will be sent .*; (\d+) pages are in "
        r"the cache \(free\), (\d+) images already have results",
        plan,
    )
    requests, sent, cached, done = map(int, forecast.groups())
    assert (cached + done, sent) == (answered_ocr, len(SAMPLE_IMAGES) - answered_ocr), plan
    assert requests == sent  # one page an image

    workdir.snakemake("--rerun-incomplete", *arguments)

    assert_every_image_answered_once(fake, SAMPLE_IMAGES, ("ocr", "information-extract"))
    assert all(r["status"] == "ok" for r in workdir.records("kie").values())
    # Every request sent is counted, those of the killed run included; what the killed run
    # was answered is spent (paid once), not saved by the cache.
    summary = json.loads((workdir.results / "summary.json").read_text())
    sent_by_endpoint = {e: c["requests"] for e, c in summary["api"]["requests"].items()}
    assert sent_by_endpoint == arrived(fake)
    billed = fake.stats()["billed_pages"]
    assert {e: c["billed_pages"] for e, c in summary["api"]["spent"].items()} == billed
    unrecorded = total_usage(Results(str(workdir.results))).unrecorded  # paid, never recorded
    reused = {
        entry["billing"]["request"]
        for manifest in (workdir.results / "shards" / "ocr").glob("*.json")
        for entry in json.loads(manifest.read_text())["entries"]
        if entry["cached"]
    }
    # reuses count as saved, except of what a killed job paid for and never recorded
    saved = summary["api"]["saved_by_cache"].get("ocr", {"calls": 0})
    assert saved["calls"] == len(reused - unrecorded)


def test_a_bad_key_stops_the_run_before_any_image_is_sent(
    tmp_path: Path, fake: FakeUpstage, monkeypatch
):
    monkeypatch.setenv("UPSTAGE_API_KEY", "up_wrong_key")
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:3])
    started = time.monotonic()
    done = workdir.snakemake(*configure(workdir, fake), check=False)
    assert done.returncode != 0
    assert time.monotonic() - started < 60
    assert "Upstage rejected the API key (HTTP 401)" in done.stdout
    assert "up_wrong_key" not in done.stdout
    assert {endpoint for _, endpoint in fake.calls} == {"models"}
    assert not (workdir.results / "ocr").exists()


def test_a_missing_key_is_named_clearly(tmp_path: Path, fake: FakeUpstage, monkeypatch):
    monkeypatch.delenv("UPSTAGE_API_KEY", raising=False)
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:1])
    done = workdir.snakemake(*configure(workdir, fake), check=False)
    assert done.returncode != 0
    assert "no Upstage API key: set one of UPSTAGE_API_KEY" in done.stdout
    assert not fake.calls


def test_local_ocr_mixes_with_upstage_kie_and_document_parse(
    tmp_path: Path, fake: FakeUpstage, with_key
):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:2])
    workdir.snakemake(
        *configure(workdir, fake, ocr_backend="local", document_parse={"enabled": True})
    )
    for record in workdir.records("ocr").values():
        assert record["engine"]["name"] == "rapidocr"
    for record in workdir.records("kie").values():
        truth = json.loads(
            (SAMPLES / "key" / f"{Path(record['image']['path']).stem}.json").read_text()
        )
        assert record["fields"]["total"]["normalized"] == normalize("amount", truth["total"])
        assert record["fields"]["total"]["source"]["words"]  # found in the local OCR
    layout = workdir.records("layout")
    assert len(layout) == 2
    element = next(iter(layout.values()))["elements"][0]
    assert element["category"] and element["text"]
    x0, y0 = element["polygon"][0]
    assert 0 <= x0 <= 640 and y0 >= 0  # page pixels from relative coordinates
    assert {endpoint for _, endpoint in fake.calls} == {
        "models",
        "information-extract",
        "document-parse",
    }


def test_document_parse_runs_and_is_summarised_without_kie(
    tmp_path: Path, fake: FakeUpstage, with_key
):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:2])
    arguments = configure(
        workdir, fake, ocr_backend="rapidocr", kie_backend="none", document_parse={"enabled": True}
    )
    workdir.snakemake(*arguments)
    assert len(workdir.records("layout")) == 2 and not workdir.records("kie")
    summary = json.loads((workdir.results / "summary.json").read_text())
    assert summary["layout"]["status"] == {"ok": 2}, summary


def test_upstage_ocr_mixes_with_local_kie(tmp_path: Path, fake: FakeUpstage, with_key):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:2])
    workdir.snakemake(*configure(workdir, fake, kie_backend="rules"))
    for record in workdir.records("kie").values():
        assert record["engine"]["name"] == "ocrkie-rules"
        assert record["fields"]["date"]["normalized"]
    assert {endpoint for _, endpoint in fake.calls} == {"models", "ocr"}


def test_the_key_appears_nowhere_the_run_wrote(tmp_path: Path, with_key):
    fake = FakeUpstage(api_key=KEY, retry_after=0.1, fault_rate=0.3, echo_key_in_errors=True)
    fake.register_dir(SAMPLES)
    fake.start()
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:3])
    arguments = configure(workdir, fake)
    done = workdir.snakemake(*arguments)
    report = workdir.snakemake("--report", "report.html", *arguments)
    assert KEY not in done.stdout + report.stdout
    written = [
        p
        for p in workdir.path.rglob("*")
        if p.is_file() and not p.is_symlink() and "scans" not in p.parts
    ]
    assert any(p.name == "report.html" for p in written)
    assert len(written) > 20
    leaks = [p for p in written if KEY.encode() in p.read_bytes()]
    fake.stop()
    assert leaks == []


def test_faults_that_outlive_the_retries_are_tried_again_by_the_next_plain_run(
    tmp_path: Path, fake: FakeUpstage, with_key
):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:3])
    victim = SAMPLE_IMAGES[1]
    fake.script("503", "503", endpoint="ocr", image=sha256_of(victim.read_bytes()))
    arguments = configure(workdir, fake, upstage={"max_attempts": 2})
    assert workdir.snakemake(*arguments, check=False).returncode == 3  # an image failed
    rows = list(csv.DictReader((workdir.results / "failures.csv").open()))
    assert [(r["path"], r["stage"], r["class"]) for r in rows] == [
        (victim.name, "ocr", "TransientError")
    ]

    plan = workdir.snakemake("-n", *arguments).stdout
    assert "records in shards where some failed on a transient fault" in plan
    assert "Upstage ocr: 1 requests (1 pages) will be sent" in plan  # the others are cached
    workdir.snakemake(*arguments)

    assert (workdir.results / "failures.csv").read_text().count("\n") == 1  # the header
    assert_every_image_answered_once(fake, SAMPLE_IMAGES[:3], ("ocr", "information-extract"))
    assert "Nothing to be done" in workdir.snakemake(*arguments).stdout


def test_an_outage_stops_the_run_untouched_and_the_next_run_completes_it(
    tmp_path: Path, fake: FakeUpstage, with_key
):
    images = [*SAMPLE_IMAGES, *SAMPLE_IMAGES[:2]]
    workdir = make_workdir(tmp_path, [])
    for n, image in enumerate(images):  # eight files, none a copy of another
        (workdir.scans / f"{n}-{image.name}").write_bytes(image.read_bytes() + bytes(n // 6))
    arguments = configure(
        workdir,
        fake,
        shard_size=8,
        kie_backend="rules",
        upstage={"max_attempts": 2, "max_failures_in_a_row": 3, "concurrency": 1},
    )
    arguments += ["--resources", "upstage_api=1"]  # one job, one image at a time: in order
    fake.script("ok", "ok", endpoint="ocr")  # two images read, then the service goes down
    fake.outage("ocr")
    started = time.monotonic()
    done = workdir.snakemake(*arguments, check=False)
    assert done.returncode != 0
    assert time.monotonic() - started < 120
    assert re.search(r"ocrkie: OCR: the service is unavailable since 20\d\d-", done.stdout)
    records = workdir.records("ocr")
    assert sorted(r["status"] for r in records.values()) == ["error", "error", "ok", "ok"]
    assert fake.stats()["calls_total"]["ocr"] == 2 + 3 * 2  # 3 images failed, 2 attempts each

    fake.recover()
    workdir.snakemake(*arguments)
    assert all(r["status"] == "ok" for r in workdir.records("ocr").values())
    assert len(workdir.records("ocr")) == len(images)
    assert sum(n for (_, e), n in fake.answers.items() if e == "ocr") == len(images)
    assert fake.stats()["billed_pages"]["ocr"] == len(images)  # nothing paid twice


def test_another_model_reruns_its_stage_and_says_so(tmp_path: Path, fake: FakeUpstage, with_key):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:2])
    workdir.snakemake(*configure(workdir, fake))
    plan = workdir.snakemake("-n", *configure(workdir, fake, upstage={"ocr_model": "ocr-2"})).stdout
    ocr = next(line for line in plan.splitlines() if line.startswith("OCR ("))
    assert "2 records made with model ocr, now ocr-2" in ocr
    assert "Upstage ocr: 2 requests (2 pages) will be sent" in plan  # a new model: not cached
    kie = next(line for line in plan.splitlines() if line.startswith("KIE ("))
    assert "records made from other OCR records" in kie
    assert "Upstage kie: 0 requests (0 pages) will be sent" in plan  # reads the image: cached


def truth_lines(sample: str) -> list[dict]:
    return read_box_csv(SAMPLES / "box" / f"{sample}.csv")


def texts_of(lines: list[dict]) -> list[str]:
    """Line texts as OCR words joined by single spaces."""
    return [" ".join(line["text"].split()) for line in lines]


def test_documents_of_several_pages_are_read_billed_and_extracted_page_by_page(
    tmp_path: Path, fake: FakeUpstage, with_key
):
    """A 3-page PDF and a 3-frame TIFF through OCR, Document Parse and Information
    Extraction: each page its own text and boxes, each page billed once, one request per
    document and service, and KIE reading every page."""
    receipts = {
        n: Image.open(SAMPLES / "img" / f"sample_00{n}.jpg").convert("RGB") for n in (0, 1, 4)
    }
    blank = Image.new("RGB", (640, 700), "white")  # a cover sheet: no text, no fields
    workdir = make_workdir(tmp_path, [])
    pdf_pages, tiff_pages = [receipts[0], receipts[1], receipts[4]], [blank, receipts[4].copy()]
    pdf_pages[0].save(
        workdir.scans / "three.pdf",
        "PDF",
        save_all=True,
        append_images=pdf_pages[1:],
        resolution=100,
    )
    tiff_pages[0].save(
        workdir.scans / "cover.tif", "TIFF", save_all=True, append_images=tiff_pages[1:]
    )
    arguments = configure(workdir, fake, document_parse={"enabled": True})

    plan = workdir.snakemake("-n", *arguments).stdout
    assert "Upstage ocr: 2 requests (5 pages) will be sent" in plan
    assert "Upstage kie: 2 requests (5 pages) will be sent" in plan
    workdir.snakemake(*arguments)

    ocr, layout = workdir.records("ocr"), workdir.records("layout")
    pdf_id, tiff_id = (image_id("three.pdf"), image_id("cover.tif"))
    for doc, samples, scale in (
        (pdf_id, ["sample_000", "sample_001", "sample_004"], 2.0),
        (tiff_id, [None, "sample_004"], 1.0),
    ):
        requests = set()
        for number, sample in enumerate(samples, 1):
            record = ocr[f"{doc}-p{number:04d}"]
            assert (record["image"]["page"], record["image"]["pages"]) == (number, len(samples))
            assert record["billing"]["billed_pages"] == 1
            requests.add(record["billing"]["request"])
            texts = [line["text"] for line in record["lines"]]
            elements = layout[f"{doc}-p{number:04d}"]["elements"]
            if sample is None:
                assert texts == [] and elements == []
                continue
            truth = truth_lines(sample)
            assert sorted(texts) == sorted(texts_of(truth))
            assert [e["text"] for e in elements] == [line["text"] for line in truth]
            # boxes in the record's frame (a PDF at 200 dpi: the 100-dpi page's pixels x 2),
            # from the page size the service reported (it renders PDFs at 150 dpi)
            first = next(line for line in record["lines"] if line["text"] == texts_of(truth)[0])
            expected = [c * scale for point in truth[0]["polygon"] for c in point]
            found = [c for point in first["polygon"] for c in point]
            assert found == pytest.approx(expected, abs=2.5)
        assert len(requests) == 1  # the document's pages answered together

    kie = workdir.records("kie")
    key = json.loads((SAMPLES / "key" / "sample_004.json").read_text())
    assert kie[tiff_id]["fields"]["total"]["value"] == key["total"]  # found on page 2
    assert kie[tiff_id]["image"]["pages"] == 2
    sent = [r["pages"] for r in fake.received if r["endpoint"] == "information-extract"]
    assert sorted(map(len, sent)) == [2, 3]  # each document whole

    stats = fake.stats()
    assert stats["calls_total"] == {
        "models": 1,
        "ocr": 2,
        "document-parse": 2,
        "information-extract": 2,
    }
    assert stats["billed_pages"] == {"ocr": 5, "document-parse": 5, "information-extract": 5}
    summary = json.loads((workdir.results / "summary.json").read_text())
    assert summary["pages"] == 5
    assert summary["api"]["spent"] == {
        endpoint: {"calls": 2, "billed_pages": 5}
        for endpoint in ("ocr", "document-parse", "information-extract")
    }
