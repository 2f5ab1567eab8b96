"""The learned KIE backend: training in the workflow, the model folder, and its guard rails."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO, SAMPLE_IMAGES, SAMPLES, Workdir, make_workdir
from ocrkie.fields import load_field_schema
from ocrkie.images import sha256_of
from ocrkie.learn.folder import read_card
from ocrkie.learn.inference import read_many
from ocrkie.learn.model import Ensemble, load, save, weights_digest
from ocrkie.learn.training import (
    SETTINGS,
    examples,
    fit,
    scores,
    torch_threads,
    train_model,
    truth_value,
)
from ocrkie.rules import REVISION
from ocrkie.testing.upstage_fake import FakeUpstage

RECEIPT = load_field_schema(REPO / "config" / "fields" / "receipt.json")
DEFAULT_MODEL = REPO / "resources" / "models" / "receipt"
KEY = "up_test_key_0123456789"


def labelled_folder(root: Path) -> Path:
    """The samples in the SROIE layout: img/ and key/<stem>.json."""
    shutil.copytree(SAMPLES / "img", root / "labelled" / "img")
    shutil.copytree(SAMPLES / "key", root / "labelled" / "key")
    return root / "labelled"


def own_fields_right(workdir: Workdir) -> dict[str, int]:
    """How many KIE records hold each field of their sample's key."""
    right = dict.fromkeys((spec.name for spec in RECEIPT.fields), 0)
    for record in workdir.records("kie").values():
        stem = Path(record["image"]["path"]).stem
        key = json.loads((SAMPLES / "key" / f"{stem}.json").read_text())
        for spec in RECEIPT.fields:
            right[spec.name] += record["fields"][spec.name]["normalized"] == truth_value(
                spec, key[spec.name]
            )
    return right


def invoice_schema(folder: Path) -> Path:
    """A field schema other than the receipt's."""
    schema = {
        "type": "object",
        "title": "invoice",
        "properties": {"invoice_no": {"type": "string"}, "amount_due": {"type": "number"}},
    }
    (folder / "invoice.json").write_text(json.dumps(schema))
    return folder / "invoice.json"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Workdir:
    """A model trained by `snakemake train_kie` on the six samples (all in training)."""
    workdir = make_workdir(tmp_path_factory.mktemp("trained"), [])
    labelled_folder(workdir.path)
    (workdir.path / "train.yaml").write_text("train: {val_fraction: 0}\n")
    workdir.snakemake(
        "train_kie",
        "--configfile",
        "config/config.yaml",
        "train.yaml",
        "--config",
        "train_dir=labelled",
    )
    return workdir


def test_training_writes_a_model_folder_with_its_card_and_manifest(trained: Workdir):
    folder = trained.results / "model"
    card = read_card(folder)
    assert card["fields"] == ["company", "date", "address", "total"]
    assert card["schema_sha256"] == RECEIPT.sha256
    assert card["ocr_engine"]["name"] == "faster_paddle"  # the default engine's records
    assert card["seed"] == 0 and card["documents"]["labelled"] == len(SAMPLE_IMAGES)
    assert card["labels_found"]["total"] == {"exact": len(SAMPLE_IMAGES)}
    with (folder / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["sha256"] for row in rows} == {sha256_of(p.read_bytes()) for p in SAMPLE_IMAGES}
    assert {row["split"] for row in rows} == {"train"}
    model = load(folder, card)  # the weights match their digest
    assert len(model.members) == card["settings"]["members"] == 3  # rankers averaged
    # addresses are read two ways; names and addresses may be mended to the labelled ones
    assert set(card["readings"]) <= {"address", "company"}
    known = json.loads((folder / "known.json").read_text())
    assert sum(known["company"].values()) == len(SAMPLE_IMAGES)


def test_the_trained_model_reads_the_fields_of_its_own_training_data(trained: Workdir):
    trained.snakemake("--config", "input_dir=labelled/img", "learned_model=results/model")
    records = trained.records("kie")
    assert len(records) == len(SAMPLE_IMAGES)
    assert all(r["engine"]["name"] == "ocrkie-learned" for r in records.values())
    right = own_fields_right(trained)
    assert right["total"] == right["date"] == right["company"] == len(SAMPLE_IMAGES), right
    total = next(iter(records.values()))["fields"]["total"]
    assert total["source"]["words"] and 0 < total["confidence"] <= 1
    card = read_card(trained.results / "model")
    engine = next(iter(records.values()))["engine"]
    assert (engine["model"], engine["readings"]) == (card["weights_sha256"], card["readings"])
    assert engine["rules"] == REVISION  # the rules' pick is among what it reads


