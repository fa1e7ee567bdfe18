"""Sealed objects in an S3-compatible bucket (boto3), one bucket per region.

Writes: an object up to ``part_size_bytes`` is one PutObject. A larger one is
a multipart upload, streamed while it is written:

1. Buffer the bytes; each time more than one part is held, start the upload
   (first time) and send one part of exactly ``part_size_bytes`` (S3 wants
   every part but the last to be at least 5 MiB).
2. Commit: send what is left as the last part and CompleteMultipartUpload.
   S3 makes the object visible, whole, at that moment and not before.
3. On any failure: AbortMultipartUpload, so no object appears and no parts
   stay stored. A process killed mid-upload leaves a pending upload, never
   an object; :meth:`S3ObjectStore.sweep` (or the bucket lifecycle rule
   ``AbortIncompleteMultipartUpload``) removes it.

At most one part (plus the caller's chunk) is held in memory per writer.

Reads: a reader remembers the object's size and ETag (HeadObject); each
``read_at`` is a ranged GET (``Range: bytes=a-b``) with ``If-Match`` on that
ETag, so a reader never splices two versions: if the key was rewritten, the
read fails with :class:`~callvault.errors.ConflictError`.

Residency: before first use the store reads the bucket's region
(GetBucketLocation) and refuses, with :class:`~callvault.errors.ConfigError`,
a bucket outside the configured region. Data is already sealed by callvault;
S3 server-side encryption can be asked for on top (``server_side_encryption``).

Credentials come from boto3's default chain (role, environment, files) unless
given. Only AWS error codes are logged, never the SDK's messages (they name
buckets, accounts and keys of other tenants' objects). Needs the ``aws``
extra (``pip install 'callvault[aws]'``).
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from pydantic import SecretStr

from callvault import _boto
from callvault.errors import (
    ConfigError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    UnavailableError,
)
from callvault.store._objects_base import (
    Buffer,
    ObjectReader,
    ObjectStore,
    PendingObject,
    check_key,
)

try:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # the aws extra is not installed: the constructor says so
    boto3 = None

log = logging.getLogger(__name__)

MIN_PART_BYTES: Final = 5 * 1024 * 1024
MAX_PART_BYTES: Final = 5 * 1024 * 1024 * 1024
DEFAULT_PART_BYTES: Final = 8 * 1024 * 1024
MAX_PARTS: Final = 10_000
BUCKET_PATTERN: Final = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_BUCKET_RE: Final = re.compile(BUCKET_PATTERN)
_MISSING: Final = frozenset({"404", "NoSuchKey", "NotFound"})
ServerSideEncryption = Literal["AES256", "aws:kms"]
AddressingStyle = Literal["auto", "path", "virtual"]


def _code(exc: Exception) -> str | None:
    if boto3 is not None and isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "unknown"))
    return None


def _bucket_region(location: str | None) -> str:
    """GetBucketLocation's answer as a region: us-east-1 answers nothing, eu-west-1 may say EU."""
    if not location:
        return "us-east-1"
    return "eu-west-1" if location == "EU" else location


