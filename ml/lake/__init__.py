"""The data lake: a local folder or any S3 API (`s3://bucket/prefix`), behind one small interface.

Keys are relative, slash-separated paths; `ml.lake.layout` names the key of every dataset.
Every write is atomic: a reader sees the old object or the whole new one, never a part. Locally a
file is written beside its target and renamed over it; on S3 an object becomes visible only when its
upload completes, so a process killed mid-write leaves nothing behind but a stray temp file or an
incomplete multipart upload, neither of which is ever listed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import IO, Iterator
from urllib.parse import urlparse

from ml.settings import LakeSettings

TMP_MARK = ".tmp-"
STAGING_DIR = "continuum-staging"


class LakeError(RuntimeError):
    """A lake operation failed; the message names the URI."""


class Lake:
    """Read, write, list and delete objects under one root, locally or on S3."""

    def __init__(self, uri: str, s3_endpoint_url: str | None = None):
        parsed = urlparse(uri)
        self.uri = uri.rstrip("/")
        self.is_s3 = parsed.scheme == "s3"
        if self.is_s3:
            import boto3
            from botocore.config import Config

            self.bucket, self.prefix = parsed.netloc, parsed.path.strip("/")
            self._s3 = boto3.client(
                "s3", endpoint_url=s3_endpoint_url or None,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}),
            )
        else:
            self.root = Path(parsed.path if parsed.scheme == "file" else uri).resolve()

    @classmethod
    def from_settings(cls, lake: LakeSettings) -> "Lake":
        """The lake the lake section of the settings names."""
        return cls(lake.uri, lake.s3_endpoint_url)

    def __repr__(self) -> str:
        return f"Lake({self.uri!r})"

    # --- naming -------------------------------------------------------------------------------
    def _key(self, key: str) -> str:
        key = key.strip("/")
        if not key or ".." in key.split("/"):
            raise LakeError(f"invalid lake key {key!r}")
        return f"{self.prefix}/{key}" if self.is_s3 and self.prefix else key

    def url(self, key: str) -> str:
        """Full URI of an object: a path a person can open locally, or s3://bucket/key."""
        if self.is_s3:
            return f"s3://{self.bucket}/{self._key(key)}"
        return str(self.root / self._key(key))

    # --- writing ------------------------------------------------------------------------------
    def temp_path(self, key: str) -> Path:
        """A fresh local path to stage a file for `key` in: beside its target when the lake is local, in a
        folder of the system's temp dir kept for the target's folder when it is on S3 (so that
        `clean_staging` finds what a killed writer left there)."""
        name = f"{TMP_MARK}{uuid.uuid4().hex}"
        if self.is_s3:
            folder = self._staging_dir(key.strip("/").rpartition("/")[0])
            while True:  # the file is created here, so no other writer's clean-up removes its folder
                folder.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    (folder / name).touch(exist_ok=False)
                    return folder / name
        target = self.root / self._key(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.parent / name

    def _staging_dir(self, prefix: str) -> Path:
        """Where files for keys directly under `prefix` of an S3 lake are staged."""
        digest = hashlib.sha256(f"{self.uri}/{prefix.strip('/')}".encode()).hexdigest()[:24]
        return Path(tempfile.gettempdir()) / STAGING_DIR / digest

    def publish(self, path: Path, key: str) -> None:
        """Move a staged file to `key` atomically; the staged file is gone afterwards."""
        if self.is_s3:
            try:
                self._s3.upload_file(str(path), self.bucket, self._key(key))
            finally:
                _unstage(path)
            return
        target = self.root / self._key(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)

    @contextlib.contextmanager
    def staged(self, key: str) -> Iterator[Path]:
        """A local path to write; published to `key` atomically when the block exits without error."""
        path = self.temp_path(key)
        try:
            yield path
            self.publish(path, key)
        finally:
            _unstage(path) if self.is_s3 else path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[IO[bytes]]:
        """A binary file to stream into; published atomically when the block exits without error."""
        with self.staged(key) as path:
            with open(path, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())

    def clean_staging(self, prefix: str) -> None:
        """Remove files left staged for keys under a prefix by a writer that was killed: beside the
        targets of a local lake, in the temp dir's staging folder of an S3 lake (where an unfinished
        upload never becomes an object)."""
        if self.is_s3:
            folder = self._staging_dir(prefix)
            for leftover in folder.glob(f"{TMP_MARK}*") if folder.is_dir() else ():
                _unstage(leftover)
            return
        base = self.root / self._key(prefix)
        if base.is_dir():
            for leftover in base.rglob(f"{TMP_MARK}*"):
                leftover.unlink(missing_ok=True)

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open_write(key) as fh:
            fh.write(data)

    def write_text(self, key: str, text: str) -> None:
        self.write_bytes(key, text.encode("utf-8"))

    # --- reading ------------------------------------------------------------------------------
    def read_bytes(self, key: str) -> bytes:
        full = self._key(key)
        try:
            if self.is_s3:
                return self._s3.get_object(Bucket=self.bucket, Key=full)["Body"].read()
            return (self.root / full).read_bytes()
        except (FileNotFoundError, self._missing()) as exc:
            raise FileNotFoundError(f"no such lake object: {self.url(key)}") from exc

    def read_text(self, key: str) -> str:
        return self.read_bytes(key).decode("utf-8")

    def exists(self, key: str) -> bool:
        full = self._key(key)
        if not self.is_s3:
            return (self.root / full).is_file()
        try:
            self._s3.head_object(Bucket=self.bucket, Key=full)
            return True
        except self._s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def list(self, prefix: str = "") -> list[str]:
        """Keys under a prefix (relative to the lake root), sorted; in-progress temp files are hidden."""
        prefix = prefix.strip("/")
        if self.is_s3:
            full = self._key(prefix) + "/" if prefix else (f"{self.prefix}/" if self.prefix else "")
            keys = []
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                keys += [obj["Key"] for obj in page.get("Contents", [])]
            strip = len(f"{self.prefix}/") if self.prefix else 0
            return sorted(k[strip:] for k in keys)
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*") if p.is_file() and not p.name.startswith(TMP_MARK)
        )

    def delete(self, key: str) -> None:
        full = self._key(key)
        if self.is_s3:
            self._s3.delete_object(Bucket=self.bucket, Key=full)
        else:
            (self.root / full).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under a prefix; returns how many went."""
        keys = self.list(prefix)
        for key in keys:
            self.delete(key)
        if not self.is_s3 and prefix:
            shutil.rmtree(self.root / self._key(prefix), ignore_errors=True)
        return len(keys)

    def _missing(self) -> type[Exception]:
        return self._s3.exceptions.NoSuchKey if self.is_s3 else FileNotFoundError


def _unstage(path: Path) -> None:
    """Remove a staged file, and its staging folder once that is empty."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()
