"""Sealed streams: segmented AES-256-GCM for recordings and other large content.

A sealed stream is a callvault header (the ids it belongs to, the key
reference, the segment size) followed by a body laid out exactly like Tink's
AES-GCM-HKDF streaming AEAD, with the header's bytes as the body's associated
data. The format is specified in ``docs/formats/sealed-stream.md``.

::

    header = StreamHeader.for_context(ctx, key_ref="dk_123/v1")
    sealed = seal_stream(key, header, audio)            # one shot
    with StreamWriter(key, header, file) as w:          # while the call is live
        w.write(chunk)
    read_header(sealed).key_ref                         # which key to unwrap
    open_stream(key, sealed, ctx)                       # the whole stream
    open_prefix(key, sealed, ctx)                       # what a crash left, marked incomplete
    RangeReader(key, file, size, ctx).iter_range(a, b)  # HTTP Range: only the segments touched

``seal_body`` / ``open_body`` are the raw body with a given 32-byte key and
associated data, for anyone checking the format against Tink.

Every failure to open raises :class:`~callvault.errors.DecryptionError`, which
says nothing more: a wrong key, another tenant's object, an edited header,
truncation, reordering, duplicated segments and trailing bytes look alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from callvault.crypto import _stream_body
from callvault.crypto._context import SealContext
from callvault.crypto._stream_body import (
    MAX_SEGMENTS,
    TINK_HEADER_BYTES,
    BytesLike,
    Layout,
    byte_view,
    open_body_prefix,
)
from callvault.crypto._stream_header import (
    DEFAULT_SEGMENT_SIZE,
    FORMAT_VERSION,
    MAGIC,
    MAX_FIELD_BYTES,
    MAX_HEADER_BYTES,
    MAX_SEGMENT_SIZE,
    MIN_SEGMENT_SIZE,
    Algorithm,
    StreamHeader,
    read_header,
)
from callvault.crypto._stream_read import RangeReader, ReadAt, SeekableSource
from callvault.crypto._stream_write import Sink, StreamWriter
from callvault.errors import DecryptionError

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_FIELD_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_SEGMENTS",
    "MAX_SEGMENT_SIZE",
    "MIN_SEGMENT_SIZE",
    "TINK_HEADER_BYTES",
    "Algorithm",
    "Prefix",
    "RangeReader",
    "ReadAt",
    "SeekableSource",
    "Sink",
    "StreamHeader",
    "StreamWriter",
    "open_body",
    "open_prefix",
    "open_stream",
    "read_header",
    "seal_body",
    "seal_stream",
    "sealed_length",
]


def seal_body(
    key: bytes,
    associated_data: bytes,
    plaintext: BytesLike,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> bytearray:
    """Seal ``plaintext`` as a Tink AES-GCM-HKDF streaming body (no callvault header).

    ``key`` MUST be 32 uniformly random bytes; ``associated_data`` is bound
    through the key derivation and not stored. ``segment_size`` is Tink's
    ``ciphertext_segment_size``. Tink opens the result with an
    ``AesGcmHkdfStreamingKey`` holding ``key`` (derived key size 32, HKDF
    SHA256, that segment size). Returns a new buffer (not copied into bytes:
    a multi-megabyte copy would cost as much as the encryption).
    """
    return _stream_body.seal_body(key, associated_data, plaintext, segment_size=segment_size)


def open_body(
    key: bytes,
    associated_data: bytes,
    ciphertext: BytesLike,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> bytearray:
    """Open a complete Tink AES-GCM-HKDF streaming body (Tink's or ours).

    Any failure is :class:`~callvault.errors.DecryptionError`.
    """
    return _stream_body.open_body(key, associated_data, ciphertext, segment_size=segment_size)


def sealed_length(header: StreamHeader, plaintext_length: int) -> int:
    """Bytes of the sealed stream for ``plaintext_length`` bytes under ``header``."""
    return header.size + Layout(header.segment_size).body_length(plaintext_length)


def seal_stream(key: bytes, header: StreamHeader, plaintext: BytesLike) -> bytearray:
    """Seal ``plaintext`` in one call: ``header.encode()`` followed by the body.

    The caller MUST pass the key that ``header.key_ref`` names, used for this
    object only. The header bytes are the body's associated data.
    """
    encoded = header.encode()
    return _stream_body.seal_body(
        key, encoded, plaintext, segment_size=header.segment_size, lead=encoded
    )


def _split(sealed: BytesLike, context: SealContext) -> tuple[StreamHeader, bytes, memoryview]:
    view = byte_view(sealed)
    header = read_header(view)
    if header.context != context:
        raise DecryptionError
    return header, header.encode(), view[header.size :]


def open_stream(key: bytes, sealed: BytesLike, context: SealContext) -> bytearray:
    """Open a complete sealed stream that MUST belong to ``context``.

    1. Parse the header (strict, bounded).
    2. Its tenant, deployment, object and purpose MUST equal ``context``.
    3. Open the body with the header bytes as associated data: another key,
       an edited or swapped header, truncation, reordering, duplicated
       segments and trailing bytes all fail.

    Any failure is :class:`~callvault.errors.DecryptionError`.
    """
    # (1), (2):
    header, encoded, body = _split(sealed, context)
    # (3):
    return _stream_body.open_body(key, encoded, body, segment_size=header.segment_size)


@dataclass(frozen=True, slots=True)
class Prefix:
    """What :func:`open_prefix` recovered: authenticated plaintext, and whether it is all of it."""

    plaintext: bytearray
    complete: bool


def open_prefix(key: bytes, sealed: BytesLike, context: SealContext) -> Prefix:
    """Open what a :class:`StreamWriter` left, finished or not (after a crash).

    Steps (1) and (2) are those of :func:`open_stream`; then:

    3. Every full-size segment MUST authenticate in its place (else
       :class:`~callvault.errors.DecryptionError`, as for any tampering).
    4. The bytes after them (less than one segment) either authenticate as
       the final segment, and the stream is ``complete``, or are dropped as
       a torn write, and it is not.

    Only authenticated bytes are returned. A stream cut short by an attacker
    looks like a crash here; callers MUST treat ``complete=False`` as
    "recording interrupted", never as the whole recording. With less than
    one full segment written, a wrong key cannot be told from a torn write:
    the result is then empty and incomplete.
    """
    header, encoded, body = _split(sealed, context)
    plaintext, complete = open_body_prefix(key, encoded, body, segment_size=header.segment_size)
    return Prefix(plaintext=plaintext, complete=complete)
