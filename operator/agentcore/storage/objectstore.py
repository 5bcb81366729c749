"""Object storage behind one small interface: S3 (any S3 API, through boto3) or a local directory
(the embedded default). Async callers get thread-pool wrappers: boto3 never runs on the event loop."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse


class ObjectNotFound(KeyError):
    pass


class ObjectTooLarge(ValueError):
    """A bounded read met an object larger than the bound (or one that is not a regular file)."""


class ObjectStore(Protocol):
    @property
    def uri(self) -> str: ...

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str: ...
    def put_file(
        self,
        key: str,
        path: Path,
        content_type: str = "application/octet-stream",
        content_disposition: str | None = None,
    ) -> str: ...
    def get_bytes(self, key: str, max_bytes: int | None = None) -> bytes: ...
    def get_file(self, key: str, path: Path) -> None:
        """Copy the object to a local file (streamed: large objects never sit in memory)."""
        ...

    def list(self, prefix: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def url_for(self, key: str) -> str: ...


@dataclass
class LocalObjectStore:
    """A directory; keys are relative paths. Writes are atomic (temp file + rename)."""

    root: Path

    @property
    def uri(self) -> str:
        return f"file://{self.root}"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not str(path).startswith(str(self.root.resolve()) + os.sep):
            raise ValueError(f"object key escapes the store: {key!r}")
        return path

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        return self.url_for(key)

    def put_file(
        self,
        key: str,
        path: Path,
        content_type: str = "application/octet-stream",
        content_disposition: str | None = None,
    ) -> str:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".tmp-{target.name}")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
        return self.url_for(key)

    def get_bytes(self, key: str, max_bytes: int | None = None) -> bytes:
        path = self._path(key)
        try:
            if max_bytes is None:
                return path.read_bytes()
            # Only regular files: a device such as /dev/zero reports size 0 and never ends.
            if not stat.S_ISREG(path.stat().st_mode):
                raise ObjectTooLarge("is not a regular file")
            with path.open("rb") as fh:
                return _at_most(fh.read(max_bytes + 1), max_bytes)
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def get_file(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFound(key)
        shutil.copyfile(source, path)

    def list(self, prefix: str) -> list[str]:
        base = self.root.resolve()
        if not base.exists():
            return []
        keys = (
            str(p.relative_to(base))
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )
        return sorted(k for k in keys if k.startswith(prefix))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def url_for(self, key: str) -> str:
        return f"file://{self._path(key)}"


class S3ObjectStore:
    """A bucket and key prefix on any S3 API. Large files go up in multipart chunks."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None, **client_kwargs: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or s3_client(**client_kwargs)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)
        return self.url_for(key)

    def put_file(
        self,
        key: str,
        path: Path,
        content_type: str = "application/octet-stream",
        content_disposition: str | None = None,
    ) -> str:
        from boto3.s3.transfer import TransferConfig

        extra: dict[str, str] = {"ContentType": content_type}
        if content_disposition:
            extra["ContentDisposition"] = content_disposition
        # 64 MiB parts keep a 1 GB export well under S3's 10,000-part limit.
        config = TransferConfig(multipart_threshold=16 << 20, multipart_chunksize=64 << 20)
        self.client.upload_file(str(path), self.bucket, self._key(key), ExtraArgs=extra, Config=config)
        return self.url_for(key)

    def get_bytes(self, key: str, max_bytes: int | None = None) -> bytes:
        from botocore.exceptions import ClientError

        try:
            extra = {} if max_bytes is None else {"Range": f"bytes=0-{max_bytes}"}
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key), **extra)["Body"]
            data = bytes(body.read())
            return data if max_bytes is None else _at_most(data, max_bytes)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectNotFound(key) from exc
            raise

    def get_file(self, key: str, path: Path) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.download_file(self.bucket, self._key(key), str(path))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectNotFound(key) from exc
            raise

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        return sorted(keys)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def url_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def presign(self, key: str, expires_in: int) -> str:
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires_in
            )
        )


def _at_most(data: bytes, max_bytes: int) -> bytes:
    if len(data) > max_bytes:
        raise ObjectTooLarge(f"is larger than the limit of {max_bytes} bytes")
    return data


def s3_client(
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str | None = None,
) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or os.environ.get("AGENTCORE_S3_ENDPOINT") or None,
        aws_access_key_id=access_key or os.environ.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=secret_key or os.environ.get("AWS_SECRET_ACCESS_KEY"),
        region_name=region or os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
        ),
    )


def open_store(uri: str, **client_kwargs: Any) -> ObjectStore:
    """`s3://bucket/prefix` or `file:///dir` (or a bare path) → a store."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        return S3ObjectStore(parsed.netloc, parsed.path, **client_kwargs)
    if parsed.scheme in ("file", ""):
        return LocalObjectStore(Path(parsed.path if parsed.scheme else uri))
    raise ValueError(f"unsupported object store URI {uri!r}: use s3://bucket/prefix or file:///path")


async def run_blocking(func: Any, *args: Any) -> Any:
    """Run a blocking store call in the default thread pool, off the event loop."""
    return await asyncio.to_thread(func, *args)
