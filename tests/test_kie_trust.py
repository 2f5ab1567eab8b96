"""What makes the learned KIE trustworthy across engines: noisy training copies, calibrated
confidence, and the letters-and-digits scorer."""

from __future__ import annotations

import copy
import random

from conftest import REPO
from ocrkie.fields import load_field_schema
from ocrkie.learn.inference import Pick, calibrated
from ocrkie.learn.measure import calibration, ceiling
from ocrkie.learn.noise import noisy_copy
from ocrkie.learn.training import _platt, examples
from ocrkie.normalize import right

RECORD = {
    "image": {"path": "r.jpg", "sha256": "0" * 64},
    "lines": [
        {
            "id": i,
            "row": i,
            "text": f"SOON HUAT 2005 SDN. BHD. NO {i}, JALAN BOOKIT",
            "words": [
                {"text": w, "confidence": 1.0, "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}
                for w in f"SOON HUAT 2005 SDN. BHD. NO {i}, JALAN BOOKIT".split()
            ],
        }
        for i in range(40)
    ],
}


def test_a_noisy_copy_misreads_some_characters_and_repeats_with_its_seed():
    before = copy.deepcopy(RECORD)
    one = noisy_copy(RECORD, random.Random(1), 0.1)
    assert before == RECORD  # the record itself is left as it was
    assert one == noisy_copy(RECORD, random.Random(1), 0.1)
    changed = [a["text"] != b["text"] for a, b in zip(RECORD["lines"], one["lines"], strict=True)]
    assert 0 < sum(changed) <= len(changed)
    for line in one["lines"]:
        assert line["text"] == " ".join(w["text"] for w in line["words"])


def test_calibration_brings_overconfident_odds_to_how_often_they_were_right():
    points = [(0.99, i % 2 == 0) for i in range(200)]  # sure, and right half the time
    scale = _platt(points)
    assert 0.4 < calibrated(Pick(object(), 0.99), scale) < 0.6
    assert calibrated(Pick(None, 0.0), scale) == 0.0  # nothing found stays nothing
    assert calibrated(Pick(object(), 0.7), None) == 0.7  # no scale: the odds as they are


def test_calibration_error_and_the_accuracy_either_side_of_the_threshold():
    rows = [{"confidence": 0.95, "model": (i < 19, True)} for i in range(20)]
    rows += [{"confidence": 0.5, "model": (i < 5, True)} for i in range(10)]
    figures = calibration(rows, 0.8)
    assert figures["ece"] == 0.0
    assert figures["above"] == {"fields": 20, "accuracy": 0.95}
    assert figures["below"] == {"fields": 10, "accuracy": 0.5}


def test_the_letters_scorer_ignores_case_spaces_and_punctuation():
    assert right("NO.12,JALAN MAWAR", "NO 12 JALAN MAWAR") == (False, True)
    assert right("NO 13 JALAN", "NO 12 JALAN") == (False, False)
    assert right(None, "X") == (False, False)


def _receipt(texts: list[str]) -> dict:
    lines = []
    for i, text in enumerate(texts):
        box = [[10, 30 * i], [300, 30 * i], [300, 30 * i + 20], [10, 30 * i + 20]]
        words = [{"text": w, "confidence": 1.0, "polygon": box} for w in text.split()]
        lines.append({"id": i, "row": i, "text": text, "polygon": box, "words": words})
    return {"image": {"path": "r.jpg", "sha256": "1" * 64}, "lines": lines}


def test_the_ceiling_is_what_the_ocr_holds_and_what_the_candidates_offer():
    schema = load_field_schema(REPO / "config" / "fields" / "receipt.json")
    ocr = _receipt(
        ["SOON HUAT SDN BHD", "NO 12, JALAN MAWAR", "52200 KL", "01/02/2018", "TOTAL 9.00"]
    )
    labels = {
        "company": "SOON HUAT SDN. BHD.",  # the OCR lost its full stops
        "address": "NO 12,JALAN MAWAR 52200 KL",  # offered as printed
        "date": "01/02/2018",
        "total": "9.50",  # not printed
    }
    (held,) = examples([(ocr, labels)], schema, 0.0)
    figures = ceiling([held], schema)
    assert figures["company"]["held_strict"] == 0.0 and figures["company"]["held_letters"] == 1
    assert figures["address"]["offered_strict"] == figures["address"]["held_strict"] == 1
    assert figures["date"]["held_strict"] == 1
    assert figures["total"] == dict.fromkeys(figures["total"], 0.0)
