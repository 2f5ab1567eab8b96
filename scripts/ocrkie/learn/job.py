"""Training the KIE model from a run: the run's OCR records and their labels, a model.

Labels come from a folder in the SROIE layout (``key/<stem>.json`` beside ``img/``, matched
by the image's relative path) or from a previous run's KIE records (matched by the image's
sha256, so the images may have moved). Images without OCR or without labels are counted and
left out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from ..evidence import merge_pages
from ..fields import load_field_schema
from ..inputs import InputImage
from ..plan import decode_plan
from ..results import PAGE_SUFFIX, Results
from ..storage import open_folder
from .training import train_model

log = logging.getLogger("ocrkie.train")

# an image of the plan and its OCR record -> its labels, or None when it has none
Labels = Callable[[InputImage, dict[str, Any]], dict[str, Any] | None]


def key_labels(train_dir: str) -> Labels:
    """Labels by relative image path: ``key/<stem>.json`` of the image ``img/<stem>.jpg``."""
    keys = open_folder(train_dir.rstrip("/"))

    def labels(image: InputImage, ocr: dict[str, Any]) -> dict[str, Any] | None:
        stem = PurePosixPath(image.relpath).with_suffix("")
        try:
            return json.loads(keys.read_bytes(f"key/{stem}.json"))
        except FileNotFoundError:
            return None

    return labels


def record_labels(train_from: str) -> Labels:
    """Labels by image sha256: the normalised values of a previous run's ok KIE records."""
    previous = Results(train_from)
    by_sha: dict[str, dict[str, Any]] = {}
    for name in previous.folder.names("kie"):
        if PAGE_SUFFIX.search(name.removesuffix(".json")):
            continue
        record = previous.read_record("kie", name.removesuffix(".json"))
        if record.get("status") == "ok":
            fields = record["fields"]
            by_sha[record["image"]["sha256"]] = {k: v["normalized"] for k, v in fields.items()}
    log.info("labels: %d ok KIE records in %s", len(by_sha), train_from)
    return lambda image, ocr: by_sha.get(ocr["image"]["sha256"])


def labelled(
    images: list[InputImage], results: Results, labels: Labels, counts: dict[str, int]
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for image in images:
        try:
            pages = results.read_pages("ocr", image.id)
        except FileNotFoundError:
            counts["no_ocr"] += 1
            continue
        if any(page["status"] != "ok" for page in pages):
            counts["ocr_failed"] += 1
            continue
        ocr = merge_pages(pages)
        found = labels(image, ocr)
        if found is None:
            counts["no_labels"] += 1
            continue
        counts["labelled"] += 1
        yield ocr, found


def train(
    plan_file: str,
    results_location: str,
    train_dir: str,
    train_from: str,
    settings: dict[str, Any],
    schema_path: str,
    ocr_identity: dict[str, Any],
    card_path: str,
) -> dict[str, Any]:
    """Train the model on the plan's labelled images (``train_dir``'s keys, or the KIE records
    of the run in ``train_from``) and write it beside ``card_path``; returns its card."""
    with open(plan_file, "rb") as handle:
        images = [image for shard in decode_plan(handle.read()) for image in shard.images]
    labels = key_labels(train_dir) if train_dir else record_labels(train_from)
    counts = dict.fromkeys(("labelled", "no_labels", "no_ocr", "ocr_failed"), 0)
    pairs = list(labelled(images, Results(results_location), labels, counts))
    log.info("training documents: %s", counts)
    if not pairs:
        raise SystemExit(f"no labelled document to train on ({counts})")
    schema = load_field_schema(schema_path)
    folder = Path(card_path).parent
    base = Path(settings["base"]) if settings.get("base") else None
    card = train_model(pairs, schema, ocr_identity, settings, folder, counts, base)
    for name, score in card["validation"]["fields"].items():
        log.info("validation %-10s %s", name, score)
    return card
