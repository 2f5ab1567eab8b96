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
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISBLK, S_ISCHR, S_ISDIR, S_ISFIFO, S_ISREG, S_ISSOCK
from typing import Any

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp", "gif", "pdf")
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


@dataclass(frozen=True)
class Discovery:
    """What a listing found: the images, and every other entry with why it was left out."""

    location: str  # what was listed, in full
    images: list[InputImage]
    skipped: list[tuple[str, str]]  # (relative path, reason)

    def skip_counts(self) -> dict[str, int]:
        return dict(Counter(reason for _, reason in self.skipped).most_common())


class NoImages(ValueError):
    """The input names no image: a mistyped or empty location, most likely."""


def discover(config: dict[str, Any], storage_prefix: str | None = None) -> Discovery:
    """The input images the config names, sorted by id. An ``s3://`` input_dir is listed in
    S3; with S3 default storage (AWS Batch) a relative input_dir is listed under the prefix.
    Finding no image at all is an error that names the location listed."""
    extensions = tuple(e.lower() for e in config["extensions"])
    input_dir = config["input_dir"]
    if config["input_list"]:
        found = read_image_list(config["input_list"])
    elif input_dir.startswith("s3://"):
        found = list_s3_images(input_dir, extensions)
    elif storage_prefix:
        if Path(input_dir).is_absolute():
            raise ValueError(
                f"input_dir {input_dir!r}: with S3 as the default storage (AWS Batch) use an "
                "s3:// URI or a folder relative to the default storage prefix"
            )
        folder = Path(input_dir).as_posix().strip("/")
        found = list_s3_images(f"{storage_prefix}/{folder}", extensions)
    else:
        found = scan_folder(input_dir, extensions)
    if not found.images:
        skipped = found.skip_counts()
        also = f" ({', '.join(f'{n} {why}' for why, n in skipped.items())})" if skipped else ""
        raise NoImages(
            f"no images in {found.location}{also}: looked for {', '.join(extensions)} "
            "(the `extensions` setting); check input_dir / input_list"
        )
    return found


def find_images(input_dir: str, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[InputImage]:
    """All images under ``input_dir``, sorted by id."""
    return scan_folder(input_dir, extensions).images


def scan_folder(input_dir: str, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> Discovery:
    """Every image under ``input_dir``, recursively, following links to folders (each folder
    once: real folders first, then linked ones); hidden files and folders, other extensions,
    links to nothing and files that are not regular files (FIFOs, devices) are listed as
    skipped, with the reason."""
    if not os.path.isdir(input_dir):
        raise FileNotFoundError(f"input_dir {input_dir!r} is not a folder")
    found: list[InputImage] = []
    skipped: list[tuple[str, str]] = []
    seen: set[tuple[int, int]] = set()  # (device, inode) of the folders read
    folders, linked = [""], []  # relative to input_dir
    while folders or linked:
        folder = folders.pop() if folders else linked.pop(0)
        identity = _identity(os.path.join(input_dir, folder))
        if identity in seen:
            skipped.append((folder, "a link to a folder already read"))
            continue
        seen.add(identity)
        with os.scandir(os.path.join(input_dir, folder)) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                relpath = f"{folder}/{entry.name}" if folder else entry.name
                reason = _skip_reason(entry, extensions)
                if reason == "folder":
                    (linked if entry.is_symlink() else folders).append(relpath)
                    if is_image_path(entry.name, extensions):
                        skipped.append(
                            (relpath, "a folder named like an image (its files are read)")
                        )
                elif reason:
                    skipped.append((relpath, reason))
                else:
                    stat = entry.stat()
                    image = InputImage(
                        image_id(relpath), entry.path, relpath, stat.st_size, stat.st_mtime_ns
                    )
                    found.append(image)
    return Discovery(os.path.abspath(input_dir), _unique_sorted(found), sorted(skipped))


def _identity(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _skip_reason(entry: os.DirEntry[str], extensions: tuple[str, ...]) -> str | None:
    """Why an entry is not an image to read: None for an image, ``folder`` for a folder to
    walk, else the reason it is skipped."""
    if entry.name.startswith("."):
        return "hidden"
    try:
        stat = entry.stat()  # follows links
    except FileNotFoundError:
        return "a link to nothing"
    except OSError as exc:
        return f"cannot be examined ({exc.strerror or exc})"  # a link loop, say
    if S_ISDIR(stat.st_mode):
        return "folder"
    if not is_image_path(entry.name, extensions):
        return "not an image extension"
    if not S_ISREG(stat.st_mode):
        return f"not a regular file ({_kind(stat.st_mode)})"
    return None


def _kind(mode: int) -> str:
    for test, name in (
        (S_ISFIFO, "a FIFO"),
        (S_ISSOCK, "a socket"),
        (S_ISCHR, "a character device"),
        (S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a file"


def _local_image(path: str, relpath: str) -> InputImage:
    try:
        stat = os.stat(path)
        size, mtime = stat.st_size, stat.st_mtime_ns
    except OSError:  # missing, a link to nothing: the job records why it cannot be read
        size, mtime = -1, 0
    return InputImage(image_id(relpath), path, relpath, size, mtime)


def read_image_list(list_file: str) -> Discovery:
    """Images named in a text file, one path per line (``#`` comments and blanks ignored).

    Relative paths are taken relative to the list file's folder. A path that names nothing is
    kept: its job gives it an error record saying so.
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
    return Discovery(os.path.abspath(list_file), _unique_sorted(found), [])


def list_s3_images(
    uri: str, extensions: tuple[str, ...] = IMAGE_EXTENSIONS, client: Any = None
) -> Discovery:
    """All images under ``s3://bucket/prefix`` (recursively), sorted by id.

    ``path`` is the object's ``s3://`` URI; ``relpath`` is its key relative to the prefix.
    """
    from .s3 import list_objects, s3_client, split_s3_uri  # boto3 only where S3 is used

    bucket, prefix = split_s3_uri(uri)
    listed = f"{prefix}/" if prefix else ""  # "scans/" must not match "scans2/..."
    client = client if client is not None else s3_client()
    extensions = tuple(e.lower() for e in extensions)
    found, skipped = [], []
    for item in list_objects(client, bucket, listed):
        relpath = item["Key"][len(listed) :]
        if not relpath:
            continue  # the prefix's own folder marker
        if is_image_path(relpath, extensions):
            mtime = int(item["LastModified"].timestamp() * 1e9)
            path = f"s3://{bucket}/{item['Key']}"
            found.append(InputImage(image_id(relpath), path, relpath, item["Size"], mtime))
        elif relpath.endswith("/"):
            skipped.append((relpath, "a folder marker"))
        elif any(part.startswith(".") for part in relpath.split("/")):
            skipped.append((relpath, "hidden"))
        else:
            skipped.append((relpath, "not an image extension"))
    return Discovery(f"s3://{bucket}/{listed}", _unique_sorted(found), sorted(skipped))


def _unique_sorted(images: list[InputImage]) -> list[InputImage]:
    by_id: dict[str, InputImage] = {}
    for image in images:
        by_id.setdefault(image.id, image)  # a list may name one file twice
    return [by_id[k] for k in sorted(by_id)]
