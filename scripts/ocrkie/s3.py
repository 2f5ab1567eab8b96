"""S3 access shared by the storage, the content cache and the input listing.

The endpoint and region follow the AWS SDK's own settings (``AWS_ENDPOINT_URL_S3``,
``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``), falling back to the settings that
Snakemake's S3 storage plugin passes to every Batch job (``SNAKEMAKE_STORAGE_S3_ENDPOINT_URL``,
``SNAKEMAKE_STORAGE_S3_REGION``), so that our own reads and writes reach the same store as the
job's declared files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .errors import ConfigError

_MISSING = {"NoSuchKey", "404", "NotFound"}
PAGE_SIZE = 1000  # the most S3 returns per ListObjectsV2 call

# Snakemake's S3 storage plugin deletes a bucket as soon as a removal leaves it empty
# (e.g. the source archive at the end of a run). This object keeps it non-empty.
KEEP_MARKER_KEY = ".ocrkie-keep-bucket"
KEEP_MARKER_BODY = (
    b"Keeps this bucket non-empty: Snakemake's S3 storage plugin deletes buckets it empties.\n"
    b"Do not delete.\n"
)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` -> ``("bucket", "a/b")``."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(f"not an S3 URI (s3://bucket/prefix): {uri!r}")
    return parts.netloc, parts.path.strip("/")


def aws_region(env: Mapping[str, str] = os.environ) -> str | None:
    """The region from the SDK's variables, else the one the S3 storage plugin was given."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "SNAKEMAKE_STORAGE_S3_REGION"):
        if env.get(name):
            return env[name]
    return None  # boto3's own chain (config file, instance metadata)


def s3_client(env: Mapping[str, str] = os.environ) -> Any:
    """A boto3 S3 client that honours the endpoint/region variables described above."""
    endpoint = (
        env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
        or env.get("SNAKEMAKE_STORAGE_S3_ENDPOINT_URL")
        or None  # real S3
    )
    config = Config(
        retries={"max_attempts": 5, "mode": "standard"},
        max_pool_connections=32,
        # Non-AWS stores (moto, MinIO) choke on the default checksums; S3 needs none here.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client("s3", endpoint_url=endpoint, region_name=aws_region(env), config=config)


def is_missing(error: ClientError) -> bool:
    """Whether S3 answered that the object does not exist."""
    return error.response.get("Error", {}).get("Code") in _MISSING


def list_objects(client: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    """Every object under ``prefix`` (``Key``, ``Size``, ``LastModified``), page by page."""
    paginator = client.get_paginator("list_objects_v2")
    pages = paginator.paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": PAGE_SIZE}
    )
    for page in pages:
        yield from page.get("Contents", [])


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
