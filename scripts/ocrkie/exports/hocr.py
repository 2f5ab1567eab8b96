"""hOCR 1.2 (http://kba.github.io/hocr-spec/1.2/): ocr_page > ocr_carea > ocr_par > ocr_line >
ocrx_word, with bbox and x_wconf (0-100, two decimals) on every element, as well-formed XHTML.
The page declares its language (``lang``, ``ocr-langs``) and, where the image has one, its
resolution (``scan_res``). Each element is on a line of its own, except inside an ocr_line,
whose text is exactly its words joined by single spaces."""

from __future__ import annotations

from lxml import etree

from .. import __version__
from ..page import Box, Page

FOLDER, SUFFIX, VERSION = "hocr", ".hocr", 3
NAMES_IMAGE = True  # names the page image (``Page.image``)
DECLARES_LANGUAGE = True  # writes ``Page.languages``
XHTML = "http://www.w3.org/1999/xhtml"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
CAPABILITIES = "ocr_page ocr_carea ocr_par ocr_line ocrx_word ocrp_wconf"


def _title(box: Box, *extra: str) -> str:
    return "; ".join([f"bbox {box.x0} {box.y0} {box.x1} {box.y1}", *extra])


def quoted(value: str) -> str:
    """A property value as an hOCR delimited string: in double quotes, with each double quote
    and backslash escaped by a backslash."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wconf(confidence: float) -> str:
    return f"x_wconf {max(0.0, min(1.0, confidence)) * 100:.2f}"


def _page_properties(page: Page) -> str:
    found = [f"image {quoted(page.image)}", "ppageno 0"]
    if page.dpi:
        found.append(f"scan_res {round(page.dpi[0])} {round(page.dpi[1])}")
    found.append(f'x_source "sha256:{page.sha256}"')
    return "; ".join(found)


def render(page: Page) -> bytes:
    html = etree.Element(f"{{{XHTML}}}html", nsmap={None: XHTML})
    if page.languages:
        html.set("lang", page.languages[0])
        html.set(XML_LANG, page.languages[0])
    _head(etree.SubElement(html, f"{{{XHTML}}}head"), page)
    body = etree.SubElement(html, f"{{{XHTML}}}body")
    whole = Box(0, 0, page.width, page.height)
    div = _el(body, "div", "ocr_page", "page_1", _title(whole, _page_properties(page)))
    spans = []
    for block in page.blocks:
        area = _el(div, "div", "ocr_carea", f"block_{block.id}", _title(block.box))
        par = _el(area, "p", "ocr_par", f"par_{block.id}", _title(block.box))
        for line in block.lines:
            title = _title(line.box, _wconf(line.confidence))
            span = _el(par, "span", "ocr_line", f"line_{line.id}", title)
            spans.append(span)
            for word in line.words:
                title = _title(word.box, _wconf(word.confidence))
                _el(span, "span", "ocrx_word", f"word_{word.id}", title).text = word.text
    etree.indent(html, space=" ")
    for span in spans:  # inside a line, the words and one space between each two
        span.text = None
        for n, word in enumerate(span):
            word.tail = " " if n < len(span) - 1 else None
    return etree.tostring(
        html,
        xml_declaration=True,
        encoding="UTF-8",
        doctype='<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">',
    )


def _head(head: etree._Element, page: Page) -> None:
    etree.SubElement(head, f"{{{XHTML}}}title").text = page.filename
    meta = {"http-equiv": "Content-Type", "content": "text/html; charset=utf-8"}
    etree.SubElement(head, f"{{{XHTML}}}meta", meta)
    engine = page.engine
    system = f"ocrkie {__version__} ({engine.get('name')} {engine.get('version', '')})".strip()
    _meta(head, "ocr-system", system)
    _meta(head, "ocr-capabilities", CAPABILITIES + (" ocrp_lang" if page.languages else ""))
    if page.languages:
        _meta(head, "ocr-langs", " ".join(page.languages))


def _meta(head: etree._Element, name: str, content: str) -> None:
    etree.SubElement(head, f"{{{XHTML}}}meta", {"name": name, "content": content})


def _el(parent: etree._Element, tag: str, cls: str, ident: str, title: str) -> etree._Element:
    return etree.SubElement(
        parent, f"{{{XHTML}}}{tag}", {"class": cls, "id": ident, "title": title}
    )
