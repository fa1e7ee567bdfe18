"""The callvault header of a sealed stream: what the body is bound to.

Layout (integers big-endian; the byte-level spec is docs/formats/sealed-stream.md)::

    magic "CVSS" (4) | version (1) | algorithm (1) | header length (2) | segment size (4)
    | 5 x (length (1) | printable ASCII): tenant, deployment (length 0: none),
      object, purpose, key reference

The encoding is canonical (one header, one byte string), and those bytes are
the associated data of the body, so a header that is edited, swapped for
another object's, or paired with another body does not open.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass

from callvault.crypto._context import SealContext
from callvault.errors import DecryptionError, InvalidInputError

MAGIC = b"CVSS"
FORMAT_VERSION = 1
#: Ciphertext bytes per segment, tag included. 64 KiB holds 4 s of 8 kHz 16-bit
#: mono audio (what a crash can lose), costs 0.02% overhead, and a ranged read
#: decrypts less than one segment more than it returns at each end.
DEFAULT_SEGMENT_SIZE = 64 * 1024
#: Smallest segment the body layout allows with room to spare (header 40 + tag 16 < 64).
MIN_SEGMENT_SIZE = 64
#: Largest segment: bounds what a reader or writer holds in memory at once.
MAX_SEGMENT_SIZE = 8 * 1024 * 1024
MAX_FIELD_BYTES = 255

_FIXED = struct.Struct(">4sBBHI")
_FIELDS = 5
MIN_HEADER_BYTES = _FIXED.size + _FIELDS
MAX_HEADER_BYTES = _FIXED.size + _FIELDS * (1 + MAX_FIELD_BYTES)
_ID = re.compile(r"[!-~]{1,255}")
_ID_BYTES = re.compile(rb"[!-~]{1,255}")


class Algorithm(enum.IntEnum):
    """How the body is sealed. The only value is Tink's AES-GCM-HKDF streaming layout."""

    #: 32-byte key, HKDF-SHA256 to a 32-byte AES-256-GCM key, 7-byte nonce prefix.
    AES256_GCM_HKDF_SHA256 = 1


def _check_id(value: object, field: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        raise InvalidInputError(
            f"{field} must be 1-{MAX_FIELD_BYTES} printable ASCII characters without spaces",
            field=field,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamHeader:
    """What a sealed stream belongs to, and how its body is cut.

    Every field is an id, never content: the header is stored in clear. A
    header cannot be constructed invalid; construction raises
    :class:`~callvault.errors.InvalidInputError` naming the field.
    """

    tenant_id: str
    deployment_id: str | None
    object_id: str
    purpose: str
    #: Opaque reference to the key, such as a wrapped data key's id and version.
    key_ref: str
    segment_size: int = DEFAULT_SEGMENT_SIZE
    version: int = FORMAT_VERSION
    algorithm: Algorithm = Algorithm.AES256_GCM_HKDF_SHA256

    def __post_init__(self) -> None:
        _check_id(self.tenant_id, "tenant_id")
        _check_id(self.deployment_id, "deployment_id", optional=True)
        _check_id(self.object_id, "object_id")
        _check_id(self.purpose, "purpose")
        _check_id(self.key_ref, "key_ref")
        size = self.segment_size
        if type(size) is not int or not MIN_SEGMENT_SIZE <= size <= MAX_SEGMENT_SIZE:
            raise InvalidInputError(
                f"segment_size must be {MIN_SEGMENT_SIZE}..{MAX_SEGMENT_SIZE} bytes",
                field="segment_size",
            )
        if type(self.version) is not int or self.version != FORMAT_VERSION:
            raise InvalidInputError("unsupported sealed-stream version", field="version")
        if not isinstance(self.algorithm, Algorithm):
            raise InvalidInputError("unsupported sealed-stream algorithm", field="algorithm")

    @classmethod
    def for_context(
        cls, context: SealContext, *, key_ref: str, segment_size: int = DEFAULT_SEGMENT_SIZE
    ) -> StreamHeader:
        """The header binding a stream to ``context``, sealed under the key ``key_ref`` names."""
        return cls(
            tenant_id=context.tenant_id,
            deployment_id=context.deployment_id,
            object_id=context.object_id,
            purpose=context.purpose,
            key_ref=key_ref,
            segment_size=segment_size,
        )

    @property
    def context(self) -> SealContext:
        """The ids this stream is bound to, for comparison with what a reader expects."""
        return SealContext(
            tenant_id=self.tenant_id,
            purpose=self.purpose,
            object_id=self.object_id,
            deployment_id=self.deployment_id,
        )

    def encode(self) -> bytes:
        """The canonical bytes: stored first, and bound as the body's associated data."""
        fields = (self.tenant_id, self.deployment_id, self.object_id, self.purpose, self.key_ref)
        raw = [(f or "").encode("ascii") for f in fields]
        length = _FIXED.size + sum(1 + len(r) for r in raw)
        fixed = _FIXED.pack(MAGIC, self.version, self.algorithm, length, self.segment_size)
        return fixed + b"".join(bytes((len(r),)) + r for r in raw)

    @property
    def size(self) -> int:
        """Length of :meth:`encode`'s output: where the body starts in the object."""
        return (
            _FIXED.size
            + _FIELDS
            + sum(
                len(f or "")
                for f in (
                    self.tenant_id,
                    self.deployment_id,
                    self.object_id,
                    self.purpose,
                    self.key_ref,
                )
            )
        )


def read_header(data: bytes | bytearray | memoryview) -> StreamHeader:
    """Parse the header at the start of ``data`` (the body may follow it).

    Nothing is trusted yet: the header is authenticated only when the body
    opens. Parsing is strict and bounded:

    1. At least the fixed part MUST be present, with the magic, a known
       version and a known algorithm.
    2. The declared header length MUST lie within the bounds of any valid
       header and within ``data``; nothing is read or allocated past it.
    3. Each of the five fields MUST fit inside the declared length and be
       printable ASCII; only the deployment may be empty.
    4. The fields MUST end exactly at the declared length.

    Any failure raises :class:`~callvault.errors.DecryptionError`.
    """
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1 or len(view) < MIN_HEADER_BYTES:
        raise DecryptionError
    # (1): fixed part
    magic, version, algorithm, length, segment_size = _FIXED.unpack_from(view)
    if magic != MAGIC or version != FORMAT_VERSION or algorithm not in _ALGORITHMS:
        raise DecryptionError
    # (2): declared length
    if not MIN_HEADER_BYTES <= length <= min(MAX_HEADER_BYTES, len(view)):
        raise DecryptionError
    # (3): fields
    pos = _FIXED.size
    fields: list[str | None] = []
    for _ in range(_FIELDS):
        if pos >= length:
            raise DecryptionError
        n = view[pos]
        pos += 1
        if pos + n > length:
            raise DecryptionError
        raw = view[pos : pos + n].tobytes()
        pos += n
        if n and _ID_BYTES.fullmatch(raw) is None:
            raise DecryptionError
        fields.append(raw.decode("ascii") if n else None)
    # (4): exact end
    if pos != length:
        raise DecryptionError
    tenant, deployment, obj, purpose, key_ref = fields
    if tenant is None or obj is None or purpose is None or key_ref is None:
        raise DecryptionError
    try:
        return StreamHeader(
            tenant_id=tenant,
            deployment_id=deployment,
            object_id=obj,
            purpose=purpose,
            key_ref=key_ref,
            segment_size=segment_size,
            version=version,
            algorithm=Algorithm(algorithm),
        )
    except InvalidInputError:
        raise DecryptionError from None


_ALGORITHMS = frozenset(int(a) for a in Algorithm)
