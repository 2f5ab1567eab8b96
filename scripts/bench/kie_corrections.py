"""The learning curve of corrections: how much a vendor's receipts gain when a reviewer
corrects 1, 3 or 5 of them and the model is adapted to the corrections.

    python scripts/bench/kie_corrections.py --train DIR --results RESULTS [--min 6]
                                            [--noisy-copies 1] [--seed 0] [--epochs 30]
                                            [--members 3] [--vendors 0]

``--train`` is a labelled folder in the SROIE 2019 layout (``key/<stem>.json``; docs/benchmarks.md
says where to get it), ``--results`` a run's OCR records of its images (``ocr/``, e.g. of
``snakemake --config input_dir=<train>/img kie_backend=none``). Folds by vendor (the letters and
digits of the company label): for each vendor with at least ``--min`` receipts, a base model is
trained on every other vendor's receipts (as ``train_kie``, with ``--noisy-copies``), then
adapted (``train.base``) to the first 1, 3 and 5 of the vendor's receipts (by sha256), each with
all four fields corrected; every model is scored on the vendor's receipts past the fifth, the
same ones for every count. Printed: per vendor and mean, the field accuracy after 0, 1, 3 and 5
corrected receipts under the strict and the letters-and-digits scorer.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from common import REPO, SROIE_HELP

from ocrkie.fields import load_field_schema
from ocrkie.learn.folder import read_card
from ocrkie.learn.measure import accuracy, judged
from ocrkie.learn.model import load
from ocrkie.learn.training import examples, train_model
from ocrkie.normalize import letters

SCHEMA = load_field_schema(REPO / "config" / "fields" / "receipt.json")
COUNTS = (0, 1, 3, 5)

Pair = tuple[dict[str, Any], dict[str, Any]]


def labelled_pairs(train: Path, results: Path) -> list[Pair]:
    """(OCR record, key) pairs of the labelled images, by image stem."""
    pairs = []
    for path in sorted((results / "ocr").glob("*.json")):
        record = json.loads(path.read_text())
        key = train / "key" / f"{Path(record['image']['path']).stem}.json"
        if record.get("status") == "ok" and key.is_file():
            pairs.append((record, json.loads(key.read_text())))
    return pairs


def vendors(pairs: list[Pair], least: int) -> dict[str, list[Pair]]:
    """The receipts of each vendor with at least ``least`` of them, in sha256 order."""
    grouped: dict[str, list[Pair]] = {}
    for pair in pairs:
        grouped.setdefault(letters(pair[1].get("company", "")) or "", []).append(pair)
    return {
        vendor: sorted(group, key=lambda p: p[0]["image"]["sha256"])
        for vendor, group in grouped.items()
        if vendor and len(group) >= least
    }


def scored(folder: Path, held: list[Pair]) -> dict[str, float]:
    card = read_card(folder)
    rows = judged(load(folder, card), card["readings"], examples(held, SCHEMA, 0.0))
    mean = accuracy(rows, SCHEMA)["mean"]
    return {"strict": mean["model_strict"], "letters": mean["model_letters"]}


def curve(vendor: list[Pair], others: list[Pair], options: dict[str, Any], work: Path) -> dict:
    """Accuracy on the vendor's receipts past the fifth after 0, 1, 3, 5 corrected ones."""
    engine = others[0][0]["engine"]
    common = {"val_fraction": 0.0, "known": False, **options}
    train_model(others, SCHEMA, engine, {**common, "calibrate": False}, work / "base")
    held = vendor[max(COUNTS) :]
    points = {0: scored(work / "base", held)}
    for count in COUNTS[1:]:
        folder = work / f"adapted-{count}"
        train_model(vendor[:count], SCHEMA, engine, common, folder, base=work / "base")
        points[count] = scored(folder, held)
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, required=True, help=SROIE_HELP)
    parser.add_argument("--results", type=Path, required=True, help="its OCR records (ocr/)")
    parser.add_argument("--min", type=int, default=6, help="receipts a vendor has at least")
    parser.add_argument("--noisy-copies", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30, help="train.epochs")
    parser.add_argument("--members", type=int, default=3, help="train.members")
    parser.add_argument("--vendors", type=int, default=0, help="at most this many (0: all)")
    args = parser.parse_args()
    pairs = labelled_pairs(args.train, args.results)
    folds = dict(list(vendors(pairs, args.min).items())[: args.vendors or None])
    options = {
        "noisy_copies": args.noisy_copies,
        "seed": args.seed,
        "epochs": args.epochs,
        "members": args.members,
    }
    print(f"{len(pairs)} receipts; {len(folds)} vendors with at least {args.min}")
    print(f"{'vendor':32} {'held':>4} " + " ".join(f"{n:>11}" for n in COUNTS))
    totals = {n: {"strict": 0.0, "letters": 0.0} for n in COUNTS}
    for name, vendor in folds.items():
        others = [p for p in pairs if p not in vendor]
        with tempfile.TemporaryDirectory() as work:
            points = curve(vendor, others, options, Path(work))
        cells = " ".join(f"{p['strict']:.3f}/{p['letters']:.3f}" for p in points.values())
        print(f"{name[:32]:32} {len(vendor) - max(COUNTS):>4} {cells}")
        for n, p in points.items():
            for scorer in p:
                totals[n][scorer] += p[scorer] / len(folds)
    cells = " ".join(f"{t['strict']:.3f}/{t['letters']:.3f}" for t in totals.values())
    print(f"{'mean':32} {'':>4} {cells}")
    print("(field accuracy, strict/letters and digits, after 0, 1, 3, 5 corrected receipts)")


if __name__ == "__main__":
    main()
