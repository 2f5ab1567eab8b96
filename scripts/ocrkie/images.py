"""Reading an image file, page by page, and normalising each page for OCR.

A file may hold several pages: the frames of a TIFF or an animated GIF, the pages of a PDF
(rendered at ``pdf_dpi``). Normalisation applies the EXIF orientation, converts every pixel
mode to 8-bit RGB and downscales very large pages; it records only the steps that happened.
Coordinates reported to users refer to the oriented page at its original size (for a PDF, at
``pdf_dpi``), so ``scale`` is kept to map boxes back.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DecompressionBomb, TooManyPages, UnreadableImage, UnsupportedImage

_ORIENTATION = 0x0112  # the EXIF orientation tag


@dataclass(frozen=True)
class ImageLimits:
    """What a file may hold before it is refused (each page, and the document)."""

    max_pixels: int
    max_side: int
    max_bytes: int = 256 * 2**20
    pdf_dpi: int = 200
    max_pages: int = 1000

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ImageLimits:
        """The ``images`` block of the workflow's config."""
        images = config["images"]
        keys = ("max_pixels", "max_side", "max_bytes", "pdf_dpi", "max_pages")
        return cls(**{key: images[key] for key in keys})


@dataclass
class PageImage:
    """A decoded page ready for an OCR engine."""

    sha256: str  # of the whole file
    name: str  # the file name, for engines that upload files
    image: Image.Image  # oriented, RGB, possibly downscaled
    width: int  # oriented page size before downscaling
    height: int
    scale: float  # image pixels per page pixel (<= 1)
    steps: list[str] = field(default_factory=list)  # what normalisation did
    number: int = 1  # 1-based, within its file
    count: int = 1  # the file's pages
    format: str = ""  # the file's (PIL's name: JPEG, PNG, TIFF, ...; or PDF)
    # The whole file, for engines that upload files (set by the stage; never pickled along
    # to a child process, whose engines read pixels).
    document: bytes | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "document": None}

    @property
    def reshaped(self) -> bool:
        """Whether normalisation turned or downscaled the page (what a service sees differs
        from the file's own pixels)."""
        return any(step.startswith(("exif-orientation", "downscaled")) for step in self.steps)


@dataclass(frozen=True)
class DocumentFacts:
    """What a file is, read without decoding its pixels."""

    pages: int
    format: str  # PIL's name for it (JPEG, PNG, TIFF, ...), or PDF
    longest_side: int | None  # of the first page, in pixels (None for a PDF)
    dpi: tuple[float, float] | None = None  # across and down the upright page (``declared_dpi``)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_page(path: str, max_pixels: int, max_side: int) -> PageImage:
    """Read and normalise one image; raise an ``ImageError`` subclass if it cannot be used."""
    with open(path, "rb") as handle:
        data = handle.read()
    return decode_page(data, max_pixels=max_pixels, max_side=max_side, name=Path(path).name)


PDF_MAGIC = b"%PDF-"


def count_pages(data: bytes, max_pixels: int = Image.MAX_IMAGE_PIXELS or 0) -> int:
    """How many pages the file holds (frames of a TIFF or GIF, pages of a PDF); raises an
    ``ImageError`` when it is not a readable image at all."""
    return describe(data, max_pixels).pages


def describe(data: bytes, max_pixels: int, max_pages: int = 0, pdf_dpi: int = 200) -> DocumentFacts:
    """The file's page count, format, size and resolution (a PDF's: ``pdf_dpi``, the one it is
    rendered at), from its headers; an ``ImageError`` when it is not a readable image at all,
    or holds more than ``max_pages`` pages (0: any number)."""
    if not data:
        raise UnreadableImage("the file is empty (0 bytes)")
    if data.startswith(PDF_MAGIC):
        facts = DocumentFacts(len(_pdf(data)), "PDF", None, (float(pdf_dpi), float(pdf_dpi)))
    else:
        with _opened(data, max_pixels) as image:
            pages = getattr(image, "n_frames", 1)
            facts = DocumentFacts(pages, image.format or "", max(image.size), declared_dpi(image))
    if max_pages and facts.pages > max_pages:
        raise TooManyPages(
            f"the document has {facts.pages:,} pages, over the limit of {max_pages:,} "
            "(images.max_pages)"
        )
    return facts


