"""A live call's audio, sealed segment by segment into its region's object store.

No unencrypted audio touches disk at any moment: chunks are buffered in memory
only up to one sealed-stream segment (64 KiB by default, ~8 s of 8 kHz μ-law),
sealed by :class:`~callvault.crypto.stream.StreamWriter` and written to the
store's pending object, which becomes visible, whole, only when the call is
finished. The audio given here MUST already have passed the call's
:class:`~callvault.calls._audio_guard.AudioGuard` (card audio silenced).

The stream key is derived from the call's one data key
(:func:`callvault.crypto.stream_key`), so shredding the call's key shreds the
recording with the rest of the call.

::

    rec = LiveRecording.open(store, data_key, context, codec="mulaw", sample_rate=8000)
    rec.write(chunk)                       # while the call is live
    result = rec.finish(complete=True)     # the object is stored now
    rec.abort()                            # or: nothing is stored
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Self

from callvault.crypto import SealContext, stream_key
from callvault.crypto.stream import (
    DEFAULT_SEGMENT_SIZE,
    StreamHeader,
    StreamWriter,
    open_stream,
)
from callvault.errors import InvalidInputError
from callvault.store import new_id
from callvault.store.models import Recording, utcnow
from callvault.store.objects import ObjectSink, ObjectStore, object_key

Codec = Literal["mulaw", "pcm16"]
_BYTES_PER_SAMPLE: dict[str, int] = {"mulaw": 1, "pcm16": 2}
RECORDING_PURPOSE = "recording"


def recording_context(tenant_id: str, deployment_id: str, call_id: str) -> SealContext:
    """What a call's recording is bound to: sealed under the call's data key."""
    return SealContext(
        tenant_id=tenant_id,
        deployment_id=deployment_id,
        purpose=RECORDING_PURPOSE,
        object_id=f"{call_id}/recording",
        owner_kind="call",
        owner_id=call_id,
    )


def header_context(context: SealContext) -> SealContext:
    """The part of ``context`` a sealed stream's header carries (the owner is bound by
    the stream key instead); what readers compare the header with."""
    return SealContext(
        tenant_id=context.tenant_id,
        purpose=context.purpose,
        object_id=context.object_id,
        deployment_id=context.deployment_id,
    )


def open_recording(data_key: bytes, sealed: bytes, context: SealContext) -> bytearray:
    """The whole audio of a finished recording (tests, exports); playback reads ranges."""
    return open_stream(stream_key(data_key, context), sealed, header_context(context))


def recording_key(tenant_id: str, deployment_id: str, call_id: str) -> str:
    """The object key of a call's recording in its region's store."""
    return object_key(tenant_id, deployment_id, "recordings", call_id)


@dataclass(frozen=True, slots=True)
class RecordingResult:
    object_ref: str
    codec: Codec
    sample_rate_hz: int
    samples: int
    size_bytes: int
    complete: bool

    @property
    def duration_ms(self) -> int:
        return self.samples * 1000 // self.sample_rate_hz


def recording_row(tenant_id: str, call_id: str, result: RecordingResult) -> Recording:
    """The database row that says where a finished recording lives (never its audio)."""
    return Recording(
        id=new_id("rec"),
        tenant_id=tenant_id,
        call_id=call_id,
        object_ref=result.object_ref,
        codec=result.codec,
        sample_rate_hz=result.sample_rate_hz,
        duration_ms=result.duration_ms,
        size_bytes=result.size_bytes,
        complete=result.complete,
        created_at=utcnow(),
    )


class LiveRecording:
    """One call's audio being sealed into the object store."""

    def __init__(
        self,
        key: str,
        pending: AbstractContextManager[ObjectSink],
        writer: StreamWriter,
        sink: ObjectSink,
        codec: Codec,
        sample_rate: int,
    ) -> None:
        self.object_ref = key
        self._pending = pending
        self._writer = writer
        self._sink = sink
        self.codec: Codec = codec
        self.sample_rate = sample_rate
        self._bytes = 0
        self._done = False

    @classmethod
    def open(
        cls,
        store: ObjectStore,
        data_key: bytes,
        context: SealContext,
        *,
        codec: Codec,
        sample_rate: int,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
    ) -> Self:
        """Begin the pending object and the sealed stream for ``context``'s call."""
        if codec not in _BYTES_PER_SAMPLE:
            raise InvalidInputError("codec must be mulaw or pcm16", field="codec")
        if sample_rate not in (8000, 16000, 24000, 48000):
            raise InvalidInputError("sample rate must be 8, 16, 24 or 48 kHz", field="sample_rate")
        if context.owner_id is None or context.deployment_id is None:
            raise InvalidInputError("a recording belongs to a call of a deployment")
        key = recording_key(context.tenant_id, context.deployment_id, context.owner_id)
        header = StreamHeader.for_context(
            context, key_ref=f"call:{context.owner_id}", segment_size=segment_size
        )
        pending = store.writer(key)
        sink = pending.__enter__()
        try:
            writer = StreamWriter(stream_key(data_key, context), header, sink)
        except BaseException as exc:  # nothing may stay half-open; the error propagates
            pending.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return cls(key, pending, writer, sink, codec, sample_rate)

    @property
    def samples(self) -> int:
        return self._bytes // _BYTES_PER_SAMPLE[self.codec]

    def write(self, audio: bytes) -> None:
        """Append guarded audio (whole samples of the recording's codec)."""
        if self._done:
            raise InvalidInputError("the recording is finished", field="audio")
        if len(audio) % _BYTES_PER_SAMPLE[self.codec]:
            raise InvalidInputError(
                f"audio of {len(audio)} bytes is not whole {self.codec} samples", field="audio"
            )
        if audio:
            try:
                self._writer.write(audio)
            except BaseException:  # a failed write discards the object; the error propagates
                self.abort()
                raise
            self._bytes += len(audio)

    def finish(self, *, complete: bool) -> RecordingResult:
        """Seal the last segment and store the object; ``complete`` says whether the call
        ended normally (False: the connection dropped; the audio so far is kept)."""
        if self._done:
            raise InvalidInputError("the recording is finished", field="audio")
        try:
            self._writer.finish()
        except BaseException:  # discard the pending object; the error propagates
            self.abort()
            raise
        self._done = True
        self._pending.__exit__(None, None, None)  # commits the object (raises if it cannot)
        return RecordingResult(
            object_ref=self.object_ref,
            codec=self.codec,
            sample_rate_hz=self.sample_rate,
            samples=self.samples,
            size_bytes=self._sink.written,
            complete=complete,
        )

    def abort(self) -> None:
        """Discard the pending object: nothing of this recording is stored."""
        if self._done:
            return
        self._done = True
        reason = _AbortedError()
        # The store's writer discards its pending object when an exception leaves its block.
        with contextlib.suppress(_AbortedError):
            self._pending.__exit__(_AbortedError, reason, None)


class _AbortedError(Exception):
    """Passed into the object writer so it discards the pending object."""
