"""The learned KIE model against the rules, on receipts it was not trained on.

    python scripts/bench/kie.py [--train DIR] [--heldout DIR] [--work DIR] [--seed 0]
                                [--recognizer ONNX] [--alphabet all|ascii]

Both folders are in the SROIE 2019 layout (img/, key/, box/; docs/benchmarks.md says where to
get it): the figures of the docs trained on 201 receipts and held out 60 others. In one
invocation:

1. the workflow's OCR stage reads both folders (cached in ``--work``: a second invocation
   reads no image again);
2. ``snakemake train_kie --config train_dir=<train>`` trains a model (its wall time, OCR
   excluded, is the rule's);
3. on the held-out folder, per field and mean: accuracy of the rules and of the model
   (exact match of normalised values, as ``scripts/evaluate.py`` scores), of the model
   mending misreadings to its training labels' values (``train.known``; the bundled model
   is made without them, as ``config/train-receipt.yaml`` says), and the ceiling:
   the share of receipts whose right value is among the candidates (no choice can beat it);
4. the same with the transcribed lines of box/ as the OCR (what the extractors do with
   perfect OCR; the model is still the one trained on the OCR engine's records), and their
   ceiling: where the keys spell a value otherwise than the lines do, no OCR can reach it;
5. inference time per receipt on the CPU, excluding OCR and the model load, for both
   (best of 3 passes over all held-out receipts, one thread).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import REPO, SROIE_HELP

from ocrkie.engines import Document
from ocrkie.engines.learned import LearnedExtractor
from ocrkie.engines.rules import RuleExtractor
from ocrkie.evaluate import read_box_lines
from ocrkie.fields import load_field_schema
from ocrkie.learn.candidates import read_sheet
from ocrkie.learn.folder import read_card
from ocrkie.learn.known import KnownValues
from ocrkie.learn.training import truth_value
from ocrkie.page import lines_record

SCHEMA = REPO / "config" / "fields" / "receipt.json"


def snakemake(work: Path, *args: str) -> None:
    command = [sys.executable, "-m", "snakemake", "--profile", "profiles/local-gpu", *args]
    done = subprocess.run(command, cwd=work, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed:\n{done.stdout[-3000:]}")


def prepare(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    for name in ("workflow", "config", "scripts", "profiles", "envs", "resources"):
        if not (work / name).exists():
            (work / name).symlink_to(REPO / name)


def ocr_records(results: Path) -> dict[str, dict[str, Any]]:
    """OCR records by image stem."""
    records = {}
    for path in (results / "ocr").glob("*.json"):
        record = json.loads(path.read_text())
        records[Path(record["image"]["path"]).stem] = record
    return records


def box_records(folder: Path, stems: list[str]) -> dict[str, dict[str, Any]]:
    """The transcribed lines of box/ as OCR records."""
    records = {}
    for stem in stems:
        image = next((folder / "img").glob(f"{stem}.*"))
        payload = lines_record(read_box_lines(folder / "box" / f"{stem}.csv"))
        sha = hashlib.sha256(image.read_bytes()).hexdigest()
        records[stem] = {**payload, "status": "ok", "image": {"path": image.name, "sha256": sha}}
    return records


def accuracy(extractor: Any, records: dict[str, dict], keys: dict[str, dict]) -> dict[str, float]:
    schema = load_field_schema(SCHEMA)
    extracted = extractor.extract_many([Document(records[s], "") for s in keys])
    right = dict.fromkeys((spec.name for spec in schema.fields), 0)
    for stem, extraction in zip(keys, extracted, strict=True):
        for spec in schema.fields:
            truth = truth_value(spec, keys[stem].get(spec.name))
            right[spec.name] += extraction.fields[spec.name]["normalized"] == truth
    return {name: count / len(keys) for name, count in right.items()}


def ceiling(records: dict[str, dict], keys: dict[str, dict]) -> dict[str, float]:
    """The share of documents with the right value among their candidates."""
    schema = load_field_schema(SCHEMA)
    held = dict.fromkeys((spec.name for spec in schema.fields), 0)
    for stem, key in keys.items():
        sheet = read_sheet(records[stem], schema)
        for spec in schema.fields:
            truth = truth_value(spec, key.get(spec.name))
            held[spec.name] += any(c.normalized == truth for c in sheet.candidates[spec.name])
    return {name: count / len(keys) for name, count in held.items()}


def per_receipt_ms(extractor: Any, records: list[dict]) -> float:
    documents = [Document(record, "") for record in records]
    extractor.extract_many(documents[:2])  # loads the model
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        extractor.extract_many(documents)
        best = min(best, time.perf_counter() - started)
    return 1000 * best / len(documents)


def table(rows: dict[str, dict[str, float]]) -> None:
    fields = list(next(iter(rows.values())))
    print(f"  {'':34}" + "".join(f"{f:>9}" for f in fields) + f"{'mean':>9}")
    for label, scores in rows.items():
        mean = sum(scores.values()) / len(scores)
        print(f"  {label:34}" + "".join(f"{scores[f]:9.3f}" for f in fields) + f"{mean:9.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--train",
        type=Path,
        required=True,
        help=SROIE_HELP,
    )
    parser.add_argument("--heldout", type=Path, required=True, help="the same, held out")
    parser.add_argument("--work", type=Path, default=REPO / ".bench-kie")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recognizer", default="", help="rapidocr.recognizer for the OCR")
    parser.add_argument("--alphabet", default="all", help="rapidocr.alphabet for the OCR")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    work = args.work.resolve()
    prepare(work)
    recognizer = str(Path(args.recognizer).resolve()) if args.recognizer else ""
    local = {
        "device": "cpu",
        "text_score": 0.5,
        "recognizer": recognizer,
        "alphabet": args.alphabet,
    }
    ocr_settings = work / "ocr.yaml"
    ocr_settings.write_text(json.dumps({"rapidocr": local}))
    configs = ("--configfile", "config/config.yaml", str(ocr_settings))
    common = (
        *configs,
        "--config",
        "ocr_backend=rapidocr",
        "kie_backend=none",
        f"cache={work / 'cache'}",
    )
    for name, folder in (("train", args.train), ("heldout", args.heldout)):
        started = time.perf_counter()
        snakemake(work, *common, f"input_dir={folder.resolve() / 'img'}", f"results_dir={name}")
        print(f"OCR of {folder}: {time.perf_counter() - started:.0f} s (cached after the first)")
    model = work / "model"
    settings = work / "train.yaml"
    settings.write_text(json.dumps({"train": {"output": str(model), "seed": args.seed}}))
    started = time.perf_counter()
    snakemake(
        work,
        "train_kie",
        "--forcerun",
        "train_kie",
        *configs,
        str(settings),
        "--config",
        f"train_dir={args.train.resolve()}",
        "results_dir=train",
        f"cache={work / 'cache'}",
    )
    wall = time.perf_counter() - started
    card = read_card(model)
    print(f"training: {card['documents']['train']} receipts, {card['training_seconds']} s")
    print(f"  (the train_kie run, OCR cached: {wall:.0f} s); weights {card['weights_sha256'][:12]}")

    keys = {
        p.stem: json.loads(p.read_text()) for p in sorted((args.heldout / "key").glob("*.json"))
    }
    ocr = ocr_records(work / "heldout")
    keys = {stem: key for stem, key in keys.items() if stem in ocr}
    config = {
        "kie_schema": str(SCHEMA),
        "learned_model": str(model),
        "ocr_backend": "rapidocr",
        "rapidocr": local,
    }
    mending = LearnedExtractor.from_config(config)  # with the training labels' values
    learned = LearnedExtractor.from_config(config)
    learned.known = KnownValues()  # as the bundled model (train.known: false)
    rules = RuleExtractor(load_field_schema(SCHEMA))
    boxes = box_records(args.heldout, list(keys))
    print(f"\nheld out: {len(keys)} receipts of {args.heldout} (accuracy, exact after normalising)")
    table(
        {
            "rules, OCR records": accuracy(rules, ocr, keys),
            "learned, OCR records": accuracy(learned, ocr, keys),
            "  + known values (mended)": accuracy(mending, ocr, keys),
            "ceiling of the OCR records": ceiling(ocr, keys),
            "rules, transcribed lines": accuracy(rules, boxes, keys),
            "learned, transcribed lines": accuracy(learned, boxes, keys),
            "ceiling of the transcribed lines": ceiling(boxes, keys),
        }
    )
    records = [ocr[stem] for stem in keys]
    print("\ninference per receipt (CPU, one thread, OCR and model load excluded):")
    print(f"  rules   {per_receipt_ms(rules, records):6.1f} ms")
    print(f"  learned {per_receipt_ms(learned, records):6.1f} ms")
    print(f"  learned, mending to known values {per_receipt_ms(mending, records):6.1f} ms")


if __name__ == "__main__":
    main()
