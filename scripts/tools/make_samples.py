"""Render the bundled sample receipts and their ground truth (SROIE layout).

    python scripts/tools/make_samples.py resources/samples

writes ``img/<name>.<ext>``, ``box/<name>.csv`` (one text line per row:
``x1,y1,x2,y2,x3,y3,x4,y4,TEXT``) and ``key/<name>.json`` (company, date, address, total).
Everything is invented and rendered with Pillow's bundled font, so the samples may be
redistributed. The output is deterministic.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

WIDTH = 640
MARGIN = 36


@dataclass
class Receipt:
    name: str
    company: str
    reg_no: str
    address: list[str]
    date_label: str  # as printed
    date: str  # ground truth, as printed
    items: list[tuple[str, float]]
    tax_rate: float
    currency: str
    ext: str = "jpg"
    exif_rotated: bool = False  # stored sideways with an EXIF orientation tag


RECEIPTS = [
    Receipt(
        "sample_000",
        "KEDAI RUNCIT SRI MURNI SDN BHD",
        "(802113-K)",
        ["NO. 12, JALAN MAWAR 3,", "TAMAN BUNGA RAYA,", "43000 KAJANG, SELANGOR"],
        "DATE: 25/12/2018  14:02",
        "25/12/2018",
        [("MILO 1KG", 18.90), ("GARDENIA BREAD", 3.80), ("EGGS 10S", 5.20)],
        0.06,
        "RM",
    ),
    Receipt(
        "sample_001",
        "HARBOUR LIGHT TRADING LTD",
        "CO. NO 4471902",
        ["88 QUAYSIDE ROAD,", "PORTSMOUTH PO1 3LT"],
        "Date 2019-03-04 09:41",
        "2019-03-04",
        [
            ("A4 PAPER 500 SHEETS", 6.49),
            ("BLUE PENS X10", 2.99),
            ("STAPLER", 8.50),
            ("ENVELOPES C5", 3.25),
        ],
        0.20,
        "GBP",
    ),
    Receipt(
        "sample_002",
        "GOLDEN SPOON RESTAURANT",
        "GST REG 001234567890",
        ["LOT 5, JALAN PASAR BESAR,", "50050 KUALA LUMPUR"],
        "12 Jan 2020  19:30",
        "12 Jan 2020",
        [("NASI LEMAK", 8.50), ("TEH TARIK", 2.80), ("ROTI CANAI X2", 3.00)],
        0.0,
        "RM",
        ext="png",
    ),
    Receipt(
        "sample_003",
        "NORTHWIND HARDWARE INC",
        "EIN 84-2231907",
        ["1200 MAPLE STREET,", "SPRINGFIELD IL 62704"],
        "DATE: 03.05.2021",
        "03.05.2021",
        [
            ("HAMMER 16OZ", 14.99),
            ("WOOD SCREWS BOX", 6.49),
            ("SANDPAPER PACK", 5.25),
            ("TAPE MEASURE", 9.99),
            ("WORK GLOVES", 12.00),
        ],
        0.0625,
        "USD",
        exif_rotated=True,
    ),
    Receipt(
        "sample_004",
        "BAKERY DE LUNA ENTERPRISE",
        "(JM0455120-T)",
        ["NO 7, JALAN BESTARI 2,", "TAMAN NUSA BESTARI,", "81300 SKUDAI, JOHOR"],
        "TARIKH: 07/08/2019",
        "07/08/2019",
        [("CHOCOLATE CAKE", 45.00), ("BUTTER CROISSANT X4", 14.00)],
        0.06,
        "RM",
    ),
    Receipt(
        "sample_005",
        "CITY PHARMACY SDN BHD",
        "(1123456-A)",
        ["23, JALAN SULTAN ISMAIL,", "50250 KUALA LUMPUR"],
        "DATE : 30/11/2022",
        "30/11/2022",
        [
            ("PARACETAMOL 500MG", 7.90),
            ("VITAMIN C 1000MG", 32.50),
            ("PLASTERS", 4.60),
            ("HAND SANITISER", 9.90),
        ],
        0.0,
        "RM",
        ext="tif",
    ),
]


class Page:
    """Lays out rows of text top to bottom and records each line's box."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.rows: list[list[tuple[str, int, str]]] = []  # (text, size, align)

    def row(self, *cells: tuple[str, str], size: int = 24) -> None:
        self.rows.append([(text, size, align) for text, align in cells])

    def render(self) -> tuple[Image.Image, list[tuple[list[int], str]]]:
        height = MARGIN * 2 + sum(max(c[1] for c in r) + 14 for r in self.rows)
        image = Image.new("L", (WIDTH, height), 250)
        draw = ImageDraw.Draw(image)
        boxes, y = [], MARGIN
        for row in self.rows:
            row_height = max(c[1] for c in row)
            for text, size, align in row:
                font = ImageFont.load_default(size=size)
                left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
                x = {
                    "left": MARGIN,
                    "right": WIDTH - MARGIN - right,
                    "center": (WIDTH - right) // 2,
                }[align]
                draw.text((x, y), text, fill=self.rng.randint(10, 40), font=font)
                x0, y0, x1, y1 = x + left - 2, y + top - 2, x + right + 2, y + bottom + 2
                boxes.append(([x0, y0, x1, y0, x1, y1, x0, y1], text))
            y += row_height + 14
        return image, boxes


