"""The outputs people use, from one real run over the samples with every export switched on:
ALTO and PAGE valid against the official schemas, hOCR well-formed and structured, every
format's boxes back to the record's word boxes, the KIE tables, the LMDB training set read as
deep-text-recognition-benchmark reads it (the report: test_report.py)."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
from pathlib import Path

import lmdb
import numpy as np
import pytest
from lxml import etree
from PIL import Image, ImageOps

from conftest import REPO, SAMPLE_IMAGES, SAMPLES, Workdir, make_workdir
from ocrkie.tables import kie_columns, write_kie_tables

pytestmark = pytest.mark.xdist_group("outputs")

SCHEMAS = REPO / "tests" / "resources" / "schemas"  # official XSDs (README there)
ALTO_NS = {"a": "http://www.loc.gov/standards/alto/ns-v4#"}
PAGE_NS = {"p": "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"}
XHTML = {"h": "http://www.w3.org/1999/xhtml"}
SCANNED = "sample_002.png"  # the sample that declares its resolution in the run below


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Workdir:
    workdir = make_workdir(tmp_path_factory.mktemp("outputs"), SAMPLE_IMAGES)
    with Image.open(workdir.scans / SCANNED) as scan:  # as a scanner writes it: 300 dpi
        scan.load()
        scan.save(workdir.scans / SCANNED, dpi=(300, 300))
    (workdir.path / "all.yaml").write_text(
        "input_dir: scans\nshard_size: 2\nexports: [json, txt, hocr, alto, page]\n"
        "lmdb: {enabled: true, min_confidence: 0.0, max_length: 1000}\n"
    )
    workdir.snakemake("--configfile", "config/config.yaml", "all.yaml")
    return workdir


@pytest.fixture(scope="module")
def alto_schema() -> etree.XMLSchema:
    """ALTO 4.4 with its XLink import pointed at the local copy (no network here)."""
    document = etree.parse(str(SCHEMAS / "alto-4-4.xsd"))
    for imported in document.iter("{http://www.w3.org/2001/XMLSchema}import"):
        if "xlink" in imported.get("schemaLocation", ""):
            imported.set("schemaLocation", str(SCHEMAS / "xlink.xsd"))
    return etree.XMLSchema(document)


def word_boxes(record: dict) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(text, (x0, y0, x1, y1)) of every word of a record, in reading order."""
    boxes = []
    for line in record["lines"]:
        for word in line["words"]:
            xs = [p[0] for p in word["polygon"]]
            ys = [p[1] for p in word["polygon"]]
            boxes.append((word["text"], (min(xs), min(ys), max(xs), max(ys))))
    return boxes


def assert_same_box(found: tuple[float, ...], expected: tuple[float, ...]) -> None:
    assert all(abs(a - b) <= 1.0 for a, b in zip(found, expected, strict=True)), (found, expected)


def test_every_image_gets_every_export(full_run: Workdir):
    ids = set(full_run.records("ocr"))
    for folder, suffix in (("txt", ".txt"), ("hocr", ".hocr"), ("alto", ".xml"), ("page", ".xml")):
        assert {p.name.removesuffix(suffix) for p in (full_run.results / folder).iterdir()} == ids
    for image_id, record in full_run.records("ocr").items():
        text = (full_run.results / "txt" / f"{image_id}.txt").read_text(encoding="utf-8")
        assert text == record["text"] + "\n"


