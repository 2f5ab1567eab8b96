"""A text-recognition training set in LMDB, in the layout of deep-text-recognition-benchmark:
one line image (or word image, ``unit: word``) per sample under ``image-%09d`` (encoded PNG),
its text under ``label-%09d`` (both 1-based) and the count under ``num-samples``; one
environment for training and one for validation, split by image (never by line) from a hash of
the image's content, with at least one image in each split whenever there are two.

Lines and their text come from the OCR records, or from ground truth in the SROIE layout
(``box/<stem>.csv``) when a truth folder is given. Each line is cut along its polygon, turned
upright and padded a little. Images are read one at a time and samples committed in batches:
memory stays flat however many images there are.
"""

from __future__ import annotations

import io
import logging
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lmdb
from PIL import Image

from .evaluate import read_box_lines
from .formats import now_iso, split_of, split_score, write_json_atomic
from .images import ImageLimits, PageImage, crop_line, decode_page
from .inputs import InputImage
from .page import split_words
from .results import Results
from .storage import read_input

LMDB_FORMAT = "ocrkie.lmdb/1"
SPLITS = ("train", "val")
_MAP_SIZE = 1 << 40  # address space only
_COMMIT_EVERY = 1000
TINY = 100  # samples: a split this small scores a recogniser by chance; the manifest warns
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Filters:
    min_confidence: float = 0.9
    min_length: int = 1
    max_length: int = 25
    charset: str = ""  # allowed characters; empty: any printable text
    val_fraction: float = 0.1
    padding: float = 0.1  # of the line height, on every side
    unit: str = "line"  # line or word: what one sample shows

    @classmethod
    def from_config(cls, settings: dict[str, Any]) -> Filters:
        return cls(**{k: settings[k] for k in cls.__dataclass_fields__ if k in settings})

    def rejects(self, text: str, confidence: float) -> str | None:
        """Why a line is left out, or None."""
        if not text.strip() or not text.isprintable():
            return "empty_or_unprintable"
        if confidence < self.min_confidence:
            return "low_confidence"
        if not self.min_length <= len(text) <= self.max_length:
            return "length"
        if self.charset and any(c not in self.charset for c in text):
            return "charset"
        return None


@dataclass
class Tally:
    samples: Counter[str] = field(default_factory=Counter)  # per split
    dropped: Counter[str] = field(default_factory=Counter)  # per reason
    characters: set[str] = field(default_factory=set)
    images: list[dict[str, Any]] = field(default_factory=list)


Sample = tuple[str, float, list[list[float]]]  # text, confidence, polygon


def lines_of(image: InputImage, record: dict[str, Any], truth_dir: Path | None) -> list[Sample]:
    """(text, confidence, polygon) of the image's lines: from ground truth, or the OCR."""
    if truth_dir is not None:
        truth = truth_dir / "box" / f"{Path(image.relpath).stem}.csv"
        return (
            [(line.text, 1.0, line.polygon) for line in read_box_lines(truth)]
            if truth.exists()
            else []
        )
    return [(line["text"], float(line["confidence"]), line["polygon"]) for line in record["lines"]]


def words_of(image: InputImage, record: dict[str, Any], truth_dir: Path | None) -> list[Sample]:
    """(text, confidence, polygon) of the image's words: the OCR's word boxes, or ground truth
    lines cut in proportion to their characters (``page.split_words``)."""
    if truth_dir is not None:
        return [
            (word.text, word.confidence, word.polygon)
            for text, confidence, polygon in lines_of(image, record, truth_dir)
            for word in split_words(text, polygon, confidence)
        ]
    return [
        (word["text"], float(word["confidence"]), word["polygon"])
        for line in record["lines"]
        for word in line.get("words") or [line]
    ]


def assign_splits(shas: list[str], val_fraction: float) -> dict[str, str]:
    """Each image's split (by its sha256): the content-determined one, except that with two
    images or more and a share strictly between 0 and 1 neither split is left empty (the
    image nearest the other side moves)."""
    splits = {sha: split_of(sha, val_fraction) for sha in shas}
    if len(splits) >= 2 and 0 < val_fraction < 1:
        for empty, pick in (("val", min), ("train", max)):
            if empty not in splits.values():
                splits[pick(splits, key=split_score)] = empty
    return splits


