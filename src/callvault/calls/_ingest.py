"""One live call being ingested: guarded audio sealed as it arrives, counts, a clean end.

The path of every inbound audio chunk::

    chunk ──► AudioGuard (DTMF tones and secure-capture spans silenced, held
              until nothing later can cover them) ──► LiveRecording (sealed
              segment by segment under the call's own data key) ──► object store

:class:`CallIngest` owns that path for one call and the database work around
it: the call row (created and audited at start, in one transaction with the
call's data key), and at the end the recording row, the DTMF *count* (never
digits) as an event, and the call's final status: ``completed`` when the
stream stopped normally, ``incomplete`` when the connection dropped or the
stream broke (the audio up to that point is kept, sealed and whole), or
``failed`` when not even that could be stored. Nothing here logs or raises
with content: ids and counts only.

Transport adapters (the Twilio Media Streams WebSocket, the generic ingest
API) translate their messages into these calls; they hold no audio.
"""

from __future__ import annotations

import logging
import time
from array import array
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from callvault.calls._audio_guard import AudioGuard, ReleasedAudio
from callvault.calls._recording import (
    Codec,
    LiveRecording,
    RecordingResult,
    recording_context,
    recording_row,
)
from callvault.calls._store import Event, append_events, create_call, end_call, get_call
from callvault.errors import InvalidInputError
from callvault.keys import KeyOwner
from callvault.runtime import Runtime
from callvault.store.models import Agent, Deployment

log = logging.getLogger("callvault.calls.ingest")

EndReason = Literal["stop", "disconnect", "protocol-error", "timeout", "shutdown"]


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """Per-call limits (from settings; see ``CALLVAULT_INGEST_*``)."""

    #: Audio held back so transcript-based silencing (ASR lag) can still apply.
    hold_ms: int = 0
    #: Most audio held at once; older audio is released silenced (fail closed).
    max_hold_ms: int = 10_000


@dataclass(frozen=True, slots=True)
class IngestSummary:
    call_id: str
    status: str
    reason: EndReason
    samples: int
    dtmf_tones: int
    dtmf_events: int
    forced_silence_samples: int
    recording: RecordingResult | None
    #: Audio chunks processed (guarded and sealed) and the 99th percentile of the time
    #: each took, in µs (to 20 µs; 20,000 means 20 ms or more).
    chunks: int = 0
    chunk_p99_us: int = 0
    #: Card numbers captured and tokenized during the call.
    cards: int = 0


_WIDTH_NS: Final = 20_000  # _Timing.WIDTH_US in ns
_LAST: Final = 1000  # _Timing.BUCKETS - 1


class _Timing:
    """Per-chunk processing time: a fixed histogram (20 µs buckets up to 20 ms)."""

    WIDTH_US = 20
    BUCKETS = 1001

    def __init__(self) -> None:
        self.counts = array("I", bytes(4 * self.BUCKETS))
        self.n = 0

    def add(self, ns: int) -> None:
        bucket = ns // _WIDTH_NS  # once per 20 ms frame of every call: kept lean
        self.counts[bucket if bucket < _LAST else _LAST] += 1
        self.n += 1

    def p99_us(self) -> int:
        if not self.n:
            return 0
        need, seen = self.n - self.n // 100, 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= need:
                return (i + 1) * self.WIDTH_US
        return self.BUCKETS * self.WIDTH_US  # pragma: no cover - the counts add up to n


