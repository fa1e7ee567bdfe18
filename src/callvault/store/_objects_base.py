"""The ObjectStore base class: key rules, one public surface, errors normalised.

Template method, as for key providers: the public methods check the key
(before any storage is touched) and turn every storage failure into one of
callvault's errors, so callers never see an SDK's exception or its message:

- :class:`~callvault.errors.InvalidInputError` (``field="key"``): the key is
  malformed. The message does not echo it.
- :class:`~callvault.errors.NotFoundError`: no object under the key.
- :class:`~callvault.errors.UnavailableError`: the storage cannot be used
  (unreachable, timed out, refused, disk full). The message names the store
  and the key only.

Backends implement the ``_``-prefixed hooks and ``_classify`` (whether an
exception of their SDK means "unavailable").
"""

from __future__ import annotations

import abc
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Final, TypeVar

from callvault.errors import Error, InvalidInputError, UnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")

Buffer = bytes | bytearray | memoryview

#: Longest key accepted (bytes; every key is ASCII). S3 allows 1024; a
#: filesystem allows 255 per path component: the pattern keeps both far away.
MAX_KEY_BYTES: Final = 256
_ID: Final = r"[a-z2-7]{26}"
_KIND: Final = r"[a-z][a-z0-9-]{0,31}"
_NAME: Final = r"[a-z0-9][a-z0-9_-]{0,127}"
#: ``<tenant id>/<deployment id>/<kind>/<name>``: ids as :mod:`callvault.store.ids`
#: makes them, a kind such as ``recordings``, a name such as a recording id.
#: No dots anywhere, so no ``..``, no hidden files, no clash with temporary files.
KEY_PATTERN: Final = rf"ten_{_ID}/dep_{_ID}/{_KIND}/{_NAME}"
_KEY_RE: Final = re.compile(KEY_PATTERN)
_KIND_RE: Final = re.compile(_KIND)
_NAME_RE: Final = re.compile(_NAME)


def check_key(key: object) -> str:
    """Return ``key`` if it is a well-formed object key; else :class:`InvalidInputError`."""
    if (
        not isinstance(key, str)
        or len(key) > MAX_KEY_BYTES
        or not key.isascii()
        or _KEY_RE.fullmatch(key) is None
    ):
        raise InvalidInputError(f"object key is malformed (expected {KEY_PATTERN})", field="key")
    return key


def object_key(tenant_id: str, deployment_id: str, kind: str, name: str) -> str:
    """The key of an object ``name`` of ``kind`` (``recordings``...) in a deployment."""
    for field, value, pattern in (
        ("tenant_id", tenant_id, re.compile(f"ten_{_ID}")),
        ("deployment_id", deployment_id, re.compile(f"dep_{_ID}")),
        ("kind", kind, _KIND_RE),
        ("name", name, _NAME_RE),
    ):
        if not isinstance(value, str) or pattern.fullmatch(value) is None:
            raise InvalidInputError(f"object {field} is malformed", field=field)
    return check_key(f"{tenant_id}/{deployment_id}/{kind}/{name}")


def _check_range(offset: int, size: int) -> None:
    if (
        not isinstance(offset, int)
        or not isinstance(size, int)
        or isinstance(offset, bool)
        or isinstance(size, bool)
        or offset < 0
        or size < 0
    ):
        raise InvalidInputError("a read needs offset >= 0 and size >= 0", field="range")


class PendingObject(abc.ABC):
    """A backend's object being written: invisible until :meth:`commit` returns."""

    @abc.abstractmethod
    def write(self, data: Buffer) -> None:
        """Take all of ``data`` (the caller may reuse its buffer afterwards)."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Make the object visible under its key, atomically."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Discard everything written; MUST be safe to call after a failed commit."""


class ObjectSink:
    """What :meth:`ObjectStore.writer` yields: a binary sink (``write`` only).

    Fits :class:`callvault.crypto.stream.Sink`, so a :class:`StreamWriter` can
    seal straight into it. ``written`` counts the bytes taken.
    """

    __slots__ = ("_key", "_pending", "_store", "written")

    def __init__(self, store: ObjectStore, key: str, pending: PendingObject | None) -> None:
        self._store = store
        self._key = key
        self._pending = pending
        self.written = 0

    def write(self, data: Buffer, /) -> int:
        pending = self._pending
        if pending is None:
            raise UnavailableError(f"{self._store.name} object store: writer of {self._key} closed")
        n = memoryview(data).nbytes
        self._store._guard("write", self._key, lambda: pending.write(data))
        self.written += n
        return n

    def _close(self) -> None:
        self._pending = None


