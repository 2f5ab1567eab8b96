"""Training the KIE model from a run: the run's OCR records and their labels, a model.

``train.also_ocr`` names the results folders of runs of the same images by other OCR engines:
each image's record there is one more training document, with the same labels (the image's
id is the same in every run of one input folder), so that the model learns each engine's way
of reading.

Labels come from a folder in the SROIE layout (``key/<stem>.json`` beside ``img/``, matched
by the image's relative path), from a previous run's KIE records (matched by the image's
sha256, so the images may have moved), or from a reviewer's corrections in ``review.csv``
(the images with a corrected field: the corrected values, and the run's values of the fields
that were not up for review). Images without OCR or without labels are counted and left out.
"""

from __future__ import annotations

import csv
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


def correction_labels(corrections: str, results_location: str) -> Labels:
    """Labels by image sha256 from a review file: each image with a corrected field gets the
    corrected values, none for a field up for review but left empty (not reviewed), and its
    KIE record's values for the fields read surely enough not to be up for review."""
    with open(corrections, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = {"id", "sha256", "field", "corrected"} - set(rows[0] if rows else {})
    if missing:
        raise SystemExit(f"{corrections}: not a review file (no column {', '.join(missing)})")
    corrected = [row for row in rows if row["corrected"].strip()]
    results = Results(results_location)
    by_sha: dict[str, dict[str, Any]] = {}
    for row in corrected:
        if row["sha256"] not in by_sha:
            fields = results.read_record("kie", row["id"])["fields"]
            by_sha[row["sha256"]] = {k: v["normalized"] for k, v in fields.items()}
            for other in rows:  # up for review, not corrected: unknown
                if other["sha256"] == row["sha256"]:
                    by_sha[row["sha256"]][other["field"]] = None
    for row in corrected:
        by_sha[row["sha256"]][row["field"]] = _unquoted(row["corrected"].strip())
    log.info("labels: %d corrected fields of %d images", len(corrected), len(by_sha))
    return lambda image, ocr: by_sha.get(ocr["image"]["sha256"])


def _unquoted(value: str) -> str:
    """A value as typed, without the ``'`` a spreadsheet-safe CSV puts before ``= + - @``."""
    return value[1:] if value.startswith("'") and len(value) > 1 else value


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


def also_read(
    folders: list[str], pairs: list[tuple[dict[str, Any], dict[str, Any]]]
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[dict[str, Any]]]:
    """The labelled images of ``pairs`` as the runs in ``folders`` read them, each with its
    labels, and each run's OCR engine identity. An image a run has no ok record of, or a
    record of other image content (its sha256), is left out."""
    more, engines = [], []
    for folder in folders:
        results, engine, count = Results(folder), None, 0
        for ocr, labels in pairs:
            try:
                pages = results.read_pages("ocr", ocr["image"]["id"])
            except FileNotFoundError:
                continue
            record = merge_pages(pages)
            ok = all(page["status"] == "ok" for page in pages)
            if ok and record["image"]["sha256"] == ocr["image"]["sha256"]:
                engine, count = engine or record["engine"], count + 1
                more.append((record, labels))
        if engine is None:
            raise SystemExit(f"train.also_ocr: {folder} holds no OCR record of these images")
        log.info("also the OCR of %s (%s): %d documents", folder, engine["name"], count)
        engines.append(engine)
    return more, engines


def train(
    plan_file: str,
    results_location: str,
    train_dir: str,
    train_from: str,
    corrections: str,
    settings: dict[str, Any],
    schema_path: str,
    ocr_identity: dict[str, Any],
    card_path: str,
) -> dict[str, Any]:
    """Train the model on the plan's labelled images (``train_dir``'s keys, the KIE records of
    the run in ``train_from``, or the ``corrections`` of a review file with this run's
    records) and write it beside ``card_path``; returns its card."""
    with open(plan_file, "rb") as handle:
        images = [image for shard in decode_plan(handle.read()) for image in shard.images]
    if corrections:  # a few documents: every one of them teaches, none is held out
        labels = correction_labels(corrections, results_location)
        settings = {**settings, "val_fraction": 0.0}
    elif train_dir:
        labels = key_labels(train_dir)
    else:
        labels = record_labels(train_from)
    counts = dict.fromkeys(("labelled", "no_labels", "no_ocr", "ocr_failed"), 0)
    pairs = list(labelled(images, Results(results_location), labels, counts))
    log.info("training documents: %s", counts)
    if not pairs:
        raise SystemExit(f"no labelled document to train on ({counts})")
    more, engines = also_read(settings.get("also_ocr") or [], pairs)
    schema = load_field_schema(schema_path)
    folder = Path(card_path).parent
    base = Path(settings["base"]) if settings.get("base") else None
    card = train_model(pairs + more, schema, ocr_identity, settings, folder, counts, base, engines)
    for name, score in card["validation"]["fields"].items():
        log.info("validation %-10s %s", name, score)
    return card
