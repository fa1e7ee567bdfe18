"""Generic live ingest: for agents that run their own media and recogniser.

One WebSocket per call (``/v1/ingest/stream/{agent_id}``, see the route).
Text frames are JSON messages; binary frames are audio in the codec and rate
the ``start`` message declared, contiguous from the call's first sample::

    → {"type": "start", "codec": "pcm16" | "mulaw", "sample_rate": 8000..48000,
       "direction"?: "inbound" | "outbound", "caller_number"?: "+44…"}
    ← {"type": "started", "call_id": "call_…"}
    → <binary audio>
    → {"type": "segment", "id": "…", "speaker": "caller" | "agent", "final": bool,
       "words": [{"text": "…", "start_ms": n, "end_ms": n}, …]}
    ← {"type": "segment", "id": "…", "seq": n, "text": "… [CARD tok_… ending 4242] …"}
    → {"type": "event", "kind": "tool_call" | "agent_turn" | …, "at_ms": n, "detail"?: {…}}
    → {"type": "dtmf", "digit": "0".."9" | "*" | "#", "at_ms": n}
    → {"type": "capture", "action": "begin" | "end", "at_ms": n}
    ← {"type": "card", "token": "[CARD tok_… ending 4242]", "source": "dtmf"}
    → {"type": "capture", "action": "begin", "kind": "cvv", "at_ms": n}, then keys
    ← {"type": "cvv", "held": true}
    ← {"type": "warning", "code": "silenced-late"}
    → {"type": "stop"}
    ← {"type": "stopped", "call_id": "call_…", "status": "completed"}

What it does with them:

- Audio goes through the call's :class:`~callvault.calls._ingest.CallIngest`
  (DTMF tones silenced, held ``CALLVAULT_INGEST_HOLD_MS`` for the transcript,
  sealed as it is released).
- Every segment, interim or final, is read for card numbers and security
  codes (:class:`~callvault.calls._live_text.LiveCardText`): their words'
  audio is silenced while still held; a card announced and still being said
  opens a secure capture. Finals are stored (sealed) with card numbers
  tokenized, and echoed back with the text the agent may use (tokens in
  place of card numbers). Interims are never stored.
- Keypad digits open a secure capture as on the Twilio path (the number goes
  to the tokenization vault; the call keeps a count and a ``card_token``
  event). ``capture`` messages are the agent asking for a capture itself; one
  of kind ``cvv`` makes the next keyed digits the security code of the card
  captured last, held in memory only (an
  :class:`~callvault.payments.EphemeralCvv`, wiped after one use or two
  minutes) for that card's hand-off to the payment connector.
- Events are stored (sealed) as the call's events.

Nothing here logs or raises with content; errors name fields, never values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from callvault.calls._capture import RATE as CAPTURE_RATE
from callvault.calls._capture import CaptureEvent, DtmfCapture
from callvault.calls._card_text import append_protected_texts
from callvault.calls._ingest import CallIngest, EndReason, IngestSettings, IngestSummary
from callvault.calls._live_text import LiveCardText, TextActions
from callvault.calls._store import Event, Segment, Word, append_events, get_call, shared_redactor
from callvault.calls._twilio import ProtocolError
from callvault.payments import EphemeralCvv, TokenVault
from callvault.payments._cvv import MAX_CVV_DIGITS, MIN_CVV_DIGITS
from callvault.redact import Segment as TextSegment
from callvault.redact import Word as TextWord
from callvault.runtime import Runtime

#: Largest text frame (a long final with word timings fits many times over).
MAX_TEXT_BYTES = 256 * 1024
#: Largest audio frame: two seconds at the declared rate.
MAX_AUDIO_SECONDS = 2
#: Advance the transcript clock (release what the stream held too long) this often.
_ADVANCE_S = 0.25

Millis = Annotated[int, Field(ge=0, le=48 * 3600 * 1000, strict=True)]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StartMsg(_Msg):
    type: Literal["start"]
    codec: Literal["pcm16", "mulaw"]
    sample_rate: Annotated[int, Field(ge=8000, le=48000, strict=True)]
    direction: Literal["inbound", "outbound"] = "inbound"
    caller_number: Annotated[StrictStr, Field(max_length=32)] | None = None


class WordMsg(_Msg):
    text: Annotated[StrictStr, Field(min_length=1, max_length=200, pattern=r"^\S+$")]
    start_ms: Millis
    end_ms: Millis


class SegmentMsg(_Msg):
    type: Literal["segment"]
    id: Annotated[StrictStr, Field(min_length=1, max_length=100)]
    speaker: Literal["caller", "agent"] = "caller"
    final: StrictBool = True
    words: Annotated[list[WordMsg], Field(max_length=2_000)]


class EventMsg(_Msg):
    type: Literal["event"]
    kind: Literal["tool_call", "agent_turn", "mark", "hold", "transfer", "custom"]
    at_ms: Millis
    detail: dict[str, Any] | None = None


class DtmfMsg(_Msg):
    type: Literal["dtmf"]
    digit: Annotated[StrictStr, Field(pattern=r"^[0-9*#A-D]$")]
    at_ms: Millis


class CaptureMsg(_Msg):
    type: Literal["capture"]
    action: Literal["begin", "end"]
    at_ms: Millis
    #: ``cvv``: the next keyed digits are the security code of the card captured last.
    kind: Literal["card", "cvv"] = "card"


class StopMsg(_Msg):
    type: Literal["stop"]


Message = Annotated[
    StartMsg | SegmentMsg | EventMsg | DtmfMsg | CaptureMsg | StopMsg, Field(discriminator="type")
]
_MESSAGE: TypeAdapter[Message] = TypeAdapter(Message)
_TYPES = frozenset({"start", "segment", "event", "dtmf", "capture", "stop"})


def parse_message(frame: str | bytes) -> Message:
    """One text frame as a message; :class:`ProtocolError` naming the field, never a value."""
    if len(frame) > MAX_TEXT_BYTES:
        raise ProtocolError("frame-too-large", f"text frames are limited to {MAX_TEXT_BYTES} bytes")
    try:
        raw = json.loads(frame)
    except (ValueError, RecursionError):
        raise ProtocolError("bad-json", "frame is not JSON") from None
    if not isinstance(raw, dict):
        raise ProtocolError("bad-json", "frame is not a JSON object")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in _TYPES:
        raise ProtocolError("unknown-event", "unknown message type", field="type")
    try:
        return _MESSAGE.validate_python(raw)
    except PydanticValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "type"
        raise ProtocolError("bad-field", f"invalid field ({first['type']})", field=where) from None


@dataclass(frozen=True, slots=True)
class Opener:
    """Who streams and how: settled by the route (authenticated, gate checked)."""

    tenant_id: str
    agent_id: str
    actor_id: str
    request_id: str | None
    #: The gate's check for appending to the call (segments, events): raises or returns.
    permit_append: Callable[[CallIngest], None]


Reply = dict[str, Any]


class GenericCall:
    """One generic ingest connection (one call). Not thread-safe: one task feeds it at a time."""

    def __init__(
        self, rt: Runtime, opener: Opener, *, settings: IngestSettings | None = None
    ) -> None:
        self.rt = rt
        self._opener = opener
        self._settings = settings or IngestSettings()
        self.ingest: CallIngest | None = None
        self._rate = 0
        self._width = 1
        self._offset = 0
        self._advanced = 0.0
        self._text = LiveCardText(shared_redactor())
        self._dtmf = DtmfCapture()
        #: Set by a ``cvv`` capture request: the next keyed digits are a security code.
        self._cvv: DtmfCapture | None = None
        self._last_token: str | None = None
        self._idle: list[CaptureEvent] = []
        self.stopped = False
        self._summary: IngestSummary | None = None

    @property
    def call_id(self) -> str | None:
        return self.ingest.call_id if self.ingest else None

    # -- frames ----------------------------------------------------------------------------

    def text(self, frame: str | bytes) -> list[Reply]:
        """A text frame: may commit (start, segments, events, tokens): run it off the loop."""
        msg = parse_message(frame)
        if isinstance(msg, StartMsg):
            return self._start(msg)
        ingest = self._live()
        replies: list[Reply] = []
        if isinstance(msg, SegmentMsg):
            replies = self._segment(ingest, msg)
        elif isinstance(msg, EventMsg):
            self._store_events([Event(kind=msg.kind, at_ms=msg.at_ms, detail=msg.detail)])
        elif isinstance(msg, DtmfMsg):
            ingest.dtmf_event()
            keys = self._cvv or self._dtmf
            replies = self._captured(ingest, keys.key(msg.digit, _capture_at(msg.at_ms)))
        elif isinstance(msg, CaptureMsg):
            replies = self._agent_capture(ingest, msg)
        else:  # StopMsg
            self.stopped = True
        return replies

    def audio(self, chunk: bytes) -> list[Reply]:
        """A binary frame: audio; guarded and sealed on the caller's thread (microseconds)."""
        ingest = self._live()
        if len(chunk) % self._width:
            raise ProtocolError("bad-field", "audio is not whole samples", field="audio")
        if len(chunk) > MAX_AUDIO_SECONDS * self._rate * self._width:
            raise ProtocolError(
                "frame-too-large", f"audio frames are limited to {MAX_AUDIO_SECONDS} s"
            )
        ingest.audio(chunk, self._offset)
        self._offset += len(chunk) // self._width
        replies: list[Reply] = []
        now = self._offset / self._rate
        if now - self._advanced >= _ADVANCE_S:
            self._advanced = math.floor(now / _ADVANCE_S) * _ADVANCE_S
            replies += self._apply(ingest, self._text.advance(now))
        keys = self._cvv or self._dtmf
        if keys.capturing:
            # A capture that went idle ends here; what it captured is settled by
            # :meth:`settle` (it commits: the route runs it off the loop).
            self._idle += keys.tick(self._offset * CAPTURE_RATE // self._rate)
        return replies

    @property
    def unsettled(self) -> bool:
        """An idle keypad capture ended in :meth:`audio` and waits for :meth:`settle`."""
        return bool(self._idle)

    def settle(self) -> list[Reply]:
        """Hand over what an idle capture captured (tokenize: commits, run it off the loop)."""
        events, self._idle = self._idle, []
        return self._captured(self._live(), events)

    def close(self, reason: EndReason) -> IngestSummary | None:
        """End the call (idempotent): what the transcript still held, then the recording."""
        if self._summary is not None or self.ingest is None:
            return self._summary
        ingest = self.ingest
        if not ingest.closed:
            self._apply(ingest, self._text.flush())
            self._captured(ingest, self._idle)
            self._idle = []
            keys = self._cvv or self._dtmf
            self._captured(ingest, keys.close(self._offset * CAPTURE_RATE // self._rate))
        self._summary = ingest.close("stop" if reason == "stop" and self.stopped else reason)
        return self._summary

    # -- messages --------------------------------------------------------------------------

    def _start(self, msg: StartMsg) -> list[Reply]:
        if self.ingest is not None:
            raise ProtocolError("duplicate-start", "the call has started already")
        o = self._opener
        self.ingest = CallIngest.start(
            self.rt,
            tenant_id=o.tenant_id,
            agent_id=o.agent_id,
            actor_id=o.actor_id,
            request_id=o.request_id,
            codec=msg.codec,
            sample_rate=msg.sample_rate,
            direction=msg.direction,
            caller_number=msg.caller_number,
            settings=self._settings,
        )
        self._rate = msg.sample_rate
        self._width = 2 if msg.codec == "pcm16" else 1
        return [{"type": "started", "call_id": self.ingest.call_id}]

    def _segment(self, ingest: CallIngest, msg: SegmentMsg) -> list[Reply]:
        words = tuple(TextWord(w.text, w.start_ms / 1000, w.end_ms / 1000) for w in msg.words)
        if any(w.end < w.start for w in words):
            raise ProtocolError("bad-field", "a word ends before it starts", field="words")
        replies = self._apply(ingest, self._text.push(TextSegment(msg.id, words, msg.final)))
        if not msg.final or not msg.words:
            return replies
        segment = Segment(
            speaker=msg.speaker,
            start_ms=min(w.start_ms for w in msg.words),
            end_ms=max(w.end_ms for w in msg.words),
            is_final=True,
            text=" ".join(w.text for w in msg.words),
            words=tuple(Word(w.text, w.start_ms, w.end_ms) for w in msg.words),
        )
        seq, text = self._store_segment(segment)
        return [*replies, {"type": "segment", "id": msg.id, "seq": seq, "text": text}]

    def _store_segment(self, segment: Segment) -> tuple[int, str]:
        ingest = self._live()
        o = self._opener
        o.permit_append(ingest)
        with self.rt.db.tenant_tx(o.tenant_id) as s:
            call = get_call(s, o.tenant_id, ingest.call_id)
            [(seq, text)] = append_protected_texts(
                s,
                self.rt.sealer,
                TokenVault(self.rt.keys, self.rt.audit),
                call,
                [segment],
                shared_redactor(),
                actor=o.actor_id,
                request_id=o.request_id,
            )
        return seq, text

    def _store_events(self, events: list[Event]) -> None:
        ingest = self._live()
        o = self._opener
        o.permit_append(ingest)
        with self.rt.db.tenant_tx(o.tenant_id) as s:
            append_events(s, self.rt.sealer, get_call(s, o.tenant_id, ingest.call_id), events)

    # -- internals -------------------------------------------------------------------------

    def _live(self) -> CallIngest:
        if self.ingest is None:
            raise ProtocolError("before-start", "the first message must be 'start'")
        if self.stopped or self.ingest.closed:
            raise ProtocolError("after-stop", "the call has stopped")
        return self.ingest

    def _samples(self, seconds: float) -> int:
        return max(0, math.floor(seconds * self._rate))

    def _apply(self, ingest: CallIngest, actions: TextActions) -> list[Reply]:
        late = False
        for start, end in actions.silence:
            lo, hi = self._samples(start), math.ceil(end * self._rate)
            if hi > lo and not ingest.silence(lo, hi):
                late = True
        if actions.begin_capture is not None and not ingest.capturing:
            late |= not ingest.begin_capture(self._samples(actions.begin_capture))
        if actions.end_capture is not None and ingest.capturing:
            ingest.end_capture(math.ceil(actions.end_capture * self._rate))
        return [_late()] if late else []

    def _agent_capture(self, ingest: CallIngest, msg: CaptureMsg) -> list[Reply]:
        at = self._samples(msg.at_ms / 1000)
        if msg.kind == "cvv" and msg.action == "begin":
            if self._last_token is None:
                return [{"type": "warning", "code": "no-card-for-cvv"}]
            self._cvv = DtmfCapture(min_digits=MIN_CVV_DIGITS, max_digits=MAX_CVV_DIGITS)
        if msg.action == "begin":
            return [] if ingest.capturing or ingest.begin_capture(at) else [_late()]
        if ingest.capturing:
            ingest.end_capture(at)
        return []

    def _captured(self, ingest: CallIngest, events: list[CaptureEvent]) -> list[Reply]:
        replies: list[Reply] = []
        for ev in events:
            at = ev.at * self._rate // CAPTURE_RATE
            if ev.kind == "begin":
                # Already capturing (the agent asked, or the transcript announced a card):
                # that capture silences these keys too.
                if not ingest.capturing and not ingest.begin_capture(at):
                    replies.append(_late())
            elif ev.kind in ("end", "discarded"):
                ingest.end_capture(at)
                replies += self._keyed(ingest)
        return replies

    def _keyed(self, ingest: CallIngest) -> list[Reply]:
        """A keyed capture ended: a card number to the vault, or a security code to hold."""
        if self._cvv is not None:
            digits, self._cvv = self._cvv.finish(), None
            if digits is None or self._last_token is None:
                return [{"type": "warning", "code": "cvv-discarded"}]
            self.rt.cvv_holds.hold(ingest.tenant_id, self._last_token, EphemeralCvv(digits))
            return [{"type": "cvv", "held": True}]
        digits = self._dtmf.finish()
        if digits is None:
            return []
        display, self._last_token = ingest.tokenize_card_token(digits, "dtmf")
        return [{"type": "card", "token": display, "source": "dtmf"}]


def _capture_at(at_ms: int) -> int:
    """A call time as a keypad-capture sample offset (the capture counts at 8 kHz)."""
    return at_ms * CAPTURE_RATE // 1000


def _late() -> Reply:
    return {"type": "warning", "code": "silenced-late"}