def sample_pairs(trained: Workdir) -> list[tuple[dict, dict]]:
    """The workflow's own OCR records of the samples, with their keys."""
    pairs = []
    for image in SAMPLE_IMAGES:
        (record,) = [r for r in trained.records("ocr").values() if r["image"]["path"] == image.name]
        pairs.append((record, json.loads((SAMPLES / "key" / f"{image.stem}.json").read_text())))
    return pairs


def test_the_same_data_and_seed_give_the_same_model(trained: Workdir, tmp_path: Path):
    pairs = sample_pairs(trained)
    ocr_engine = pairs[0][0]["engine"]
    options = {"epochs": 5, "seed": 7}
    first = train_model(pairs, RECEIPT, ocr_engine, options, tmp_path / "a")
    again = train_model(pairs, RECEIPT, ocr_engine, options, tmp_path / "b")
    other = train_model(pairs, RECEIPT, ocr_engine, {**options, "seed": 8}, tmp_path / "c")
    assert first["weights_sha256"] == again["weights_sha256"]
    assert other["weights_sha256"] != first["weights_sha256"]


def test_the_model_does_not_depend_on_the_cores_it_was_trained_with(
    trained: Workdir, tmp_path: Path
):
    # torch splits a matrix product over its threads: summed in another order, it would
    # give a machine with another core count (or --cores) other weights
    pairs = sample_pairs(trained)
    options = {"epochs": 2, "members": 1, "val_fraction": 0, "batch": 1}
    digests = []
    for count in (1, 2):
        folder = tmp_path / f"{count}"
        with torch_threads(count):
            card = train_model(pairs, RECEIPT, pairs[0][0]["engine"], options, folder)
        digests.append(card["weights_sha256"])
    assert digests[0] == digests[1]


def test_an_ensemble_reads_by_its_members_probabilities_averaged(trained: Workdir):
    pairs = sample_pairs(trained)
    made = examples(pairs, RECEIPT, 0.0)
    one, two = fit(made, [s.name for s in RECEIPT.fields], 5, {**SETTINGS, "members": 2}).members
    sheet = made[0].tensors
    averaged = Ensemble([one, two]).odds(sheet)
    for name, odds in averaged.items():
        assert odds.allclose((one.odds(sheet)[name] + two.odds(sheet)[name]) / 2)
        assert odds.sum().item() == pytest.approx(1.0)
    assert not one.odds(sheet)["company"].allclose(two.odds(sheet)["company"])  # other starts


def test_a_model_made_before_ensembles_loads_as_one_ranker(trained: Workdir, tmp_path: Path):
    """A model folder of one ranker (no ``members`` setting) still loads and reads as it did."""
    card = read_card(trained.results / "model")
    ranker = load(trained.results / "model", card).members[0]
    settings = {k: v for k, v in card["settings"].items() if k != "members"}
    old = {k: v for k, v in card.items() if k not in ("format", "weights_sha256")}
    save(tmp_path, ranker, {**old, "settings": settings})
    torch.save(ranker.state_dict(), tmp_path / "weights.pt")  # in float32, as they were saved
    loaded = load(tmp_path, read_card(tmp_path))
    assert not isinstance(loaded, Ensemble)
    sheet = examples(sample_pairs(trained), RECEIPT, 0.0)[0].sheet
    readings = card["readings"]
    as_old = read_many(loaded, [sheet], readings)
    as_one = read_many(Ensemble([ranker]), [sheet], readings)
    assert as_old == as_one


