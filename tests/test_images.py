"""Reading and normalising images; every kind of bad input is refused with a clear class."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ocrkie.errors import DecompressionBomb, TooManyPages, UnreadableImage
from ocrkie.images import count_pages, decode_page, describe

LIMITS = {"max_pixels": 50_000_000, "max_side": 4096}


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_exif_orientation_is_applied():
    upright = Image.new("RGB", (200, 100), "white")
    upright.paste((0, 0, 0), (0, 0, 20, 20))  # a mark at the top left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned; viewers rotate it 90° clockwise
    data = encode(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif, quality=95)
    page = decode_page(data, **LIMITS)
    assert (page.width, page.height) == (200, 100)
    assert page.image.getpixel((5, 5))[0] < 80  # the mark is back at the top left
    assert page.steps[0] == "exif-orientation:6"


@pytest.mark.parametrize(
    ("image", "fmt"),
    [
        (Image.new("CMYK", (40, 30), (0, 0, 0, 0)), "JPEG"),
        (Image.new("P", (40, 30), 3), "PNG"),
        (Image.new("RGBA", (40, 30), (0, 0, 0, 0)), "PNG"),
        (Image.new("LA", (40, 30), (0, 0)), "PNG"),
        (Image.new("1", (40, 30), 1), "TIFF"),
        (Image.fromarray(np.full((30, 40), 40000, dtype=np.uint16)), "PNG"),
    ],
    ids=["cmyk", "palette", "rgba", "la", "bilevel", "16-bit"],
)
def test_every_mode_becomes_8_bit_rgb(image: Image.Image, fmt: str):
    page = decode_page(encode(image, fmt), **LIMITS)
    assert page.image.mode == "RGB"
    assert page.image.size == (40, 30)
    assert any(step.startswith("mode:") for step in page.steps)


def test_transparent_pixels_become_white_paper():
    page = decode_page(encode(Image.new("RGBA", (10, 10), (0, 0, 0, 0)), "PNG"), **LIMITS)
    assert page.image.getpixel((0, 0)) == (255, 255, 255)


def test_16_bit_greyscale_keeps_its_contrast():
    pixels = np.zeros((10, 20), dtype=np.uint16)
    pixels[:, 10:] = 1000  # dark scan: all values far below 65535
    page = decode_page(encode(Image.fromarray(pixels), "PNG"), **LIMITS)
    assert page.image.getpixel((0, 0)) == (0, 0, 0)
    assert page.image.getpixel((15, 0)) == (255, 255, 255)


def test_large_pages_are_downscaled_and_the_scale_is_kept():
    page = decode_page(
        encode(Image.new("RGB", (6000, 3000), "white"), "PNG"), max_pixels=50_000_000, max_side=1500
    )
    assert page.image.size == (1500, 750)
    assert (page.width, page.height) == (6000, 3000)
    assert page.scale == 0.25


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", UnreadableImage, "empty"),
        (b"plain text, definitely not an image", UnreadableImage, "not a recognised image"),
        (b"%PDF-1.4 a broken PDF", UnreadableImage, "not a readable PDF"),
        (encode(Image.new("RGB", (300, 300), "red"), "JPEG")[:200], UnreadableImage, "corrupt"),
        (encode(Image.new("RGB", (300, 300), "red"), "PNG")[:-30], UnreadableImage, "corrupt"),
    ],
    ids=["empty", "not-an-image", "broken-pdf", "truncated-jpeg", "truncated-png"],
)
def test_unusable_files_raise_a_per_image_error(data: bytes, error: type, message: str):
    with pytest.raises(error, match=message):
        decode_page(data, **LIMITS)


def test_decompression_bombs_are_refused():
    data = encode(Image.new("1", (5000, 5000)), "PNG")  # 25 Mpx, tiny file
    with pytest.raises(DecompressionBomb, match="10000000 pixels"):
        decode_page(data, max_pixels=10_000_000, max_side=4096)
    with pytest.raises(DecompressionBomb):  # above twice the limit Pillow raises outright
        decode_page(data, max_pixels=1_000_000, max_side=4096)


def test_every_page_of_a_tiff_and_a_pdf_is_read():
    pages = [Image.new("RGB", (400 + 10 * n, 300), (255, 255 - 40 * n, 255)) for n in range(3)]
    tiff, pdf = io.BytesIO(), io.BytesIO()
    pages[0].save(tiff, "TIFF", save_all=True, append_images=pages[1:])
    pages[0].save(pdf, "PDF", save_all=True, append_images=pages[1:], resolution=100)
    for data, unit in ((tiff.getvalue(), 1), (pdf.getvalue(), 2)):  # the PDF: rendered at 200 dpi
        assert count_pages(data, 10**8) == 3
        for number in (1, 2, 3):
            page = decode_page(data, **LIMITS, number=number)
            assert (page.number, page.count) == (number, 3)
            assert abs(page.width - (400 + 10 * (number - 1)) * unit) <= 1


def test_normalisation_records_only_steps_that_happened():
    plain = decode_page(encode(Image.new("RGB", (300, 200), "white"), "JPEG"), **LIMITS)
    assert plain.steps == []
    grey = decode_page(encode(Image.new("L", (300, 200), 255), "PNG"), **LIMITS)
    assert grey.steps == ["mode:L->RGB"]


def test_the_pixel_limit_holds_for_every_frame_not_the_first_alone():
    small, huge = Image.new("1", (100, 100)), Image.new("1", (3000, 3000))
    data = encode(small, "TIFF", save_all=True, append_images=[huge], compression="group4")
    assert len(data) < 5000  # a few kilobytes that would decode to 9 megapixels
    assert describe(data, max_pixels=1_000_000).pages == 2
    assert decode_page(data, max_pixels=1_000_000, max_side=4096).width == 100  # page 1 reads
    with pytest.raises(DecompressionBomb, match="page 2 is 3000x3000 pixels, over the limit"):
        decode_page(data, max_pixels=1_000_000, max_side=4096, number=2)


def test_a_document_past_the_page_limit_is_refused_whole():
    blank = Image.new("L", (50, 50), 255)
    data = encode(blank, "PDF", save_all=True, append_images=[blank] * 11, resolution=72)
    assert describe(data, max_pixels=10**8, max_pages=12).pages == 12
    with pytest.raises(TooManyPages, match=r"12 pages, over the limit of 10 \(images.max_pages\)"):
        describe(data, max_pixels=10**8, max_pages=10)


def test_the_resolution_a_file_declares_is_read_upright_and_none_is_invented():
    blank = Image.new("RGB", (60, 40), "white")
    assert describe(encode(blank, "PNG", dpi=(300, 300)), 10**8).dpi == (300.0, 300.0)
    assert describe(encode(blank, "JPEG", dpi=(200, 100)), 10**8).dpi == (200.0, 100.0)
    assert describe(encode(blank, "TIFF", dpi=(600, 600)), 10**8).dpi == (600.0, 600.0)
    for kind in ("JPEG", "PNG", "TIFF", "WEBP"):  # Pillow says 72 or 1 for some of these
        assert describe(encode(blank, kind), 10**8).dpi is None, kind
    exif = blank.getexif()
    exif.update({0x0112: 6, 0x011A: 300.0, 0x011B: 150.0, 0x0128: 2})  # a quarter turn
    assert describe(encode(blank, "JPEG", exif=exif), 10**8).dpi == (150.0, 300.0)
    pdf = encode(blank, "PDF", resolution=72)
    assert describe(pdf, 10**8, pdf_dpi=150).dpi == (150.0, 150.0)  # rendered at
