"""How the exports name their image (resolvable from where the export file is, on disk and
on S3, and quoted the way hOCR parsers read it) and what they declare besides the words: the
language, the resolution, the reading order, confidences and each hOCR line's text."""

from __future__ import annotations

import os
import re

import pytest
from lxml import etree

from conftest import REPO
from ocrkie.engines.registry import settings_blocks
from ocrkie.errors import ConfigError
from ocrkie.exports import alto, hocr, identity, pagexml
from ocrkie.exports.hocr import quoted
from ocrkie.exports.images import reference
from ocrkie.exports.language_names import PAGE_NAMES
from ocrkie.jobs import export_languages
from ocrkie.page import Page
from ocrkie.settings import check_config, full_schema, load_base_schema

SCHEMAS = REPO / "tests" / "resources" / "schemas"
CONFIG_SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
XSD = {"xs": "http://www.w3.org/2001/XMLSchema"}
XHTML = {"h": "http://www.w3.org/1999/xhtml"}
ALTO = {"a": alto.ALTO}
PAGE = {"p": pagexml.PC}


def test_a_local_image_is_named_relative_to_the_export_folder(tmp_path):
    os.chdir(tmp_path)
    assert reference("results", "page", "scans/a.jpg") == "../../scans/a.jpg"
    assert reference("out/results", "alto", str(tmp_path / "x" / "b.png")) == "../../../x/b.png"
    assert reference("results", "hocr", "results/images/c.jpg") == "../images/c.jpg"


def test_an_image_on_s3_is_relative_in_the_same_bucket_else_its_uri():
    here = "s3://bucket/run/results"
    assert reference(here, "page", "s3://bucket/run/scans/a b.jpg") == "../../scans/a b.jpg"
    assert reference(here, "page", "s3://other/scans/a.jpg") == "s3://other/scans/a.jpg"
    assert reference("results", "page", "s3://bucket/a.jpg") == "s3://bucket/a.jpg"
    assert reference(here, "page", "/data/a.jpg") == "/data/a.jpg"


def test_hocr_quotes_a_file_name_with_quotes_and_backslashes():
    name = 'scans/a "b"; c\\d.jpg'
    title = f"bbox 0 0 10 10; image {quoted(name)}; ppageno 0"
    found = re.search(r'image "((?:[^"\\]|\\.)*)"', title)[1]
    assert re.sub(r"\\(.)", r"\1", found) == name


def _line(text: str, y: int, confidence: float) -> dict:
    words, x = [], 10
    for word in text.split():
        box = [[x, y], [x + 10 * len(word), y], [x + 10 * len(word), y + 20], [x, y + 20]]
        words.append({"text": word, "confidence": confidence, "polygon": box})
        x += 10 * len(word) + 10
    polygon = [[10, y], [x - 10, y], [x - 10, y + 20], [10, y + 20]]
    return {"text": text, "confidence": confidence, "polygon": polygon, "words": words}


def page_of_two_blocks(**facts) -> Page:
    """A header of one one-word line, then after a gap two lines: two blocks."""
    lines = [_line("TOTAL", 10, 0.9347), _line("RM 9.00", 100, 0.5), _line("CASH 10.00", 130, 1)]
    for n, line in enumerate(lines):
        line.update(id=n, row=n)
    record = {
        "image": {"id": "r", "path": "r.png", "sha256": "0" * 64, "width": 200, "height": 200},
        "engine": {"name": "rapidocr", "version": "3"},
        "text": "\n".join(line["text"] for line in lines),
        "lines": lines,
    }
    record["image"].update(facts)
    page = Page.from_record(record, made_at="2025-01-01T00:00:00+00:00")
    page.languages = ("ms", "en")
    return page


