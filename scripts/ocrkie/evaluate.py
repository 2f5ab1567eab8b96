"""Score a results folder against ground truth in the SROIE layout.

Ground truth: ``box/<name>.csv`` (``x1,y1,...,x4,y4,TEXT`` per text line) and
``key/<name>.json`` (field values); results are matched to it by the image file's stem.

- OCR: character error rate. Both sides are put in the same geometric reading order, upper-cased
  and whitespace-collapsed; CJK characters are dropped from predictions (the SROIE ground truth
  does not transcribe them). Reported as total edits / total ground-truth characters.
  Word F1: the page's words (upper-cased, split on spaces) as multisets, matched exactly
  whatever their order; precision and recall over all pages.
- KIE: per-field accuracy under two scorers side by side: strict (the normalised values of
  ``ocrkie.normalize`` equal) and letters (their letters and digits equal: case, spaces and
  punctuation ignored), and the mean over the fields under each. Where the batch agreed on
  a field (``kie.jsonl``'s ``agreed``), the field is scored again with the agreed values in
  place of the images' own (``agreed``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from rapidfuzz.distance import Levenshtein

from .formats import read_json
from .normalize import normalize, right
from .page import Line, reading_order

_CJK = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uff00-\uffef]")


def read_box_lines(path: Path) -> list[Line]:
    lines = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = raw.split(",", 8)
        if len(parts) == 9 and parts[8].strip():
            xy = [float(v) for v in parts[:8]]
            polygon = [[xy[i], xy[i + 1]] for i in range(0, 8, 2)]
            lines.append(Line(parts[8].strip(), 1.0, polygon))
    return lines


def page_text(lines: list[Line]) -> str:
    return "\n".join(" ".join(line.text for line in row) for row in reading_order(lines))


def _clean(text: str, drop_cjk: bool = False) -> str:
    if drop_cjk:
        text = _CJK.sub("", text)
    return " ".join(text.upper().split())


def evaluate(results_dir: Path, truth_dir: Path) -> dict[str, Any]:
    edits = chars = images = failed = 0
    words = Counter[str]()  # matched, predicted, truth
    per_field: dict[str, list[int]] = {}
    agreed, agreed_fields = _agreed(results_dir / "kie.jsonl")
    per_agreed: dict[str, list[int]] = {}
    for ocr_path in sorted((results_dir / "ocr").glob("*.json")):
        ocr = read_json(ocr_path)
        name = Path(ocr["image"]["path"]).stem
        box = truth_dir / "box" / f"{name}.csv"
        if not box.exists():
            continue
        images += 1
        truth = _clean(page_text(read_box_lines(box)))
        predicted = _clean(ocr.get("text", ""), drop_cjk=True) if ocr["status"] == "ok" else ""
        failed += ocr["status"] != "ok"
        edits += Levenshtein.distance(predicted, truth)
        chars += len(truth)
        said, meant = Counter(predicted.split()), Counter(truth.split())
        words.update(matched=(said & meant).total(), predicted=said.total(), truth=meant.total())
        key_path = truth_dir / "key" / f"{name}.json"
        if not key_path.exists():
            continue
        truth = json.loads(key_path.read_text(encoding="utf-8"))
        predicted = _predicted(results_dir / "kie" / ocr_path.name)
        _score_fields(truth, predicted, per_field)
        if agreed_fields:
            instead = agreed.get(ocr_path.stem, {})
            _score_fields(truth, predicted, per_agreed, instead, agreed_fields)
    return {
        "images": images,
        "failed": failed,
        "cer": round(edits / chars, 4) if chars else None,
        "word_f1": _f1(words["matched"], words["predicted"], words["truth"]),
        "fields": {name: _accuracy(*tally) for name, tally in per_field.items()},
        "mean": _mean(per_field),
        "agreed": {name: _accuracy(*tally) for name, tally in per_agreed.items()},
    }


def _agreed(jsonl: Path) -> tuple[dict[str, dict[str, str]], set[str]]:
    """Image id -> field -> the value the batch agreed on, where it mends the image's own;
    and the fields the batch agreed on (none: no ``kie.jsonl``, or no agreement)."""
    values: dict[str, dict[str, str]] = {}
    fields: set[str] = set()
    if jsonl.exists():
        with jsonl.open(encoding="utf-8") as lines:
            for row in map(json.loads, lines):
                agreed = row.get("agreed", {})
                fields.update(agreed)
                values[row["id"]] = {name: a["value"] for name, a in agreed.items()}
    return values, fields


def _accuracy(strict: int, letters: int, total: int) -> dict[str, Any]:
    return {
        "correct": strict,
        "total": total,
        "accuracy": round(strict / total, 4),
        "letters_correct": letters,
        "letters_accuracy": round(letters / total, 4),
    }


def _mean(per_field: dict[str, list[int]]) -> dict[str, float] | None:
    """The fields' mean accuracy under each scorer (each field weighs alike)."""
    if not per_field:
        return None
    scores = [_accuracy(*tally) for tally in per_field.values()]
    return {
        scorer: round(sum(s[scorer] for s in scores) / len(scores), 4)
        for scorer in ("accuracy", "letters_accuracy")
    }


