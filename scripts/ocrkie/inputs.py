"""Finding the input images and naming them.

An image id is derived from the image's path relative to the input folder (or, for a list
file, relative to the list's folder; for S3, the key relative to the listed prefix): a
readable slug of the path and 64 bits of a SHA-256 of the exact path, e.g.
``scans/영수증 #3.jpg`` -> ``scans__영수증_3.jpg-<16 hex digits>``. The slug keeps letters and
digits of any script (NFC), ``.``, ``_`` and ``-``, at most ``SLUG_BYTES`` bytes (the end of
a longer path: the file's own name), so an id is safe as a file name and an S3 key. The same
folder tree gives the same ids on disk and in S3. Different paths whose ids coincide all
get the whole digest instead of 64 bits of it: no image is ever dropped for its id.

Each image also carries its size and modification time: the plan fingerprints shards with
them, so an image replaced under the same name reruns its shard.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from stat import S_ISBLK, S_ISCHR, S_ISDIR, S_ISFIFO, S_ISREG, S_ISSOCK
from typing import Any

from .errors import ConfigError, NoImages, SetupError

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp", "gif", "pdf")
ID_DIGITS = 16  # hex digits of the path's hash in an id: 64 bits
COLLISION_DIGITS = 64  # the whole SHA-256, for the ids of paths whose 64 bits coincide
SLUG_BYTES = 96  # an id and a record's suffix (-p0001.json) stay far below 255 bytes
LISTED_AGAIN = "listed again (the same file is read once)"
_UNSAFE = re.compile(r"[^\w.-]+")  # \w: letters and digits of any script, and _


@dataclass(frozen=True, slots=True)  # slots: a million of them in a plan
class InputImage:
    id: str
    path: str  # what jobs read: a local path (absolute or relative to the workdir) or s3:// URI
    relpath: str  # what the id was derived from; recorded in the outputs
    size: int = -1  # bytes; -1 when unknown
    mtime: int = 0  # modification time in ns (S3: LastModified)

    def fingerprint(self) -> list[Any]:
        return [self.id, self.size, self.mtime]


def _digest(text: str) -> str:
    # surrogateescape: a file name that is not UTF-8 hashes as its own bytes
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def image_id(relpath: str, digits: int | None = None) -> str:
    """``scans/Reçu #3.JPG`` -> ``scans__Reçu_3.JPG-<16 hex digits>``. The path is taken as it
    is (an S3 key ``a//b.jpg`` is not ``a/b.jpg``); ``digits``: of the hash, ``ID_DIGITS``
    unless given."""
    return f"{slug(relpath)}-{_digest(relpath)[: digits or ID_DIGITS]}"


def slug(relpath: str) -> str:
    """The readable part of an id: each part of the path with its runs of other characters
    made ``_``, joined by ``__``; the last ``SLUG_BYTES`` bytes of it."""
    if not relpath.isascii():
        relpath = unicodedata.normalize("NFC", relpath)
    parts = (_UNSAFE.sub("_", part).strip("._-") for part in relpath.split("/"))
    text = "__".join(p for p in parts if p)
    encoded = text.encode("utf-8")
    if len(encoded) > SLUG_BYTES:  # the end: the file's name (a cut character is dropped)
        text = encoded[-SLUG_BYTES:].decode("utf-8", "ignore").lstrip("._-")
    return text or "image"


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
            raise ConfigError(
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


def relative_to_here(path: str) -> str:
    """`` (relative to the working directory /x)`` for a relative path, else nothing."""
    return "" if os.path.isabs(path) else f" (relative to the working directory {os.getcwd()})"


def find_images(input_dir: str, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[InputImage]:
    """All images under ``input_dir``, sorted by id."""
    return scan_folder(input_dir, extensions).images


def scan_folder(input_dir: str, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> Discovery:
    """Every image under ``input_dir``, recursively, following links to folders (each folder
    once: real folders first, then linked ones); hidden files and folders, other extensions,
    links to nothing and files that are not regular files (FIFOs, devices) are listed as
    skipped, with the reason."""
    if not os.path.isdir(input_dir):
        raise NoImages(f"input_dir {input_dir!r} is not a folder{relative_to_here(input_dir)}")
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
    return Discovery(os.path.abspath(input_dir), *_unique_sorted(found, skipped))


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

    Relative paths are taken relative to the list file's folder (and made normal: ``a//b``,
    ``./a/b`` and ``a/b`` are one file, read once); an absolute path outside it stays
    absolute. A path that names nothing is kept: its job gives it an error record saying so.
    """
    if not os.path.isfile(list_file):
        raise NoImages(f"input_list {list_file!r} is not a file{relative_to_here(list_file)}")
    base = Path(list_file).parent
    found = []
    for line in Path(list_file).read_text(encoding="utf-8").splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = Path(entry) if Path(entry).is_absolute() else base / entry
        try:
            relpath = path.relative_to(base).as_posix()
        except ValueError:  # the "/" stays: /a/b.jpg is not the list's own a/b.jpg
            relpath = path.as_posix()
        found.append(_local_image(str(path), relpath))
    return Discovery(os.path.abspath(list_file), *_unique_sorted(found, []))


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
    return Discovery(f"s3://{bucket}/{listed}", *_unique_sorted(found, skipped))


def _unique_sorted(
    images: list[InputImage], skipped: list[tuple[str, str]]
) -> tuple[list[InputImage], list[tuple[str, str]]]:
    """The images sorted by id, each file once, and ``skipped`` with the files listed again.
    Different files whose ids coincide are all kept: each gets the whole digest."""
    by_path: dict[str, InputImage] = {}
    again = []
    for image in images:
        if image.path in by_path:  # a list may name one file twice
            again.append((image.relpath, LISTED_AGAIN))
        else:
            by_path[image.path] = image
    by_id: dict[str, InputImage] = {}
    shared = set()  # ids that more than one file got
    for image in by_path.values():
        if by_id.setdefault(image.id, image) is not image:
            shared.add(image.id)
    unique = [
        replace(image, id=image_id(image.relpath, COLLISION_DIGITS))
        if image.id in shared
        else image
        for image in by_path.values()
    ]
    if shared and len({image.id for image in unique}) < len(unique):
        ids = Counter(image.id for image in unique)  # two paths, one SHA-256: not by chance
        twins = sorted(i.relpath for i in unique if ids[i.id] > 1)
        raise SetupError(f"these inputs cannot be told apart by their ids: {twins}")
    return sorted(unique, key=lambda i: i.id), sorted([*skipped, *again])
