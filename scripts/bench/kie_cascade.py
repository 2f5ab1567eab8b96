"""The KIE cascade's curve: threshold -> share of documents sent to the API, and accuracy.

    python scripts/bench/kie_cascade.py DATA [--model DIR] [--work DIR] [--cache DIR]
                                        [--thresholds 0.5 0.7 0.8 0.9 0.95 0.99]

DATA is a folder in the SROIE 2019 layout (img/, box/, key/). In one invocation:

1. the workflow's OCR stage (rapidocr) reads DATA/img into ``--work`` (with the content cache
   of ``--cache``: a second invocation reads no image again);
2. the fake Upstage server (``ocrkie.testing.upstage_fake``) is registered with the truth of
   the receipts, so Information Extraction answers it: what the API reads at best;
3. the learned model of ``--model`` alone, the API alone, and at each threshold the cascade
   (``kie_backend: cascade``, both ``api_values``) read every receipt, the engines' own code;
   the fake counts the documents sent.

It prints, per threshold and ``api_values``, the share of documents sent and the field
accuracy under the strict and the letters scorer (``ocrkie.learn.measure``), and beside
them the local model alone and the API alone; then the cheapest threshold reaching 0.97 of
the API's accuracy, and how much it sends.
"""

from __future__ import annotations

import argparse
import json
import os
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
from ocrkie.learn.measure import right
from ocrkie.normalize import normalize
from ocrkie.testing.upstage_fake import FakeUpstage, read_box_csv

SCHEMA = REPO / "config" / "fields" / "receipt.json"
KEY = "up_bench_key_0123456789"
GOAL, MOST_SENT = 0.97, 1 / 3


def receipts(data: Path) -> list[Path]:
    """The images of DATA whose SROIE id is below 300 (the others are held out)."""
    return [p for p in sorted((data / "img").iterdir()) if p.stem.isdigit() and int(p.stem) < 300]


def read_ocr(data: Path, work: Path, cache: Path, images: list[Path]) -> dict[str, Any]:
    """OCR records by stem, from the workflow's OCR stage (rapidocr) over the images."""
    prepare(work)
    listing = work / "images.txt"
    listing.write_text("".join(f"{p.resolve()}\n" for p in images))
    snakemake(
        work,
        "--config",
        "kie_backend=none",
        "ocr_backend=rapidocr",
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
    if isinstance(engine, CascadeExtractor):
        read = engine.extract_many(docs)
    else:
        read = [engine.extract(Document(d.ocr, d.image, d.load_pages())) for d in docs]
    failed = [r for r in read if isinstance(r, BaseException)]
    if failed:
        raise SystemExit(f"{len(failed)} documents failed: {failed[0]}")
    return read, fake.calls_for("information-extract")


def row(label: str, share: float, scores: tuple[float, float]) -> str:
    return f"{label:<28} {share:>6.3f} {scores[0]:>7.3f} {scores[1]:>7.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help=SROIE_HELP)
    parser.add_argument("--model", type=Path, default=REPO / "resources" / "models" / "receipt")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "kie-cascade")
    parser.add_argument("--cache", type=Path, help="the content cache (default: in --work)")
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=[0.5, 0.7, 0.8, 0.9, 0.95, 0.99]
    )
    args = parser.parse_args()
    images = receipts(args.data)
    ocr = read_ocr(args.data, args.work, args.cache or args.work / "cache", images)
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
        alone = {}
        for name, engine in (("local alone", local), ("API alone", api)):
            read, sent = run(fake, engine, docs)
            alone[name] = score(read, truth)
            print(
                f"{name:<28} {sent / len(docs):>6.3f} {alone[name][0]:>7.3f} {alone[name][1]:>7.3f}"
            )
        best: dict[str, tuple[float, float, tuple[float, float]]] = {}
        for mode in CHOICES:
            for threshold in args.thresholds:
                cascade = CascadeExtractor(local, api, threshold, mode)
                read, sent = run(fake, cascade, docs)
                share, scores = sent / len(docs), score(read, truth)
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


if __name__ == "__main__":
    main()