def declared_dpi(image: Image.Image) -> tuple[float, float] | None:
    """The resolution the file declares for its first page, in dots per inch across and down
    the page upright (EXIF orientation applied); None where it declares none. A JPEG declares
    one in its JFIF header (in inches or centimetres) or its EXIF ``XResolution``; a TIFF in
    its resolution tags unless their unit is "none"; a PNG in its ``pHYs`` chunk. (Pillow
    reports 72 for a JPEG whose EXIF has none, and 1 for a TIFF without the tags: not
    declared, so not taken.)"""
    found = image.info.get("dpi")
    if image.format == "JPEG" and image.info.get("jfif_unit") not in (1, 2):
        found = _exif_dpi(image.getexif())
    elif image.format == "TIFF":
        tags = getattr(image, "tag_v2", {})
        found = found if 282 in tags and 283 in tags and tags.get(296) != 1 else None
    try:
        across, down = (round(float(value), 2) for value in found or ())
    except (TypeError, ValueError):
        return None
    if not (across >= 1 and down >= 1 and math.isfinite(across + down)):
        return None
    turned = image.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8)  # a quarter turn
    return (down, across) if turned else (across, down)


def _exif_dpi(exif: Image.Exif) -> tuple[float, float] | None:
    """``XResolution``, ``YResolution`` in dots per inch (``ResolutionUnit`` 2, the default,
    or 3: centimetres); None without them or with unit 1 (none)."""
    unit = exif.get(0x0128, 2)
    if 0x011A not in exif or unit not in (2, 3):
        return None
    try:
        across = float(exif[0x011A])
        down = float(exif.get(0x011B, across))
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    factor = 2.54 if unit == 3 else 1.0
    return across * factor, down * factor


class PageDecoder:
    """Decodes the pages of one file after another, keeping the file it was last given (and
    its opened PDF), so that the pages of a document are handed over once. Run in a child
    process (``worker.GuardedDecoder``) so that a crafted file cannot hang or exhaust the job."""

    def __init__(self) -> None:
        self._sha = ""
        self._data = b""

    def describe(self, data: bytes | None, sha: str, limits: ImageLimits) -> DocumentFacts:
        held = self._hold(data, sha)
        return describe(held, limits.max_pixels, limits.max_pages, limits.pdf_dpi)

    def page(self, data: bytes | None, sha: str, number: int, limits: ImageLimits) -> PageImage:
        return decode_page(
            self._hold(data, sha), limits.max_pixels, limits.max_side, "", number, limits.pdf_dpi
        )

    def _hold(self, data: bytes | None, sha: str) -> bytes:
        if data is not None:
            self._sha, self._data = sha, data
        if sha != self._sha:
            raise RuntimeError("the decoder was not given this file")  # a bug, not the file's
        return self._data


def decode_page(
    data: bytes,
    max_pixels: int,
    max_side: int,
    name: str = "page",
    number: int = 1,
    pdf_dpi: int = 200,
) -> PageImage:
    """Page ``number`` (1-based) of the file, normalised."""
    image, count, file_format, steps = _upright(data, number, pdf_dpi, max_pixels)
    rgb = _to_rgb(image, steps)
    width, height = rgb.size
    scale = min(1.0, max_side / max(width, height))
    if scale < 1.0:
        rgb = rgb.resize((round(width * scale), round(height * scale)), Image.Resampling.LANCZOS)
        steps.append(f"downscaled:{scale:.4f}")
    return PageImage(
        sha256_of(data), name, rgb, width, height, scale, steps, number, count, file_format
    )


def upright_page(data: bytes, number: int, pdf_dpi: int, max_pixels: int) -> Image.Image:
    """Page ``number`` of the file at its own size in the frame of the OCR's coordinates
    (EXIF orientation applied, a PDF page rendered at ``pdf_dpi``), its pixel mode kept."""
    return _upright(data, number, pdf_dpi, max_pixels)[0]


def _upright(
    data: bytes, number: int, pdf_dpi: int, max_pixels: int
) -> tuple[Image.Image, int, str, list[str]]:
    """The page upright, the file's page count and format, and the steps taken."""
    if not data:
        raise UnreadableImage("the file is empty (0 bytes)")
    if data.startswith(PDF_MAGIC):
        image, count = _pdf_page(data, number, pdf_dpi, max_pixels), len(_pdf(data))
        file_format = "PDF"
    else:
        image, count = _frame(data, number, max_pixels)
        file_format = image.format or ""
    steps: list[str] = []
    orientation = image.getexif().get(_ORIENTATION, 1)
    if orientation in range(2, 9):  # 1 is upright; other values are not orientations
        image = ImageOps.exif_transpose(image)
        steps.append(f"exif-orientation:{orientation}")
    return image, count, file_format, steps


