"""Sealing a stream while it is produced: one segment at a time, into a sink."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from callvault.crypto._stream_body import TINK_HEADER_BYTES, BytesLike, SegmentSealer
from callvault.crypto._stream_header import StreamHeader
from callvault.crypto.hazmat import GCM_TAG_BYTES
from callvault.errors import CryptoError

_OPEN, _BROKEN, _FINISHED = "open", "broken", "finished"


class Sink(Protocol):
    """Where sealed bytes go: a binary file, a socket wrapper, an upload buffer.

    ``write`` MUST consume the whole buffer before it returns (the contract of
    :class:`io.BufferedIOBase`): the writer reuses its buffers.
    """

    def write(self, data: memoryview, /) -> object: ...


class StreamWriter:
    """Seals a stream as it arrives (a live call's audio), writing each segment once sealed.

    1. The callvault header and the body's 40-byte header are written at
       construction, so the sink identifies its stream from the first byte.
    2. At most one segment of plaintext is held. A full segment is sealed as
       not-last and written as soon as the first byte of the next one arrives
       (Tink's rule), so the bytes equal :func:`~callvault.crypto.stream.seal_stream`'s
       for the same plaintext, salt and nonce prefix, however it is chunked.
    3. :meth:`finish` seals what is held as the last segment. Without it (a
       crash, or an exception inside ``with``), the sink holds an authenticated
       prefix: :func:`~callvault.crypto.stream.open_prefix` reads it and says
       it is incomplete; :func:`~callvault.crypto.stream.open_stream` rejects it.
    4. After an error from the sink the writer refuses further use
       (:class:`~callvault.errors.CryptoError`); the caller MUST discard the sink's
       contents or read them as a prefix.

    The caller MUST use a key for this stream's header only (a per-object key).
    """

    __slots__ = ("_buf", "_cap", "_fill", "_out", "_plain", "_sealer", "_sink", "_state", "written")

    def __init__(self, key: bytes, header: StreamHeader, sink: Sink) -> None:
        associated_data = header.encode()
        self._sealer = SegmentSealer(key, associated_data)
        self._sink = sink
        size = header.segment_size
        self._plain = size - GCM_TAG_BYTES
        self._cap = self._plain - TINK_HEADER_BYTES
        self._buf = memoryview(bytearray(self._plain))
        self._out = memoryview(bytearray(size))
        self._fill = 0
        self._state = _BROKEN
        #: Bytes handed to the sink so far: the object's length once finished.
        self.written = 0
        # (1):
        self._emit_raw(memoryview(associated_data + self._sealer.header))
        self._state = _OPEN

    def _emit_raw(self, data: memoryview) -> None:
        self._sink.write(data)
        self.written += len(data)

    def _seal(self, plaintext: memoryview, *, last: bool) -> None:
        out = self._out[: len(plaintext) + GCM_TAG_BYTES]
        self._sealer.seal_into(plaintext, out, last=last)
        self._emit_raw(out)

    def _enter(self) -> None:
        if self._state != _OPEN:
            raise CryptoError(f"stream writer is {self._state}")
        self._state = _BROKEN

    def write(self, data: BytesLike) -> None:
        """Add plaintext; seals and writes every segment that is known not to be the last."""
        self._enter()
        view = memoryview(data).cast("B")
        buf, cap, fill = self._buf, self._cap, self._fill
        pos, total = 0, len(view)
        # (2):
        while pos < total:
            if fill == cap:
                self._seal(buf[:cap], last=False)
                fill, cap = 0, self._plain
            elif fill == 0 and total - pos > cap:
                self._seal(view[pos : pos + cap], last=False)
                pos += cap
                cap = self._plain
            else:
                take = min(cap - fill, total - pos)
                buf[fill : fill + take] = view[pos : pos + take]
                fill += take
                pos += take
        self._fill, self._cap = fill, cap
        self._state = _OPEN

    def finish(self) -> None:
        """Seal the held plaintext as the last segment; the stream is then complete."""
        self._enter()
        # (3):
        self._seal(self._buf[: self._fill], last=True)
        self._fill = 0
        self._state = _FINISHED

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` completed."""
        return self._state == _FINISHED

    def __enter__(self) -> StreamWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self._state == _OPEN:
            self.finish()
