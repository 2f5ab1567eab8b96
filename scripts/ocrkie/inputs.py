"""Finding input images, naming them, and grouping them into shards.

An image id is derived from the image's path relative to the input folder (or, for a list
file, relative to the list's folder): readable, filesystem-safe and collision-free, because
a short hash of the exact relative path is appended to a slug of it.

Shards use content-defined chunking over the sorted ids: an image starts a new shard when
a hash of its id falls in a 1-in-``shard_size`` bucket (or the shard reached twice the
size). Membership therefore depends only on an image's neighbours, never on the total
count, so adding images changes only the shards they land in.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class InputImage:
    id: str
    path: str  # as given to Snakemake (absolute, or relative to the working directory)
    relpath: str  # what the id was derived from; recorded in the outputs


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def image_id(relpath: str) -> str:
    """``scans/Reçu #3.JPG`` -> ``scans__Recu_3.JPG-1f0c9a2b``."""
    relpath = Path(relpath).as_posix()
    ascii_text = unicodedata.normalize("NFKD", relpath).encode("ascii", "ignore").decode()
    parts = [_UNSAFE.sub("_", part).strip("._") for part in ascii_text.split("/")]
    slug = "__".join(p for p in parts if p)[:80] or "image"
    return f"{slug}-{_digest(relpath)[:8]}"


def is_image_path(relpath: str, extensions: tuple[str, ...]) -> bool:
    """An image by its extension, and not hidden (no part of the path starts with a dot)."""
    parts = relpath.split("/")
    if not parts[-1] or any(part.startswith(".") for part in parts):
        return False
    name = parts[-1]
    return "." in name and name.rsplit(".", 1)[-1].lower() in extensions


def find_images(input_dir: str, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[InputImage]:
    """All images under ``input_dir`` (recursively), sorted by id."""
    root = Path(input_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"input_dir {input_dir!r} is not a folder")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # not walked at all
        for name in filenames:
            path = Path(dirpath) / name
            relpath = path.relative_to(root).as_posix()
            if is_image_path(relpath, extensions):
                found.append(InputImage(image_id(relpath), str(path), relpath))
    return _unique_sorted(found)


def read_image_list(list_file: str) -> list[InputImage]:
    """Images named in a text file, one path per line (``#`` comments and blanks ignored).

    Relative paths are taken relative to the list file's folder.
    """
    base = Path(list_file).parent
    found = []
    for line in Path(list_file).read_text(encoding="utf-8").splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = Path(entry) if Path(entry).is_absolute() else base / entry
        try:
            relpath = path.relative_to(base).as_posix()
        except ValueError:
            relpath = path.as_posix().lstrip("/")
        found.append(InputImage(image_id(relpath), str(path), relpath))
    return _unique_sorted(found)


def _unique_sorted(images: list[InputImage]) -> list[InputImage]:
    by_id: dict[str, InputImage] = {}
    for image in images:
        by_id.setdefault(image.id, image)  # a list may name one file twice
    return [by_id[k] for k in sorted(by_id)]


@dataclass(frozen=True)
class Shard:
    name: str
    images: tuple[InputImage, ...]


def make_shards(images: list[InputImage], shard_size: int) -> list[Shard]:
    """Group images sorted by id into shards of about ``shard_size`` (at most twice that)."""
    groups: list[list[InputImage]] = []
    for image in sorted(images, key=lambda i: i.id):
        starts_shard = int(_digest(image.id), 16) % shard_size == 0
        if not groups or starts_shard or len(groups[-1]) >= 2 * shard_size:
            groups.append([])
        groups[-1].append(image)
    return [Shard(f"shard_{_digest(g[0].id)[:8]}", tuple(g)) for g in groups]