def test_a_shard_is_read_in_batches_each_document_as_alone(trained: Workdir):
    """The model reads a batch of documents in one pass (their candidates side by side, each
    document's competing among themselves): each gets the fields and confidences it gets
    alone, a page without text among them too."""
    from ocrkie.engines import Document, learned

    config = {
        "kie_schema": str(REPO / "config" / "fields" / "receipt.json"),
        "learned_model": str(trained.results / "model"),
        "ocr_backend": "rapidocr",
        "rapidocr": {"device": "cpu", "text_score": 0.5},
    }
    blank = {"status": "ok", "text": "", "lines": [], "image": {"path": "blank.png"}}
    records = [record for record, _ in sample_pairs(trained)]
    documents = [Document(r, "") for r in [*records[:3], blank, *records[3:]]]
    extractor = learned.LearnedExtractor.from_config(config)
    assert extractor.batch_size >= len(documents)  # the KIE stage hands it all at once
    together = extractor.extract_many(documents)
    alone = [extractor.extract_many([document])[0] for document in documents]
    for batch, single in zip(together, alone, strict=True):
        for name, value in batch.fields.items():
            confidence = value.pop("confidence")
            assert confidence == pytest.approx(single.fields[name].pop("confidence"), abs=1e-4)
            assert value == single.fields[name]
    assert [e.fields["total"]["normalized"] is None for e in together] == [
        document.ocr is blank for document in documents
    ]


def test_a_retrained_model_reruns_kie_and_nothing_else(trained: Workdir):
    arguments = ("--config", "input_dir=labelled/img", "learned_model=results/model")
    trained.snakemake(*arguments)
    before = read_card(trained.results / "model")["weights_sha256"]
    (trained.path / "seed.yaml").write_text("train: {val_fraction: 0, seed: 1}\n")
    trained.snakemake(
        "train_kie",
        "--forcerun",
        "train_kie",
        "--configfile",
        "config/config.yaml",
        "seed.yaml",
        "--config",
        "train_dir=labelled",
    )
    after = read_card(trained.results / "model")["weights_sha256"]
    assert after != before
    plan = trained.snakemake("-n", *arguments).stdout
    assert re.search(r"^OCR \(.*\): 0 of \d+ jobs to run", plan, re.M), plan
    kie = next(line for line in plan.splitlines() if line.startswith("KIE ("))
    assert f"made with model {before[:12]}…, now {after[:12]}…" in kie, kie
    assert "TXT export: 0 of" in plan


