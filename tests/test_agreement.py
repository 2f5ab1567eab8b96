"""The batch's agreement on names: a name one image reads a character otherwise than several
others is mended in kie.csv and kie.jsonl beside its own, with its sources."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from test_evaluate import write

from ocrkie.agreement import agreed_values
from ocrkie.evaluate import evaluate, format_report
from ocrkie.tables import write_kie_tables

NAME = "LIAN HING STATIONERY SDN BHD"
SLIP = "LJAN HING STATIONERY SDN BHD"


def test_a_name_a_few_images_read_mends_the_one_that_reads_it_otherwise():
    readings = {"a": NAME, "b": SLIP, "c": NAME, "d": NAME, "e": "KEDAI MAJU"}
    agreed = agreed_values(readings)
    assert list(agreed) == ["b"]  # the others keep their own
    assert (agreed["b"].value, agreed["b"].images, agreed["b"].ids) == (NAME, 3, ["a", "c", "d"])


def test_values_each_image_has_its_own_of_or_that_no_more_images_read_stay():
    numbers = {f"i{n}": f"INV-{1000 + n}" for n in range(9)}  # a character apart, each once
    assert agreed_values(numbers) == {}
    assert agreed_values({"a": NAME, "b": NAME, "c": SLIP, "d": SLIP}) == {}  # two against two
    assert agreed_values({"a": NAME, "b": "LIAN HING TRADING"}) == {}  # another name


def entry(image_id: str, company: str) -> dict:
    fields = {"company": {"value": company, "normalized": company, "confidence": 0.9}}
    return {"id": image_id, "path": f"{image_id}.jpg", "status": "ok", "fields": fields}


def tables(tmp_path: Path, agreed: list[str]) -> tuple[list[dict], list[dict]]:
    manifest = tmp_path / "kie-0.json"
    entries = [entry("a", NAME), entry("b", SLIP), entry("c", NAME)]
    manifest.write_text(json.dumps({"entries": entries}), encoding="utf-8")
    csv_path, jsonl_path = tmp_path / "kie.csv", tmp_path / "kie.jsonl"
    write_kie_tables([str(manifest)], ["company"], str(csv_path), str(jsonl_path), agreed)
    with csv_path.open(encoding="utf-8") as table:
        rows = list(csv.DictReader(table))
    return rows, [json.loads(line) for line in jsonl_path.read_text().splitlines()]


def test_the_tables_give_the_agreed_name_beside_the_images_own(tmp_path: Path):
    rows, lines = tables(tmp_path, ["company"])
    assert [r["company"] for r in rows] == [NAME, SLIP, NAME]  # each image's own reading
    assert [r["company_agreed"] for r in rows] == ["", NAME, ""]
    assert [r["company_agreed_by"] for r in rows] == ["", "2", ""]
    assert lines[1]["agreed"] == {"company": {"value": NAME, "images": 2, "ids": ["a", "c"]}}
    assert lines[1]["fields"]["company"]["normalized"] == SLIP
    assert "agreed" not in lines[0]
    rows, lines = tables(tmp_path, [])  # agreement: []
    assert "company_agreed" not in rows[0] and all("agreed" not in line for line in lines)


def test_evaluate_scores_the_agreed_names_beside_the_own(tmp_path: Path):
    results, truth = tmp_path / "results", tmp_path / "truth"
    for image_id, company in (("a", NAME), ("b", SLIP), ("c", NAME)):
        write(truth / "box" / f"{image_id}.csv", f"10,10,90,10,90,30,10,30,{NAME}\n")
        write(truth / "key" / f"{image_id}.json", {"company": NAME})
        ocr = {"status": "ok", "image": {"path": f"{image_id}.jpg"}, "text": NAME}
        write(results / "ocr" / f"{image_id}.json", ocr)
        write(results / "kie" / f"{image_id}.json", {"status": "ok", **entry(image_id, company)})
    _, lines = tables(tmp_path, ["company"])
    (results / "kie.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = evaluate(results, truth)
    assert report["fields"]["company"]["correct"] == 2
    assert report["agreed"]["company"]["correct"] == 3
    assert "agreed by the batch" in format_report(report)
