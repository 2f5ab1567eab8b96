"""S3: the content cache, the results folder and the input listing, against a moto server
on 127.0.0.1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from ocrkie import s3
from ocrkie.cache import S3Cache, cache_key, decode
from ocrkie.inputs import find_images, list_s3_images
from ocrkie.s3 import KEEP_MARKER_KEY, aws_region, ensure_keep_marker, s3_client, split_s3_uri
from ocrkie.storage import S3Folder
from ocrkie.testing.moto_batch import aws_test_env, moto_server

pytestmark = pytest.mark.xdist_group("moto")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def aws_env(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = aws_test_env(endpoint)
    for name in ("AWS_ENDPOINT_URL_S3", "SNAKEMAKE_STORAGE_S3_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def bucket(aws_env: dict[str, str]) -> str:
    name = f"cache-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def _put(bucket: str, key: str, body: bytes = b"x") -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


# -- S3Cache ------------------------------------------------------------------------------


def test_round_trip_one_object_per_key_same_encoding_as_lmdb(bucket: str) -> None:
    cache = S3Cache(f"s3://{bucket}/runs/cache/")
    key = cache_key("ocr", "ab" * 32, {"engine": "rapidocr"})
    value = {"status": "ok", "text": "Reçu n° 3", "lines": [{"t": "TOTAL 9.99"}]}

    assert cache.get(key) is None
    cache.put(key, value)
    assert cache.get(key) == value

    body = boto3.client("s3").get_object(Bucket=bucket, Key=f"runs/cache/{key}")["Body"].read()
    assert decode(body) == value  # the same zlib JSON that the LMDB cache stores


def test_put_overwrites_and_keys_do_not_collide(bucket: str) -> None:
    cache = S3Cache(f"s3://{bucket}/c")
    cache.put("ocr/aa/1", {"v": 1})
    cache.put("ocr/aa/1", {"v": 2})
    cache.put("kie/aa/1", {"v": 3})
    assert cache.get("ocr/aa/1") == {"v": 2}
    assert cache.get("kie/aa/1") == {"v": 3}


def test_cache_at_bucket_root(bucket: str) -> None:
    cache = S3Cache(f"s3://{bucket}")
    cache.put("ocr/bb/2", {"v": 1})
    assert boto3.client("s3").head_object(Bucket=bucket, Key="ocr/bb/2")
    assert cache.get("ocr/bb/2") == {"v": 1}


def test_missing_bucket_raises_instead_of_missing(aws_env: dict[str, str]) -> None:
    cache = S3Cache(f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/cache")
    with pytest.raises(ClientError):
        cache.get("ocr/cc/3")


def test_endpoint_from_the_storage_plugin_variable(
    bucket: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inside a Batch job only SNAKEMAKE_STORAGE_S3_* may name a non-AWS endpoint.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("SNAKEMAKE_STORAGE_S3_ENDPOINT_URL", aws_env["AWS_ENDPOINT_URL"])
    cache = S3Cache(f"s3://{bucket}/c")
    cache.put("ocr/dd/4", {"v": 4})
    assert cache.get("ocr/dd/4") == {"v": 4}


def test_region_lookup_order() -> None:
    assert aws_region({"SNAKEMAKE_STORAGE_S3_REGION": "eu-west-1"}) == "eu-west-1"
    assert aws_region({"AWS_DEFAULT_REGION": "us-west-2", "SNAKEMAKE_STORAGE_S3_REGION": "x"}) == (
        "us-west-2"
    )
    assert aws_region({"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "x"}) == "ap-south-1"
    assert aws_region({}) is None


@pytest.mark.parametrize("uri", ["/local/path", "s3:/bucket", "https://bucket/x", "s3://"])
def test_bad_locations_are_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="not an S3 URI"):
        split_s3_uri(uri)


def test_open_cache_dispatches_s3_locations(
    aws_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocrkie.cache import open_cache

    monkeypatch.chdir(tmp_path)  # were it taken for a folder, LMDB would create one here
    assert isinstance(open_cache("s3://some-bucket/cache").cache, S3Cache)


# -- list_s3_images -------------------------------------------------------------------------

TREE = [
    "a.jpg",
    "Scans/Reçu #3.JPG",
    "scans/deep/er/b.png",
    "c.tiff",
    "notes.txt",
    ".hidden.png",
    ".thumbs/d.png",
    "noext",
]


def test_ids_match_the_local_listing_of_the_same_tree(bucket: str, tmp_path: Path) -> None:
    for relpath in TREE:
        (tmp_path / relpath).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relpath).write_bytes(b"x")
        _put(bucket, f"in/{relpath}")
    _put(bucket, "in/folder/")  # a console-made "folder" object
    _put(bucket, "in2/e.png")  # shares the prefix text, not the folder

    found = list_s3_images(f"s3://{bucket}/in")
    listed = found.images
    local = find_images(str(tmp_path))

    assert [(i.id, i.relpath, i.size) for i in listed] == [(i.id, i.relpath, i.size) for i in local]
    assert {i.relpath for i in listed} == {
        "a.jpg",
        "Scans/Reçu #3.JPG",
        "scans/deep/er/b.png",
        "c.tiff",
    }
    assert all(i.path == f"s3://{bucket}/in/{i.relpath}" for i in listed)
    assert found.location == f"s3://{bucket}/in/"
    assert dict(found.skipped) == {
        "notes.txt": "not an image extension",
        "noext": "not an image extension",
        ".hidden.png": "hidden",
        ".thumbs/d.png": "hidden",
        "folder/": "a folder marker",
    }
    assert list_s3_images(f"s3://{bucket}/in/", ("png",)).images == [
        i for i in listed if i.relpath.endswith(".png")
    ]


def test_listing_follows_pagination(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3, "PAGE_SIZE", 2)
    for n in range(7):
        _put(bucket, f"p/{n}.png")
    assert len(list_s3_images(f"s3://{bucket}/p").images) == 7


def test_listing_a_whole_bucket(bucket: str) -> None:
    _put(bucket, "x.png")
    _put(bucket, "sub/y.jpg")
    assert [i.relpath for i in list_s3_images(f"s3://{bucket}").images] == ["sub/y.jpg", "x.png"]


def test_keep_marker_is_created_once(bucket: str) -> None:
    assert ensure_keep_marker(f"s3://{bucket}/any/prefix") is True
    assert ensure_keep_marker(f"s3://{bucket}") is False
    assert boto3.client("s3").head_object(Bucket=bucket, Key=KEEP_MARKER_KEY)
    assert s3_client() is not None


# -- S3Folder: where shard jobs write their records on AWS Batch ------------------------------


def test_a_results_folder_in_s3_writes_lists_reads_and_deletes(bucket: str) -> None:
    folder = S3Folder(f"s3://{bucket}/run/results")
    folder.write_bytes("ocr/a.json", b"{}")
    folder.write_bytes("ocr/b.json", b"[]")
    folder.write_bytes("ocr/deeper/c.json", b"x")
    _put(bucket, "run/results/ocr2/d.json")  # shares the prefix text, not the folder
    assert folder.names("ocr") == {"a.json", "b.json"}
    assert folder.read_bytes("ocr/b.json") == b"[]"
    folder.delete("ocr/a.json")
    assert folder.names("ocr") == {"b.json"}
    assert folder.names("nothing-here") == set()
    with pytest.raises(FileNotFoundError):
        folder.read_bytes("ocr/a.json")
