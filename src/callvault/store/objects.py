"""Sealed-object storage (recordings, large transcripts), chosen per deployment region.

::

    key = object_key(tenant_id, deployment_id, "recordings", recording_id)
    store = stores.for_region(deployment.region)
    with store.writer(key) as sink, StreamWriter(k, header, sink) as w:
        w.write(chunk)                      # while the call is live
    # the object is visible now, whole; after an exception, nothing is
    with store.reader(key) as r:            # HTTP Range: only the segments needed
        RangeReader(k, r.read_at, r.size, ctx).iter_range(a, b)

The store holds SEALED bytes only (see :class:`ObjectStore`): callers seal
with :mod:`callvault.crypto` first. Keys follow :data:`KEY_PATTERN` and are
checked before storage is touched.

Which store a region uses comes from one setting (``CALLVAULT_OBJECT_STORES``),
a JSON object of region → store; a region it does not name uses a local
directory, ``<data_dir>/objects/<region>``::

    {"eu-west-1": {"kind": "s3", "bucket": "acme-callvault-eu-west-1"},
     "us-east-1": {"kind": "s3", "bucket": "acme-cv-us", "endpoint_url": "https://s3.example",
                   "server_side_encryption": "AES256", "part_size_bytes": 16777216},
     "eu-west-2": {"kind": "local", "path": "/srv/callvault/eu-west-2"}}

S3 credentials are not in it: boto3's default chain provides them (role,
environment, files).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Collection, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, Self

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from callvault.errors import ConfigError, InvalidInputError
from callvault.store._objects_base import (
    KEY_PATTERN,
    MAX_KEY_BYTES,
    ObjectReader,
    ObjectSink,
    ObjectStore,
    PendingObject,
    check_key,
    object_key,
)
from callvault.store._objects_local import LocalObjectStore
from callvault.store._objects_s3 import (
    BUCKET_PATTERN,
    DEFAULT_PART_BYTES,
    MAX_PART_BYTES,
    MIN_PART_BYTES,
    S3ObjectStore,
)

__all__ = [
    "KEY_PATTERN",
    "MAX_KEY_BYTES",
    "SETTING",
    "LocalObjectStore",
    "ObjectReader",
    "ObjectSink",
    "ObjectStore",
    "ObjectStoreConfig",
    "ObjectStores",
    "PendingObject",
    "S3ObjectStore",
    "check_key",
    "object_key",
    "object_store_for_region",
    "parse_object_stores",
]

#: The setting :func:`parse_object_stores` reads, named in its errors.
SETTING: Final = "CALLVAULT_OBJECT_STORES"
REGION_PATTERN: Final = r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}"
_REGION_RE: Final = re.compile(REGION_PATTERN)
_FIELD_RE: Final = re.compile(r"[a-z_]{1,40}")
_MAX_SETTING_CHARS: Final = 65_536
# http(s), a host (name, IPv4 or [IPv6]), a port, a path; no user:password@.
_ENDPOINT_PATTERN: Final = (
    r"^https?://(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\])(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/\-]*)?$"
)


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class ObjectStoreConfig:
    """Where one region's sealed objects live. Cannot be built in an invalid state
    (a ``pydantic.ValidationError`` otherwise; :func:`parse_object_stores` turns it
    into a :class:`ConfigError`)."""

    region: Annotated[str, Field(strict=True, pattern=f"^{REGION_PATTERN}$")]
    kind: Literal["local", "s3"] = "local"
    #: local: the directory (absolute); default ``<data_dir>/objects/<region>``.
    path: Path | None = None
    #: s3: the bucket, which MUST be in ``region`` (checked before first use).
    bucket: Annotated[str, Field(strict=True, pattern=f"^{BUCKET_PATTERN}$")] | None = None
    #: s3: an endpoint override (VPC endpoint, an S3-compatible service).
    endpoint_url: (
        Annotated[str, Field(strict=True, max_length=400, pattern=_ENDPOINT_PATTERN)] | None
    ) = None
    #: s3: ask S3 to encrypt too (our bytes are sealed already).
    server_side_encryption: Literal["AES256", "aws:kms"] | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    part_size_bytes: Annotated[int, Field(strict=True, ge=MIN_PART_BYTES, le=MAX_PART_BYTES)] = (
        DEFAULT_PART_BYTES
    )
    connect_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 3.0
    read_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    max_attempts: Annotated[int, Field(strict=True, ge=1, le=10)] = 3

    @model_validator(mode="after")
    def _fits_kind(self) -> Self:
        if self.kind == "s3":
            if self.bucket is None:
                raise ValueError("an s3 store needs a bucket")
            if self.path is not None:
                raise ValueError("path is for local stores only")
        else:
            if self.bucket or self.endpoint_url or self.server_side_encryption:
                raise ValueError("bucket, endpoint_url and server_side_encryption are for s3 only")
            if self.path is not None and not self.path.is_absolute():
                raise ValueError("path must be absolute")
        return self


_ENTRY: Final = TypeAdapter(ObjectStoreConfig)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


def _our_regions() -> frozenset[str]:
    # Deferred: tenancy imports store, so store cannot import tenancy at module level.
    from callvault.tenancy import Region  # noqa: PLC0415 - see the comment above

    return frozenset(r.value for r in Region)


def _safe_loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) if _FIELD_RE.fullmatch(str(p)) else "?" for p in loc)


def parse_object_stores(
    raw: str | None,
    *,
    regions: Collection[str] | None = None,
    setting: str = SETTING,
) -> Mapping[str, ObjectStoreConfig]:
    """Parse the per-region object store setting (shape in the module docstring).

    ``None`` or blank: no region is configured (every region is local).
    ``regions``: the region names allowed (default: every
    :class:`callvault.tenancy.Region`). Returns a read-only mapping region →
    :class:`ObjectStoreConfig`.

    Raises :class:`ConfigError` with ``field=setting`` and one line that
    never echoes a value: not JSON, a duplicated key, not an object of
    objects, a region we do not know, an unknown field, a bad value, an s3
    entry without a bucket, a local entry with s3 fields.
    """

    def bad(why: str) -> ConfigError:
        return ConfigError(f"bad setting {setting}: {why}", field=setting)

    if raw is None or not raw.strip():
        return MappingProxyType({})
    if len(raw) > _MAX_SETTING_CHARS:
        raise bad(f"longer than {_MAX_SETTING_CHARS} characters")
    try:
        doc = json.loads(raw, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):
        raise bad("not valid JSON (or a key appears twice)") from None
    if not isinstance(doc, dict):
        raise bad("must be a JSON object of region: store")
    known = _our_regions() if regions is None else frozenset(regions)
    out: dict[str, ObjectStoreConfig] = {}
    for region, entry in doc.items():
        if region not in known:
            name = repr(region) if _REGION_RE.fullmatch(region) else "(malformed)"
            raise bad(f"unknown region {name}")
        if not isinstance(entry, dict):
            raise bad(f"{region}: must be a JSON object")
        if "region" in entry:
            raise bad(f"{region}: the region is the entry's name, not a field")
        try:
            out[region] = _ENTRY.validate_python({**entry, "region": region})
        except ValidationError as exc:
            err = exc.errors(include_input=False, include_url=False)[0]
            where = _safe_loc(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            raise bad(f"{region}: {where}: {msg}" if where else f"{region}: {msg}") from None
    return MappingProxyType(out)


def object_store_for_region(
    stores: Mapping[str, ObjectStoreConfig],
    region: str,
    *,
    data_dir: Path,
    session: Any = None,
) -> ObjectStore:
    """The object store of deployments in ``region``.

    S3 when ``stores`` configures it for the region; else a local directory
    (the entry's ``path``, default ``<data_dir>/objects/<region>``).
    ``session``: a boto3 session for S3 (default: boto3's credential chain).
    Building an S3 store makes no request; its bucket's region is checked on
    first use (or by :meth:`ObjectStore.check`).
    """
    if not isinstance(region, str) or _REGION_RE.fullmatch(region) is None:
        raise InvalidInputError("region is malformed", field="region")
    config = stores.get(region)
    if config is not None and config.region != region:
        raise ConfigError(f"object store of region {region} is configured for another region")
    if config is None or config.kind == "local":
        path = config.path if config is not None else None
        return LocalObjectStore(path if path is not None else Path(data_dir) / "objects" / region)
    if config.bucket is None:  # the config's own validator already refuses this
        raise ConfigError(f"object store of region {region} has no bucket")
    return S3ObjectStore(
        bucket=config.bucket,
        region=region,
        endpoint_url=config.endpoint_url,
        session=session,
        server_side_encryption=config.server_side_encryption,
        part_size_bytes=config.part_size_bytes,
        connect_timeout_seconds=config.connect_timeout_seconds,
        read_timeout_seconds=config.read_timeout_seconds,
        max_attempts=config.max_attempts,
        addressing_style=config.addressing_style,
    )


class ObjectStores:
    """Every region's object store, built on first use and kept (an S3 client is costly).

    Safe to share between threads.
    """

    def __init__(
        self,
        stores: Mapping[str, ObjectStoreConfig],
        *,
        data_dir: Path,
        session: Any = None,
    ) -> None:
        self._configs = dict(stores)
        self._data_dir = Path(data_dir)
        self._session = session
        self._built: dict[str, ObjectStore] = {}
        self._lock = threading.Lock()

    def for_region(self, region: str) -> ObjectStore:
        """The store of ``region`` (see :func:`object_store_for_region`)."""
        with self._lock:
            store = self._built.get(region)
            if store is None:
                store = object_store_for_region(
                    self._configs, region, data_dir=self._data_dir, session=self._session
                )
                self._built[region] = store
            return store

    def check(self) -> None:
        """Check every configured region's store (reachable; S3: bucket in its region)."""
        for region in sorted(self._configs):
            self.for_region(region).check()
