"""Per-connection state of a Twilio Media Stream: order, duplicates, gaps, the final status.

See :mod:`callvault.calls._twilio` for the messages and their sources.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from callvault.calls._twilio import (
    _REASON,
    DEFAULT_MAX_AGENT_FRAME_BYTES,
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_JUMP_FRAMES,
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_WINDOW_FRAMES,
    DEFAULT_WINDOW_SECONDS,
    FRAME_MS,
    MEDIA_FORMAT,
    Connected,
    Dtmf,
    Gap,
    InboundEvent,
    Mark,
    Media,
    OutboundMessage,
    ProtocolError,
    Silence,
    Start,
    Stop,
    StreamEvent,
    _fail,
    _Sequenced,
    parse_inbound,
    parse_outbound,
)
from callvault.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """What happened on one connection: ids and counts only, never digits or audio.

    ``status`` is ``completed`` (a ``stop`` was received and nothing was
    lost), ``incomplete`` (the connection dropped, or frames or audio were
    lost) or ``refused:<code>`` (a protocol error before ``stop``).
    ``error`` is the first :class:`ProtocolError` code, also when it came
    after ``stop`` (the call stays complete).
    """

    status: str
    reason: str
    error: str | None
    stream_sid: str | None
    call_sid: str | None
    frames: int
    media: int
    odd_sized: int
    duplicates: int
    reordered: int
    late: int
    lost: int
    silence_ms: int
    dtmf: int
    marks: int
    agent_messages: int


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The events still held for ordering when the stream closed, then the summary."""

    events: tuple[StreamEvent, ...]
    summary: StreamSummary


