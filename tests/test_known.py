"""The values a learned model was taught, and the OCR misreadings of them it mends."""

from __future__ import annotations

import json

import pytest
import torch
from test_kie import RECEIPT_SCHEMA, ocr_record

from ocrkie.engines.learned import LearnedExtractor
from ocrkie.engines.rapid import MODELS
from ocrkie.errors import ModelError
from ocrkie.fields import load_field_schema
from ocrkie.learn.candidates import read_sheet
from ocrkie.learn.inference import read_many
from ocrkie.learn.known import KNOWN, KnownValues
from ocrkie.learn.model import FieldRanker
from ocrkie.learn.training import examples, mend_rates, reading_rates, train_model

SCHEMA = load_field_schema(RECEIPT_SCHEMA)
NAME = "LIM SENG THO HARDWARE TRADING"
MISREAD = "LIM SENG TH0 HARDWARE TRADING"  # a zero for the O


def known(*names: str) -> KnownValues:
    return KnownValues.of(({"company": name} for name in names), ["company"])


def test_a_value_a_few_characters_from_a_known_one_is_its_misreading():
    values = known(NAME, NAME, "SOON FATT S/B")
    assert values.nearest("company", MISREAD) == NAME
    assert values.nearest("company", NAME) is None  # read right: nothing to mend
    assert values.nearest("company", "LIM SENG HOCK TRADING") is None  # another name
    assert values.nearest("address", MISREAD) is None  # no address was taught


def test_a_document_does_not_find_its_own_label_known():
    assert known(NAME).nearest("company", MISREAD, own=NAME) is None
    assert known(NAME, NAME).nearest("company", MISREAD, own=NAME) == NAME


def test_the_closest_known_value_wins_then_the_most_frequent():
    values = known("KEDAI MAJU JAYA SDN BHD", "KEDAI MAJU JAYA SDN BHD", "KEDAI MAJU JAYO SDN BHD")
    assert values.nearest("company", "KEDAI MAJU JAYX SDN BHD") == "KEDAI MAJU JAYA SDN BHD"
    assert values.nearest("company", "KEDAI MAJU JAYO SDN BHX") == "KEDAI MAJU JAYO SDN BHD"


def test_the_pick_is_mended_where_training_found_mending_right():
    sheet = read_sheet(ocr_record([[MISREAD]]), SCHEMA)
    torch.manual_seed(0)
    model = FieldRanker([spec.name for spec in SCHEMA.fields]).eval()

    def company(rate: float):
        rates = {"company": {"known": rate}}
        return read_many(model, [sheet], rates, known(NAME))[0]["company"].candidate

    mended = company(0.8)
    assert (mended.normalized, mended.mended) == (NAME, MISREAD)
    assert company(0.4).normalized == MISREAD  # training found the OCR right more often


def test_mend_rates_count_whether_the_known_value_was_the_label():
    misread = {**ocr_record([[MISREAD]]), "image": {"path": "x.jpg", "sha256": "0" * 64}}
    read_right = {**ocr_record([[NAME]]), "image": {"path": "y.jpg", "sha256": "1" * 64}}
    pairs = [(misread, {"company": NAME}), (misread, {"company": NAME}), (read_right, {})]
    made = examples(pairs, SCHEMA, 0.0)
    values = known(NAME, NAME)
    rates = mend_rates(made, values, reading_rates(made))
    assert rates == {"company": {"known": (2 + 1) / (2 + 2)}}  # both misreadings mended right


def test_a_model_folder_keeps_its_known_values_and_checks_them(tmp_path):
    record = {**ocr_record([[NAME], ["TOTAL", "7.00"]]), "image": {"path": "a.jpg"}}
    pairs = [
        ({**record, "image": {"path": f"{i}.jpg", "sha256": f"{i}" * 64}}, {"company": NAME})
        for i in range(3)
    ]
    engine = {"name": "rapidocr", "model": MODELS}
    folder = tmp_path / "model"
    card = train_model(pairs, SCHEMA, engine, {"val_fraction": 0, "epochs": 1}, folder)
    assert json.loads((folder / KNOWN).read_text()) == {"company": {NAME: 3}}
    assert card["known"] == {"company": 1} and card["readings"]["company"]["known"] == 0.5
    config = {
        "kie_schema": str(RECEIPT_SCHEMA),
        "learned_model": str(folder),
        "ocr_backend": "rapidocr",
        "rapidocr": {"device": "cpu", "text_score": 0.5},
    }
    assert LearnedExtractor.from_config(config).identity()["known"] == card["known_sha256"]
    (folder / KNOWN).write_text(json.dumps({"company": {"SOMEONE ELSE": 1}}))
    with pytest.raises(ModelError, match=r"known\.json does not match"):
        LearnedExtractor.from_config(config)  # as the workflow is parsed, before any job

    options = {"val_fraction": 0, "epochs": 1, "known": False}  # train.known: false
    card = train_model(pairs, SCHEMA, engine, options, folder)
    assert not (folder / KNOWN).exists() and card["known_sha256"] is None
    assert LearnedExtractor.from_config(config).known.counts == {}


def test_values_that_differ_from_document_to_document_are_never_mended():
    """Numbers a character apart (an invoice's, say) are not misreadings of each other:
    training finds the value as read right each time, and mending stays off."""
    numbers = ["ACME 1001", "ACME 1002", "ACME 1003"]
    pairs = [
        (
            {**ocr_record([[n]]), "image": {"path": f"{i}.jpg", "sha256": f"{i}" * 64}},
            {"company": n},
        )
        for i, n in enumerate(numbers)
    ]
    made = examples(pairs, SCHEMA, 0.0)
    rates = mend_rates(made, known(*numbers), reading_rates(made))
    assert rates["company"]["known"] == (0 + 1) / (3 + 2) < 0.5
