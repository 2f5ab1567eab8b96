"""The values and words a learned model was taught, and the OCR misreadings of them it mends."""

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
from ocrkie.learn.inference import choose, read_many
from ocrkie.learn.known import KNOWN, WORDS, KnownValues
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


ADDRESSES = [
    "NO 7,JALAN IPOH,51200 KUALA LUMPUR",
    "LOT 3,JALAN TAMAN,SELANGOR",
    "12,JALAN KLANG LAMA,SELANGOR",
    "NO 9,JALAN IPOH,KUALA LUMPUR",
]


def taught_words() -> KnownValues:
    labels = [{"address": a, "company": "ACME SDN BHD"} for a in ADDRESSES]
    return KnownValues({}, KnownValues.words_of(labels, ["company", "address"]))


def test_words_two_labelled_values_hold_are_known_and_no_one_vendors_name():
    words = taught_words().words
    assert words["JALAN"] == 4 and words["SELANGOR"] == 2 and words["IPOH"] == 2
    assert "KLANG" not in words and "TAMAN" not in words  # one value holds each
    assert "ACME" not in words  # four documents, one name


def test_a_word_with_a_look_alike_or_an_added_accent_is_mended():
    known = taught_words()
    assert known.spelled("12,JAIAN IPOH,SCLANGOR") == "12,JALAN IPOH,SELANGOR"  # I: L, C: E
    assert known.spelled("NO 7,JÁLAN IPOH") == "NO 7,JALAN IPOH"  # an accent added
    assert known.spelled("NO 7,JAĪAN IPOH") == "NO 7,JALAN IPOH"  # an accent and an I for L
    assert known.spelled("no 7, jaian ipoh") == "no 7, jalan ipoh"  # in the text's case
    assert known.spelled("NO 7,JAPAN IPOH") == "NO 7,JAPAN IPOH"  # P is no look-alike of L
    assert known.spelled("KUALA LUMPUR") == "KUALA LUMPUR"  # known words stay
    assert KnownValues().spelled("12,JAIAN IPOH") == "12,JAIAN IPOH"  # nothing taught


def test_a_number_read_with_a_letter_o_for_a_zero_is_the_number():
    known = taught_words()
    assert known.spelled("NO 29O,JALAN IPOH") == "NO 290,JALAN IPOH"
    assert known.spelled("LOT 2O18,JALAN IPOH") == "LOT 2018,JALAN IPOH"
    # a word, a unit's letter or one digit stay as printed
    assert known.spelled("NO 9,BLOK O,G-5B,JALAN 2O") == "NO 9,BLOK O,G-5B,JALAN 2O"


def test_a_picked_address_has_its_words_mended_and_keeps_the_ocrs_reading():
    misread = "NO 7,JAIAN IPOH,SCLANGOR"
    sheet = read_sheet(ocr_record([["ACME SDN BHD"], [misread], ["TOTAL", "7.00"]]), SCHEMA)
    wanted = {"company": "ACME SDN BHD", "address": misread}
    odds = {
        field: [1.0 if c.normalized == wanted.get(field) else 0.0 for c in found]
        for field, found in sheet.candidates.items()
    }
    picks = choose(sheet, odds, {}, taught_words())
    address, company = picks["address"].candidate, picks["company"].candidate
    assert (address.normalized, address.mended) == ("NO 7,JALAN IPOH,SELANGOR", misread)
    assert address.value == "NO 7,JALAN IPOH,SELANGOR"
    assert (company.normalized, company.mended) == ("ACME SDN BHD", None)  # known words only
    assert picks["total"].candidate.mended is None  # an amount is not words


def test_a_model_folder_keeps_its_words_and_checks_them(tmp_path):
    pairs = [
        (
            {
                **ocr_record([["ACME SDN BHD"], [a]]),
                "image": {"path": f"{i}.jpg", "sha256": f"{i}" * 64},
            },
            {"company": "ACME SDN BHD", "address": a},
        )
        for i, a in enumerate(ADDRESSES)
    ]
    engine = {"name": "rapidocr", "model": MODELS}
    folder = tmp_path / "model"
    card = train_model(pairs, SCHEMA, engine, {"val_fraction": 0, "epochs": 1}, folder)
    assert json.loads((folder / WORDS).read_text())["JALAN"] == 4
    assert card["words"] == len(taught_words().words)
    config = {
        "kie_schema": str(RECEIPT_SCHEMA),
        "learned_model": str(folder),
        "ocr_backend": "rapidocr",
        "rapidocr": {"device": "cpu", "text_score": 0.5},
    }
    extractor = LearnedExtractor.from_config(config)
    assert extractor.identity()["words"] == card["words_sha256"]
    assert extractor.known.spelled("JAIAN") == "JALAN"
    (folder / WORDS).write_text(json.dumps({"JALAN": 9}))
    with pytest.raises(ModelError, match=r"words\.json does not match"):
        LearnedExtractor.from_config(config)

    options = {"val_fraction": 0, "epochs": 1, "words": False}  # train.words: false
    card = train_model(pairs, SCHEMA, engine, options, folder)
    assert not (folder / WORDS).exists() and card["words_sha256"] is None