def test_a_model_adapted_from_a_base_names_it_and_reads_its_new_documents(trained: Workdir):
    """train.base: a team's own labelled documents adapt a model instead of replacing it."""
    base = read_card(trained.results / "model")
    (trained.path / "adapt.yaml").write_text(
        "train: {val_fraction: 0, epochs: 5, base: results/model, output: adapted}\n"
    )
    two = ("--configfile", "config/config.yaml", "adapt.yaml", "--config", "train_dir=labelled")
    trained.snakemake("train_kie", *two)
    card = read_card(trained.path / "adapted")
    assert card["base"] == base["weights_sha256"] != card["weights_sha256"]
    assert card["settings"]["epochs"] == 5
    with (trained.path / "adapted" / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    shas = {sha256_of(p.read_bytes()) for p in SAMPLE_IMAGES}
    # every image that shaped the weights: the new documents, and the base's
    assert [r["sha256"] for r in rows if r["split"] == "train"] == sorted(shas)
    assert {r["sha256"] for r in rows if r["split"] == "base"} == shas

    trained.snakemake("--config", "input_dir=labelled/img", "learned_model=adapted")
    right = own_fields_right(trained)
    assert right["total"] == right["date"] == len(SAMPLE_IMAGES), right


def test_a_model_trained_on_two_engines_reads_both_without_a_warning(trained: Workdir):
    """train.also_ocr: the same labelled images read by a second engine are trained on too."""
    other = ("input_dir=labelled/img", "kie_backend=none", "ocr_backend=rapidocr")
    trained.snakemake("--config", *other, "results_dir=results-rapid")
    (trained.path / "both.yaml").write_text(
        "train: {val_fraction: 0, epochs: 5, also_ocr: [results-rapid], output: both}\n"
    )
    two = ("--configfile", "config/config.yaml", "both.yaml", "--config", "train_dir=labelled")
    trained.snakemake("train_kie", *two)
    card = read_card(trained.path / "both")
    assert card["ocr_engine"]["name"] == "faster_paddle"  # the default's, then also_ocr's
    assert [e["name"] for e in card["ocr_engines"]] == ["faster_paddle", "rapidocr"]
    assert card["documents"]["labelled"] == len(SAMPLE_IMAGES)
    assert card["documents"]["train"] == 2 * len(SAMPLE_IMAGES)  # each image read twice
    for backend in ("rapidocr", "faster_paddle"):
        arguments = ("input_dir=labelled/img", f"ocr_backend={backend}", "learned_model=both")
        done = trained.snakemake("-n", "--config", *arguments, "results_dir=results-both")
        assert "was trained on OCR from" not in done.stdout, backend


def test_adapting_starts_from_the_base_weights(trained: Workdir):
    base = read_card(trained.results / "model")
    start = load(trained.results / "model", base)
    untouched = fit([], base["fields"], 3, {**base["settings"], "epochs": 0}, start)
    assert weights_digest(untouched) == base["weights_sha256"]
    fresh = fit([], base["fields"], 3, {**base["settings"], "epochs": 0})
    assert weights_digest(fresh) != base["weights_sha256"]


def test_an_adapted_model_is_scored_beside_its_base(trained: Workdir, tmp_path: Path):
    """Did adapting help? The card scores the base, as it was, on the same held-out documents."""
    pairs = sample_pairs(trained)
    base = trained.results / "model"
    options = {"epochs": 2, "val_fraction": 0.5}
    card = train_model(pairs, RECEIPT, pairs[0][0]["engine"], options, tmp_path, base=base)
    held = [e for e in examples(pairs, RECEIPT, 0.5) if e.split == "val"]
    assert held and card["documents"]["val"] == len(held)
    before = read_card(base)
    expected = scores(load(base, before), before["readings"], held, RECEIPT)
    validation = card["validation"]
    assert {n: v["base"] for n, v in validation["fields"].items()} == {
        n: v["model"] for n, v in expected.items()
    }
    assert validation["mean_base"] is not None and "mean_model" in validation


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ("nowhere", "no KIE model in nowhere (it needs model.json and weights.pt)"),
        ("results/model", "train.base and train.output are one folder (results/model)"),
    ],
)
def test_a_base_that_cannot_be_adapted_is_refused_before_any_job(
    tmp_path: Path, base: str, message: str
):
    workdir = make_workdir(tmp_path, [])
    labelled_folder(workdir.path)
    (workdir.path / "base.yaml").write_text(f"train: {{base: {base}}}\n")
    done = workdir.snakemake(
        "train_kie",
        "--configfile",
        "config/config.yaml",
        "base.yaml",
        "--config",
        "train_dir=labelled",
        check=False,
    )
    assert done.returncode != 0 and message in done.stdout, done.stdout[-2000:]
    assert not (workdir.results / "ocr").exists()


def test_a_base_for_another_schema_is_refused_before_any_job(trained: Workdir, tmp_path: Path):
    (trained.path / "invoice.yaml").write_text(
        f"kie_schema: {invoice_schema(tmp_path)}\ntrain: {{base: results/model, output: inv}}\n"
    )
    done = trained.snakemake(
        "train_kie",
        "-n",
        "--configfile",
        "config/config.yaml",
        "invoice.yaml",
        "--config",
        "train_dir=labelled",
        check=False,
    )
    assert done.returncode != 0
    assert "was trained for the field schema 'receipt'" in done.stdout, done.stdout[-2000:]


def test_a_model_for_another_schema_is_refused_before_any_job(trained: Workdir, tmp_path: Path):
    workdir = make_workdir(tmp_path / "run", SAMPLE_IMAGES[:1])
    (workdir.path / "model").symlink_to(trained.results / "model")
    done = workdir.snakemake(
        "--config",
        "input_dir=scans",
        "learned_model=model",
        f"kie_schema={invoice_schema(tmp_path)}",
        check=False,
    )
    assert done.returncode != 0
    assert "was trained for the field schema 'receipt' (fields company, date" in done.stdout
    assert "invoice_no, amount_due" in done.stdout
    assert not (workdir.results / "ocr").exists()  # refused before any job ran


def test_a_missing_model_is_a_clear_error(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:1])
    arguments = ("--config", "input_dir=scans", "learned_model=nowhere")
    done = workdir.snakemake("-n", *arguments, check=False)
    assert done.returncode != 0
    assert "no KIE model in nowhere (it needs model.json and weights" in done.stdout


