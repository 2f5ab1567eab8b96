"""The learned KIE model cross-validated on one labelled folder, and adapted to new vendors.

    python scripts/bench/kie_folds.py [--train DIR] [--work DIR] [--folds 5] [--seed 0]
                                      [--sizes 40,80] [--also-ocr DIR] [--noisy-copies N]
                                      [--vendors-only]

It reads the OCR records that ``kie.py`` leaves in ``--work`` (and runs the workflow's
OCR stage itself where they are missing). The receipts of ``--train`` are dealt into folds by
vendor (the normalised company name, names a few characters apart taken as one: no vendor
is in both training and scoring) and, to compare, by image. For each fold, with the model
trained on the other folds:

1. cross-validation: the accuracy of the model and of the rules on the fold, per field, of
   the model without the values and words it was taught (``known.json``, ``words.json``:
   what mending them gives), and, by vendor, of the model's names as the batch agrees on
   them (``ocrkie.agreement``; the fold is the batch);
2. new vendors, as a team that labels a few documents of its own would meet them: the fold's
   receipts are split in two halves by image, and on one half are scored the model of the
   other folds as it is (the base), a model trained on the other half alone, the base
   adapted to that half (``train.base``), and a model retrained on the other folds and that
   half together (what adapting stands in for when the base's documents are not at hand).

With ``--sizes 40,80``, it prints instead how accuracy grows with the labelled receipts: the
models of the other folds trained on the first 40, the first 80 and all of their receipts
(in the order of their images' sha256), scored on the fold, by vendor and by image.

``--also-ocr DIR`` trains on the same receipts as another engine read them too (a results
folder, as ``train.also_ocr``), ``--noisy-copies 1`` on a noisy copy of each record: with both,
the recipe of the bundled model (``config/train-receipt.yaml``). ``--vendors-only`` runs the
cross-validation by vendor alone.

All models go through ``train_model``, as ``snakemake train_kie`` trains them; each figure is
the field accuracy under the strict and the letters-and-digits scorer (``ocrkie.learn.measure``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path
from typing import Any

from common import REPO, SROIE_HELP
from kie import SCHEMA, ocr_records, prepare, snakemake
from rapidfuzz.distance import Levenshtein

from ocrkie.agreement import agreed_values
from ocrkie.fields import load_field_schema
from ocrkie.formats import split_of
from ocrkie.learn.folder import read_card
from ocrkie.learn.known import load_known
from ocrkie.learn.measure import judged
from ocrkie.learn.model import load
from ocrkie.learn.training import Example, examples, train_model
from ocrkie.normalize import normalize_text, right
from ocrkie.text import edit_limit

Pair = tuple[dict[str, Any], dict[str, Any]]  # an OCR record and its labels
Tally = dict[str, dict[str, list[int]]]  # who -> field -> [right strict, right letters, documents]


class Trainer:
    """Trains through ``train_model`` into a scratch folder and scores the result."""

    def __init__(
        self,
        root: Path,
        seed: int,
        noisy_copies: int = 0,
        also: dict[str, dict[str, Any]] | None = None,
    ):
        self.root, self.seed, self.count = root, seed, 0
        self.noisy_copies = noisy_copies
        self.also = also or {}  # another engine's records of the receipts, by image sha256
        self.schema = load_field_schema(SCHEMA)

    def train(self, pairs: list[Pair], base: Path | None = None) -> Path:
        self.count += 1
        folder = self.root / f"model-{self.count}"
        options = {"val_fraction": 0.0, "seed": self.seed, "noisy_copies": self.noisy_copies}
        also = [
            (self.also[sha], labels)
            for ocr, labels in pairs
            if (sha := ocr["image"]["sha256"]) in self.also
        ]
        engines = [also[0][0]["engine"]] if also else None
        engine = pairs[0][0]["engine"]
        train_model(pairs + also, self.schema, engine, options, folder, None, base, engines)
        return folder

    def score(
        self,
        folder: Path,
        held: list[Example],
        tally: Tally,
        who: str,
        rules: str = "",
        unmended: str = "",
        agreed: str = "",
    ) -> None:
        """Adds the model's right values on ``held`` to ``tally[who]``, the rules' to
        ``tally[rules]``, the model's without its known values and words to
        ``tally[unmended]`` and the model's with the names ``held`` agrees on to
        ``tally[agreed]``, if named."""
        card = read_card(folder)
        model, readings = load(folder, card), card["readings"]
        found = judged(model, readings, held, load_known(folder, card), card.get("calibration"))
        plain = judged(model, readings, held) if unmended else []
        names = {spec.name for spec in self.schema.fields if spec.type == "text"}
        for label, which, rows in (
            (who, "model", found),
            (rules, "rules", found),
            (unmended, "model", plain),
            (agreed, "model", as_agreed(found, names) if agreed else []),
        ):
            if not label:
                continue
            for row in rows:
                counts = tally.setdefault(label, {}).setdefault(row["field"], [0, 0, 0])
                strict, letters = row[which]
                counts[0] += strict
                counts[1] += letters
                counts[2] += 1


def as_agreed(rows: list[dict[str, Any]], names: set[str]) -> list[dict[str, Any]]:
    """``judged`` rows with the values of the ``names`` fields the batch of rows agrees on."""
    mended = {}
    for name in names:
        values = {r["path"]: r["value"] for r in rows if r["field"] == name and r["value"]}
        mended[name] = agreed_values(values)
    agreed = []
    for row in rows:
        if (value := mended.get(row["field"], {}).get(row["path"])) is not None:
            row = {**row, "value": value.value, "model": right(value.value, row["truth"])}
        agreed.append(row)
    return agreed


def deal(stems: list[str], key: Callable[[str], str], folds: int) -> dict[str, int]:
    return {s: int(sha256(key(s).encode()).hexdigest()[:8], 16) % folds for s in stems}


def vendors(names: dict[str, str]) -> dict[str, str]:
    """Each document's vendor: its normalised company name, names a few characters apart
    taken as one (the SROIE keys spell one vendor "MR.D.I.Y.(M) SDN BHD" and "MR.D.I.Y(M)SDN
    BHD"); the most frequent spelling names the group."""
    counts = Counter(names.values())
    groups: list[str] = []
    of: dict[str, str] = {}

    def near(a: str, b: str) -> bool:
        return Levenshtein.distance(a, b) <= edit_limit(max(len(a), len(b)))

    for name, _ in sorted(counts.items(), key=lambda nc: (-nc[1], nc[0])):
        of[name] = next((g for g in groups if near(name, g)), name)
        if of[name] == name:
            groups.append(name)
    return {stem: of[name] for stem, name in names.items()}


def learning_curve(
    trainer: Trainer,
    pairs: dict[str, Pair],
    made: dict[str, Example],
    folds: dict[str, dict[str, int]],
    sizes: list[int],
) -> Tally:
    """Each fold scored by models of the other folds' first ``size`` receipts (by image
    sha256), and of all of them."""
    curve: Tally = {}
    for how, fold_of in folds.items():
        for fold in sorted(set(fold_of.values())):
            rest = sorted(
                (s for s in pairs if fold_of[s] != fold),
                key=lambda s: pairs[s][0]["image"]["sha256"],
            )
            held = [made[s] for s in pairs if fold_of[s] == fold]
            for size in [*sizes, len(rest)]:
                who = f"by {how}, " + (f"{size} receipts" if size < len(rest) else "all (~160)")
                trainer.score(trainer.train([pairs[s] for s in rest[:size]]), held, curve, who)
    return curve


def table(tally: Tally) -> None:
    """Per field and their mean: the accuracy strict / letters (``ocrkie.learn.measure``)."""
    fields = list(next(iter(tally.values())))
    print(f"  {'':46}" + "".join(f"{f:>13}" for f in [*fields, "mean"]) + f"{'n':>6}")
    for who, counts in tally.items():
        rates = [(counts[f][0] / counts[f][2], counts[f][1] / counts[f][2]) for f in fields]
        mean = tuple(sum(r[i] for r in rates) / len(rates) for i in (0, 1))
        row = "".join(f"{s:7.3f}/{lt:.3f}" for s, lt in [*rates, mean])
        print(f"  {who:46}{row}{counts[fields[0]][2]:6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--train",
        type=Path,
        required=True,
        help=SROIE_HELP,
    )
    parser.add_argument("--work", type=Path, default=REPO / ".bench-kie")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", help="training sizes, e.g. 40,80: the learning curve only")
    parser.add_argument("--also-ocr", type=Path, help="another engine's results of --train")
    parser.add_argument("--noisy-copies", type=int, default=0, help="noisy copies per record")
    parser.add_argument("--vendors-only", action="store_true", help="folds by vendor alone")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    work = args.work.resolve()
    prepare(work)
    images = f"input_dir={args.train.resolve() / 'img'}"
    common = (
        "ocr_backend=rapidocr",
        "kie_backend=none",
        f"cache={work / 'cache'}",
        "results_dir=train",
    )
    snakemake(work, "--config", *common, images)
    records = ocr_records(work / "train")
    labels = {p.stem: json.loads(p.read_text()) for p in sorted((args.train / "key").glob("*"))}
    stems = [s for s in labels if s in records]
    pairs = {s: (records[s], labels[s]) for s in stems}
    scratch = tempfile.TemporaryDirectory(prefix="kie-folds-")  # the models, gone at exit
    also = {}
    if args.also_ocr:
        also = {r["image"]["sha256"]: r for r in ocr_records(args.also_ocr.resolve()).values()}
    trainer = Trainer(Path(scratch.name), args.seed, args.noisy_copies, also)
    made = dict(zip(stems, examples(pairs.values(), trainer.schema, 0.0), strict=True))
    vendor_of = vendors({s: normalize_text(labels[s]["company"]) for s in stems})
    vendor = deal(stems, vendor_of.__getitem__, args.folds)
    image = deal(stems, lambda s: records[s]["image"]["sha256"], args.folds)
    started = time.perf_counter()
    if args.sizes:
        sizes = [int(n) for n in args.sizes.split(",")]
        curve = learning_curve(trainer, pairs, made, {"vendor": vendor, "image": image}, sizes)
        print(f"\n{len(stems)} receipts of {args.train}, {args.folds} folds, seed {args.seed}")
        print("\nlearning curve (accuracy on the fold, trained on N receipts of the others):")
        table(curve)
        print(f"\n{trainer.count} models trained in {time.perf_counter() - started:.0f} s")
        return
    crossed: Tally = {}
    adapted: Tally = {}
    for fold in range(0 if args.vendors_only else args.folds):
        rest = [pairs[s] for s in stems if image[s] != fold]
        held = [made[s] for s in stems if image[s] == fold]
        trainer.score(
            trainer.train(rest),
            held,
            crossed,
            "learned, by image",
            "rules, by image",
            "learned w/o known values or words, by image",
        )
    for fold in range(args.folds):
        rest = [pairs[s] for s in stems if vendor[s] != fold]
        base = trainer.train(rest)
        new = [s for s in stems if vendor[s] == fold]
        trainer.score(
            base,
            [made[s] for s in new],
            crossed,
            "learned, by vendor",
            "rules, by vendor",
            "learned w/o known values or words, by vendor",
            "learned, names agreed, by vendor",
        )
        if args.vendors_only:
            continue
        half = {s: split_of(records[s]["image"]["sha256"], 0.5) for s in new}
        labelled = [pairs[s] for s in new if half[s] == "train"]
        scored = [made[s] for s in new if half[s] == "val"]
        trainer.score(base, scored, adapted, "the base (the other folds)", "the rules")
        trainer.score(trainer.train(labelled), scored, adapted, "from scratch on the labelled half")
        trainer.score(
            trainer.train(labelled, base), scored, adapted, "the base adapted to that half"
        )
        trainer.score(trainer.train(rest + labelled), scored, adapted, "retrained on both")
        print(f"  fold {fold}: {len(rest)} + {len(labelled)} labelled, {len(scored)} scored")
    print(f"\n{len(stems)} receipts of {args.train}, {args.folds} folds, seed {args.seed}")
    print("\ncross-validation (accuracy, strict / letters and digits):")
    table(crossed)
    if adapted:
        print("\nnew vendors: half of a vendor fold labelled, scored on the other half:")
        table(adapted)
    print(f"\n{trainer.count} models trained in {time.perf_counter() - started:.0f} s")
    scratch.cleanup()


if __name__ == "__main__":
    main()
