"""The evaluator on a hand-made results folder and ground truth."""

from __future__ import annotations

import json
from pathlib import Path

from ocrkie.evaluate import evaluate, main


def write(path: Path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))


def make_case(root: Path) -> tuple[Path, Path]:
    truth, results = root / "truth", root / "results"
    write(
        truth / "box" / "r1.csv",
        "10,10,90,10,90,30,10,30,HELLO WORLD\n10,50,90,50,90,70,10,70,TOTAL 9.00\n",
    )
    write(truth / "key" / "r1.json", {"date": "25/12/2018", "total": "9.00", "company": "Acme Co."})
    write(truth / "box" / "r2.csv", "10,10,90,10,90,30,10,30,ABCD\n")
    write(truth / "key" / "r2.json", {"date": "01/01/2020", "total": "1.00", "company": "X"})
    write(
        results / "ocr" / "r1-aaaa.json",
        {"status": "ok", "image": {"path": "r1.jpg"}, "text": "HELLO WORLD\nTOTAL 9.0O"},
    )
    write(
        results / "kie" / "r1-aaaa.json",
        {
            "status": "ok",
            "fields": {
                "date": {"type": "date", "normalized": "2018-12-25"},
                "total": {"type": "amount", "normalized": "9.00"},
                "company": {"type": "text", "normalized": "ACME,CO"},
            },
        },
    )
    write(
        results / "ocr" / "r2-bbbb.json",
        {"status": "error", "image": {"path": "sub/r2.png"}, "error": {}},
    )
    write(results / "kie" / "r2-bbbb.json", {"status": "error"})
    return results, truth


def test_cer_and_field_accuracy(tmp_path: Path):
    report = evaluate(*make_case(tmp_path))
    assert report["images"] == 2
    assert report["failed"] == 1
    # r1: 1 substitution in 22 characters; r2 (failed): all 4 characters missing
    assert report["cer"] == round(5 / 26, 4)
    assert report["fields"]["date"] == {
        "correct": 1,
        "total": 2,
        "accuracy": 0.5,
        "letters_correct": 1,
        "letters_accuracy": 0.5,
    }
    assert report["fields"]["total"]["correct"] == 1
    # "ACME,CO" for "Acme Co.": wrong to the strict scorer, right to the letters scorer
    assert report["fields"]["company"]["correct"] == 0
    assert report["fields"]["company"]["letters_correct"] == 1
    assert report["mean"] == {"accuracy": round(1 / 3, 4), "letters_accuracy": 0.5}


def test_command_line_prints_figures_and_writes_json(tmp_path: Path, capsys):
    results, truth = make_case(tmp_path)
    assert main([str(results), str(truth), "--json", str(tmp_path / "scores.json")]) == 0
    out = capsys.readouterr().out
    assert "OCR CER: 19.23%" in out
    assert "KIE company        0.0% (0/2)     50.0% (1/2)" in out
    assert json.loads((tmp_path / "scores.json").read_text())["images"] == 2


def test_no_match_is_an_error(tmp_path: Path):
    results, _ = make_case(tmp_path)
    assert main([str(results), str(tmp_path / "elsewhere")]) == 1