def test_alto_files_are_valid_and_carry_the_words_boxes_and_provenance(full_run, alto_schema):
    for image_id, record in full_run.records("ocr").items():
        document = etree.parse(str(full_run.results / "alto" / f"{image_id}.xml"))
        assert alto_schema.validate(document), alto_schema.error_log
        strings = document.findall(".//a:String", ALTO_NS)
        expected = word_boxes(record)
        assert [s.get("CONTENT") for s in strings] == [text for text, _ in expected]
        for string, (_, box) in zip(strings, expected, strict=True):
            x, y, w, h = (float(string.get(k)) for k in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
            assert_same_box((x, y, x + w, y + h), box)
            assert 0 <= float(string.get("WC")) <= 1
        processing = document.find(".//a:Processing", ALTO_NS)
        software = processing.find(".//a:softwareName", ALTO_NS).text
        assert software == record["engine"]["name"]
        assert processing.find(".//a:softwareVersion", ALTO_NS).text == record["engine"]["version"]
        settings = json.loads(processing.find(".//a:processingStepSettings", ALTO_NS).text)
        assert settings["params"] == record["engine"]["params"]
        sha = document.find(".//a:fileIdentifier", ALTO_NS).text
        assert sha == record["image"]["sha256"]
        assert document.find(".//a:Page", ALTO_NS).get("LANG") == "en"  # rapidocr's
        lines = document.findall(".//a:TextLine", ALTO_NS)
        assert all(
            line.findall("a:SP", ALTO_NS) or len(line.findall("a:String", ALTO_NS)) == 1
            for line in lines
        )


def test_page_files_are_valid_and_carry_the_words_boxes(full_run):
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "page-2019-07-15.xsd")))
    for image_id, record in full_run.records("ocr").items():
        document = etree.parse(str(full_run.results / "page" / f"{image_id}.xml"))
        assert schema.validate(document), schema.error_log
        words = document.findall(".//p:Word", PAGE_NS)
        expected = word_boxes(record)
        assert len(words) == len(expected)
        for word, (text, box) in zip(words, expected, strict=True):
            assert word.find("p:TextEquiv/p:Unicode", PAGE_NS).text == text
            points = [
                tuple(map(int, p.split(",")))
                for p in word.find("p:Coords", PAGE_NS).get("points").split()
            ]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            assert_same_box((min(xs), min(ys), max(xs), max(ys)), box)
        item = document.find(".//p:MetadataItem[@type='processingStep']", PAGE_NS)
        assert item.get("value") == record["engine"]["name"]
        page = document.find("p:Page", PAGE_NS)
        assert page.get("primaryLanguage") == "English"
        refs = page.findall("p:ReadingOrder/p:OrderedGroup/p:RegionRefIndexed", PAGE_NS)
        regions = page.findall("p:TextRegion", PAGE_NS)
        assert [r.get("regionRef") for r in refs] == [r.get("id") for r in regions]
        scanned = record["image"]["path"] == SCANNED
        assert record["image"].get("dpi") == ([300, 300] if scanned else None)
        assert page.get("imageXResolution") == ("300" if scanned else None)


def test_hocr_files_parse_with_the_hocr_structure(full_run):
    for image_id, record in full_run.records("ocr").items():
        html = etree.parse(str(full_run.results / "hocr" / f"{image_id}.hocr"))
        meta = {m.get("name"): m.get("content") for m in html.findall(".//h:meta", XHTML)}
        assert meta["ocr-system"].startswith("ocrkie ") and "ocrx_word" in meta["ocr-capabilities"]
        (page,) = html.findall(".//h:div[@class='ocr_page']", XHTML)
        assert f"bbox 0 0 {record['image']['width']} {record['image']['height']}" in page.get(
            "title"
        )
        for area in page.findall("h:div", XHTML):
            assert area.get("class") == "ocr_carea"
            for par in area.findall("h:p", XHTML):
                assert par.get("class") == "ocr_par"
                assert {s.get("class") for s in par.findall("h:span", XHTML)} == {"ocr_line"}
        words = html.findall(".//h:span[@class='ocrx_word']", XHTML)
        for word, (text, box) in zip(words, word_boxes(record), strict=True):
            title = word.get("title")
            assert word.text == text
            bbox = tuple(map(float, re.search(r"bbox (\d+) (\d+) (\d+) (\d+)", title).groups()))
            assert_same_box(bbox, box)
            assert 0 <= float(re.search(r"x_wconf ([\d.]+)", title)[1]) <= 100
        for line, expected in zip(
            html.findall(".//h:span[@class='ocr_line']", XHTML), record["lines"], strict=True
        ):  # a line's text is its words, as hocr-tools and OCRmyPDF read it
            assert "".join(line.itertext()) == " ".join(w["text"] for w in expected["words"])
        assert html.getroot().get("lang") == "en"
        assert ("scan_res 300 300" in page.get("title")) == (record["image"]["path"] == SCANNED)


