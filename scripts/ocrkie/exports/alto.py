"""ALTO 4.4: Page > PrintSpace > TextBlock > TextLine > String (with SP between words), in
pixels, WC 0-1, each line's BASELINE (from its polygon: ``page.baseline``) and Shape/Polygon,
a word's Shape/Polygon where its box is not an upright rectangle, the text's languages
(``LANG``, ``OTHERLANGS`` on the Page, BCP 47 tags; the main one on each TextBlock too), and
a Processing step naming the engine, its version and parameters and the source image's
sha256."""

from __future__ import annotations

import json

from lxml import etree

from ..page import Box, Page

FOLDER, SUFFIX, VERSION = "alto", ".xml", 3
NAMES_IMAGE = True  # names the page image (``Page.image``)
DECLARES_LANGUAGE = True  # writes ``Page.languages``
ALTO = "http://www.loc.gov/standards/alto/ns-v4#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
LOCATION = f"{ALTO} http://www.loc.gov/alto/v4/alto-4-4.xsd"


def _el(parent: etree._Element, tag: str, **attrs: object) -> etree._Element:
    return etree.SubElement(parent, f"{{{ALTO}}}{tag}", {k: str(v) for k, v in attrs.items()})


def _text(parent: etree._Element, tag: str, text: str) -> None:
    _el(parent, tag).text = text


def _box(box: Box) -> dict[str, int]:
    return {"HPOS": box.x0, "VPOS": box.y0, "WIDTH": box.width, "HEIGHT": box.height}


def _shape(parent: etree._Element, points: list[tuple[int, int]]) -> None:
    _el(_el(parent, "Shape"), "Polygon", POINTS=" ".join(f"{x},{y}" for x, y in points))


def render(page: Page) -> bytes:
    alto = etree.Element(f"{{{ALTO}}}alto", nsmap={None: ALTO, "xsi": XSI})
    alto.set(f"{{{XSI}}}schemaLocation", LOCATION)
    _description(_el(alto, "Description"), page)
    layout = _el(alto, "Layout")
    whole = Box(0, 0, page.width, page.height)
    spoken = {"LANG": page.languages[0]} if page.languages else {}
    if len(page.languages) > 1:
        spoken["OTHERLANGS"] = " ".join(page.languages[1:])
    page_el = _el(
        layout,
        "Page",
        ID="page_1",
        PHYSICAL_IMG_NR=1,
        WIDTH=page.width,
        HEIGHT=page.height,
        **spoken,
    )
    space = _el(page_el, "PrintSpace", **_box(whole))
    for block in page.blocks:
        main = {"LANG": page.languages[0]} if page.languages else {}  # for pre-4.2 readers
        block_el = _el(space, "TextBlock", ID=f"block_{block.id}", **_box(block.box), **main)
        for line in block.lines:
            if not line.words:
                continue
            baseline = " ".join(f"{x},{y}" for x, y in line.baseline)
            line_el = _el(
                block_el, "TextLine", ID=f"line_{line.id}", **_box(line.box), BASELINE=baseline
            )
            _shape(line_el, line.points())  # the boundary line-image readers cut along
            for n, word in enumerate(line.words):
                attrs = {"ID": f"string_{word.id}", "CONTENT": word.text, **_box(word.box)}
                string = _el(
                    line_el, "String", **attrs, WC=f"{max(0.0, min(1.0, word.confidence)):.4f}"
                )
                if not word.upright:
                    _shape(string, word.points())
                if n < len(line.words) - 1:
                    following = line.words[n + 1].box
                    gap = max(0, following.x0 - word.box.x1)
                    _el(line_el, "SP", HPOS=word.box.x1, VPOS=word.box.y0, WIDTH=gap)
    return etree.tostring(alto, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _description(description: etree._Element, page: Page) -> None:
    _text(description, "MeasurementUnit", "pixel")
    source = _el(description, "sourceImageInformation")
    _text(source, "fileName", page.image)
    identifier = _el(source, "fileIdentifier", fileIdentifierLocation="sha256")
    identifier.text = page.sha256
    engine = page.engine
    step = _el(description, "Processing", ID="processing_ocr")
    _text(step, "processingCategory", "contentGeneration")
    _text(step, "processingStepDescription", "text recognition")
    settings = {k: v for k, v in engine.items() if k not in ("name", "version")}
    _text(step, "processingStepSettings", json.dumps(settings, sort_keys=True))
    software = _el(step, "processingSoftware")
    _text(software, "softwareName", str(engine.get("name", "")))
    if engine.get("version"):
        _text(software, "softwareVersion", str(engine["version"]))
