"""Random access to a sealed stream: decrypt only the segments a plaintext range touches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from callvault.crypto._context import SealContext
from callvault.crypto._stream_body import TINK_HEADER_BYTES, Layout, SegmentOpener
from callvault.crypto._stream_header import MAX_HEADER_BYTES, read_header
from callvault.crypto.hazmat import GCM_TAG_BYTES
from callvault.errors import DecryptionError, InvalidInputError

#: ``read_at(offset, size)`` returns the object's bytes [offset, offset + size).
ReadAt = Callable[[int, int], bytes]


class SeekableSource(Protocol):
    """A binary file opened for reading (``open(path, "rb")``, ``io.BytesIO``)."""

    def seek(self, offset: int, /) -> int: ...

    def read(self, size: int, /) -> bytes: ...


def _file_reader(source: SeekableSource) -> ReadAt:
    def read_at(offset: int, size: int) -> bytes:
        source.seek(offset)
        return source.read(size)

    return read_at


class RangeReader:
    """Reads plaintext ranges of a stored sealed stream (HTTP ``Range``) segment by segment.

    Opening, in order:

    1. Read and parse the callvault header from the first bytes.
    2. The header's ids MUST equal ``context`` (tenant, deployment, object,
       purpose): an object of another tenant, deployment or call is refused.
    3. Derive the body key from ``key``, the body's salt and the header bytes:
       an edited or swapped header, or another key, fails in (4).
    4. The body length MUST be one a complete body can have, and the final
       segment MUST authenticate as last: truncation and trailing bytes are
       rejected here, before any range is served.

    Each segment a range touches is then read and authenticated with its
    number, so a reordered or duplicated segment fails. Every failure is the
    one :class:`~callvault.errors.DecryptionError`; errors raised by the source
    itself (an ``OSError``) pass through unchanged. A reader over a file is not
    safe to share between threads (it seeks); use one per request.
    """

    __slots__ = (
        "_body_length",
        "_layout",
        "_offset",
        "_opener",
        "_read_at",
        "_segments",
        "_tail",
        "header",
        "plaintext_length",
    )

    def __init__(
        self, key: bytes, source: ReadAt | SeekableSource, length: int, context: SealContext
    ) -> None:
        self._read_at: ReadAt = source if callable(source) else _file_reader(source)
        # (1):
        if length < 0:
            raise DecryptionError
        self.header = read_header(self._read(0, min(length, MAX_HEADER_BYTES)))
        # (2):
        if self.header.context != context:
            raise DecryptionError
        self._offset = self.header.size
        self._layout = Layout(self.header.segment_size)
        body_length = self._body_length = length - self._offset
        # (4): geometry first, so nothing is read for an impossible length
        self._segments = self._layout.segment_count(body_length)
        # (3):
        tink_header = self._read(self._offset, TINK_HEADER_BYTES)
        self._opener = SegmentOpener(key, self.header.encode(), tink_header)
        # (4): the final segment, kept: players often read the end of a recording
        self._tail = self._segment(self._segments - 1, body_length)
        #: Bytes of plaintext in the stream.
        self.plaintext_length = body_length - TINK_HEADER_BYTES - GCM_TAG_BYTES * self._segments

    def _read(self, offset: int, size: int) -> bytes:
        data = self._read_at(offset, size)
        if not isinstance(data, bytes | bytearray | memoryview) or len(data) != size:
            raise DecryptionError
        return data

    def _segment(self, index: int, body_length: int) -> bytes:
        start, end = self._layout.span(index, body_length)
        ciphertext = self._read(self._offset + start, end - start)
        return self._opener.open(index, ciphertext, last=index == self._segments - 1)

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        """Plaintext bytes [start, end), one piece per segment touched.

        ``end`` past the plaintext is clamped (as in slicing); ``start`` and
        ``end`` MUST satisfy ``0 <= start <= end`` (else
        :class:`~callvault.errors.InvalidInputError`, raised at once). Nothing
        is yielded that has not been authenticated.
        """
        if not 0 <= start <= end:
            raise InvalidInputError("a range needs 0 <= start <= end", field="range")
        end = min(end, self.plaintext_length)
        return self._pieces(start, end) if start < end else iter(())

    def _pieces(self, start: int, end: int) -> Iterator[bytes]:
        layout = self._layout
        body_length = self._body_length
        last = self._segments - 1
        for index in range(layout.index_of(start), layout.index_of(end - 1) + 1):
            plain = self._tail if index == last else self._segment(index, body_length)
            base = layout.plaintext_start(index)
            lo, hi = max(start - base, 0), min(end - base, len(plain))
            yield plain if lo == 0 and hi == len(plain) else plain[lo:hi]

    def read_range(self, start: int, end: int) -> bytes:
        """Plaintext bytes [start, end) in one piece (see :meth:`iter_range`)."""
        return b"".join(self.iter_range(start, end))
