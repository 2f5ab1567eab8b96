"""S3 helpers for runs on AWS Batch: finding input images under a prefix, guarding the bucket.

Image ids come from the key relative to the listed prefix, exactly as ``inputs.find_images``
derives them from the path relative to ``input_dir``: the same folder tree gives the same ids,
shards and cache keys whether it lies on disk or in S3.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from .inputs import IMAGE_EXTENSIONS, InputImage, image_id, is_image_path
from .s3cache import is_missing, s3_client, split_s3_uri

# Snakemake's S3 storage plugin deletes a bucket as soon as a removal leaves it empty
# (e.g. the source archive at the end of a run). This object keeps it non-empty.
KEEP_MARKER_KEY = ".ocrkie-keep-bucket"
_PAGE_SIZE = 1000  # the most S3 returns per ListObjectsV2 call
KEEP_MARKER_BODY = (
    b"Keeps this bucket non-empty: Snakemake's S3 storage plugin deletes buckets it empties.\n"
    b"Do not delete.\n"
)


def _keys(client: Any, bucket: str, prefix: str) -> Iterable[str]:
    paginator = client.get_paginator("list_objects_v2")
    pages = paginator.paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": _PAGE_SIZE}
    )
    for page in pages:
        for item in page.get("Contents", []):
            yield item["Key"]


def list_s3_images(
    uri: str,
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
    client: Any = None,
) -> list[InputImage]:
    """All images under ``s3://bucket/prefix`` (recursively), sorted by id.

    ``path`` is the object's ``s3://`` URI; ``relpath`` is its key relative to the prefix.
    """
    bucket, prefix = split_s3_uri(uri)
    listed = f"{prefix}/" if prefix else ""  # "scans/" must not match "scans2/..."
    client = client if client is not None else s3_client()
    found = []
    for key in _keys(client, bucket, listed):
        relpath = key[len(listed) :]
        if is_image_path(relpath, tuple(e.lower() for e in extensions)):
            found.append(InputImage(image_id(relpath), f"s3://{bucket}/{key}", relpath))
    return sorted(found, key=lambda image: image.id)


def ensure_keep_marker(uri: str, client: Any = None, env: Mapping[str, str] = os.environ) -> bool:
    """Put the keep-marker object at the root of the bucket of ``uri`` unless it is there.

    Returns True when it had to be created. Needs s3:GetObject/PutObject on that key.
    """
    bucket, _ = split_s3_uri(uri)
    client = client if client is not None else s3_client(env)
    try:
        client.head_object(Bucket=bucket, Key=KEEP_MARKER_KEY)
        return False
    except client.exceptions.ClientError as error:
        if not is_missing(error):
            raise
    client.put_object(Bucket=bucket, Key=KEEP_MARKER_KEY, Body=KEEP_MARKER_BODY)
    return True
