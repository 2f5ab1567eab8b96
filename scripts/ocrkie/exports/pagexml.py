"""PAGE XML 2019-07-15: TextRegion > TextLine > Word, each with Coords points and a
TextEquiv (conf, Unicode), a Baseline on each line (from its polygon: ``page.baseline``), a
ReadingOrder of the regions, the language (``primaryLanguage``, ``secondaryLanguage``: PAGE's
names, see ``language_names``) and the image's resolution where it has one, and
MetadataItems naming the engine and the source image."""

from __future__ import annotations

import json

from lxml import etree

from ..page import Page
from .language_names import page_name

FOLDER, SUFFIX, VERSION = "page", ".xml", 3
NAMES_IMAGE = True  # names the page image (``Page.image``)
DECLARES_LANGUAGE = True  # writes ``Page.languages``
PC = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
LOCATION = f"{PC} {PC}/pagecontent.xsd"


def _el(parent: etree._Element, tag: str, **attrs: object) -> etree._Element:
    return etree.SubElement(parent, f"{{{PC}}}{tag}", {k: str(v) for k, v in attrs.items()})


def _points(points: list[tuple[int, int]]) -> str:
    return " ".join(f"{x},{y}" for x, y in points)


def _coords(parent: etree._Element, points: list[tuple[int, int]]) -> None:
    _el(parent, "Coords", points=_points(points))


def _equiv(parent: etree._Element, text: str, confidence: float | None = None) -> None:
    attrs = {} if confidence is None else {"conf": f"{max(0.0, min(1.0, confidence)):.4f}"}
    _el(_el(parent, "TextEquiv", **attrs), "Unicode").text = text


def render(page: Page) -> bytes:
    root = etree.Element(f"{{{PC}}}PcGts", nsmap={None: PC, "xsi": XSI})
    root.set(f"{{{XSI}}}schemaLocation", LOCATION)
    _metadata(_el(root, "Metadata"), page)
    page_el = _el(root, "Page", **_page_attributes(page))
    if page.blocks:
        order = _el(_el(page_el, "ReadingOrder"), "OrderedGroup", id="reading_order")
        for index, block in enumerate(page.blocks):
            _el(order, "RegionRefIndexed", index=index, regionRef=f"region_{block.id}")
    for block in page.blocks:
        region = _el(page_el, "TextRegion", id=f"region_{block.id}", type="paragraph")
        _coords(region, block.box.corners())
        for line in block.lines:
            line_el = _el(region, "TextLine", id=f"line_{line.id}")
            _coords(line_el, line.points())
            _el(line_el, "Baseline", points=_points(line.baseline))
            for word in line.words:
                word_el = _el(line_el, "Word", id=f"word_{word.id}")
                _coords(word_el, word.points())
                _equiv(word_el, word.text, word.confidence)
            _equiv(line_el, line.text, line.confidence)
        _equiv(region, block.text)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _page_attributes(page: Page) -> dict[str, object]:
    """The image, its size and resolution (pixels per inch), and the text's languages as
    far as PAGE names them."""
    found: dict[str, object] = {
        "imageFilename": page.image,
        "imageWidth": page.width,
        "imageHeight": page.height,
    }
    if page.dpi:
        found |= {
            "imageXResolution": f"{page.dpi[0]:g}",
            "imageYResolution": f"{page.dpi[1]:g}",
            "imageResolutionUnit": "PPI",
        }
    names = [name for tag in page.languages if (name := page_name(tag))]
    for attribute, name in zip(("primaryLanguage", "secondaryLanguage"), names, strict=False):
        found[attribute] = name
    return found


def _metadata(metadata: etree._Element, page: Page) -> None:
    stamp = page.made_at
    etree.SubElement(metadata, f"{{{PC}}}Creator").text = "ocrkie"
    etree.SubElement(metadata, f"{{{PC}}}Created").text = stamp
    etree.SubElement(metadata, f"{{{PC}}}LastChange").text = stamp
    engine = page.engine
    step = _el(
        metadata,
        "MetadataItem",
        type="processingStep",
        name="ocr",
        value=str(engine.get("name", "")),
    )
    labels = _el(step, "Labels")
    for key, value in sorted(engine.items()):
        if key != "name":
            shown = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
            _el(labels, "Label", type=key, value=str(shown))
    _el(metadata, "MetadataItem", type="imageProperties", name="sha256", value=page.sha256)