def build(
    images: list[InputImage],
    results: Results,
    filters: Filters,
    max_pixels: int,
    truth_dir: Path | None,
    out_dir: Path,
    dpi: int = 200,
) -> dict[str, Any]:
    """Write ``out_dir/train`` and ``out_dir/val``; return the manifest."""
    tally = Tally()
    engines: set[str] = set()
    splits = assign_splits(list(_read_images(images, results).values()), filters.val_fraction)
    samples_of = words_of if filters.unit == "word" else lines_of
    envs = {s: lmdb.open(str(out_dir / s), map_size=_MAP_SIZE, subdir=True) for s in SPLITS}
    try:
        writers = {s: _Writer(envs[s]) for s in SPLITS}
        for image in images:
            records = results.read_pages("ocr", image.id)
            read = [record for record in records if record["status"] == "ok"]
            tally.dropped["page_without_ocr"] += len(records) - len(read)
            if not read:
                continue
            engines.update(record["engine"].get("name", "?") for record in read)
            sha = read[0]["image"]["sha256"]
            split = splits[sha]
            data = read_input(image.path)
            kept = 0
            for record in read:
                number = record["image"].get("page", 1)
                page = decode_page(data, max_pixels, 10**9, Path(image.relpath).name, number, dpi)
                kept += _add_lines(
                    page, samples_of(image, record, truth_dir), filters, writers[split], tally
                )
            tally.samples[split] += kept
            tally.images.append(
                {
                    "id": image.id,
                    "path": image.relpath,
                    "sha256": sha,
                    "split": split,
                    "lines": kept,
                }
            )
        for writer in writers.values():
            writer.close()
    finally:
        for env in envs.values():
            env.close()
    return {
        "format": LMDB_FORMAT,
        "written_at": now_iso(),
        "source": "ground truth" if truth_dir else "ocr",
        "ocr_engines": sorted(engines),
        "filters": filters.__dict__,
        "unit": filters.unit,
        "counts": {
            "images": len(tally.images),
            **{split: tally.samples[split] for split in SPLITS},
            "images_per_split": {
                split: sum(image["split"] == split for image in tally.images) for split in SPLITS
            },
            "dropped": dict(tally.dropped),
        },
        "charset": "".join(sorted(tally.characters)),
        "dtrb_character": dtrb_character(tally.characters),
        "warnings": _warnings(tally, filters),
        "images": tally.images,
    }


def _read_images(images: list[InputImage], results: Results) -> dict[str, str]:
    """The sha256 of each image with a page read (by id)."""
    found = {}
    for image in images:
        ok = [r for r in results.read_pages("ocr", image.id) if r["status"] == "ok"]
        if ok:
            found[image.id] = ok[0]["image"]["sha256"]
    return found


def _warnings(tally: Tally, filters: Filters) -> list[str]:
    """What would make training on the set mislead or fail."""
    found = []
    for split in SPLITS:
        count = tally.samples[split]
        if count < TINY and (split == "train" or filters.val_fraction > 0):
            found.append(
                f"{split} holds {count} samples (under {TINY}): "
                + ("a recogniser cannot be validated on it" if count == 0 else "too few to rely on")
            )
    return found


def dtrb_character(characters: set[str]) -> str:
    """The characters for deep-text-recognition-benchmark's ``--character`` (without
    ``--sensitive``, which replaces them with printable ASCII less the space). It lowercases
    every label and drops one with a character matching ``[^<characters>]``, a class built
    unescaped: so they are lowercased, ``]`` goes first and ``-`` last; a backslash cannot be
    given that way and is left out."""
    folded = {c for text in characters for c in text.lower()}
    rest = sorted(c for c in folded if c not in "]-\\")
    return "".join(["]"] * ("]" in folded) + rest + ["-"] * ("-" in folded))


def _add_lines(
    page: PageImage,
    lines: list[tuple[str, float, list[list[float]]]],
    filters: Filters,
    writer: _Writer,
    tally: Tally,
) -> int:
    """The page's lines that pass the filters, cut out and written; how many."""
    kept = 0
    for text, confidence, polygon in lines:
        reason = filters.rejects(text, confidence)
        if reason is None:
            try:
                crop = crop_line(page, polygon, filters.padding)
            except ValueError:
                reason = "degenerate_box"
        if reason is not None:
            tally.dropped[reason] += 1
            continue
        writer.add(_png(crop), text)
        tally.characters.update(text)
        kept += 1
    return kept


class _Writer:
    """Samples into one environment, committed every ``_COMMIT_EVERY``."""

    def __init__(self, env: lmdb.Environment):
        self.env = env
        self.count = 0
        self.txn = env.begin(write=True)

    def add(self, image: bytes, label: str) -> None:
        self.count += 1
        self.txn.put(b"image-%09d" % self.count, image)
        self.txn.put(b"label-%09d" % self.count, label.encode("utf-8"))
        if self.count % _COMMIT_EVERY == 0:
            self.txn.commit()
            self.txn = self.env.begin(write=True)

    def close(self) -> None:
        self.txn.put(b"num-samples", str(self.count).encode())
        self.txn.commit()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def make_lmdb(
    plan_file: str,
    results_location: str,
    settings: dict[str, Any],
    limits: ImageLimits,
    manifest_path: str,
) -> dict[str, Any]:
    """The training set of every image of the plan, in plan order, in ``<results>/lmdb/``;
    its manifest (counts, filters, splits) at ``manifest_path``."""
    from .plan import decode_plan

    with open(plan_file, "rb") as handle:
        images = [image for shard in decode_plan(handle.read()) for image in shard.images]
    results = Results(results_location)
    truth = Path(settings["truth_dir"]) if settings["truth_dir"] else None
    local = not results.location.startswith("s3://")
    with tempfile.TemporaryDirectory(dir=results.location if local else None) as scratch:
        manifest = build(
            images,
            results,
            Filters.from_config(settings),
            limits.max_pixels,
            truth,
            Path(scratch),
            limits.pdf_dpi,
        )
        for split in SPLITS:  # replace the previous set, file by file
            results.folder.put_file(f"lmdb/{split}/data.mdb", Path(scratch, split, "data.mdb"))
    write_json_atomic(manifest_path, manifest)
    log.info("LMDB: %s", manifest["counts"])
    for warning in manifest["warnings"]:
        log.warning("LMDB: %s", warning)
    return manifest
