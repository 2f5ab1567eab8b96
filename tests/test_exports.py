"""How the exports name their image: resolvable from where the export file is, on disk and
on S3, and quoted the way hOCR parsers read it."""

from __future__ import annotations

import os
import re

from ocrkie.exports.hocr import quoted
from ocrkie.exports.images import reference


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
