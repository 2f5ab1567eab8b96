"""The content cache on S3, for runs where jobs share no filesystem (AWS Batch).

One object per key under the cache prefix: ``s3://bucket/prefix/ocr/<sha256>/<16 hex>``, whose
body is the same zlib-compressed JSON as the local LMDB cache (``cache.encode``/``decode``).
Writes are idempotent (same key, same content), so concurrent jobs need no locking.

The endpoint and region follow the AWS SDK's own settings (``AWS_ENDPOINT_URL_S3``,
``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``), falling back to the settings that
Snakemake's S3 storage plugin passes to every Batch job (``SNAKEMAKE_STORAGE_S3_ENDPOINT_URL``,
``SNAKEMAKE_STORAGE_S3_REGION``), so the cache talks to the same store as the job's files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .cache import decode, encode

_MISSING = {"NoSuchKey", "404", "NotFound"}


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` -> ``("bucket", "a/b")``."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"not an S3 URI (s3://bucket/prefix): {uri!r}")
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
        # Non-AWS stores (moto, MinIO) choke on the default checksums; S3 needs none here.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client("s3", endpoint_url=endpoint, region_name=aws_region(env), config=config)


def is_missing(error: ClientError) -> bool:
    """Whether S3 answered that the object does not exist."""
    return error.response.get("Error", {}).get("Code") in _MISSING


class S3Cache:
    """``ContentCache`` backed by one S3 object per key under ``location`` (``s3://b/prefix``)."""

    def __init__(self, location: str, client: Any = None):
        self.bucket, self.prefix = split_s3_uri(location)
        self._client = client if client is not None else s3_client()

    def _object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            reply = self._client.get_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as error:
            if is_missing(error):
                return None
            raise  # a missing bucket or a denied read is a misconfiguration: say so
        return decode(reply["Body"].read())

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._client.put_object(
            Bucket=self.bucket,
            Key=self._object_key(key),
            Body=encode(value),
            ContentType="application/octet-stream",
        )

    def __repr__(self) -> str:
        return f"S3Cache('s3://{self.bucket}/{self.prefix}')"