def test_hocr_lines_hold_their_text_and_the_page_its_language_and_resolution():
    page = page_of_two_blocks(dpi=[300, 150])
    html = etree.fromstring(hocr.render(page))
    assert html.get("lang") == "ms" and html.get(hocr.XML_LANG) == "ms"
    meta = {m.get("name"): m.get("content") for m in html.findall(".//h:meta", XHTML)}
    assert meta["ocr-langs"] == "ms en" and "ocrp_lang" in meta["ocr-capabilities"]
    (div,) = html.findall(".//h:div[@class='ocr_page']", XHTML)
    assert "; scan_res 300 150;" in div.get("title")
    spans = html.findall(".//h:span[@class='ocr_line']", XHTML)
    assert ["".join(span.itertext()) for span in spans] == [line.text for line in page.lines]
    first = html.find(".//h:span[@class='ocrx_word']", XHTML)
    assert "x_wconf 93.47" in first.get("title")


def test_hocr_without_a_resolution_or_language_declares_neither():
    page = page_of_two_blocks()
    page.languages = ()
    html = etree.fromstring(hocr.render(page))
    assert html.get("lang") is None and "scan_res" not in hocr.render(page).decode()
    assert "ocr-langs" not in hocr.render(page).decode()


def test_page_declares_language_resolution_and_reading_order_and_validates():
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "page-2019-07-15.xsd")))
    document = etree.fromstring(pagexml.render(page_of_two_blocks(dpi=[300, 150])))
    assert schema.validate(document), schema.error_log
    page = document.find("p:Page", PAGE)
    assert page.get("primaryLanguage") == "Malay" and page.get("secondaryLanguage") == "English"
    resolution = [page.get(k) for k in ("imageXResolution", "imageYResolution")]
    assert resolution == ["300", "150"] and page.get("imageResolutionUnit") == "PPI"
    refs = page.findall("p:ReadingOrder/p:OrderedGroup/p:RegionRefIndexed", PAGE)
    regions = [region.get("id") for region in page.findall("p:TextRegion", PAGE)]
    assert [ref.get("regionRef") for ref in refs] == regions and len(regions) == 2
    assert [int(ref.get("index")) for ref in refs] == [0, 1]


def test_alto_declares_the_languages_and_validates():
    document = etree.parse(str(SCHEMAS / "alto-4-4.xsd"))
    for imported in document.iter("{http://www.w3.org/2001/XMLSchema}import"):
        if "xlink" in imported.get("schemaLocation", ""):
            imported.set("schemaLocation", str(SCHEMAS / "xlink.xsd"))
    schema = etree.XMLSchema(document)
    rendered = etree.fromstring(alto.render(page_of_two_blocks()))
    assert schema.validate(rendered), schema.error_log
    page = rendered.find(".//a:Page", ALTO)
    assert page.get("LANG") == "ms" and page.get("OTHERLANGS") == "en"
    assert {block.get("LANG") for block in rendered.iterfind(".//a:TextBlock", ALTO)} == {"ms"}


def test_every_language_name_is_one_of_page_xmls():
    xsd = etree.parse(str(SCHEMAS / "page-2019-07-15.xsd"))
    kind = xsd.find(".//xs:simpleType[@name='LanguageSimpleType']", XSD)
    names = {value.get("value") for value in kind.iterfind(".//xs:enumeration", XSD)}
    assert set(PAGE_NAMES.values()) <= names and PAGE_NAMES["en"] == "English"


@pytest.mark.parametrize(
    ("setting", "backend", "expected"),
    [
        ("auto", "rapidocr", ("en",)),
        ("auto", "easyocr", ("en",)),
        ("auto", "upstage", ()),
        ("de-CH", "upstage", ("de-CH",)),
        (["ms", "en"], "rapidocr", ("ms", "en")),
        ("", "rapidocr", ()),
    ],
)
def test_the_language_setting_and_its_default_per_engine(setting, backend, expected):
    config = {"language": setting, "ocr_backend": backend}
    check_config(config, full_schema(load_base_schema(CONFIG_SCHEMA), settings_blocks(config)))
    assert export_languages(config) == expected


def test_a_language_that_is_no_tag_is_refused_naming_the_setting():
    config = {"language": "English"}
    with pytest.raises(ConfigError, match="language: 'English' does not match"):
        check_config(config, full_schema(load_base_schema(CONFIG_SCHEMA), settings_blocks(config)))


def test_only_the_formats_that_declare_the_language_rerun_when_it_changes():
    assert identity("txt", ("en",)) == identity("txt", ("de",))
    assert identity("page", ("en",)) != identity("page", ("de",))
