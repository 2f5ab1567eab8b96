"""The KIE cascade's curve: threshold -> share of documents sent to the API, and accuracy.

    python scripts/bench/kie_cascade.py DATA [--model DIR] [--ocr ENGINE] [--work DIR]
                                        [--cache DIR] [--thresholds 0.3 0.5 ...] [--record]

DATA is a folder in the SROIE 2019 layout (img/, box/, key/). In one invocation:

1. the workflow's OCR stage (``--ocr``, faster_paddle by default) reads DATA/img into
   ``--work`` (with the content cache of ``--cache``: a second invocation reads no image
   again);
2. the fake Upstage server (``ocrkie.testing.upstage_fake``) is registered with the truth of
   the receipts, so Information Extraction answers it: what the API reads at best;
3. the learned model of ``--model`` alone, the API alone, and at each threshold the cascade
   (``kie_backend: cascade``, both ``api_values``) read every receipt, the engines' own code;
   the fake counts the documents sent.

It prints, per threshold and ``api_values``, the share of documents sent and the field
accuracy under the strict and the letters scorer (``ocrkie.learn.measure``), and beside
them the local model alone, the API alone, and the best a third could do: the third of the
documents with the most fields the model read wrong sent, chosen in hindsight; then the
lowest share sent reaching 0.97 of the API's accuracy. ``--record`` writes the share sent at
each threshold into the model's card, where a dry run finds it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from common import REPO, SROIE_HELP
from kie import ocr_records, prepare, snakemake

from ocrkie.engines import Document, Extraction, Extractor
from ocrkie.engines.cascade import CHOICES, CascadeExtractor
from ocrkie.engines.learned import LearnedExtractor
from ocrkie.engines.upstage import UpstageExtractor
from ocrkie.fields import load_field_schema
from ocrkie.images import ImageLimits, PageDecoder, sha256_of
from ocrkie.normalize import normalize, right
from ocrkie.testing.upstage_fake import FakeUpstage, read_box_csv

SCHEMA = REPO / "config" / "fields" / "receipt.json"
KEY = "up_bench_key_0123456789"
GOAL, MOST_SENT = 0.97, 1 / 3


def receipts(data: Path) -> list[Path]:
    """The images of DATA whose SROIE id is below 300 (the others are held out)."""
    return [p for p in sorted((data / "img").iterdir()) if p.stem.isdigit() and int(p.stem) < 300]


def read_ocr(work: Path, cache: Path, images: list[Path], engine: str) -> dict[str, Any]:
    """OCR records by stem, from the workflow's OCR stage (``engine``) over the images."""
    prepare(work)
    listing = work / "images.txt"
    listing.write_text("".join(f"{p.resolve()}\n" for p in images))
    snakemake(
        work,
        "--config",
        "kie_backend=none",
        f"ocr_backend={engine}",
        f"input_list={listing}",
        "results_dir=results-ocr",
        f"cache={cache}",
        "exports=[json]",
    )
    return ocr_records(work / "results-ocr")


def documents(images: list[Path], ocr: dict[str, Any], limits: ImageLimits) -> list[Document]:
    """Each receipt as the KIE stage hands it to a cascade: its OCR, its pages when asked."""
    decoder = PageDecoder()

    def pages(path: Path) -> Any:
        data = path.read_bytes()
        page = decoder.page(data, sha256_of(data), 1, limits)
        page.name, page.document = path.name, data
        return [page]

    return [
        Document(ocr[p.stem], str(p), load_pages=lambda p=p: pages(p))
        for p in images
        if ocr.get(p.stem, {}).get("status") == "ok"
    ]


def truths(data: Path, docs: list[Document]) -> list[dict[str, str]]:
    schema = {f.name: f.type for f in load_field_schema(SCHEMA).fields}
    found = []
    for doc in docs:
        key = json.loads((data / "key" / f"{Path(doc.image).stem}.json").read_text())
        kinds = {name: "text" if schema[name] == "address" else schema[name] for name in key}
        found.append({name: normalize(kinds[name], str(v)) for name, v in key.items()})
    return found


def score(read: list[Extraction], truth: list[dict[str, str]]) -> tuple[float, float]:
    """Field accuracy, strict and letters, over every labelled field."""
    strict = letters = total = 0
    for extraction, expected in zip(read, truth, strict=True):
        for name, value in expected.items():
            if value is None:
                continue
            both = right(extraction.fields.get(name, {}).get("normalized"), value)
            strict, letters, total = strict + both[0], letters + both[1], total + 1
    return strict / total, letters / total


def run(fake: FakeUpstage, engine: Extractor, docs: list[Document]) -> tuple[list, int]:
    """The engine's readings of the documents, and the documents the fake was sent."""
    fake.reset()
    if engine.reads_ocr:  # the local model, or the cascade
        read = engine.extract_many(docs)
    else:
        read = [engine.extract(Document(d.ocr, d.image, d.load_pages())) for d in docs]
    failed = [r for r in read if isinstance(r, BaseException)]
    if failed:
        raise SystemExit(f"{len(failed)} documents failed: {failed[0]}")
    return read, fake.calls_for("information-extract")


