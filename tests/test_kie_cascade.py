"""``kie_backend: cascade``: the learned model reads every document, Upstage Information
Extraction (the local fake, answering the truth) only those it is unsure of."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SAMPLES, Workdir, assert_valid_record, make_workdir
from ocrkie.engines import Document
from ocrkie.engines.cascade import CascadeExtractor
from ocrkie.errors import TransientError
from ocrkie.evaluate import read_box_lines
from ocrkie.images import ImageLimits, PageDecoder, sha256_of
from ocrkie.normalize import normalize
from ocrkie.page import lines_record
from ocrkie.testing.upstage_fake import FakeUpstage

KEY = "up_test_key_0123456789"
# The bundled model reads the addresses of sample_001 at about 0.61, sample_004 at 0.65 and
# sample_002 at 0.70 (from faster_paddle's OCR), and every other field of these three at 0.8
# or more.
IMAGES = [SAMPLES / "img" / name for name in ("sample_001.jpg", "sample_002.png", "sample_004.jpg")]
LOCAL, API = "ocrkie-learned", "upstage-information-extract"


@pytest.fixture
def fake():
    with FakeUpstage(api_key=KEY) as server:
        server.register_dir(SAMPLES)
        yield server


def configure(
    workdir: Workdir, fake: FakeUpstage, threshold: float, values: str = "all", **overrides
) -> list[str]:
    config = {
        "input_dir": "scans",
        "kie_backend": "cascade",
        "cascade": {"threshold": threshold, "api_values": values},
        "exports": ["json"],
        "upstage": {
            "base_url": fake.url,
            "rate_limits": {"information-extract": 50},
            "price_per_page": {"information-extract": 0.01},
        },
        **overrides,
    }
    (workdir.path / "test-config.yaml").write_text(yaml.safe_dump(config))
    return ["--configfile", "test-config.yaml"]


def sent_to_ie(fake: FakeUpstage) -> dict[str, int]:
    """Documents Information Extraction answered, by image name."""
    names = {sha256_of(image.read_bytes()): image.name for image in IMAGES}
    return {
        names[sha]: n
        for (sha, endpoint), n in fake.answers.items()
        if endpoint == "information-extract" and n
    }


def by_path(workdir: Workdir) -> dict[str, dict]:
    return {r["image"]["path"]: r for r in workdir.records("kie").values()}


def truth(name: str, field: str) -> str | None:
    key = json.loads((SAMPLES / "key" / f"{Path(name).stem}.json").read_text())
    return normalize("text", key[field])


def test_only_the_unsure_documents_go_to_the_api_and_each_value_names_its_engine(
    tmp_path: Path, fake: FakeUpstage, monkeypatch
):
    monkeypatch.setenv("UPSTAGE_API_KEY", KEY)
    workdir = make_workdir(tmp_path, IMAGES)
    done = workdir.snakemake(*configure(workdir, fake, 0.62, "uncertain"))

    assert sent_to_ie(fake) == {"sample_001.jpg": 1}
    records = by_path(workdir)
    sent = records["sample_001.jpg"]
    assert sent["engine"]["sent"] is True and sent["engine"]["uncertain"] == ["address"]
    assert sent["fields"]["address"]["engine"] == API
    assert sent["fields"]["address"]["normalized"] == truth("sample_001.jpg", "address")
    assert sent["billing"]["endpoint"] == "information-extract"
    assert {f["engine"] for n, f in sent["fields"].items() if n != "address"} == {LOCAL}
    for name in ("sample_002.png", "sample_004.jpg"):
        assert records[name]["engine"]["sent"] is False
        assert {f["engine"] for f in records[name]["fields"].values()} == {LOCAL}

    summary = json.loads((workdir.results / "summary.json").read_text())
    assert summary["kie"]["cascade"] == {"documents": 3, "sent": 1, "pages": 3, "sent_pages": 1}
    assert summary["api"]["spent"]["information-extract"] == {"calls": 1, "billed_pages": 1}
    assert (
        "KIE cascade: 1 of 3 documents sent to Upstage Information Extraction (33%; the others "
        "read by the local model alone); $0.01 against $0.03 for sending all" in done.stdout
    )

    # the same settings again: nothing to do, nothing sent
    workdir.snakemake(*configure(workdir, fake, 0.62, "uncertain"))
    assert sent_to_ie(fake) == {"sample_001.jpg": 1}
    # a higher threshold, every value of a sent document from the API: KIE alone reruns and
    # sends only the document newly in doubt; the answer already paid for is in the cache
    done = workdir.snakemake(*configure(workdir, fake, 0.67, "all"))
    assert sent_to_ie(fake) == {"sample_001.jpg": 1, "sample_004.jpg": 1}
    assert "OCR:" not in done.stdout  # no OCR job ran
    records = by_path(workdir)
    assert {n for n, r in records.items() if r["engine"]["sent"]} == {
        "sample_001.jpg",
        "sample_004.jpg",
    }
    assert {f["engine"] for f in records["sample_001.jpg"]["fields"].values()} == {API}
    assert {f["engine"] for f in records["sample_002.png"]["fields"].values()} == {LOCAL}
    summary = json.loads((workdir.results / "summary.json").read_text())
    assert summary["kie"]["cascade"]["sent"] == 2
    assert summary["api"]["spent"]["information-extract"] == {"calls": 2, "billed_pages": 2}
    overview = (workdir.results / "report" / "overview.html").read_text()
    assert (
        "2 of 3 documents (67%), where the local model was unsure; $0.02 against $0.03 for "
        "sending all" in overview
    )


def test_an_api_value_the_ocr_does_not_hold_is_kept_without_a_confidence(
    tmp_path: Path, fake: FakeUpstage, monkeypatch
):
    monkeypatch.setenv("UPSTAGE_API_KEY", KEY)
    unsure = IMAGES[0]  # sample_001: sent at threshold 0.62
    key = json.loads((SAMPLES / "key" / f"{unsure.stem}.json").read_text())
    fake.register(unsure.read_bytes(), [], {**key, "company": "NOWHERE TRADING CO"})
    workdir = make_workdir(tmp_path, IMAGES)
    workdir.snakemake(*configure(workdir, fake, 0.62))

    record = by_path(workdir)[unsure.name]
    company = record["fields"]["company"]
    assert company["value"] == "NOWHERE TRADING CO" and company["engine"] == API
    assert company["confidence"] is None and company["source"] is None  # not on the page
    for each in by_path(workdir).values():
        assert_valid_record("kie", each)


def test_the_dry_run_says_the_share_is_known_only_after_the_local_model(
    tmp_path: Path, fake: FakeUpstage, monkeypatch
):
    monkeypatch.delenv("UPSTAGE_API_KEY", raising=False)
    workdir = make_workdir(tmp_path, IMAGES)
    done = workdir.snakemake("-n", *configure(workdir, fake, 0.75))  # a share not measured
    assert (
        "Upstage kie (cascade): the documents it sends to POST /v1/information-extraction are "
        "known only once the local model has read them; at most all 3 requests (3 pages, "
        "$0.03 at $0.01 a page); 0 pages are in the cache (free)" in done.stdout
    )
    assert "UPSTAGE_API_KEY" in done.stdout  # a run would stop on the missing key
    assert "expected:" not in done.stdout

    # a model whose card measured the share sent at this threshold: the dry run expects it
    model = tmp_path / "model"
    shutil.copytree(SAMPLES.parent / "models" / "receipt", model)
    card = json.loads((model / "model.json").read_text())
    card["cascade"] = [{"threshold": 0.9, "sent": 0.25, "documents": 60, "ocr": "rapidocr"}]
    (model / "model.json").write_text(json.dumps(card))
    done = workdir.snakemake("-n", *configure(workdir, fake, 0.9, learned_model=str(model)))
    assert (
        "expected: about 1 of the 3 documents (25%, the model card's share at this threshold, "
        "on 60 documents of rapidocr OCR)" in done.stdout
    )
    assert fake.calls_for("information-extract") == 0


def test_a_document_whose_request_fails_has_its_error_and_the_others_their_values(
    fake: FakeUpstage, monkeypatch
):
    monkeypatch.setenv("UPSTAGE_API_KEY", KEY)
    defaults = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    settings = defaults["upstage"] | {
        "base_url": fake.url,
        "max_attempts": 2,
        "rate_limits": {"information-extract": 50},
    }
    config = {**defaults, "upstage": settings, "kie_schema": str(REPO / defaults["kie_schema"])}
    config["learned_model"] = str(REPO / defaults["learned_model"])
    cascade = CascadeExtractor.from_config(config)
    cascade.threshold = 1.0  # every document with a field under certainty goes
    limits = ImageLimits.from_config(defaults)

    def document(image: Path) -> Document:
        lines = read_box_lines(SAMPLES / "box" / f"{image.stem}.csv")
        data = image.read_bytes()

        def pages() -> list:
            page = PageDecoder().page(data, sha256_of(data), 1, limits)
            page.name, page.document = image.name, data
            return [page]

        return Document({"status": "ok", **lines_record(lines)}, str(image), load_pages=pages)

    failing = sha256_of(IMAGES[1].read_bytes())
    fake.script("500", "500", endpoint="information-extract", image=failing)
    read = cascade.extract_many([document(image) for image in IMAGES])

    assert isinstance(read[1], TransientError)  # its record says so; the next run retries
    for extraction in (read[0], read[2]):
        assert extraction.facts["sent"] is True
        assert {f["engine"] for f in extraction.fields.values()} == {API}
    cascade.close()
