"""The results folder, locally or under the S3 storage prefix, and what it holds.

<results>/ocr/<id>.json              per-image records of each stage (ocr, kie, layout)
<results>/raw/<stage>/<id>.json      a service's own answer, kept to re-derive results
<results>/shards/<stage>/<name>.json one manifest per shard job (what Snakemake tracks)
<results>/shards/<stage>/<name>.retry  beside a manifest whose shard has images to try again
<results>/plan/plan.json.gz          the plan: every image and its shard
<results>/progress/<stage>/<shard>.json  how far a shard's job is (progress.py)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .formats import dump_json
from .storage import Folder, open_folder

MANIFESTS = "shards"
RETRY = ".retry"
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

    def retire_other_pages(self, folder: str, image_id: str, pages: int, suffix: str) -> None:
        """Delete the files in ``folder`` of pages the image no longer has: ``<id><suffix>``
        when it now has several pages, ``<id>-pNNNN<suffix>`` past its page count (a scan
        replaced by a shorter or longer one, under the same name)."""
        if pages > 1:
            self.folder.delete(f"{folder}/{image_id}{suffix}")
        number = 1 if pages == 1 else pages + 1
        while self.folder.exists(name := f"{folder}/{image_id}-p{number:04d}{suffix}"):
            self.folder.delete(name)
            number += 1

    def write_raw(self, stage: str, image_id: str, raw: dict[str, Any]) -> None:
        self.folder.write_bytes(f"raw/{stage}/{image_id}.json", dump_json(raw))

    def record_ids(self, stage: str) -> set[str]:
        """The images with records of ``stage`` (any page)."""
        return {
            PAGE_SUFFIX.sub("", name.removesuffix(".json")) for name in self.folder.names(stage)
        }

    def manifest_names(self, stage: str) -> set[str]:
        """The manifests present, without ``.json``."""
        return self._names(f"{MANIFESTS}/{stage}", ".json")

    def retry_names(self, stage: str) -> set[str]:
        """The manifests whose shards have images to try again (a transient fault)."""
        return self._names(f"{MANIFESTS}/{stage}", RETRY)

    def mark_retry(self, stage: str, name: str, image_ids: list[str]) -> None:
        """Mark (or, with no images, unmark) a manifest's shard as having images to retry."""
        path = f"{MANIFESTS}/{stage}/{name}{RETRY}"
        if image_ids:
            self.folder.write_bytes(path, ("\n".join(image_ids) + "\n").encode())
        else:
            self.folder.delete(path)

    def _names(self, folder: str, suffix: str) -> set[str]:
        return {n.removesuffix(suffix) for n in self.folder.names(folder) if n.endswith(suffix)}

    def read_manifest(self, stage: str, name: str) -> dict[str, Any]:
        return json.loads(self.folder.read_bytes(f"{MANIFESTS}/{stage}/{name}.json"))

    def withdraw_manifest(self, stage: str, name: str) -> None:
        self.folder.delete(f"{MANIFESTS}/{stage}/{name}.json")
        self.folder.delete(f"{MANIFESTS}/{stage}/{name}{RETRY}")


def manifest_path(results_dir: str, stage: str, name: str) -> str:
    """Where Snakemake sees a manifest (relative to the storage prefix, if any)."""
    return f"{results_dir}/{MANIFESTS}/{stage}/{name}.json"
