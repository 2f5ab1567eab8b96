"""The image an export names, so that a reader finds it from where the export file is, and
finds the page in the frame of the export's coordinates.

A file stored upright (``page.stored_upright``) is named as it is: its path relative to the
export's folder, or its ``s3://`` URI where no relative path leads to it. An EXIF-turned
photo, a PDF page or one page of several is named by an upright copy written beside the
exports, ``<results>/images/<record name>.jpg`` (from a JPEG, quality 95) or ``.png``.
"""

from __future__ import annotations

import io
import os
import posixpath

from ..images import ImageLimits, upright_page
from ..storage import Folder, read_input

COPIES = "images"  # the folder of upright copies, in the results
_PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I;16"}


def reference(results_location: str, export_folder: str, target: str) -> str:
    """How a file in ``<results>/<export_folder>/`` names ``target``: a local path (absolute
    or relative to the working directory) or an ``s3://`` URI. Relative where the two are on
    the same disk or in the same bucket, else ``target`` as it is (a local path made
    absolute)."""
    here = f"{results_location.rstrip('/')}/{export_folder}"
    if target.startswith("s3://") or here.startswith("s3://"):
        if not (target.startswith("s3://") and here.startswith("s3://")):
            return target if target.startswith("s3://") else os.path.abspath(target)
        target_bucket, _, target_key = target[5:].partition("/")
        here_bucket, _, here_key = here[5:].partition("/")
        if target_bucket != here_bucket:
            return target
        return posixpath.relpath(f"/{target_key}", f"/{here_key}")
    return os.path.relpath(os.path.abspath(target), os.path.abspath(here))


def copy_name(record_name: str, source_path: str) -> str:
    """The upright copy's path in the results: JPEG stays JPEG, anything else is PNG."""
    jpeg = source_path.lower().endswith((".jpg", ".jpeg"))
    return f"{COPIES}/{record_name}{'.jpg' if jpeg else '.png'}"


def write_upright_copy(
    folder: Folder,
    name: str,
    source_path: str,
    number: int,
    size: tuple[int, int],
    limits: ImageLimits,
    dpi: tuple[float, float] | None = None,
) -> None:
    """Write page ``number`` of ``source_path`` upright to ``name`` in ``folder``, declaring
    ``dpi`` where given; it must be ``size`` (the page's size in its OCR record), else the
    record is of another file."""
    data = read_input(source_path, limits.max_bytes)
    image = upright_page(data, number, limits.pdf_dpi, limits.max_pixels)
    if image.size != tuple(size):
        raise ValueError(
            f"page {number} of {source_path} is {image.size[0]}x{image.size[1]} upright, "
            f"its OCR record says {size[0]}x{size[1]}: was the file or images.pdf_dpi changed?"
        )
    buffer = io.BytesIO()
    declared = {"dpi": dpi} if dpi else {}
    if name.endswith(".jpg"):
        image.convert("RGB").save(buffer, "JPEG", quality=95, **declared)
    else:
        keep = image if image.mode in _PNG_MODES else image.convert("RGB")
        keep.save(buffer, "PNG", **declared)
    folder.write_bytes(name, buffer.getvalue())