def _money(value: float) -> str:
    return f"{value:,.2f}"


def layout(receipt: Receipt, rng: random.Random) -> tuple[Image.Image, list, str]:
    page = Page(rng)
    page.row((receipt.company, "center"), size=26)
    page.row((receipt.reg_no, "center"), size=20)
    for line in receipt.address:
        page.row((line, "center"), size=22)
    page.row((f"TEL: 0{rng.randint(100000000, 999999999)}", "center"), size=20)
    page.row(("TAX INVOICE", "center"), size=24)
    page.row((receipt.date_label, "left"), size=22)
    page.row((f"RECEIPT NO: {rng.randint(10000, 99999)}", "left"), size=22)
    for item, price in receipt.items:
        page.row((item, "left"), (_money(price), "right"))
    subtotal = round(sum(price for _, price in receipt.items), 2)
    tax = round(subtotal * receipt.tax_rate, 2)
    total = round(subtotal + tax, 2)
    page.row(("SUBTOTAL", "left"), (_money(subtotal), "right"))
    if tax:
        page.row((f"TAX {receipt.tax_rate * 100:g}%", "left"), (_money(tax), "right"))
    page.row(("TOTAL", "left"), (f"{receipt.currency} {_money(total)}", "right"), size=28)
    cash = float(int(total // 10 + 1) * 10)
    page.row(("CASH", "left"), (_money(cash), "right"))
    page.row(("CHANGE", "left"), (_money(cash - total), "right"))
    page.row(("THANK YOU, PLEASE COME AGAIN", "center"), size=20)
    image, boxes = page.render()
    return image, boxes, f"{total:.2f}"


def scan_look(image: Image.Image) -> Image.Image:
    """A little blur and sensor noise, so the OCR is not reading perfect pixels."""
    noise = Image.effect_noise(image.size, 40)
    noisy = Image.blend(image, noise, 0.08)
    return noisy.filter(ImageFilter.GaussianBlur(0.6)).convert("RGB")


def write_sample(receipt: Receipt, out: Path) -> None:
    rng = random.Random(receipt.name)
    image, boxes, total = layout(receipt, rng)
    image = scan_look(image)
    target = out / "img" / f"{receipt.name}.{receipt.ext}"
    if receipt.exif_rotated:  # stored rotated; orientation 6 tells viewers to turn it back
        exif = Image.Exif()
        exif[0x0112] = 6
        image.transpose(Image.Transpose.ROTATE_90).save(target, quality=92, exif=exif)
    elif receipt.ext == "jpg":
        image.save(target, quality=92)
    else:
        image.save(target, compression="tiff_lzw" if receipt.ext == "tif" else None)
    rows = [",".join(str(v) for v in coords) + "," + text for coords, text in boxes]
    (out / "box" / f"{receipt.name}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    key = {
        "company": receipt.company,
        "date": receipt.date,
        "address": " ".join(receipt.address),
        "total": total,
    }
    (out / "key" / f"{receipt.name}.json").write_text(json.dumps(key, indent=4) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder to write img/, box/ and key/ into")
    args = parser.parse_args()
    for sub in ("img", "box", "key"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)
    for receipt in RECEIPTS:
        write_sample(receipt, args.out)
    print(f"wrote {len(RECEIPTS)} sample receipts to {args.out}")


if __name__ == "__main__":
    main()
