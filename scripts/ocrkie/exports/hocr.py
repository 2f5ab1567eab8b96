"""hOCR 1.2 (http://kba.github.io/hocr-spec/1.2/): ocr_page > ocr_carea > ocr_par > ocr_line >
ocrx_word, with bbox and x_wconf (0-100) on every element, as well-formed XHTML."""

from __future__ import annotations

from lxml import etree

from .. import __version__
from ..page import Box, Page

FOLDER, SUFFIX, VERSION = "hocr", ".hocr", 2
NAMES_IMAGE = True  # names the page image (``Page.image``)
XHTML = "http://www.w3.org/1999/xhtml"
CAPABILITIES = "ocr_page ocr_carea ocr_par ocr_line ocrx_word ocrp_wconf"


def _title(box: Box, *extra: str) -> str:
    return "; ".join([f"bbox {box.x0} {box.y0} {box.x1} {box.y1}", *extra])


def quoted(value: str) -> str:
    """A property value as an hOCR delimited string: in double quotes, with each double quote
    and backslash escaped by a backslash."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wconf(confidence: float) -> str:
    return f"x_wconf {round(max(0.0, min(1.0, confidence)) * 100)}"


def render(page: Page) -> bytes:
    html = etree.Element(f"{{{XHTML}}}html", nsmap={None: XHTML})
    head = etree.SubElement(html, f"{{{XHTML}}}head")
    etree.SubElement(head, f"{{{XHTML}}}title").text = page.filename
    meta = {"http-equiv": "Content-Type", "content": "text/html; charset=utf-8"}
    etree.SubElement(head, f"{{{XHTML}}}meta", meta)
    engine = page.engine
    system = f"ocrkie {__version__} ({engine.get('name')} {engine.get('version', '')})".strip()
    etree.SubElement(head, f"{{{XHTML}}}meta", {"name": "ocr-system", "content": system})
    etree.SubElement(
        head, f"{{{XHTML}}}meta", {"name": "ocr-capabilities", "content": CAPABILITIES}
    )
    body = etree.SubElement(html, f"{{{XHTML}}}body")
    whole = Box(0, 0, page.width, page.height)
    source = f'image {quoted(page.image)}; ppageno 0; x_source "sha256:{page.sha256}"'
    div = _el(body, "div", "ocr_page", "page_1", _title(whole, source))
    for block in page.blocks:
        area = _el(div, "div", "ocr_carea", f"block_{block.id}", _title(block.box))
        par = _el(area, "p", "ocr_par", f"par_{block.id}", _title(block.box))
        for line in block.lines:
            span = _el(
                par,
                "span",
                "ocr_line",
                f"line_{line.id}",
                _title(line.box, _wconf(line.confidence)),
            )
            for n, word in enumerate(line.words):
                item = _el(
                    span,
                    "span",
                    "ocrx_word",
                    f"word_{word.id}",
                    _title(word.box, _wconf(word.confidence)),
                )
                item.text = word.text
                if n < len(line.words) - 1:
                    item.tail = " "
    return etree.tostring(
        html,
        xml_declaration=True,
        encoding="UTF-8",
        pretty_print=True,
        doctype='<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">',
    )


def _el(parent: etree._Element, tag: str, cls: str, ident: str, title: str) -> etree._Element:
    return etree.SubElement(
        parent, f"{{{XHTML}}}{tag}", {"class": cls, "id": ident, "title": title}
    )
