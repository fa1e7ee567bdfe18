"""The body of a sealed stream: Tink's AES-GCM-HKDF streaming layout over pyca's AESGCM.

::

    body      = tink header | segment 0 | segment 1 | ... | segment n-1
    header    = 0x28 (its own length, 40) | salt (32) | nonce prefix (7)
    key'      = HKDF-SHA256(ikm=key, salt=salt, info=associated data, length=32)
    nonce(i)  = nonce prefix (7) | uint32 BE i | 0x01 if i == n-1 else 0x00
    segment i = AES-256-GCM(key', nonce(i), plaintext i, aad=empty) = ciphertext | tag (16)

Every ciphertext segment is ``segment_size`` bytes, tag included, except
segment 0, which is shorter by the 40-byte header (header and segment 0
together fill one segment size), and the last, which may be shorter. The
last segment is never empty unless the whole plaintext is, exactly as Tink
writes it; a body's segment boundaries follow from its length alone.
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass

from callvault.crypto._stream_header import MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE
from callvault.crypto.hazmat import AES_KEY_BYTES, GCM_TAG_BYTES, AesGcm, hkdf_sha256
from callvault.errors import CryptoError, DecryptionError

SALT_BYTES = AES_KEY_BYTES
NONCE_PREFIX_BYTES = 7
TINK_HEADER_BYTES = 1 + SALT_BYTES + NONCE_PREFIX_BYTES
#: Segment numbers are 32-bit in the nonce.
MAX_SEGMENTS = 1 << 32
_TAG = GCM_TAG_BYTES
_H = TINK_HEADER_BYTES
_NONCE = struct.Struct(">7sIB")

#: Source of salts and nonce prefixes; tests replace it to make known answers.
_random_bytes = secrets.token_bytes

BytesLike = bytes | bytearray | memoryview


def byte_view(data: BytesLike) -> memoryview:
    """A flat byte view of ``data``; anything else is :class:`DecryptionError`."""
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1:
        raise DecryptionError
    return view


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each segment lies in a body cut at ``segment_size``: pure arithmetic."""

    segment_size: int

    @property
    def plain_size(self) -> int:
        """Plaintext bytes in every segment but the first and the last."""
        return self.segment_size - _TAG

    def segments_for(self, plaintext_length: int) -> int:
        """Segments that sealing ``plaintext_length`` bytes produces (at least one)."""
        return max(1, -(-(plaintext_length + _H) // self.plain_size))

    def body_length(self, plaintext_length: int) -> int:
        """Bytes of the body sealing ``plaintext_length`` bytes produces."""
        return _H + plaintext_length + _TAG * self.segments_for(plaintext_length)

    def segment_count(self, body_length: int) -> int:
        """Segments of a complete body of ``body_length`` bytes; no such body: DecryptionError."""
        s = self.segment_size
        if body_length < _H + _TAG:
            raise DecryptionError
        n = -(-body_length // s)
        if n > MAX_SEGMENTS or body_length - (n - 1) * s < _TAG:
            raise DecryptionError
        return n

    def span(self, index: int, body_length: int) -> tuple[int, int]:
        """Body offsets [start, end) of ciphertext segment ``index``."""
        s = self.segment_size
        return (_H if index == 0 else index * s), min((index + 1) * s, body_length)

    def plaintext_start(self, index: int) -> int:
        """Plaintext offset where segment ``index`` begins."""
        return 0 if index == 0 else index * self.plain_size - _H

    def index_of(self, position: int) -> int:
        """The segment holding plaintext byte ``position``."""
        return (position + _H) // self.plain_size


def _valid_size(segment_size: object) -> bool:
    return type(segment_size) is int and MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE


def _derive(key: bytes, associated_data: bytes, salt: BytesLike) -> AesGcm:
    return AesGcm(hkdf_sha256(key, salt=bytes(salt), info=associated_data))


class SegmentSealer:
    """Seals the segments of one new stream, in order, under a fresh salt and nonce prefix.

    1. The salt and nonce prefix are random per stream, so the derived key
       is new per stream and nonces never repeat under it.
    2. Segment numbers come from this object's counter alone, so no caller
       can seal two segments under one nonce.
    3. More than 2**32 segments cannot be numbered, and nothing follows the
       last segment: either is :class:`CryptoError`.
    """

    __slots__ = ("_aead", "_done", "_index", "_prefix", "header")

    def __init__(self, key: bytes, associated_data: bytes) -> None:
        if len(key) != AES_KEY_BYTES:
            raise CryptoError("sealed streams need a 32-byte key")
        # (1):
        salt = _random_bytes(SALT_BYTES)
        self._prefix = _random_bytes(NONCE_PREFIX_BYTES)
        self.header = bytes((_H,)) + salt + self._prefix
        self._aead = _derive(key, associated_data, salt)
        self._index = 0
        self._done = False

    def seal_into(self, plaintext: BytesLike, out: memoryview, *, last: bool) -> None:
        """Seal the next segment into ``out`` (exactly ``len(plaintext) + 16`` bytes)."""
        # (2), (3):
        index = self._index
        if index >= MAX_SEGMENTS or self._done:
            raise CryptoError("sealed stream is complete or exceeds 2**32 segments")
        self._index = index + 1
        self._done = last
        self._aead.seal_into(_NONCE.pack(self._prefix, index, last), plaintext, out)


class SegmentOpener:
    """Opens segments of one body, in any order, given their numbers.

    The Tink header MUST be exactly 40 bytes and start with its own length;
    the key MUST be 32 bytes. Either failure is :class:`DecryptionError`.
    """

    __slots__ = ("_aead", "_prefix")

    def __init__(self, key: bytes, associated_data: bytes, tink_header: BytesLike) -> None:
        if len(key) != AES_KEY_BYTES or len(tink_header) != _H or tink_header[0] != _H:
            raise DecryptionError
        self._prefix = bytes(tink_header[1 + SALT_BYTES :])
        self._aead = _derive(key, associated_data, tink_header[1 : 1 + SALT_BYTES])

    def open_into(self, index: int, ciphertext: BytesLike, out: memoryview, *, last: bool) -> None:
        """Open segment ``index`` into ``out`` (zeroed on failure)."""
        self._aead.open_into(_NONCE.pack(self._prefix, index, last), ciphertext, out)

    def open(self, index: int, ciphertext: BytesLike, *, last: bool) -> bytes:
        """Open segment ``index`` into new bytes."""
        return self._aead.open(_NONCE.pack(self._prefix, index, last), ciphertext)

    def open_run(
        self, ciphertext: memoryview, out: memoryview, segment_size: int, count: int, last: int
    ) -> None:
        """Open segments 0..count-1 into ``out``; only segment ``last`` carries the last flag."""
        s = segment_size
        length = len(ciphertext)
        start, stop, pt = _H, s, 0
        open_into = self._aead.open_into
        pack = _NONCE.pack
        prefix = self._prefix
        for i in range(count):
            end = min(stop, length)
            n = end - start - _TAG
            open_into(pack(prefix, i, i == last), ciphertext[start:end], out[pt : pt + n])
            pt += n
            start = end
            stop += s


def seal_body(
    key: bytes,
    associated_data: bytes,
    plaintext: BytesLike,
    *,
    segment_size: int,
    lead: bytes = b"",
) -> bytearray:
    """Seal ``plaintext`` into one Tink AES-GCM-HKDF streaming body.

    ``key`` MUST be 32 random bytes used for nothing else; ``associated_data``
    is authenticated (through the key derivation) but not stored. Returns a
    new buffer holding ``lead`` then the body, allocated once at its final size.
    """
    if not _valid_size(segment_size):
        raise CryptoError("segment size out of bounds")
    layout = Layout(segment_size)
    pt = memoryview(plaintext)
    total = len(pt)
    count = layout.segments_for(total)
    if count > MAX_SEGMENTS:
        raise CryptoError("sealed stream exceeds 2**32 segments")
    sealer = SegmentSealer(key, associated_data)
    body = bytearray(len(lead) + _H + total + _TAG * count)
    whole = memoryview(body)
    whole[: len(lead)] = lead
    out = whole[len(lead) :]
    out[:_H] = sealer.header
    seal_into = sealer.seal_into
    cap = segment_size - _TAG - _H
    pos, at = 0, _H
    for i in range(count):
        n = min(cap, total - pos)
        seal_into(pt[pos : pos + n], out[at : at + n + _TAG], last=i == count - 1)
        pos += n
        at += n + _TAG
        cap = segment_size - _TAG
    return body


def open_body(
    key: bytes, associated_data: bytes, ciphertext: BytesLike, *, segment_size: int
) -> bytearray:
    """Open a complete body; any failure (including truncation) is :class:`DecryptionError`."""
    if not _valid_size(segment_size):
        raise DecryptionError
    ct = byte_view(ciphertext)
    count = Layout(segment_size).segment_count(len(ct))
    opener = SegmentOpener(key, associated_data, ct[:_H])
    plaintext = bytearray(len(ct) - _H - _TAG * count)
    opener.open_run(ct, memoryview(plaintext), segment_size, count, count - 1)
    return plaintext


def open_body_prefix(
    key: bytes, associated_data: bytes, ciphertext: BytesLike, *, segment_size: int
) -> tuple[bytearray, bool]:
    """Open what a writer left, complete or not: ``(plaintext, complete)``.

    1. A body shorter than its 40-byte header authenticates nothing: empty, incomplete.
    2. Every full-size segment MUST authenticate: as not-last, or as last
       when it ends the data. Otherwise :class:`DecryptionError`.
    3. Bytes after the last full-size segment (less than one segment) are the
       final segment if they authenticate as last (complete); otherwise they
       are a torn write and are dropped (incomplete).
    """
    if not _valid_size(segment_size):
        raise DecryptionError
    ct = byte_view(ciphertext)
    length = len(ct)
    # (1):
    if length < _H:
        if len(key) != AES_KEY_BYTES:
            raise DecryptionError
        return bytearray(), False
    opener = SegmentOpener(key, associated_data, ct[:_H])
    layout = Layout(segment_size)
    full = length // segment_size
    tail = length - full * segment_size - (_H if full == 0 else 0)
    if full + 1 > MAX_SEGMENTS:
        raise DecryptionError
    plaintext = bytearray(length - _H - _TAG * full - min(tail, _TAG))
    out = memoryview(plaintext)
    # (2): all full segments but the last full one are not-last
    opener.open_run(ct, out, segment_size, max(full - 1, 0), -1)
    pt_end = layout.plaintext_start(full)
    if full:
        i = full - 1
        start, end = layout.span(i, length)
        seg, dst = ct[start:end], out[layout.plaintext_start(i) : pt_end]
        if tail == 0:
            try:
                opener.open_into(i, seg, dst, last=True)
            except DecryptionError:
                opener.open_into(i, seg, dst, last=False)
                return plaintext, False
            return plaintext, True
        opener.open_into(i, seg, dst, last=False)
    # (3):
    if tail >= _TAG:
        try:
            opener.open_into(full, ct[length - tail :], out[pt_end:], last=True)
        except DecryptionError:
            return plaintext[:pt_end], False  # the dropped tail was zeroed by open_into
        return plaintext, True
    return plaintext, False