def measured_copy(root: Path, mean_model: float | None, mean_rules: float = 0.0) -> Path:
    """The default model, its card saying how it read EasyOCR's records (None: never
    measured on them)."""
    folder = root / "model"
    shutil.copytree(DEFAULT_MODEL, folder)
    card = json.loads((folder / "model.json").read_text())
    easy = {"name": "easyocr", "model": "craft_mlt_25k+english_g2"}
    figures = {"mean_model": mean_model, "mean_rules": mean_rules, "documents": 60}
    card["measured"] = [] if mean_model is None else [{"ocr": easy, **figures}]
    (folder / "model.json").write_text(json.dumps(card))
    return folder


def test_ocr_the_model_was_not_measured_on_is_a_warning_not_an_error(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:1])
    measured_copy(workdir.path, None)
    arguments = ("input_dir=scans", "ocr_backend=easyocr", "learned_model=model")
    done = workdir.snakemake("-n", "--config", *arguments)
    assert "its accuracy on OCR from easyocr (craft_mlt_25k+english_g2) is unknown" in done.stdout
    assert "use kie_backend: rules" in done.stdout


def test_ocr_the_model_reads_worse_than_the_rules_stops_the_run(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:1])
    measured_copy(workdir.path, 0.6, 0.7)
    arguments = ("input_dir=scans", "ocr_backend=easyocr", "learned_model=model")
    done = workdir.snakemake("-n", "--config", *arguments, check=False)
    assert done.returncode != 0
    assert "reads fields from easyocr's OCR worse than the rules do (0.6 against 0.7" in done.stdout
    assert "use kie_backend: rules" in done.stdout


def test_ocr_the_model_was_measured_on_runs_without_a_warning(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:1])
    measured_copy(workdir.path, 0.8, 0.7)
    arguments = ("input_dir=scans", "ocr_backend=easyocr", "learned_model=model")
    done = workdir.snakemake("-n", "--config", *arguments)
    assert "is unknown" not in done.stdout


def test_the_default_model_reads_easyocr_and_upstage_ocr(tmp_path: Path, monkeypatch):
    """Any OCR engine's records: EasyOCR's, and Upstage's (the fake's lines)."""
    monkeypatch.setenv("UPSTAGE_API_KEY", KEY)
    easy = make_workdir(tmp_path / "easy", SAMPLE_IMAGES[:2])
    easy.snakemake("--config", "input_dir=scans", "ocr_backend=easyocr", "exports=[json]")
    with FakeUpstage(api_key=KEY) as fake:
        fake.register_dir(SAMPLES)
        upstage = make_workdir(tmp_path / "upstage", SAMPLE_IMAGES[:2])
        settings = {
            "input_dir": "scans",
            "ocr_backend": "upstage",
            "upstage": {"base_url": fake.url, "rate_limits": {"ocr": 50}},
        }
        (upstage.path / "paid.yaml").write_text(yaml.safe_dump(settings))
        upstage.snakemake("--configfile", "config/config.yaml", "paid.yaml")
    for workdir, engine in ((easy, "easyocr"), (upstage, "upstage-ocr")):
        records = workdir.records("kie").values()
        assert len(records) == 2
        for record in records:
            assert record["status"] == "ok" and record["engine"]["name"] == "ocrkie-learned"
            assert record["fields"]["total"]["normalized"] is not None
        ocr = workdir.records("ocr").values()
        assert {r["engine"]["name"] for r in ocr} == {engine}


def test_train_kie_without_labels_says_what_it_needs(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:1])
    done = workdir.snakemake("train_kie", "-n", "--config", "input_dir=scans", check=False)
    assert done.returncode != 0
    assert "train_kie learns from labelled documents: add --config train_dir=" in done.stdout


def test_train_kie_with_two_sources_of_labels_says_to_give_one(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:1])
    labelled_folder(workdir.path)
    arguments = ("--config", "train_dir=labelled", "train_from=results")
    done = workdir.snakemake("train_kie", "-n", *arguments, check=False)
    assert done.returncode != 0
    assert "train_dir and train_from are two sources of labels" in done.stdout, done.stdout[-2000:]


