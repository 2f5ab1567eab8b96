"""A text-recognition training set in LMDB, in the layout of deep-text-recognition-benchmark:
one line image per sample under ``image-%09d`` (encoded PNG), its text under ``label-%09d``
(both 1-based) and the count under ``num-samples``; one environment for training and one for
validation, split by image (never by line) from a hash of the image's content.

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
from .formats import now_iso, split_of, write_json_atomic
from .images import ImageLimits, PageImage, crop_line, decode_page
from .inputs import InputImage
from .results import Results
from .storage import read_input

LMDB_FORMAT = "ocrkie.lmdb/1"
SPLITS = ("train", "val")
_MAP_SIZE = 1 << 40  # address space only
_COMMIT_EVERY = 1000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Filters:
    min_confidence: float = 0.9
    min_length: int = 1
    max_length: int = 25
    charset: str = ""  # allowed characters; empty: any printable text
    val_fraction: float = 0.1
    padding: float = 0.1  # of the line height, on every side

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


def lines_of(
    image: InputImage, record: dict[str, Any], truth_dir: Path | None
) -> list[tuple[str, float, list[list[float]]]]:
    """(text, confidence, polygon) of the image's lines: from ground truth, or the OCR."""
    if truth_dir is not None:
        truth = truth_dir / "box" / f"{Path(image.relpath).stem}.csv"
        return (
            [(line.text, 1.0, line.polygon) for line in read_box_lines(truth)]
            if truth.exists()
            else []
        )
    return [(line["text"], float(line["confidence"]), line["polygon"]) for line in record["lines"]]


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
            split = split_of(sha, filters.val_fraction)
            data = read_input(image.path)
            kept = 0
            for record in read:
                number = record["image"].get("page", 1)
                page = decode_page(data, max_pixels, 10**9, Path(image.relpath).name, number, dpi)
                kept += _add_lines(
                    page, lines_of(image, record, truth_dir), filters, writers[split], tally
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
        "counts": {
            "images": len(tally.images),
            **dict(tally.samples),
            "dropped": dict(tally.dropped),
        },
        "charset": "".join(sorted(tally.characters)),
        "images": tally.images,
    }


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
    return manifest