class ObjectReader(abc.ABC):
    """One object opened for random access: ``size`` and ``read_at(offset, size)``.

    ``reader.read_at`` is a :data:`callvault.crypto.stream.ReadAt`, so
    ``RangeReader(key, reader.read_at, reader.size, ctx)`` reads a sealed
    stream touching only the segments a range needs. Every read sees the
    version of the object that was current when the reader was opened
    (local: the open file), or fails (S3: :class:`~callvault.errors.ConflictError`
    once the key was rewritten); never a mix of two versions. Safe to share
    between threads. Close it (or use ``with``).
    """

    def __init__(self, store: ObjectStore, key: str, size: int) -> None:
        self._store = store
        #: The object's key.
        self.key = key
        #: The object's length in bytes.
        self.size = size

    def read_at(self, offset: int, size: int) -> bytes:
        """Bytes [offset, offset + size) of the object; fewer at its end, as ``read`` gives."""
        _check_range(offset, size)
        size = max(0, min(size, self.size - offset))
        if size == 0:
            return b""
        return self._store._guard("read", self.key, lambda: self._read_at(offset, size))

    @abc.abstractmethod
    def _read_at(self, offset: int, size: int) -> bytes:
        """Exactly ``size`` (> 0) bytes at ``offset``, inside the object."""

    def close(self) -> None:  # noqa: B027 - optional hook: readers without a handle keep none
        """Release what the reader holds."""

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ObjectStore(abc.ABC):
    """Holds SEALED objects under validated keys; never sees plaintext.

    Callers MUST pass bytes that :mod:`callvault.crypto` already sealed. Every
    write is atomic: an object becomes visible, whole, only when its writer
    closes without error; on any error the key keeps its previous state
    (absent, or the previous version). Concurrent writers of one key: the
    last to finish wins; readers never see a torn object.
    """

    #: Short backend name used in messages and logs (``local``, ``s3``).
    name: str = "objects"

    # -- public surface (fixed) -----------------------------------------------------

    @contextmanager
    def writer(self, key: str) -> Iterator[ObjectSink]:
        """Stream an object in: ``with store.writer(key) as sink: sink.write(...)``.

        1. The key is checked before storage is touched.
        2. Bytes go to a pending object invisible to every reader.
        3. Leaving the block normally commits it (atomically); an exception
           inside the block, or a failure to write or commit, discards it
           and the exception propagates (storage failures as
           :class:`UnavailableError`).
        """
        # (1):
        key = check_key(key)
        self._guard("write", key, self._ready)
        # (2):
        pending = self._guard("write", key, lambda: self._begin(key))
        sink = ObjectSink(self, key, pending)
        # (3):
        try:
            yield sink
            sink._close()
            self._guard("write", key, pending.commit)
        except BaseException:  # nothing of a failed write may stay; the error propagates
            sink._close()
            self._abort_quietly(key, pending)
            raise

    def put(self, key: str, data: Buffer) -> int:
        """Store ``data`` under ``key`` in one go (atomically); returns its length."""
        with self.writer(key) as sink:
            sink.write(data)
        return sink.written

    def reader(self, key: str) -> ObjectReader:
        """Open ``key`` for ranged reads; :class:`NotFoundError` if it is absent."""
        key = check_key(key)
        return self._call("read", key, lambda: self._open(key))

    def get(self, key: str) -> bytes:
        """The whole object; :class:`NotFoundError` if it is absent."""
        key = check_key(key)
        return self._call("read", key, lambda: self._get(key))

    def delete(self, key: str) -> None:
        """Remove ``key``'s object. Idempotent: an absent object is not an error."""
        key = check_key(key)
        self._call("delete", key, lambda: self._delete(key))

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        key = check_key(key)
        return self._call("read", key, lambda: self._exists(key))

    def size(self, key: str) -> int:
        """The object's length in bytes; :class:`NotFoundError` if it is absent."""
        key = check_key(key)
        return self._call("read", key, lambda: self._size(key))

    def check(self) -> None:
        """Raise unless the store can be used now (startup check: fail closed)."""
        self._call("reach", "-", self._check)

    def sweep(self, older_than_seconds: float) -> int:
        """Discard pending writes older than this that a crashed process left behind.

        They were never visible; this frees their space. Returns how many
        were discarded. Writes still in progress MUST be younger than the
        cutoff (use hours, not seconds).
        """
        if older_than_seconds < 0:
            raise InvalidInputError("older_than_seconds must be >= 0", field="older_than_seconds")
        return self._call("sweep", "-", lambda: self._sweep(older_than_seconds))

    # -- backend hooks --------------------------------------------------------------

    def _ready(self) -> None:  # noqa: B027 - optional hook: local storage needs no first check
        """Checks due once before first use (S3: the bucket's region)."""

    @abc.abstractmethod
    def _begin(self, key: str) -> PendingObject: ...

    @abc.abstractmethod
    def _open(self, key: str) -> ObjectReader: ...

    def _get(self, key: str) -> bytes:
        with self._open(key) as reader:
            return reader._read_at(0, reader.size) if reader.size else b""

    @abc.abstractmethod
    def _delete(self, key: str) -> None: ...

    @abc.abstractmethod
    def _exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def _size(self, key: str) -> int: ...

    @abc.abstractmethod
    def _check(self) -> None: ...

    @abc.abstractmethod
    def _sweep(self, older_than_seconds: float) -> int: ...

    def _classify(self, exc: Exception) -> bool:  # noqa: ARG002 - a hook
        """Whether an exception of the backend's SDK means "storage unavailable"."""
        return False

    # -- machinery ------------------------------------------------------------------

    def _call(self, op: str, key: str, call: Callable[[], T]) -> T:
        self._guard(op, key, self._ready)
        return self._guard(op, key, call)

    def _guard(self, op: str, key: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except Error:
            raise
        except Exception as exc:  # every storage error is normalised here, by design
            if not isinstance(exc, OSError) and not self._classify(exc):
                raise
            log.warning(
                "object store call failed",
                extra={
                    "store": self.name,
                    "op": op,
                    "key": key,
                    "error_type": type(exc).__name__,
                },
            )
            raise UnavailableError(f"{self.name} object store: cannot {op} {key}") from None

    def _abort_quietly(self, key: str, pending: PendingObject) -> None:
        try:
            pending.abort()
        except Exception as exc:  # noqa: BLE001 - best effort: the write's own error propagates
            log.warning(
                "object store could not discard a failed write",
                extra={"store": self.name, "key": key, "error_type": type(exc).__name__},
            )
