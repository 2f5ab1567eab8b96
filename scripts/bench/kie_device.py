"""The learned KIE model's training and batched inference on the CPU and on a GPU.

    python scripts/bench/kie_device.py [--records DIR] [--train DIR] [--heldout DIR]
                                       [--threads 1,4,16] [--repeat 16] [--seed 0]
                                       [--part inference|training]

It reads the OCR records that ``kie.py`` leaves in ``--records`` (``train/ocr`` and
``heldout/ocr``) and the labels of ``--train`` and ``--heldout`` (``key/``), so it needs no
OCR engine and no workflow: it runs where only torch (and rapidfuzz) is installed. It prints:

1. training with the bundled model's settings (``config/train-receipt.yaml``: three rankers,
   30 epochs, seed 0; one engine's records, without the noisy copies) on the CPU (one
   thread, as ``train_kie`` trains) and on the GPU (with torch's deterministic algorithms
   and without): the model's time alone (finding the candidates is the same Python on every
   device), the weights digest of two runs (do they repeat?) and the held-out mean;
2. batched inference per receipt, the held-out receipts repeated ``--repeat`` times: the
   model's pass alone (batching the tensors, moving them, the probabilities, moving them
   back) in batches of 1, 8, 64 and 256 documents, and the whole extractor as a KIE job
   runs it (candidates, tensors, the pass, choosing; 64 documents a call), with the bundled
   model, on the CPU at each of ``--threads`` and on ``cuda`` when torch sees a GPU (the
   workflow reads on the CPU). The picks on each device are compared with the first's.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from common import REPO, SROIE_HELP
from kie import SCHEMA, ocr_records

from ocrkie.engines import Document
from ocrkie.engines.learned import LearnedExtractor
from ocrkie.engines.torch_device import in_batches
from ocrkie.fields import load_field_schema
from ocrkie.learn.candidates import read_sheet
from ocrkie.learn.folder import read_card
from ocrkie.learn.inference import odds_many
from ocrkie.learn.model import weights_digest
from ocrkie.learn.training import SETTINGS, examples, fit, reading_rates, scores

BUNDLED = REPO / "resources" / "models" / "receipt"
BATCHES = (1, 8, 64, 256)


def labelled(records: Path, folder: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    ocr = ocr_records(records)
    keys = {p.stem: json.loads(p.read_text()) for p in sorted((folder / "key").glob("*.json"))}
    return [(ocr[stem], key) for stem, key in keys.items() if stem in ocr]


def devices(threads: list[int]) -> list[tuple[str, int]]:
    """(device, CPU threads): the CPU at each thread count, then the GPU with one thread."""
    found = [("cpu", n) for n in threads]
    return [*found, ("cuda", 1)] if torch.cuda.is_available() else found


def timed(device: str, run: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run(*args)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - started, result


def training(train: list, held: list, schema: Any, seed: int) -> None:
    """Training computes on one CPU thread (``fit``), or on the GPU, each twice."""
    print(f"\ntraining: {len(train)} receipts, the bundled settings {SETTINGS}")
    fields = [spec.name for spec in schema.fields]
    readings = reading_rates(train)
    where = ["cpu"] + (["cuda", "cuda, deterministic"] if torch.cuda.is_available() else [])
    for device in where:
        torch.use_deterministic_algorithms(device.endswith("deterministic"))
        arguments = (train, fields, seed, SETTINGS, None, device.partition(",")[0])
        try:
            runs = [timed(device, fit, *arguments) for _ in range(2)]
        except RuntimeError as error:  # an op with no deterministic version on this device
            print(f"  {device:20} {error}")
            continue
        digests = [weights_digest(model)[:12] for _, model in runs]
        got = scores(runs[0][1], readings, held, schema)
        mean = sum(v["model"] for v in got.values()) / len(got)
        print(
            f"  {device:20} {runs[0][0]:6.1f} s, {runs[1][0]:6.1f} s   weights "
            f"{' '.join(digests)}{' (same)' if len(set(digests)) == 1 else ' (differ)'}"
            f"   held-out mean {mean:.3f}"
        )


def model_pass(model: Any, sheets: list, device: str, size: int) -> list:
    """The probabilities of every document's candidates, ``size`` documents a pass."""
    return [
        odds_many(model, sheets[first : first + size], device)
        for first in range(0, len(sheets), size)
    ]


def best_of(count: int, device: str, run: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    runs = [timed(device, run, *args) for _ in range(count)]
    return min(seconds for seconds, _ in runs), runs[-1][1]


def inference(records: list[dict], threads: list[int]) -> None:
    schema = load_field_schema(SCHEMA)
    documents = [Document(record, "") for record in records]
    print(f"\ninference per receipt: {len(documents)} documents, the bundled model, best of 3")
    print(f"  {'':16}" + "".join(f"{f'pass, {b} a batch':>18}" for b in BATCHES) + "   extractor")
    baseline = None
    for device, count in devices(threads):
        torch.set_num_threads(count)
        extractor = LearnedExtractor(BUNDLED, schema, read_card(BUNDLED))
        extractor.device = device  # the workflow's is the CPU's
        extractor.extract_many(documents[:2])  # loads the model (and warms up the GPU)
        sheets = [read_sheet(d.ocr, schema) for d in documents]
        row = []
        for size in BATCHES:
            seconds, _ = best_of(3, device, model_pass, extractor.model, sheets, device, size)
            row.append(1000 * seconds / len(documents))
        # as the KIE stage hands it a shard: batch_size documents a call
        size = extractor.batch_size
        seconds, (picks, _) = best_of(
            3, device, in_batches, extractor.extract_many, documents, size
        )
        values = [[(v["normalized"], v["confidence"]) for v in e.fields.values()] for e in picks]
        baseline = baseline or values
        against = compared(values, baseline)
        where = device if device == "cuda" else f"cpu, {count} threads"
        cells = "".join(f"{ms:15.3f} ms" for ms in row)
        print(f"  {where:16}{cells}{1000 * seconds / len(documents):9.2f} ms{against}")


def compared(values: list[list[tuple]], baseline: list[list[tuple]]) -> str:
    """How many (value, confidence) picks match the first device's, and how far apart."""
    pairs = [
        (a, b)
        for doc, first in zip(values, baseline, strict=True)
        for a, b in zip(doc, first, strict=True)
    ]
    same = sum(a[0] == b[0] for a, b in pairs)
    apart = max(abs(a[1] - b[1]) for a, b in pairs)
    return f"  as the first row: {same}/{len(pairs)} values, confidences within {apart:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=Path, default=REPO / ".bench-kie")
    parser.add_argument(
        "--train",
        type=Path,
        required=True,
        help=SROIE_HELP,
    )
    parser.add_argument("--heldout", type=Path, required=True, help="the same, held out")
    parser.add_argument("--threads", default="1,4,16")
    parser.add_argument("--repeat", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", choices=("inference", "training"), help="(default: both)")
    args = parser.parse_args()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # for deterministic cuBLAS
    threads = [int(n) for n in args.threads.split(",")]
    print(f"torch {torch.__version__}; GPU: ", end="")
    print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
    schema = load_field_schema(SCHEMA)
    held_pairs = labelled(args.records / "heldout", args.heldout)
    if args.part != "training":
        inference([ocr for ocr, _ in held_pairs] * args.repeat, threads)
    if args.part == "inference":
        return
    made = examples(labelled(args.records / "train", args.train), schema, SETTINGS["val_fraction"])
    held = examples(held_pairs, schema, 0.0)
    training([e for e in made if e.split == "train"], held, schema, args.seed)


if __name__ == "__main__":
    main()
