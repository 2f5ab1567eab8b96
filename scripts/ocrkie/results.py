"""The results folder, locally or under the S3 storage prefix, and what it holds.

<results>/ocr/<id>.json              per-image records of each stage (ocr, kie, layout)
<results>/raw/<stage>/<id>.json      a service's own answer, kept to re-derive results
<results>/shards/<stage>/<name>.json one manifest per shard job (what Snakemake tracks)
<results>/plan/plan.json.gz          the plan: every image and its shard
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .formats import dump_json
from .storage import Folder, open_folder

MANIFESTS = "shards"
PAGE_SUFFIX = re.compile(r"-p\d{4}$")  # <id>-p0002: page 2 of a document of several


def record_name(image_id: str, page: int = 1, pages: int = 1) -> str:
    """A record's file name without suffix: the image id, and the page if there are several."""
    return image_id if pages == 1 else f"{image_id}-p{page:04d}"


class Results:
    def __init__(self, location: str, folder: Folder | None = None):
        self.location = location.rstrip("/")
        self.folder = folder if folder is not None else open_folder(self.location)

    def local_path(self, relpath: str) -> Path:
        """Where ``relpath`` is, for a local results folder."""
        return Path(self.location, relpath)

    def write_record(self, stage: str, image_id: str, record: dict[str, Any]) -> None:
        self.folder.write_bytes(f"{stage}/{image_id}.json", dump_json(record))

    def read_record(self, stage: str, image_id: str) -> dict[str, Any]:
        return json.loads(self.folder.read_bytes(f"{stage}/{image_id}.json"))

    def read_pages(self, stage: str, image_id: str) -> list[dict[str, Any]]:
        """The records of every page of an image (``<id>.json``, or ``<id>-p0001.json`` ...
        when it has several)."""
        try:
            return [self.read_record(stage, image_id)]
        except FileNotFoundError:
            first = self.read_record(stage, f"{image_id}-p0001")
        pages = int(first["image"].get("pages", 1))
        return [
            first,
            *(self.read_record(stage, f"{image_id}-p{n:04d}") for n in range(2, pages + 1)),
        ]

    def write_raw(self, stage: str, image_id: str, raw: dict[str, Any]) -> None:
        self.folder.write_bytes(f"raw/{stage}/{image_id}.json", dump_json(raw))

    def record_ids(self, stage: str) -> set[str]:
        """The images with records of ``stage`` (any page)."""
        return {
            PAGE_SUFFIX.sub("", name.removesuffix(".json")) for name in self.folder.names(stage)
        }

    def manifest_names(self, stage: str) -> set[str]:
        """The manifests present, without ``.json``."""
        return {name.removesuffix(".json") for name in self.folder.names(f"{MANIFESTS}/{stage}")}

    def read_manifest(self, stage: str, name: str) -> dict[str, Any]:
        return json.loads(self.folder.read_bytes(f"{MANIFESTS}/{stage}/{name}.json"))

    def withdraw_manifest(self, stage: str, name: str) -> None:
        self.folder.delete(f"{MANIFESTS}/{stage}/{name}.json")


def manifest_path(results_dir: str, stage: str, name: str) -> str:
    """Where Snakemake sees a manifest (relative to the storage prefix, if any)."""
    return f"{results_dir}/{MANIFESTS}/{stage}/{name}.json"