class TwilioStream:
    """Order and police the frames of one Media Streams connection.

    ``connected`` is optional and first; ``start`` comes exactly once, before
    anything else; nothing follows ``stop``; every frame after ``start`` names
    the same ``streamSid``. Sequenced frames (media, dtmf, mark, stop) come
    out in ``sequenceNumber`` order: a duplicate is dropped, an early frame
    waits behind a hole for up to ``window_frames`` sequence numbers or
    ``window_seconds``, after which the hole is reported as a :class:`Gap`
    (a frame arriving later still is dropped as late). A jump in a track's
    ``media.chunk`` comes out as :class:`Silence` before the media that
    follows it.

    The caller MUST hand every returned event on (seal it) before the next
    call, MUST call :meth:`poll` every few hundred milliseconds while the
    socket is open so a held frame is not kept past the window, and MUST call
    :meth:`close` exactly once (on ``stop``, a drop or a refusal) and seal the
    events it returns: frames accepted before a refusal are never discarded.
    After a :class:`ProtocolError` the stream accepts nothing more.
    """

    def __init__(
        self,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        max_agent_frame_bytes: int = DEFAULT_MAX_AGENT_FRAME_BYTES,
        window_frames: int = DEFAULT_WINDOW_FRAMES,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        max_jump_frames: int = DEFAULT_MAX_JUMP_FRAMES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if min(max_frame_bytes, max_payload_bytes, max_agent_frame_bytes, window_frames) < 1:
            raise InvalidInputError("stream limits must be positive")
        if window_seconds <= 0 or max_jump_frames < window_frames:
            raise InvalidInputError("the reorder window must be positive and within the jump bound")
        self._max_frame_bytes = max_frame_bytes
        self._max_payload_bytes = max_payload_bytes
        self._max_agent_frame_bytes = max_agent_frame_bytes
        self._window = window_frames
        self._window_s = window_seconds
        self._max_jump = max_jump_frames
        self._clock = clock
        self._start: Start | None = None
        self._next = 0
        self._highest = 0
        self._held: dict[int, tuple[float, _Sequenced]] = {}
        self._skipped: deque[range] = deque(maxlen=64)
        self._last_chunk: dict[str, int] = {}
        self._stop_seq: int | None = None
        self._stopped = False
        self._closed = False
        self._error: str | None = None
        self._refused = False
        self._frames = self._media = self._odd = self._dupes = self._reordered = 0
        self._late = self._lost = self._silence = self._dtmf = self._marks = self._agent = 0

    @property
    def start(self) -> Start | None:
        """The ``start`` event once received: ids, tracks and custom parameters."""
        return self._start

    @property
    def stopped(self) -> bool:
        """True once ``stop`` was released in order (nothing is held before it)."""
        return self._stopped

    @property
    def holding(self) -> bool:
        """True while frames wait behind a hole: only :meth:`poll` may release them
        (and with them a ``stop``) if no other frame comes."""
        return bool(self._held)

    def feed(self, frame: str | bytes) -> list[StreamEvent]:
        """Accept one frame from Twilio; return the events now due, in order."""
        if self._closed or self._error is not None:
            raise _fail("closed", "stream accepts no more frames")
        try:
            event = parse_inbound(
                frame, max_bytes=self._max_frame_bytes, max_payload_bytes=self._max_payload_bytes
            )
            return self._accept(event, self._clock())
        except ProtocolError as exc:
            self._error = exc.code
            self._refused = self._stop_seq is None
            raise

    def poll(self) -> list[StreamEvent]:
        """Release frames held longer than the reorder window (holes before them become gaps)."""
        out: list[StreamEvent] = []
        if not self._closed:
            self._expire(self._clock(), out)
        return out

    def accept_outbound(self, frame: str | bytes) -> OutboundMessage:
        """Check one agent frame for Twilio.

        It MUST name this stream and come after ``start`` and before ``stop``.
        A refused agent frame raises :class:`ProtocolError` without ending the call.
        """
        if self._closed:
            raise _fail("closed", "stream accepts no more frames")
        message = parse_outbound(frame, max_bytes=self._max_agent_frame_bytes)
        if self._start is None:
            raise _fail("before-start", "agent frame before the stream started")
        if self._stop_seq is not None:
            raise _fail("after-stop", "agent frame after the stream stopped")
        if message.stream_sid != self._start.stream_sid:
            raise _fail("stream-mismatch", "agent frame names another stream", "streamSid")
        self._agent += 1
        return message

    def close(self, reason: str = "disconnect") -> StreamEnd:
        """End the stream: release every held frame (holes become gaps) and summarise.

        ``reason`` is a short lowercase token for the log (``disconnect``,
        ``stop``, ``timeout``, ``shutdown``, ``refused``...).
        """
        if self._closed:
            raise _fail("closed", "stream is already closed")
        if _REASON.fullmatch(reason) is None:
            raise InvalidInputError("close reason must be a short lowercase token", field="reason")
        out: list[StreamEvent] = []
        if self._held:
            self._skip_to(max(self._held) + 1, out)
        self._closed = True
        if self._refused:
            status = f"refused:{self._error}"
        elif self._stopped and self._lost == 0 and self._silence == 0:
            status = "completed"
        else:
            status = "incomplete"
        start = self._start
        summary = StreamSummary(
            status=status,
            reason=reason,
            error=self._error,
            stream_sid=start.stream_sid if start else None,
            call_sid=start.call_sid if start else None,
            frames=self._frames,
            media=self._media,
            odd_sized=self._odd,
            duplicates=self._dupes,
            reordered=self._reordered,
            late=self._late,
            lost=self._lost,
            silence_ms=self._silence * FRAME_MS,
            dtmf=self._dtmf,
            marks=self._marks,
            agent_messages=self._agent,
        )
        return StreamEnd(tuple(out), summary)

    # -- internals --

    def _accept(self, event: InboundEvent, now: float) -> list[StreamEvent]:
        if isinstance(event, Connected):
            if self._frames:
                raise _fail("out-of-order", "'connected' is not the first frame", "event")
            self._frames += 1
            return [event]
        if isinstance(event, Start):
            if self._start is not None:
                raise _fail("duplicate-start", "a second 'start' frame", "event")
            if (event.encoding, event.sample_rate, event.channels) != MEDIA_FORMAT:
                raise _fail("unsupported-format", "media format is not 8 kHz mono μ-law")
            self._start = event
            self._next = self._highest = event.sequence + 1
            self._frames += 1
            return [event]
        self._check_sequenced(event)
        seq = event.sequence
        self._frames += 1
        out: list[StreamEvent] = []
        if seq < self._next or seq in self._held:
            if any(seq in r for r in self._skipped):
                self._late += 1
            else:
                self._dupes += 1
        elif self._take(event, seq, now, out):
            return out
        self._expire(now, out)
        return out

    def _take(self, event: _Sequenced, seq: int, now: float, out: list[StreamEvent]) -> bool:
        """A new sequenced frame: release it now or hold it. True when nothing can be held
        (released in order with none waiting: no expiry to check)."""
        if isinstance(event, Stop):
            self._stop_seq = seq
        if seq < self._highest:
            self._reordered += 1
        self._highest = max(self._highest, seq)
        if seq == self._next and not self._held:
            # In order with nothing held (nearly every frame): what holding it and
            # draining would do at once, without the dict.
            self._release(event, out)
            self._next += 1
            return True
        self._held[seq] = (now, event)
        if seq >= self._next + self._window:
            self._skip_to(seq - self._window + 1, out)
        self._drain(out)
        return False

    def _check_sequenced(self, event: _Sequenced) -> None:
        start = self._start
        if start is None:
            raise _fail("before-start", "frame before 'start'", "event")
        if self._stopped:
            raise _fail("after-stop", "frame after 'stop'", "event")
        if event.stream_sid != start.stream_sid:
            raise _fail("stream-mismatch", "frame names another stream", "streamSid")
        if isinstance(event, Media) and event.track not in start.tracks:
            raise _fail("stream-mismatch", "media track not announced in 'start'", "media.track")
        if isinstance(event, Stop) and (event.account_sid, event.call_sid) != (
            start.account_sid,
            start.call_sid,
        ):
            raise _fail("stream-mismatch", "'stop' names another call", "stop.callSid")
        seq = event.sequence
        if seq <= start.sequence:
            raise _fail("bad-sequence", "sequence number precedes 'start'", "sequenceNumber")
        stop_seq = self._stop_seq
        if stop_seq is not None and (
            seq > stop_seq or (isinstance(event, Stop) and seq != stop_seq)
        ):
            raise _fail("after-stop", "frame after 'stop'", "sequenceNumber")
        if isinstance(event, Stop) and any(s > seq for s in self._held):
            raise _fail("after-stop", "frames were sent after 'stop'", "sequenceNumber")
        if seq - self._next > self._max_jump:
            raise _fail("bad-sequence", "sequence number jumps too far ahead", "sequenceNumber")

    def _drain(self, out: list[StreamEvent]) -> None:
        while self._next in self._held:
            self._release(self._held.pop(self._next)[1], out)
            self._next += 1

    def _skip_to(self, target: int, out: list[StreamEvent]) -> None:
        """Give up on every sequence number below ``target``: release held ones, gap the rest."""
        while self._next < target:
            if self._next in self._held:
                self._drain(out)
                continue
            first = self._next
            nearest = min((s for s in self._held if s > first), default=target)
            self._next = min(nearest, target)
            self._lost += self._next - first
            self._skipped.append(range(first, self._next))
            out.append(Gap(first, self._next - first))
        self._drain(out)

    def _expire(self, now: float, out: list[StreamEvent]) -> None:
        while self._held and now - min(t for t, _ in self._held.values()) >= self._window_s:
            self._skip_to(min(self._held), out)

    def _release(self, event: _Sequenced, out: list[StreamEvent]) -> None:
        if isinstance(event, Media):
            last = self._last_chunk.get(event.track, 0)
            missing = event.chunk - last - 1
            if missing > 0:
                # Bounded so a hostile chunk number cannot ask for hours of silence.
                chunks = min(missing, self._max_jump)
                out.append(Silence(event.track, last + 1, chunks))
                self._silence += chunks
            self._last_chunk[event.track] = max(last, event.chunk)
            self._media += 1
            self._odd += not event.standard_size
        elif isinstance(event, Dtmf):
            self._dtmf += 1
        elif isinstance(event, Mark):
            self._marks += 1
        else:
            self._stopped = True
        out.append(event)


# --- X-Twilio-Signature ----------------------------------------------------