class _S3Upload(PendingObject):
    """Steps (1)-(3) of the module docstring."""

    def __init__(self, store: S3ObjectStore, key: str) -> None:
        self._s3 = store._s3
        self._where = {"Bucket": store.bucket, "Key": key}
        self._extra = store._put_extra
        self._part_size = store.part_size_bytes
        self._buf = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def write(self, data: Buffer) -> None:
        self._buf += data
        # (1):
        while len(self._buf) > self._part_size:
            self._send(self._part_size)

    def _send(self, size: int) -> None:
        if self._upload_id is None:
            out = self._s3.create_multipart_upload(**self._where, **self._extra)
            self._upload_id = str(out["UploadId"])
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise PayloadTooLargeError(f"object {self._where['Key']} is too large")
        body = bytes(self._buf[:size])
        out = self._s3.upload_part(
            **self._where, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"PartNumber": number, "ETag": out["ETag"]})
        del self._buf[:size]

    def commit(self) -> None:
        if self._upload_id is None:
            self._s3.put_object(**self._where, Body=bytes(self._buf), **self._extra)
        else:
            # (2):
            if self._buf:
                self._send(len(self._buf))
            self._s3.complete_multipart_upload(
                **self._where, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        self._buf = bytearray()

    def abort(self) -> None:
        # (3):
        self._buf = bytearray()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            self._s3.abort_multipart_upload(**self._where, UploadId=upload_id)


class _S3Reader(ObjectReader):
    def __init__(self, store: S3ObjectStore, key: str, size: int, etag: str) -> None:
        super().__init__(store, key, size)
        self._s3 = store._s3
        self._bucket = store.bucket
        self._etag = etag

    def _read_at(self, offset: int, size: int) -> bytes:
        try:
            out = self._s3.get_object(
                Bucket=self._bucket,
                Key=self.key,
                Range=f"bytes={offset}-{offset + size - 1}",
                IfMatch=self._etag,
            )
        except ClientError as exc:
            code = _code(exc)
            if code in {"PreconditionFailed", "412"}:
                raise ConflictError(f"object {self.key} changed while it was read") from None
            if code in _MISSING:
                raise NotFoundError(f"object {self.key} not found") from None
            raise
        body = out["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        if len(data) != size:
            raise UnavailableError(f"s3 object store: short read of {self.key}")
        return data


class S3ObjectStore(ObjectStore):
    """Sealed objects in ``bucket``, which MUST be in ``region`` (checked before first use)."""

    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        region: str,
        endpoint_url: str | None = None,
        session: Any = None,
        access_key_id: str | None = None,
        secret_access_key: SecretStr | None = None,
        session_token: SecretStr | None = None,
        server_side_encryption: ServerSideEncryption | None = None,
        part_size_bytes: int = DEFAULT_PART_BYTES,
        connect_timeout_seconds: float = 3.0,
        read_timeout_seconds: float = 30.0,
        max_attempts: int = 3,
        addressing_style: AddressingStyle = "auto",
    ) -> None:
        """Without ``session`` or keys, boto3's default credential chain is used."""
        if boto3 is None:
            raise ConfigError("the s3 object store needs boto3: pip install 'callvault[aws]'")
        if not isinstance(bucket, str) or _BUCKET_RE.fullmatch(bucket) is None or ".." in bucket:
            raise ConfigError("s3 object store: the bucket name is malformed", field="bucket")
        if not region:
            raise ConfigError("s3 object store: a region is required", field="region")
        if not MIN_PART_BYTES <= part_size_bytes <= MAX_PART_BYTES:
            raise ConfigError(
                "s3 object store: part_size_bytes must be within 5 MiB..5 GiB",
                field="part_size_bytes",
            )
        if (access_key_id is None) != (secret_access_key is None):
            raise ConfigError("s3 object store: an access key id needs its secret access key")
        s3_client = _boto.client(
            "s3",
            region=region,
            endpoint_url=endpoint_url,
            session=session,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=session_token,
            connect_timeout_seconds=connect_timeout_seconds,
            read_timeout_seconds=read_timeout_seconds,
            max_attempts=max_attempts,
            s3={"addressing_style": addressing_style},
        )
        self.bucket = bucket
        self.region = region
        self.part_size_bytes = part_size_bytes
        self._put_extra: dict[str, str] = (
            {"ServerSideEncryption": server_side_encryption} if server_side_encryption else {}
        )
        self._s3: Any = s3_client
        self._verified = False
        self._lock = threading.Lock()

    # -- residency ------------------------------------------------------------------

    def _ready(self) -> None:
        if self._verified:
            return
        with self._lock:
            if not self._verified:
                self._check_region()
                self._verified = True

    def _check_region(self) -> None:
        """Read the bucket's region; refuse a bucket outside ours (data residency)."""
        try:
            out = self._s3.get_bucket_location(Bucket=self.bucket)
        except ClientError as exc:
            code = _code(exc)
            if code == "NoSuchBucket":
                raise UnavailableError(
                    f"s3 object store: bucket {self.bucket} does not exist"
                ) from None
            if code in {"AccessDenied", "403"}:
                raise ConfigError(
                    f"s3 object store: cannot read the region of bucket {self.bucket} "
                    "(s3:GetBucketLocation is needed for the residency check)"
                ) from None
            raise
        actual = _bucket_region(out.get("LocationConstraint"))
        if actual != self.region:
            raise ConfigError(
                f"s3 object store: bucket {self.bucket} is in region {actual}, "
                f"not {self.region} (data residency)"
            )

    # -- backend hooks --------------------------------------------------------------

    def _begin(self, key: str) -> PendingObject:
        return _S3Upload(self, key)

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            out: dict[str, Any] = self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise
        return out

    def _open(self, key: str) -> ObjectReader:
        head = self._head(key)
        if head is None:
            raise NotFoundError(f"object {key} not found")
        return _S3Reader(self, key, int(head["ContentLength"]), str(head["ETag"]))

    def _get(self, key: str) -> bytes:
        try:
            out = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise NotFoundError(f"object {key} not found") from None
            raise
        body = out["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data

    def _delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=key)

    def _exists(self, key: str) -> bool:
        return self._head(key) is not None

    def _size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise NotFoundError(f"object {key} not found")
        return int(head["ContentLength"])

    def _check(self) -> None:
        """The bucket answers (and, via ``_ready``, is in our region)."""
        self._s3.head_bucket(Bucket=self.bucket)

    def _sweep(self, older_than_seconds: float) -> int:
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        aborted = 0
        pages = self._s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket)
        for page in pages:
            for upload in page.get("Uploads", []):
                key = upload.get("Key", "")
                initiated = upload.get("Initiated")
                if not isinstance(initiated, datetime) or initiated >= cutoff:
                    continue
                try:
                    check_key(key)
                except InvalidInputError:  # not one of ours: leave it alone
                    continue
                self._s3.abort_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload["UploadId"]
                )
                aborted += 1
        return aborted

    def _classify(self, exc: Exception) -> bool:
        """Any SDK error is "unavailable"; only its AWS error code is logged."""
        if isinstance(exc, ClientError):
            log.warning("s3 refused a request", extra={"aws_error_code": _code(exc)})
            return True
        return isinstance(exc, BotoCoreError)
