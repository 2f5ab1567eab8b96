"""Image discovery, ids and shard membership."""

from __future__ import annotations

import random
import re
from pathlib import Path

from ocrkie.inputs import InputImage, find_images, image_id, make_shards, read_image_list

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
        "sub/b.PNG",
        "sub/deeper/c.tiff",
        "with space/ü.bmp",
    ]
    assert [i.id for i in found] == sorted(i.id for i in found)


def test_list_file_paths_are_relative_to_the_list(tmp_path: Path):
    (tmp_path / "lists").mkdir()
    listing = tmp_path / "lists" / "batch.txt"
    listing.write_text("# comment\n\nscan1.jpg\n/data/abs/scan2.png\nscan1.jpg\n")
    images = read_image_list(str(listing))
    assert sorted(i.relpath for i in images) == ["data/abs/scan2.png", "scan1.jpg"]
    assert {i.path for i in images} == {
        str(tmp_path / "lists" / "scan1.jpg"),
        "/data/abs/scan2.png",
    }


def _images(names):
    return [InputImage(image_id(n), n, n) for n in names]


def _membership(shards):
    return {s.name: frozenset(i.id for i in s.images) for s in shards}


def test_shards_cover_every_image_once_with_bounded_size():
    images = _images(f"scan_{n:05d}.jpg" for n in range(2000))
    shards = make_shards(images, 16)
    members = [i.id for s in shards for i in s.images]
    assert sorted(members) == sorted(i.id for i in images)
    assert max(len(s.images) for s in shards) <= 32
    assert 1000 / 16 < len(shards) < 4000 / 16  # about 2000/16 shards
    assert make_shards(list(reversed(images)), 16) == shards  # order of discovery is irrelevant


def test_adding_images_leaves_shards_without_them_untouched():
    rng = random.Random(7)
    names = [f"batch/{rng.getrandbits(40):x}.jpg" for _ in range(500)]
    before = _membership(make_shards(_images(names), 16))
    for trial in range(50):
        new = f"new/{trial}.jpg"
        after = _membership(make_shards(_images([*names, new]), 16))
        changed = {name for name, ids in after.items() if before.get(name) != ids}
        holder = next(name for name, ids in after.items() if image_id(new) in ids)
        assert holder in changed
        # besides the holder, only a shard it split off from, or capped shards in its run
        assert len(changed) <= 3, (trial, changed)
        unchanged = set(after) - changed
        assert len(unchanged) >= len(before) - 3