def best_third(
    local: list[Extraction], api: list[Extraction], truth: list[dict[str, str]]
) -> tuple[float, float]:
    """The accuracy of sending the third of the documents with the most fields the local
    model read wrong (strict): the most any choice of a third could reach."""
    wrong = [
        sum(not right(read.fields[n]["normalized"], v)[0] for n, v in expected.items() if v)
        for read, expected in zip(local, truth, strict=True)
    ]
    order = sorted(range(len(local)), key=lambda i: -wrong[i])
    sent = set(order[: int(len(local) * MOST_SENT)])
    chosen = [api[i] if i in sent else local[i] for i in range(len(local))]
    return score(chosen, truth)


def record(model: Path, shares: dict[float, float], documents: int, ocr: str) -> None:
    """The share sent at each threshold, in the model's card (the dry run's expectation)."""
    card_path = model / "model.json"
    card = json.loads(card_path.read_text())
    card["cascade"] = [
        {"threshold": t, "sent": round(s, 4), "documents": documents, "ocr": ocr}
        for t, s in sorted(shares.items())
    ]
    card_path.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    print(f"recorded the shares sent in {card_path}")


def row(label: str, share: float, scores: tuple[float, float]) -> str:
    return f"{label:<28} {share:>6.3f} {scores[0]:>7.3f} {scores[1]:>7.3f}"


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help=SROIE_HELP)
    parser.add_argument("--model", type=Path, default=REPO / "resources" / "models" / "receipt")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "kie-cascade")
    parser.add_argument("--cache", type=Path, help="the content cache (default: in --work)")
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        default=[0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 0.95],
    )
    parser.add_argument("--ocr", default="faster_paddle", help="the OCR engine (the default's)")
    parser.add_argument(
        "--record", action="store_true", help="write the shares sent into the model's card"
    )
    args = parser.parse_args()
    images = receipts(args.data)
    ocr = read_ocr(args.work, args.cache or args.work / "cache", images, args.ocr)
    defaults = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    docs = documents(images, ocr, ImageLimits.from_config(defaults))
    truth = truths(args.data, docs)
    os.environ["UPSTAGE_API_KEY"] = KEY
    with FakeUpstage(api_key=KEY) as fake:
        for path in images:
            fake.register(
                path.read_bytes(),
                read_box_csv(args.data / "box" / f"{path.stem}.csv"),
                json.loads((args.data / "key" / f"{path.stem}.json").read_text()),
            )
        settings = defaults["upstage"] | {
            "base_url": fake.url,
            "rate_limits": {"information-extract": 200},
        }
        config = {"learned_model": str(args.model), "kie_schema": str(SCHEMA), "upstage": settings}
        local = LearnedExtractor.from_config(config)
        api = UpstageExtractor.from_config(config)
        print(f"{len(docs)} receipts of {args.data.name}, model {args.model}")
        print(f"{'reader':<28} {'sent':>6} {'strict':>7} {'letters':>7}")
        alone, readings = {}, {}
        for name, engine in (("local alone", local), ("API alone", api)):
            readings[name], sent = run(fake, engine, docs)
            alone[name] = score(readings[name], truth)
            print(row(name, sent / len(docs), alone[name]))
        third = best_third(readings["local alone"], readings["API alone"], truth)
        print(row("best third (hindsight)", int(len(docs) * MOST_SENT) / len(docs), third))
        best: dict[str, tuple[float, float, tuple[float, float]]] = {}
        shares: dict[float, float] = {}
        for mode in CHOICES:
            for threshold in args.thresholds:
                cascade = CascadeExtractor(local, api, threshold, mode)
                read, sent = run(fake, cascade, docs)
                share, scores = sent / len(docs), score(read, truth)
                shares[threshold] = share
                label = f"cascade {threshold:g} ({mode})"
                print(row(label, share, scores))
                reached = all(
                    s >= GOAL * a for s, a in zip(scores, alone["API alone"], strict=True)
                )
                if reached and (mode not in best or share < best[mode][1]):
                    best[mode] = (threshold, share, scores)
        for mode in CHOICES:
            if mode in best:
                threshold, share, scores = best[mode]
                verdict = "within" if share <= MOST_SENT + 1e-9 else "beyond"
                print(
                    f"{mode}: {GOAL:g} of the API's accuracy (both scorers) from threshold "
                    f"{threshold:g}, sending {share:.3f} of the documents ({verdict} a third)"
                )
            else:
                print(f"{mode}: no threshold reaches {GOAL:g} of the API's accuracy")
        if args.record:
            record(args.model, shares, len(docs), args.ocr)


if __name__ == "__main__":
    main()
