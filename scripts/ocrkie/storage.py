"""Where files live: a local folder or an S3 prefix, behind one small interface.

Jobs read images and write the per-image records themselves, so that a shard job declares
one file to Snakemake (its manifest) however many images it holds. On AWS Batch the storage
plugin uploads declared outputs only; the records go to S3 through ``S3Folder`` instead.
Local writes are atomic (temporary file, fsync, rename): a killed job never leaves half a file.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
from functools import cache
from pathlib import Path
from stat import S_ISREG
from typing import Any, Protocol

from .formats import write_atomic


class Folder(Protocol):
    location: str

    def read_bytes(self, relpath: str) -> bytes:
        """Raises FileNotFoundError when there is no such file."""
        ...

    def write_bytes(self, relpath: str, data: bytes) -> None: ...

    def put_file(self, relpath: str, local: Path) -> None:
        """Move a (large) local file into the folder, without reading it into memory."""
        ...

    def delete(self, relpath: str) -> None: ...

    def exists(self, relpath: str) -> bool: ...

    def names(self, relpath: str) -> set[str]:
        """The names of the files directly in the folder ``relpath`` (none if it is absent)."""
        ...


class LocalFolder:
    def __init__(self, location: str | Path):
        self.location = str(location)
        self._root = Path(location)

    def read_bytes(self, relpath: str) -> bytes:
        return (self._root / relpath).read_bytes()

    def write_bytes(self, relpath: str, data: bytes) -> None:
        write_atomic(self._root / relpath, data)

    def put_file(self, relpath: str, local: Path) -> None:
        target = self._root / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(local, target)

    def delete(self, relpath: str) -> None:
        (self._root / relpath).unlink(missing_ok=True)

    def exists(self, relpath: str) -> bool:
        return (self._root / relpath).is_file()

    def names(self, relpath: str) -> set[str]:
        try:
            entries = os.scandir(self._root / relpath)
        except FileNotFoundError:
            return set()
        with entries:
            return {e.name for e in entries if not e.name.startswith(".") and e.is_file()}


class S3Folder:
    def __init__(self, location: str, client: Any = None):
        from .s3 import split_s3_uri  # boto3 only where S3 is used

        self.location = location.rstrip("/")
        self.bucket, self.prefix = split_s3_uri(location)
        self._client = client if client is not None else shared_s3_client()

    def key(self, relpath: str) -> str:
        return f"{self.prefix}/{relpath}" if self.prefix else relpath

    def read_bytes(self, relpath: str, max_bytes: int | None = None) -> bytes:
        from botocore.exceptions import ClientError

        from .s3 import is_missing

        try:
            reply = self._client.get_object(Bucket=self.bucket, Key=self.key(relpath))
        except ClientError as error:
            if is_missing(error):
                raise FileNotFoundError(f"{self.location}/{relpath}") from error
            raise  # a missing bucket or a denied read is a misconfiguration: say so
        _check_size(reply["ContentLength"], max_bytes)
        return reply["Body"].read()

    def write_bytes(self, relpath: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self.key(relpath), Body=data)

    def put_file(self, relpath: str, local: Path) -> None:
        self._client.upload_file(str(local), self.bucket, self.key(relpath))  # multipart
        local.unlink()

    def delete(self, relpath: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self.key(relpath))

    def exists(self, relpath: str) -> bool:
        from botocore.exceptions import ClientError

        from .s3 import is_missing

        try:
            self._client.head_object(Bucket=self.bucket, Key=self.key(relpath))
        except ClientError as error:
            if is_missing(error):
                return False
            raise
        return True

    def names(self, relpath: str) -> set[str]:
        from .s3 import list_objects

        folder = f"{self.key(relpath).rstrip('/')}/"
        found = (
            item["Key"][len(folder) :] for item in list_objects(self._client, self.bucket, folder)
        )
        return {name for name in found if name and "/" not in name}


def open_folder(location: str) -> Folder:
    return S3Folder(location) if location.startswith("s3://") else LocalFolder(location)


_client_lock = threading.Lock()


@cache
def _client_for_process(pid: int) -> Any:
    from .s3 import s3_client

    return s3_client()


def shared_s3_client() -> Any:
    """One client per process (boto3 clients are thread-safe, not fork-safe)."""
    with _client_lock:
        return _client_for_process(os.getpid())


def read_input(path: str, max_bytes: int | None = None) -> bytes:
    """An input file's bytes: a local path, or an ``s3://`` URI. Only a regular file is read
    (a FIFO would block the job, a device read until memory runs out), and only up to
    ``max_bytes``; an ``OSError`` says why not."""
    if path.startswith("s3://"):
        bucket, _, key = path[len("s3://") :].partition("/")
        return S3Folder(f"s3://{bucket}").read_bytes(key, max_bytes)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, socket or device)")
        _check_size(info.st_size, max_bytes)
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read()
    finally:
        os.close(fd)


def _check_size(size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise OSError(
            errno.EFBIG,
            f"the file is {size:,} bytes, over the limit of {max_bytes:,} (images.max_bytes)",
        )
