"""Image discovery and ids."""

from __future__ import annotations

import re
from pathlib import Path

from ocrkie.inputs import find_images, image_id, read_image_list

SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def test_ids_are_readable_safe_and_stable():
    assert image_id("receipts/r001.jpg").startswith("receipts__r001.jpg-")
    assert image_id("receipts/r001.jpg") == image_id("receipts/r001.jpg")
    for odd in [
        "Reçu n°3 (copie).JPG",
        "a b/c;rm -rf $HOME.png",
        "../x.png",
        "日本語.tif",
        "$(echo hi)`x`.bmp",
        ".hidden/-dash.webp",
    ]:
        ident = image_id(odd)
        assert SAFE.match(ident), ident
        assert not ident.startswith("-")


def test_ids_never_collide_even_when_slugs_do():
    names = ["a/b.jpg", "a__b.jpg", "a b.jpg", "a_b.jpg", "A/B.jpg", "a/b.JPG", "é.jpg", "e.jpg"]
    assert len({image_id(n) for n in names}) == len(names)


def test_find_images_recurses_and_matches_extensions_case_insensitively(tmp_path: Path):
    for name in [
        "a.jpg",
        "sub/b.PNG",
        "sub/deeper/c.tiff",
        "d.webp",
        "notes.txt",
        "e.pdf",
        ".hidden/f.jpg",
        "sub/.g.png",
        "with space/ü.bmp",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = find_images(str(tmp_path))
    assert sorted(i.relpath for i in found) == [
        "a.jpg",
        "d.webp",
        "e.pdf",
        "sub/b.PNG",
        "sub/deeper/c.tiff",
        "with space/ü.bmp",
    ]
    assert [i.id for i in found] == sorted(i.id for i in found)


def test_list_file_paths_are_relative_to_the_list(tmp_path: Path):
    (tmp_path / "lists").mkdir()
    listing = tmp_path / "lists" / "batch.txt"
    listing.write_text("# comment\n\nscan1.jpg\n/data/abs/scan2.png\nscan1.jpg\n")
    images = read_image_list(str(listing)).images
    assert sorted(i.relpath for i in images) == ["data/abs/scan2.png", "scan1.jpg"]
    assert {i.path for i in images} == {
        str(tmp_path / "lists" / "scan1.jpg"),
        "/data/abs/scan2.png",
    }