class CallIngest:
    """The state of one call while its media streams in (one per connection)."""

    def __init__(
        self,
        rt: Runtime,
        *,
        tenant_id: str,
        deployment_id: str,
        call_id: str,
        recording: LiveRecording,
        guard: AudioGuard,
        actor_id: str,
    ) -> None:
        self.rt = rt
        self.tenant_id = tenant_id
        self.deployment_id = deployment_id
        self.call_id = call_id
        self.actor_id = actor_id
        self._recording = recording
        self._guard = guard
        self._dtmf_events = 0
        self._cards = 0
        self._timing = _Timing()
        self._closed: IngestSummary | None = None
        self._broken = False

    # -- start ---------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        rt: Runtime,
        *,
        tenant_id: str,
        agent_id: str,
        actor_id: str,
        request_id: str | None,
        codec: Codec,
        sample_rate: int,
        direction: str = "inbound",
        caller_number: str | None = None,
        started_at: datetime | None = None,
        settings: IngestSettings | None = None,
    ) -> CallIngest:
        """Create the call (audited) and its data key in one transaction, then open the
        sealed recording. Raises NotFoundError for an agent outside ``tenant_id``."""
        limits = settings or IngestSettings()
        guard = AudioGuard(
            codec=codec,
            sample_rate=sample_rate,
            hold_ms=limits.hold_ms,
            max_hold_ms=limits.max_hold_ms,
        )
        from callvault import tenancy  # noqa: PLC0415 - tenancy imports calls' neighbours

        with rt.db.tenant_tx(tenant_id) as s:
            agent: Agent = tenancy.get_agent(s, tenant_id, agent_id)
            deployment: Deployment = tenancy.get_deployment(s, tenant_id, agent.deployment_id)
            call = create_call(
                s,
                rt.sealer,
                rt.audit,
                agent,
                direction=direction,
                caller_number=caller_number,
                started_at=started_at,
                actor_id=actor_id,
                request_id=request_id,
            )
            owner = KeyOwner(tenant_id, agent.deployment_id, "call", call.id)
            data_key = rt.keys.data_key(s, owner, create=True)
            region = deployment.region
            call_id = call.id
        context = recording_context(tenant_id, agent.deployment_id, call_id)
        store = rt.objects.for_region(region)
        try:
            recording = LiveRecording.open(
                store, data_key, context, codec=codec, sample_rate=sample_rate
            )
        except Exception:  # any failure to open storage: the call is marked failed, re-raised
            cls._mark(rt, tenant_id, call_id, "failed")
            raise
        return cls(
            rt,
            tenant_id=tenant_id,
            deployment_id=agent.deployment_id,
            call_id=call_id,
            recording=recording,
            guard=guard,
            actor_id=actor_id,
        )

    # -- while live ----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def audio(self, chunk: bytes, offset: int) -> None:
        """Inbound audio whose first sample is number ``offset`` of the call."""
        self._check_open()
        began = time.perf_counter_ns()
        self._write(self._guard.feed(chunk, offset))
        self._timing.add(time.perf_counter_ns() - began)

    def dtmf_event(self) -> None:
        """A keypad press the carrier reported out of band: counted, never stored as a digit."""
        self._check_open()
        self._dtmf_events += 1

    def begin_capture(self, at: int) -> bool:
        """Secure card capture from sample ``at``: that audio is silenced until it ends.
        False if audio from ``at`` on was sealed already (too late; logged as an incident)."""
        self._check_open()
        in_time = self._guard.begin_capture(at)
        if not in_time:
            log.warning("secure capture began too late", extra={"call_id": self.call_id})
        return in_time

    def end_capture(self, at: int) -> None:
        """End the open capture at sample ``at`` (never before its start; no-op when none)."""
        self._check_open()
        start = self._guard.capture_start
        if start is not None:
            self._guard.end_capture(max(at, start))

    def silence(self, start: int, end: int) -> bool:
        """Silence samples [start, end); False if part of it was already sealed (too late)."""
        self._check_open()
        in_time = self._guard.silence(start, end)
        if not in_time:
            log.warning("silencing came too late", extra={"call_id": self.call_id})
        return in_time

    @property
    def capturing(self) -> bool:
        return self._guard.capturing

    def tokenize_card(self, digits: bytearray, source: Literal["dtmf", "speech", "agent"]) -> str:
        """:meth:`tokenize_card_token`'s display text."""
        return self.tokenize_card_token(digits, source)[0]

    def tokenize_card_token(
        self, digits: bytearray, source: Literal["dtmf", "speech", "agent"]
    ) -> tuple[str, str]:
        """Hand a captured card number to the tokenization vault; zero ``digits``.

        The call keeps a ``card_token`` event (token id, last four, digit count,
        Luhn result), never the number. Returns the token's display text
        (``[CARD tok_… ending 4242]``) for the transcript and the agent, and the token id.
        """
        from callvault.payments import TokenVault  # noqa: PLC0415 - only when a card is captured

        self._check_open()
        try:
            with self.rt.db.tenant_tx(self.tenant_id) as s:
                token = TokenVault(self.rt.keys, self.rt.audit).tokenize(
                    s,
                    self.tenant_id,
                    self.deployment_id,
                    self.call_id,
                    digits.decode("ascii"),
                    source=source,
                    actor=self.actor_id,
                )
                call = get_call(s, self.tenant_id, self.call_id)
                append_events(
                    s,
                    self.rt.sealer,
                    call,
                    [
                        Event(
                            kind="card_token",
                            at_ms=0,
                            detail={
                                "token": token.id,
                                "last4": token.last4,
                                "digits": token.digits,
                                "luhn_valid": token.luhn_valid,
                                "source": source,
                            },
                        )
                    ],
                )
        finally:
            digits[:] = bytes(len(digits))
        self._cards += 1
        return token.display, token.id

    # -- end -----------------------------------------------------------------------------

    def close(self, reason: EndReason) -> IngestSummary:
        """End the call: release and seal what the guard holds, store the recording, set
        the status. Idempotent (the first reason wins)."""
        if self._closed is not None:
            return self._closed
        complete = reason == "stop" and not self._broken
        result: RecordingResult | None = None
        try:
            self._write(self._guard.flush())
            result = self._recording.finish(complete=complete)
        except Exception as exc:  # noqa: BLE001 - the call is marked failed; ids only in the log
            log.error(
                "recording could not be stored",
                extra={"call_id": self.call_id, "error_type": type(exc).__name__},
            )
            self._recording.abort()
        status = "completed" if complete and result else ("incomplete" if result else "failed")
        self._finish_rows(status, result)
        self._closed = IngestSummary(
            call_id=self.call_id,
            status=status,
            reason=reason,
            samples=result.samples if result else 0,
            dtmf_tones=self._guard.tones,
            dtmf_events=self._dtmf_events,
            forced_silence_samples=self._guard.forced_silence_samples,
            recording=result,
            chunks=self._timing.n,
            chunk_p99_us=self._timing.p99_us(),
            cards=self._cards,
        )
        return self._closed

    def mark_broken(self) -> None:
        """The stream misbehaved (gap, protocol error): the call ends incomplete."""
        self._broken = True

    # -- internals -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed is not None:
            raise InvalidInputError("the call has ended", field="call_id")

    def _write(self, released: list[ReleasedAudio]) -> None:
        for part in released:
            self._recording.write(part.audio)

    def _finish_rows(self, status: str, result: RecordingResult | None) -> None:
        with self.rt.db.tenant_tx(self.tenant_id) as s:
            call = get_call(s, self.tenant_id, self.call_id)
            dtmf = self._guard.tones + self._dtmf_events
            if dtmf:
                append_events(
                    s,
                    self.rt.sealer,
                    call,
                    [
                        Event(
                            kind="dtmf",
                            at_ms=0,
                            detail={"tones": self._guard.tones, "events": self._dtmf_events},
                        )
                    ],
                )
            if result is not None:
                s.add(recording_row(self.tenant_id, self.call_id, result))
            end_call(s, call, status=status)

    @staticmethod
    def _mark(rt: Runtime, tenant_id: str, call_id: str, status: str) -> None:
        with rt.db.tenant_tx(tenant_id) as s:
            end_call(s, get_call(s, tenant_id, call_id), status=status)
