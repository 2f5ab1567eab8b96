"""Finding the input images and naming them.

An image id is derived from the image's path relative to the input folder (or, for a list
file, relative to the list's folder; for S3, relative to the listed prefix): readable,
filesystem-safe and collision-free, because a short hash of the exact relative path is
appended to a slug of it. The same folder tree gives the same ids on disk and in S3.

Each image also carries its size and modification time: the plan fingerprints shards with
them, so an image replaced under the same name reruns its shard.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NOT_NORMAL = re.compile(r"//|(^|/)\.(/|$)|/$")  # what Path(...).as_posix() would change


@dataclass(frozen=True)
class InputImage:
    id: str
    path: str  # what jobs read: a local path (absolute or relative to the workdir) or s3:// URI
    relpath: str  # what the id was derived from; recorded in the outputs
    size: int = -1  # bytes; -1 when unknown
    mtime: int = 0  # modification time in ns (S3: LastModified)

    def fingerprint(self) -> list[Any]:
        return [self.id, self.size, self.mtime]


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def image_id(relpath: str) -> str:
    """``scans/Reçu #3.JPG`` -> ``scans__Recu_3.JPG-1f0c9a2b``."""
    if _NOT_NORMAL.search(relpath):  # (cheap test first: 100,000 ids are made per plan)
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


def discover(config: dict[str, Any], storage_prefix: str | None = None) -> list[InputImage]:
    """The input images the config names, sorted by id. An ``s3://`` input_dir is listed in
    S3; with S3 default storage (AWS Batch) a relative input_dir is listed under the prefix."""
    extensions = tuple(e.lower() for e in config["extensions"])
    input_dir = config["input_dir"]
    if config["input_list"]:
        return read_image_list(config["input_list"])
    if input_dir.startswith("s3://"):
        return list_s3_images(input_dir, extensions)
    if storage_prefix:
        if Path(input_dir).is_absolute():
            raise ValueError(
                f"input_dir {input_dir!r}: with S3 as the default storage (AWS Batch) use an "
                "s3:// URI or a folder relative to the default storage prefix"
            )
        return list_s3_images(
            f"{storage_prefix}/{Path(input_dir).as_posix().strip('/')}", extensions
        )
    return find_images(input_dir, extensions)


def find_images(input_dir: str, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[InputImage]:
    """All images under ``input_dir`` (recursively; hidden files and folders left out), sorted
    by id."""
    if not os.path.isdir(input_dir):
        raise FileNotFoundError(f"input_dir {input_dir!r} is not a folder")
    found = []
    folders = [""]  # relative to input_dir
    while folders:
        folder = folders.pop()
        with os.scandir(os.path.join(input_dir, folder)) as entries:
            for entry in entries:
                relpath = f"{folder}/{entry.name}" if folder else entry.name
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    folders.append(relpath)
                elif is_image_path(entry.name, extensions):
                    found.append(_local_image(entry.path, relpath, entry))
    return _unique_sorted(found)


def _local_image(path: str, relpath: str, entry: os.DirEntry[str] | None = None) -> InputImage:
    try:
        stat = entry.stat() if entry is not None else os.stat(path)
        size, mtime = stat.st_size, stat.st_mtime_ns
    except OSError:  # dangling link, no permission: the job records why it cannot be read
        size, mtime = -1, 0
    return InputImage(image_id(relpath), path, relpath, size, mtime)


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
        found.append(_local_image(str(path), relpath))
    return _unique_sorted(found)


def list_s3_images(
    uri: str, extensions: tuple[str, ...] = IMAGE_EXTENSIONS, client: Any = None
) -> list[InputImage]:
    """All images under ``s3://bucket/prefix`` (recursively), sorted by id.

    ``path`` is the object's ``s3://`` URI; ``relpath`` is its key relative to the prefix.
    """
    from .s3 import list_objects, s3_client, split_s3_uri  # boto3 only where S3 is used

    bucket, prefix = split_s3_uri(uri)
    listed = f"{prefix}/" if prefix else ""  # "scans/" must not match "scans2/..."
    client = client if client is not None else s3_client()
    extensions = tuple(e.lower() for e in extensions)
    found = []
    for item in list_objects(client, bucket, listed):
        relpath = item["Key"][len(listed) :]
        if is_image_path(relpath, extensions):
            mtime = int(item["LastModified"].timestamp() * 1e9)
            path = f"s3://{bucket}/{item['Key']}"
            found.append(InputImage(image_id(relpath), path, relpath, item["Size"], mtime))
    return _unique_sorted(found)


def _unique_sorted(images: list[InputImage]) -> list[InputImage]:
    by_id: dict[str, InputImage] = {}
    for image in images:
        by_id.setdefault(image.id, image)  # a list may name one file twice
    return [by_id[k] for k in sorted(by_id)]
