"""Measure a KIE model on labelled documents read by one or more OCR engines.

    python scripts/tools/measure_kie.py --model resources/models/receipt --keys DIR \
        RESULTS [RESULTS ...] [--transcribed] [--threshold 0.8] [--record]

Each RESULTS folder holds a run's OCR records (``ocr/``) of the images of ``--keys`` (a folder
in the SROIE layout: ``key/<stem>.json``, ``box/<stem>.csv``), matched by the image's stem;
``--transcribed`` adds the transcribed lines of ``box/`` as one more OCR (clean text, in the
lines the transcriber drew). Per OCR engine it prints the accuracy of the model and of the
rules on the same records under the strict and the letters scorer, the ceiling (per field,
the share of documents whose value the OCR holds at all, and the share whose value is among
the candidates), and the calibration of the model's confidence. ``--record`` writes each
engine's figures into the model's card (``measured``): an engine the model was measured on
runs without a warning, and one it reads worse than the rules stops the run with a word on
which backend to use. The card's weights, and so the model's identity in KIE records, stay
as they are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from ocrkie.engines.learned import ocr_kind
from ocrkie.evaluate import read_box_lines
from ocrkie.fields import load_field_schema
from ocrkie.learn.folder import CARD, read_card
from ocrkie.learn.known import load_known
from ocrkie.learn.measure import accuracy, calibration, ceiling, judged
from ocrkie.learn.model import load
from ocrkie.learn.training import examples
from ocrkie.page import lines_record

REPO = Path(__file__).resolve().parents[2]


def ocr_records(results: Path) -> dict[str, dict[str, Any]]:
    """A run's single-page OCR records by image stem."""
    records = {}
    for path in sorted((results / "ocr").glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("status") == "ok":
            records[Path(record["image"]["path"]).stem] = record
    return records


def transcribed(keys: Path) -> dict[str, dict[str, Any]]:
    """The transcribed lines of ``box/`` as OCR records."""
    records = {}
    for box in sorted((keys / "box").glob("*.csv")):
        image = next((keys / "img").glob(f"{box.stem}.*"))
        sha = hashlib.sha256(image.read_bytes()).hexdigest()
        payload = lines_record(read_box_lines(box))
        engine = {"name": "transcribed", "model": "box"}
        records[box.stem] = {
            **payload,
            "status": "ok",
            "engine": engine,
            "image": {"path": image.name, "sha256": sha},
        }
    return records


def measure(
    model_dir: Path, keys: Path, records: dict[str, dict[str, Any]], threshold: float
) -> dict[str, Any]:
    card = read_card(model_dir)
    schema = load_field_schema(REPO / "config" / "fields" / f"{card['schema_title']}.json")
    pairs = [
        (record, json.loads((keys / "key" / f"{stem}.json").read_text()))
        for stem, record in records.items()
        if (keys / "key" / f"{stem}.json").is_file()
    ]
    held = examples(pairs, schema, 0.0)
    model, known = load(model_dir, card), load_known(model_dir, card)
    rows = judged(model, card["readings"], held, known, card.get("calibration"))
    engine = next(iter(records.values()))["engine"]
    return {
        "ocr": ocr_kind(engine),
        "documents": len(held),
        **accuracy(rows, schema),
        "ceiling": ceiling(held, schema),
        "calibration": calibration(rows, threshold),
    }


def show(figures: dict[str, Any]) -> None:
    print(f"\n{figures['ocr']['name']} ({figures['documents']} documents)")
    print(f"{'field':10} {'model':>8} {'rules':>8} {'model*':>8} {'rules*':>8}")
    for name, f in [*figures["fields"].items(), ("mean", figures["mean"])]:
        print(
            f"{name:10} {f['model_strict']:8.3f} {f['rules_strict']:8.3f} "
            f"{f['model_letters']:8.3f} {f['rules_letters']:8.3f}"
        )
    fields = figures["ceiling"]
    for row, label in (("held", "OCR holds"), ("offered", "offered")):
        shares = ", ".join(
            f"{name} {f[f'{row}_strict']:.3f}/{f[f'{row}_letters']:.3f}"
            for name, f in fields.items()
        )
        means = f"{_mean(fields, f'{row}_strict'):.3f}/{_mean(fields, f'{row}_letters'):.3f}"
        print(f"{label} (strict/letters): {shares}; mean {means}")
    c = figures["calibration"]
    print(
        f"calibration error {c['ece']}; confidence >= {c['threshold']}: {c['above']['fields']} "
        f"fields, accuracy {c['above']['accuracy']}; below: {c['below']['fields']} fields, "
        f"accuracy {c['below']['accuracy']}   (* letters and digits only)"
    )


def record(model_dir: Path, measured: list[dict[str, Any]]) -> None:
    """Each engine's strict figures into the card, replacing earlier ones of that engine."""
    path = model_dir / CARD
    card = json.loads(path.read_text(encoding="utf-8"))
    kept = [m for m in card.get("measured", []) if m["ocr"] not in [f["ocr"] for f in measured]]
    for figures in measured:
        kept.append(
            {
                "ocr": figures["ocr"],
                "documents": figures["documents"],
                "mean_model": figures["mean"]["model_strict"],
                "mean_rules": figures["mean"]["rules_strict"],
                "mean_model_letters": figures["mean"]["model_letters"],
                "mean_rules_letters": figures["mean"]["rules_letters"],
                "calibration_error": figures["calibration"]["ece"],
                "ceiling": _mean(figures["ceiling"], "held_strict"),
                "ceiling_letters": _mean(figures["ceiling"], "held_letters"),
            }
        )
    weights = card.pop("weights_sha256")  # stays last, as training writes it
    card = {**card, "measured": kept, "weights_sha256": weights}
    path.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")


def _mean(fields: dict[str, dict[str, float]], key: str) -> float:
    return round(sum(f[key] for f in fields.values()) / len(fields), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, nargs="*", help="results folders with ocr/")
    parser.add_argument("--model", type=Path, default=REPO / "resources" / "models" / "receipt")
    parser.add_argument("--keys", type=Path, required=True, help="img/, key/ (and box/)")
    parser.add_argument("--transcribed", action="store_true", help="also box/ as the OCR")
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--record", action="store_true", help="write the figures in the card")
    args = parser.parse_args()
    sources = [ocr_records(results) for results in args.results]
    if args.transcribed:
        sources.append(transcribed(args.keys))
    measured = [measure(args.model, args.keys, s, args.threshold) for s in sources if s]
    for figures in measured:
        show(figures)
    if args.record:
        record(args.model, [m for m in measured if m["ocr"]["name"] != "transcribed"])


if __name__ == "__main__":
    main()