def _frame(data: bytes, number: int, max_pixels: int) -> tuple[Image.Image, int]:
    if number == 1:
        image = _open(data, max_pixels)
        return image, getattr(image, "n_frames", 1)
    with _opened(data, max_pixels) as image:  # the limit holds for every frame, not the first
        count = getattr(image, "n_frames", 1)
        try:
            image.seek(number - 1)
        except (EOFError, OSError, ValueError) as exc:
            raise UnreadableImage(f"cannot read page {number} of {count}: {exc}") from exc
        width, height = image.size
        if width * height > max_pixels:
            raise DecompressionBomb(
                f"page {number} is {width}x{height} pixels, over the limit of {max_pixels}"
            )
        try:
            image.load()
        except (EOFError, OSError, ValueError, SyntaxError) as exc:
            raise UnreadableImage(f"cannot read page {number} of {count}: {exc}") from exc
        return image, count


def _pdf(data: bytes) -> Any:
    import pypdfium2

    try:
        return pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        raise UnreadableImage(f"not a readable PDF: {exc}") from exc


def _pdf_page(data: bytes, number: int, dpi: int, max_pixels: int) -> Image.Image:
    import pypdfium2

    page = _pdf(data)[number - 1]
    width, height = (round(side * dpi / 72) for side in page.get_size())
    if width * height > max_pixels:
        raise DecompressionBomb(
            f"page {number} is {width}x{height} pixels at {dpi} dpi, over the limit of {max_pixels}"
        )
    try:
        return page.render(scale=dpi / 72).to_pil()
    except pypdfium2.PdfiumError as exc:
        raise UnreadableImage(f"cannot render page {number}: {exc}") from exc


def _open(data: bytes, max_pixels: int) -> Image.Image:
    with _opened(data, max_pixels) as image:
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
            raise UnreadableImage(f"corrupt image data: {exc}") from exc
        return image


@contextmanager
def _opened(data: bytes, max_pixels: int) -> Iterator[Image.Image]:
    """The image, header read, pixels not yet; every way of not being an image is mapped to
    an ``ImageError``."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        yield image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecompressionBomb(f"image exceeds the limit of {max_pixels} pixels") from exc
    except UnidentifiedImageError as exc:
        raise UnreadableImage("not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise UnreadableImage(f"corrupt image data: {exc}") from exc
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _to_rgb(image: Image.Image, steps: list[str]) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    steps.append(f"mode:{mode}->RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _rescale_to_8bit(image).convert("RGB")
    if mode in ("1", "L", "CMYK", "YCbCr", "LAB", "HSV"):
        return image.convert("RGB")
    if mode in ("P", "PA", "LA", "RGBA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    raise UnsupportedImage(f"unsupported pixel mode {mode}")


def _rescale_to_8bit(image: Image.Image) -> Image.Image:
    """Stretch a 16-bit or float image to 0..255 (scanners store 16-bit greyscale)."""
    pixels = np.asarray(image, dtype=np.float64)
    low, high = float(pixels.min()), float(pixels.max())
    span = high - low or 1.0
    return Image.fromarray(((pixels - low) * (255.0 / span)).astype(np.uint8), mode="L")


def longest_side(data: bytes) -> int | None:
    """The longer side in pixels, read from the header alone (None if it cannot be read)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return max(image.size)
    except Exception:  # the full decode reports what is wrong
        return None


def crop_line(page: PageImage, polygon: list[list[float]], padding: float) -> Image.Image:
    """The quadrilateral ``polygon`` (page pixels, clockwise from the top left) cut out and
    mapped onto an upright rectangle, widened by ``padding`` line heights on every side."""
    points = [(x * page.scale, y * page.scale) for x, y in polygon]
    (tlx, tly), (trx, try_), (brx, bry), (blx, bly) = points
    width, height = line_size(points)
    if width < 1 or height < 1:
        raise ValueError("a degenerate line box")
    pad = padding * height
    ux, uy = (trx - tlx) / width, (try_ - tly) / width  # along the line
    vx, vy = (blx - tlx) / height, (bly - tly) / height  # down the line

    def moved(x: float, y: float, along: float, down: float) -> tuple[float, float]:
        return x + along * ux + down * vx, y + along * uy + down * vy

    quad = (
        *moved(tlx, tly, -pad, -pad),
        *moved(blx, bly, -pad, pad),
        *moved(brx, bry, pad, pad),
        *moved(trx, try_, pad, -pad),
    )
    size = (max(1, round(width + 2 * pad)), max(1, round(height + 2 * pad)))
    return page.image.transform(size, Image.Transform.QUAD, quad, Image.Resampling.BICUBIC)


def line_size(polygon: Any) -> tuple[float, float]:
    """Mean length and mean height of a 4-point line box (clockwise from the top left)."""
    top_left, top_right, bottom_right, bottom_left = polygon[:4]
    width = (math.dist(top_left, top_right) + math.dist(bottom_left, bottom_right)) / 2
    height = (math.dist(top_left, bottom_left) + math.dist(top_right, bottom_right)) / 2
    return width, height