def _f1(matched: int, predicted: int, truth: int) -> float | None:
    if not matched:
        return 0.0 if predicted or truth else None
    precision, recall = matched / predicted, matched / truth
    return round(2 * precision * recall / (precision + recall), 4)


def _predicted(kie_path: Path) -> dict[str, Any]:
    """The fields of a KIE record (none where it is missing or failed)."""
    kie = read_json(kie_path) if kie_path.exists() else {"status": "missing"}
    return kie.get("fields", {}) if kie["status"] == "ok" else {}


def _score_fields(
    truth: dict[str, Any],
    predicted: dict[str, Any],
    per_field: dict[str, list[int]],
    instead: dict[str, str] | None = None,
    only: set[str] | None = None,
) -> None:
    """Tally each labelled field (of ``only``, if given) as right or not under both scorers;
    ``instead``: values that replace the record's own (the batch's agreed ones)."""
    for name, value in truth.items():
        if only is not None and name not in only:
            continue
        guess = predicted.get(name, {})
        kind = guess.get("type", "text")
        kind = "text" if kind == "address" else kind
        read = (instead or {}).get(name, guess.get("normalized"))
        strict, letters = right(read, normalize(kind, str(value)))
        tally = per_field.setdefault(name, [0, 0, 0])  # right strict, right letters, documents
        tally[0] += strict
        tally[1] += letters
        tally[2] += 1


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"images: {report['images']} (failed: {report['failed']})",
        f"OCR CER: {report['cer']:.2%}" if report["cer"] is not None else "OCR CER: n/a",
        f"OCR word F1: {report['word_f1']}",
    ]
    if report["fields"]:
        lines.append(f"KIE {'field':<10} {'strict':>14}  {'letters':>14}")
    for name, score in report["fields"].items():
        lines.append(f"KIE {name:<10} {_scores(score)}")
    if mean := report["mean"]:
        strict, letters = f"{mean['accuracy']:.1%}", f"{mean['letters_accuracy']:.1%}"
        lines.append(f"KIE {'mean':<10} {strict:>14}  {letters:>14}")
    for name, score in report.get("agreed", {}).items():
        lines.append(f"KIE {name:<10} {_scores(score)}  agreed by the batch")
    return "\n".join(lines)


def _scores(score: dict[str, Any]) -> str:
    """A field's accuracy under both scorers, with its counts, in two columns."""
    strict = f"{score['accuracy']:.1%} ({score['correct']}/{score['total']})"
    letters = f"{score['letters_accuracy']:.1%} ({score['letters_correct']}/{score['total']})"
    return f"{strict:>14}  {letters:>14}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="the results folder (holds ocr/ and kie/)")
    parser.add_argument("truth", type=Path, help="ground truth folder (box/ and key/)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    report = evaluate(args.results, args.truth)
    if report["images"] == 0:
        print("no result matches the ground truth (matched by file name)", file=sys.stderr)
        return 1
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
