"""A corpus of bad (and good) inputs of many kinds, as a user's scan folder holds them, with
what should become of each: an ok record (and how many pages), an error record (its class),
or a skip (its reason). Used by the reliability tests and scripts/bench/reliability.py."""

from __future__ import annotations

import io
import os
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

MAX_BYTES = 6_000_000  # the corpus runs with images.max_bytes at this


@dataclass(frozen=True)
class Expect:
    outcome: str  # ok | error | skipped
    detail: str | int = ""  # ok: pages; error: the class; skipped: a phrase of the reason


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def make_corpus(folder: Path, samples: Path) -> dict[str, Expect]:
    """Write the corpus into ``folder``, made from the sample receipts in ``samples``
    (``resources/samples/img``); returns what to expect per path (relative)."""
    folder.mkdir(parents=True, exist_ok=True)
    receipt = Image.open(samples / "sample_000.jpg").convert("RGB")
    pages = [Image.open(samples / f"sample_00{n}.jpg").convert("RGB") for n in (0, 1, 3)]
    rng = random.Random(11)
    files: dict[str, tuple[bytes, Expect]] = {
        "good.jpg": (_encode(receipt, "JPEG", quality=90), Expect("ok", 1)),
        "good.png": (_encode(receipt, "PNG"), Expect("ok", 1)),
        "good.webp": (_encode(receipt, "WEBP"), Expect("ok", 1)),
        "good.bmp": (_encode(receipt, "BMP"), Expect("ok", 1)),
        "cmyk.jpg": (_encode(receipt.convert("CMYK"), "JPEG"), Expect("ok", 1)),
        "grey16.png": (_encode(receipt.convert("L").convert("I;16"), "PNG"), Expect("ok", 1)),
        "palette-alpha.png": (
            _encode(receipt.convert("RGBA").convert("P"), "PNG"),
            Expect("ok", 1),
        ),
        "bilevel.tif": (_encode(receipt.convert("1"), "TIFF"), Expect("ok", 1)),
        "exif-rotated.jpg": ((samples / "sample_003.jpg").read_bytes(), Expect("ok", 1)),
        "blank.png": (_encode(Image.new("RGB", (600, 800), "white"), "PNG"), Expect("ok", 1)),
        "three-pages.tif": (
            _encode(
                pages[0], "TIFF", save_all=True, append_images=pages[1:], compression="tiff_lzw"
            ),
            Expect("ok", 3),
        ),
        "two-pages.pdf": (
            _encode(pages[0], "PDF", save_all=True, append_images=pages[1:2], resolution=200),
            Expect("ok", 2),
        ),
        "animated.gif": (
            _encode(
                pages[0].convert("P"), "GIF", save_all=True, append_images=[pages[1].convert("P")]
            ),
            Expect("ok", 2),
        ),
        "name {with} braces.jpg": (_encode(receipt, "JPEG"), Expect("ok", 1)),
        "name\nwith a newline.jpg": (_encode(receipt, "JPEG"), Expect("ok", 1)),
        'a "quote", a comma.jpg': (_encode(receipt, "JPEG"), Expect("ok", 1)),
        "Reçu n°3.jpg": (_encode(receipt, "JPEG"), Expect("ok", 1)),
        "empty.jpg": (b"", Expect("error", "UnreadableImage")),
        "truncated.jpg": (_encode(receipt, "JPEG")[:5000], Expect("error", "UnreadableImage")),
        "random-bytes.png": (rng.randbytes(20_000), Expect("error", "UnreadableImage")),
        "text-named.jpg": (
            b"This is a text file with a .jpg name.\n",
            Expect("error", "UnreadableImage"),
        ),
        "broken.pdf": (b"%PDF-1.4\nnot really a pdf", Expect("error", "UnreadableImage")),
        "bomb.png": (
            _encode(Image.new("1", (15000, 15000)), "PNG"),
            Expect("error", "DecompressionBomb"),
        ),
        "strip.png": (
            _encode(Image.new("RGB", (20000, 20), "white"), "PNG"),
            Expect("error", "UnsupportedImage"),
        ),
        "tiny.png": (
            _encode(Image.new("RGB", (4, 4), "white"), "PNG"),
            Expect("error", "UnsupportedImage"),
        ),
        "too-big.bmp": (
            _encode(Image.new("RGB", (2000, 1100), "white"), "BMP"),  # 6.6 MB
            Expect("error", "UnreadableImage"),
        ),
        ".hidden.jpg": (_encode(receipt, "JPEG"), Expect("skipped", "hidden")),
        "notes.txt": (b"not a scan\n", Expect("skipped", "not an image extension")),
        "folder.jpg/inside.png": (_encode(receipt, "PNG"), Expect("ok", 1)),
        "real-folder/linked-target.png": (_encode(receipt, "PNG"), Expect("ok", 1)),
    }
    expected = {}
    for relpath, (data, expect) in files.items():
        path = folder / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expected[relpath] = expect
    expected["folder.jpg"] = Expect("skipped", "a folder named like an image")
    os.symlink("nowhere.jpg", folder / "dangling.jpg")
    expected["dangling.jpg"] = Expect("skipped", "a link to nothing")
    os.symlink("loop.jpg", folder / "loop.jpg")
    expected["loop.jpg"] = Expect("skipped", "cannot be examined")
    os.mkfifo(folder / "fifo.jpg")
    expected["fifo.jpg"] = Expect("skipped", "not a regular file (a FIFO)")
    os.symlink("/dev/zero", folder / "zero.jpg")
    expected["zero.jpg"] = Expect("skipped", "not a regular file (a character device)")
    os.symlink(folder / "real-folder", folder / "linked-folder")
    expected["linked-folder"] = Expect("skipped", "a link to a folder already read")
    return expected