def test_kie_backend_none_runs_ocr_only(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:2])
    workdir.snakemake("--config", "input_dir=scans", "kie_backend=none")
    assert len(workdir.records("ocr")) == 2
    assert not workdir.records("kie")
    assert json.loads((workdir.results / "summary.json").read_text())["images"] == 2


def test_the_flywheel_learns_from_an_upstage_kie_run(tmp_path: Path, monkeypatch):
    """Pay Information Extraction once (here the fake answers with the samples' keys), then
    train the local model on its records and run offline."""
    monkeypatch.setenv("UPSTAGE_API_KEY", KEY)
    with FakeUpstage(api_key=KEY) as fake:
        fake.register_dir(SAMPLES)
        workdir = make_workdir(tmp_path, SAMPLE_IMAGES)
        settings = {
            "input_dir": "scans",
            "kie_backend": "upstage",
            "upstage": {"base_url": fake.url, "rate_limits": {"information-extract": 50}},
            "train": {"val_fraction": 0},
        }
        (workdir.path / "paid.yaml").write_text(yaml.safe_dump(settings))
        paid = ("--configfile", "config/config.yaml", "paid.yaml")
        workdir.snakemake(*paid)
        assert fake.answers and all(
            r["engine"]["name"] == "upstage-information-extract"
            for r in workdir.records("kie").values()
        )
        workdir.snakemake("train_kie", *paid, "--config", "train_from=results")
    card = read_card(workdir.results / "model")
    assert card["documents"]["labelled"] == len(SAMPLE_IMAGES)
    assert card["labels_found"]["total"] == {"exact": len(SAMPLE_IMAGES)}
    # offline from here: the same images, the learned model, no API
    workdir.snakemake("--config", "input_dir=scans", "learned_model=results/model")
    assert all(r["engine"]["name"] == "ocrkie-learned" for r in workdir.records("kie").values())
    assert own_fields_right(workdir)["total"] == len(SAMPLE_IMAGES)


def test_a_page_without_text_gets_empty_fields_not_an_error():
    from ocrkie.engines import Document
    from ocrkie.engines.learned import LearnedExtractor

    config = {
        "kie_schema": str(REPO / "config" / "fields" / "receipt.json"),
        "learned_model": str(DEFAULT_MODEL),
        "ocr_backend": "rapidocr",
        "rapidocr": {"device": "cpu", "text_score": 0.5},
    }
    blank = {"status": "ok", "text": "", "lines": [], "image": {"path": "blank.png"}}
    (extraction,) = LearnedExtractor.from_config(config).extract_many([Document(blank, "")])
    assert {name: value["normalized"] for name, value in extraction.fields.items()} == {
        "company": None,
        "date": None,
        "address": None,
        "total": None,
    }


def test_the_default_model_is_for_the_receipt_schema_and_its_training_set_is_known():
    card = read_card(DEFAULT_MODEL)
    assert card["fields_sha256"] == RECEIPT.fields_sha256
    assert card["ocr_engine"]["name"] == "rapidocr"
    with (DEFAULT_MODEL / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == card["documents"]["train"] + card["documents"]["val"]
    # SROIE receipts with ids of 300 or more are the project's unseen test set
    assert all(int(Path(row["path"]).stem) < 300 for row in rows)
    assert card["validation"]["mean_model"] > card["validation"]["mean_rules"]
    assert card.get("known_sha256") is None  # no SROIE label ships (config/train-receipt.yaml)
    words = json.loads((DEFAULT_MODEL / "words.json").read_text())
    assert card["words"] == len(words) and min(words.values()) >= 2  # no one vendor's words
    recipe = yaml.safe_load((REPO / "config" / "train-receipt.yaml").read_text())["train"]
    assert card["settings"]["noisy_copies"] == recipe["noisy_copies"] and card["calibration"]
    # trained on two engines' records, and measured on each: it reads faster_paddle's about as
    # well (a field of the 240 is 0.004)
    assert [e["name"] for e in card["ocr_engines"]] == ["rapidocr", "faster_paddle"]
    measured = {m["ocr"]["name"]: m for m in card["measured"]}
    fast, rapid = measured["faster_paddle"], measured["rapidocr"]
    assert abs(fast["mean_model_letters"] - rapid["mean_model_letters"]) <= 0.01
    assert all(m["mean_model"] > m["mean_rules"] for m in measured.values())
    load(DEFAULT_MODEL, card)
