"""Image discovery and ids."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ocrkie import inputs
from ocrkie.inputs import (
    LISTED_AGAIN,
    SLUG_BYTES,
    find_images,
    image_id,
    list_s3_images,
    read_image_list,
    scan_folder,
)

LONGEST_ID = SLUG_BYTES + 1 + 16  # bytes: the slug, "-" and 64 bits of the hash


def is_safe(ident: str) -> bool:
    """Fit for a file name and an S3 key: no separator, control or space character, no
    leading dash or dot, a bounded length in bytes."""
    return (
        len(ident.encode("utf-8")) <= LONGEST_ID
        and ident.isprintable()
        and not any(c.isspace() or c in "/\\" for c in ident)
        and not ident.startswith(("-", "."))
    )


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
        "-dash.png",
        "tab\tnew\nline\u200b\u202e.jpg",
        "caf\udce9.jpg",  # a name that is not UTF-8, as os.scandir gives it
    ]:
        ident = image_id(odd)
        assert is_safe(ident), ident
        assert (
            ident.rsplit("-", 1)[1]
            == hashlib.sha256(odd.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        )


def test_ids_keep_letters_of_any_script():
    assert image_id("영수증_001.jpg").startswith("영수증_001.jpg-")
    assert image_id("收据_001.jpg").startswith("收据_001.jpg-")
    assert image_id("scans/Reçu #3.JPG").startswith("scans__Reçu_3.JPG-")
    decomposed = "Rec\u0327u.jpg"  # ç as c and a combining cedilla: the slug is NFC
    assert image_id(decomposed).startswith("Reçu.jpg-")
    assert image_id(decomposed) != image_id("Reçu.jpg")  # the hash is of the exact name


def test_a_long_path_keeps_its_file_name_within_a_bounded_number_of_bytes():
    deep = "/".join(["아주_긴_폴더_이름"] * 20) + "/영수증_000123.jpg"
    ident = image_id(deep)
    assert is_safe(ident) and ident.split("-")[0].endswith("영수증_000123.jpg")
    ident.encode("utf-8").decode("utf-8")  # no character cut in half


def test_s3_keys_are_taken_as_they_are():
    assert image_id("a//b.jpg") != image_id("a/b.jpg")
    assert image_id("a/b.jpg/") != image_id("a/b.jpg")


def test_100000_names_sharing_a_long_prefix_get_100000_ids():
    prefix = (
        "scans/2024/vendor_invoices_and_receipts_from_the_northwind_hardware_company_branch_office/"
    )
    names = [f"{prefix}receipt_{n:07d}.jpg" for n in range(100_000)]
    names += [f"{word}_{n:03d}.jpg" for word in ("영수증", "收据", "領収書") for n in range(1000)]
    assert len({image_id(name) for name in names}) == len(names)


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
    assert sorted(i.relpath for i in images) == ["/data/abs/scan2.png", "scan1.jpg"]
    assert {i.path for i in images} == {
        str(tmp_path / "lists" / "scan1.jpg"),
        "/data/abs/scan2.png",
    }


def test_a_file_listed_twice_is_read_once_and_the_other_listing_is_skipped(tmp_path: Path):
    listing = tmp_path / "batch.txt"
    listing.write_text(f"scan1.jpg\n./scan1.jpg\nsub//scan2.jpg\nsub/scan2.jpg\n{tmp_path}/x.jpg\n")
    found = read_image_list(str(listing))
    assert sorted(i.relpath for i in found.images) == ["scan1.jpg", "sub/scan2.jpg", "x.jpg"]
    assert found.skipped == [("scan1.jpg", LISTED_AGAIN), ("sub/scan2.jpg", LISTED_AGAIN)]


@pytest.fixture
def short_digests_collide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids of paths with one slug coincide (their 64 bits of the hash are made equal); the
    whole digest still tells them apart."""
    real = inputs._digest
    monkeypatch.setattr(inputs, "_digest", lambda text: "0" * 16 + real(text))


COLLIDING = ["x 1.jpg", "x#1.jpg", "x_1.jpg"]  # one slug: x_1.jpg


def test_files_whose_ids_coincide_are_all_kept_with_longer_ids(
    tmp_path: Path, short_digests_collide: None
):
    for name in [*COLLIDING, "y.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    found = scan_folder(str(tmp_path))
    ids = {i.relpath: i.id for i in found.images}
    assert sorted(ids) == sorted([*COLLIDING, "y.jpg"]) and found.skipped == []
    assert len(set(ids.values())) == 4
    for name in COLLIDING:
        assert ids[name] == f"x_1.jpg-{inputs._digest(name)[:64]}"
    assert ids["y.jpg"] == image_id("y.jpg")  # no collision: the short id
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(reversed(COLLIDING)))  # another order: the same ids
    assert {i.relpath: i.id for i in read_image_list(str(listing)).images} == {
        name: ids[name] for name in COLLIDING
    }


class FakeS3:
    """Just enough of a boto3 S3 client to list objects."""

    def __init__(self, keys: list[str]):
        when = datetime(2024, 1, 1, tzinfo=UTC)
        self.contents = [{"Key": k, "Size": 1, "LastModified": when} for k in keys]

    def get_paginator(self, name: str) -> FakeS3:
        return self

    def paginate(self, Prefix: str, **_: object) -> list[dict]:
        return [{"Contents": [c for c in self.contents if c["Key"].startswith(Prefix)]}]


def test_s3_keys_that_differ_only_in_slashes_are_two_images():
    found = list_s3_images("s3://bucket/in", client=FakeS3(["in/a//b.jpg", "in/a/b.jpg"]))
    assert sorted(i.relpath for i in found.images) == ["a//b.jpg", "a/b.jpg"]
    assert len({i.id for i in found.images}) == 2


def test_s3_keys_whose_ids_coincide_are_all_kept(short_digests_collide: None):
    keys = [f"in/{name}" for name in COLLIDING]
    found = list_s3_images("s3://bucket/in", client=FakeS3(keys))
    assert sorted(i.relpath for i in found.images) == sorted(COLLIDING)
    assert len({i.id for i in found.images}) == 3