def test_the_kie_tables_hold_one_row_per_image_with_the_records_values(full_run):
    kie = full_run.records("kie")
    rows = list(csv.DictReader((full_run.results / "kie.csv").open(encoding="utf-8")))
    assert [row["id"] for row in rows] == sorted(kie)  # in id order, across the shards
    fields = ["company", "date", "address", "total"]
    assert list(rows[0]) == kie_columns(fields, agreed=["company"])  # agreement: [text]
    for row in rows:
        record = kie[row["id"]]
        for name in fields:
            assert row[name] == (record["fields"][name]["normalized"] or "")
            assert row[f"{name}_raw"] == (record["fields"][name]["value"] or "")
            assert float(row[f"{name}_confidence"]) == record["fields"][name]["confidence"]
    lines = (full_run.results / "kie.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == sorted(kie)


def test_pandas_reads_the_kie_table_as_printed_rows_in_id_order(tmp_path: Path):
    """Shards interleave ids; amounts, codes with leading zeros and "NA" read back as
    written with the reader options docs/formats.md gives."""
    pandas = pytest.importorskip("pandas")

    def field(raw: str, normalized: str) -> dict:
        return {"value": raw, "normalized": normalized, "confidence": 0.5}

    def entry(image_id: str, total: str, company: str) -> dict:
        fields = {
            "company": field(company, company),
            "address": field("1, JALAN 2, 81100 JOHOR", "1,JALAN 2,81100 JOHOR"),
            "total": field(f"RM {total}", total),
        }
        return {"id": image_id, "path": f"{image_id}.jpg", "status": "ok", "fields": fields}

    shards = [
        [entry("a", "9.00", "007 MART"), entry("c", "10.50", "NA")],
        [entry("b", "0.90", "B")],
    ]
    paths = []
    for n, entries in enumerate(shards):
        paths.append(str(tmp_path / f"kie-{n}.json"))
        Path(paths[-1]).write_text(json.dumps({"entries": entries}), encoding="utf-8")
    names = ["company", "address", "total"]
    write_kie_tables(paths, names, str(tmp_path / "kie.csv"), str(tmp_path / "kie.jsonl"))
    table = pandas.read_csv(tmp_path / "kie.csv", dtype=str, keep_default_na=False)
    assert list(table["id"]) == ["a", "b", "c"]
    assert list(table["total"]) == ["9.00", "0.90", "10.50"]
    assert list(table["total_raw"]) == ["RM 9.00", "RM 0.90", "RM 10.50"]
    assert list(table["company"]) == ["007 MART", "B", "NA"]
    assert set(table["address_raw"]) == {"1, JALAN 2, 81100 JOHOR"}
    assert set(table["address"]) == {"1,JALAN 2,81100 JOHOR"}
    jsonl = pandas.read_json(tmp_path / "kie.jsonl", lines=True, dtype=False)
    assert list(jsonl["id"]) == ["a", "b", "c"]
    assert [f["total"]["normalized"] for f in jsonl["fields"]] == ["9.00", "0.90", "10.50"]


@pytest.mark.parametrize("name", ["page", "alto"])
def test_kraken_reads_every_line_with_its_text_and_baseline(full_run, name):
    """kraken's own reader (the one its training tools use) takes a line only with a
    baseline; each line's baseline lies inside its boundary, in the line's lower part."""
    from kraken.lib.xml import XMLPage
    from shapely.geometry import LineString, Polygon

    for image_id, record in full_run.records("ocr").items():
        export = full_run.results / name / f"{image_id}.xml"
        page = XMLPage(export)
        lines = page.get_sorted_lines()
        assert Path(page.imagename).is_file()
        assert page.image_size == (record["image"]["width"], record["image"]["height"])
        expected = [
            line["text"] if name == "page" else " ".join(w["text"] for w in line["words"])
            for line in record["lines"]
            if line["words"]
        ]
        assert [line.text for line in lines] == expected
        for line, source in zip(lines, [r for r in record["lines"] if r["words"]], strict=True):
            boundary = Polygon(line.boundary).buffer(1)
            assert boundary.contains(LineString(line.baseline))
            top, bottom = min(p[1] for p in source["polygon"]), max(p[1] for p in source["polygon"])
            assert all(y > (top + bottom) / 2 for _, y in line.baseline)


def named_images(run: Workdir, image_id: str) -> dict[str, tuple[Path, tuple[int, int]]]:
    """The image each export names (resolved from where the export is) and the page size
    the export declares, by format."""
    page = run.results / "page" / f"{image_id}.xml"
    page_el = etree.parse(str(page)).find(".//p:Page", PAGE_NS)
    alto = run.results / "alto" / f"{image_id}.xml"
    document = etree.parse(str(alto))
    alto_page = document.find(".//a:Page", ALTO_NS)
    hocr = run.results / "hocr" / f"{image_id}.hocr"
    title = etree.parse(str(hocr)).find(".//h:div[@class='ocr_page']", XHTML).get("title")
    hocr_image = re.search(r'image "((?:[^"\\]|\\.)*)"', title)[1].replace('\\"', '"')
    hocr_size = tuple(map(int, re.search(r"bbox 0 0 (\d+) (\d+)", title).groups()))
    return {
        "page": (
            page.parent / page_el.get("imageFilename"),
            (int(page_el.get("imageWidth")), int(page_el.get("imageHeight"))),
        ),
        "alto": (
            alto.parent / document.find(".//a:fileName", ALTO_NS).text,
            (int(alto_page.get("WIDTH")), int(alto_page.get("HEIGHT"))),
        ),
        "hocr": (hocr.parent / hocr_image, hocr_size),
    }


def test_every_export_names_an_image_its_words_line_up_on(full_run):
    """A reader opens the image an export names, relative to the export, and crops each word
    with the export's coordinates: it gets the word as the upright page shows it, also for a
    photo stored sideways with an EXIF orientation (sample_003, a JPEG copy beside them)."""
    turned = 0
    for image_id, record in full_run.records("ocr").items():
        original = Image.open(full_run.scans / record["image"]["path"])
        turned += original.size != (record["image"]["width"], record["image"]["height"])
        upright = ImageOps.exif_transpose(original).convert("L")
        for name, (path, size) in named_images(full_run, image_id).items():
            named = Image.open(path)
            assert named.size == size == upright.size, (name, path)
            assert (named.getexif().get(0x0112) or 1) == 1  # no reader turns it again
            pixels = named.convert("L")
            for _, box in word_boxes(record):
                found = np.asarray(pixels.crop(box), dtype=float)
                expected = np.asarray(upright.crop(box), dtype=float)
                assert np.abs(found - expected).mean() < 3, (name, image_id, box)
    assert turned == 1  # sample_003: stored 780x640, EXIF orientation 6
    assert {p.name for p in (full_run.results / "images").iterdir()} == {
        f"{i}.jpg" for i in full_run.records("ocr") if i.startswith("sample_003")
    }


class LmdbDataset:
    """Read as deep-text-recognition-benchmark's ``dataset.LmdbDataset`` does."""

    def __init__(self, root: Path):
        self.env = lmdb.open(
            str(root), max_readers=32, readonly=True, lock=False, readahead=False, meminit=False
        )
        with self.env.begin(write=False) as txn:
            self.count = int(txn.get(b"num-samples"))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[Image.Image, str]:
        index += 1  # lmdb starts with 1
        with self.env.begin(write=False) as txn:
            label = txn.get(b"label-%09d" % index).decode("utf-8")
            buffer = io.BytesIO(txn.get(b"image-%09d" % index))
            return Image.open(buffer).convert("RGB"), label


def expected_size(polygon: list[list[float]], padding: float = 0.1) -> tuple[int, int]:
    (tl, tr, br, bl) = polygon
    width = (math.dist(tl, tr) + math.dist(bl, br)) / 2
    height = (math.dist(tl, bl) + math.dist(tr, br)) / 2
    pad = padding * height
    return round(width + 2 * pad), round(height + 2 * pad)


def test_the_lmdb_set_reads_back_crop_by_crop_split_by_image(full_run):
    manifest = json.loads((full_run.results / "lmdb" / "manifest.json").read_text())
    ocr = full_run.records("ocr")
    by_split = {"train": [], "val": []}
    for image in manifest["images"]:
        assert image["sha256"] == ocr[image["id"]]["image"]["sha256"]
        by_split[image["split"]].extend(ocr[image["id"]]["lines"])
    assert by_split["train"] and by_split["val"]  # val_fraction 0.1 of 6 images: still one
    assert manifest["counts"]["images_per_split"]["val"] >= 1
    for split, lines in by_split.items():
        dataset = LmdbDataset(full_run.results / "lmdb" / split)
        assert len(dataset) == len(lines) == manifest["counts"][split]
        for index, line in enumerate(lines):
            crop, label = dataset[index]
            assert label == line["text"]
            width, height = expected_size(line["polygon"])
            assert abs(crop.width - width) <= 1 and abs(crop.height - height) <= 1
            # what DTRB keeps given --character <dtrb_character> --batch_max_length <max>
            assert dtrb_keeps(label, manifest["dtrb_character"], 1000, sensitive=False)
    assert set(manifest["charset"]) == {
        c for lines in by_split.values() for line in lines for c in line["text"]
    }
    assert any(w.startswith("val holds") for w in manifest["warnings"])  # 1 image of receipts


def dtrb_keeps(label: str, character: str, batch_max_length: int, sensitive: bool) -> bool:
    """Whether deep-text-recognition-benchmark's LmdbDataset keeps a label: ``--sensitive``
    replaces ``--character`` with printable ASCII less whitespace and keeps the case; else
    every label is lowercased first (dataset.py, train.py)."""
    import string

    if sensitive:
        character = string.printable[:-6]
    if len(label) > batch_max_length:
        return False
    return re.search(f"[^{character}]", label if sensitive else label.lower()) is None


def test_the_lmdb_set_of_words_holds_every_word_box(full_run, tmp_path, monkeypatch):
    from ocrkie.images import ImageLimits
    from ocrkie.lmdbset import make_lmdb

    monkeypatch.chdir(full_run.path)  # where the plan's image paths start
    shutil.copytree(full_run.results / "ocr", tmp_path / "results" / "ocr")
    settings = {"truth_dir": "", "min_confidence": 0.0, "max_length": 1000, "unit": "word"}
    manifest = make_lmdb(
        str(full_run.results / "plan" / "plan.json.gz"),
        str(tmp_path / "results"),
        settings,
        ImageLimits(max_pixels=10**8, max_side=4096),
        str(tmp_path / "manifest.json"),
    )
    ocr = full_run.records("ocr")
    labels = []
    for split in ("train", "val"):
        dataset = LmdbDataset(tmp_path / "results" / "lmdb" / split)
        assert len(dataset) == manifest["counts"][split] > 0
        labels += [dataset[i][1] for i in range(len(dataset))]
    words = [w["text"] for r in ocr.values() for line in r["lines"] for w in line["words"]]
    assert sorted(labels) == sorted(words) and manifest["unit"] == "word"
    assert all(dtrb_keeps(label, "", 25, sensitive=True) for label in labels if len(label) <= 25)


def test_the_lmdb_set_from_ground_truth_and_filters(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:2])
    settings = f"{{truth_dir: {SAMPLES}, max_length: 10, charset: '0123456789.'}}"
    (workdir.path / "truth.yaml").write_text(f"input_dir: scans\nlmdb: {settings}\n")
    workdir.snakemake("lmdb", "--configfile", "config/config.yaml", "truth.yaml")
    manifest = json.loads((workdir.results / "lmdb" / "manifest.json").read_text())
    assert manifest["source"] == "ground truth"
    truth = [
        line.split(",", 8)[8].strip()
        for image in SAMPLE_IMAGES[:2]
        for line in (SAMPLES / "box" / f"{image.stem}.csv").read_text().splitlines()
    ]
    kept = [t for t in truth if len(t) <= 10 and set(t) <= set("0123456789.")]
    labels = []
    for split in ("train", "val"):
        dataset = LmdbDataset(workdir.results / "lmdb" / split)
        labels += [dataset[i][1] for i in range(len(dataset))]
    assert sorted(labels) == sorted(kept) and kept
    assert manifest["counts"]["dropped"]["charset"] + manifest["counts"]["dropped"].get(
        "length", 0
    ) == len(truth) - len(kept)
