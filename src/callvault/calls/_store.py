"""Calls, transcript segments and events: sealed on the way in, opened only with a Grant.

Caller numbers, segment text with word timings, and event detail are sealed
under the call's deployment with the call id and a purpose in the context,
so a sealed value cannot be replayed into another call or field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import rfc8785
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from callvault.access import Action, Grant
from callvault.audit import AuditEvent, AuditLog, Outcome
from callvault.audit._entry import OCSF_API_ACTIVITY
from callvault.crypto import SealContext, Sealer
from callvault.errors import ConflictError, NotFoundError
from callvault.redact import Redactor, mask_numbers
from callvault.store import new_id
from callvault.store.models import Agent, Call, CallEvent, TranscriptSegment, utcnow
from callvault.store.prepared import Prepared, Reader, connection_of
from callvault.store.rows import CallFields


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Segment:
    speaker: str
    start_ms: int
    end_ms: int
    is_final: bool
    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    at_ms: int
    detail: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StoredSegment:
    seq: int
    segment: Segment


@dataclass(frozen=True, slots=True)
class TranscriptView:
    call_id: str
    redacted: bool
    caller_number: str | None
    segments: tuple[StoredSegment, ...]


def _ctx(call: Call, purpose: str, object_id: str) -> SealContext:
    # Everything of a call is sealed under the call's one data key: deleting
    # that key (crypto-shredding) makes the whole call unrecoverable.
    return SealContext(
        tenant_id=call.tenant_id,
        deployment_id=call.deployment_id,
        purpose=purpose,
        object_id=object_id,
        owner_kind="call",
        owner_id=call.id,
    )


_GET_CALL = select(Call).where(Call.tenant_id == bindparam("t"), Call.id == bindparam("i"))


_C = Call.__table__
_READ_CALL = Prepared(
    select(_C).where(_C.c.tenant_id == bindparam("t"), _C.c.id == bindparam("i")), name="call"
)


def read_call(db: Reader, tenant_id: str, call_id: str) -> CallFields:
    """A call's metadata as a read-only row (no ORM object)."""
    row = _READ_CALL.one_or_none(connection_of(db), {"t": tenant_id, "i": call_id})
    if row is None:
        raise NotFoundError("call not found", field="call_id")
    return cast("CallFields", row)


def get_call(session: Session, tenant_id: str, call_id: str) -> Call:
    row = session.execute(_GET_CALL, {"t": tenant_id, "i": call_id}).scalar_one_or_none()
    if row is None:
        raise NotFoundError("call not found", field="call_id")
    return row


def list_calls(
    session: Session,
    tenant_id: str,
    *,
    deployment_id: str | None = None,
    agent_id: str | None = None,
    status: str | None = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
    limit: int = 100,
) -> list[Call]:
    """Calls newest first, filtered by scope, status and start time (metadata only)."""
    q = select(Call).where(Call.tenant_id == tenant_id)
    if deployment_id is not None:
        q = q.where(Call.deployment_id == deployment_id)
    if agent_id is not None:
        q = q.where(Call.agent_id == agent_id)
    if status is not None:
        q = q.where(Call.status == status)
    if started_after is not None:
        q = q.where(Call.started_at >= started_after)
    if started_before is not None:
        q = q.where(Call.started_at < started_before)
    return list(session.execute(q.order_by(Call.started_at.desc()).limit(limit)).scalars())


def create_call(
    session: Session,
    sealer: Sealer,
    audit: AuditLog,
    agent: Agent,
    *,
    direction: str,
    caller_number: str | None,
    started_at: datetime | None,
    actor_id: str,
    request_id: str | None,
) -> Call:
    call = Call(
        id=new_id("call"),
        tenant_id=agent.tenant_id,
        deployment_id=agent.deployment_id,
        agent_id=agent.id,
        direction=direction,
        status="active",
        started_at=started_at or utcnow(),
        ended_at=None,
        segment_count=0,
        event_count=0,
    )
    if caller_number is not None:
        call.caller_number_sealed = sealer.seal(
            session, caller_number.encode("utf-8"), _ctx(call, "caller-number", call.id)
        )
    session.add(call)
    session.flush()
    audit.append_in(
        session,
        call.tenant_id,
        AuditEvent(
            action="call.create",
            outcome=Outcome.SUCCESS,
            actor=actor_id,
            resource_kind="call",
            resource_id=call.id,
            request_id=request_id,
            ocsf_class=OCSF_API_ACTIVITY,
            detail={"agent": agent.id, "deployment": agent.deployment_id},
        ),
    )
    return call


def _require_open(call: Call) -> None:
    if call.status != "active":
        raise ConflictError("call has ended", field="call_id")


def append_segments(
    session: Session, sealer: Sealer, call: Call, segments: list[Segment]
) -> list[int]:
    """Seal and store ``segments`` in order; returns their sequence numbers."""
    _require_open(call)
    first = call.segment_count
    for offset, seg in enumerate(segments):
        seq = first + offset
        body = rfc8785.dumps(
            {
                "text": seg.text,
                "words": [[w.text, w.start_ms, w.end_ms] for w in seg.words],
            }
        )
        session.add(
            TranscriptSegment(
                call_id=call.id,
                seq=seq,
                tenant_id=call.tenant_id,
                speaker=seg.speaker,
                start_ms=seg.start_ms,
                end_ms=seg.end_ms,
                is_final=seg.is_final,
                sealed=sealer.seal(
                    session, body, _ctx(call, "transcript-segment", f"{call.id}/{seq}")
                ),
            )
        )
    call.segment_count = first + len(segments)
    session.flush()
    return list(range(first, first + len(segments)))


def append_events(session: Session, sealer: Sealer, call: Call, events: list[Event]) -> list[int]:
    _require_open(call)
    first = call.event_count
    for offset, ev in enumerate(events):
        seq = first + offset
        sealed = None
        if ev.detail is not None:
            sealed = sealer.seal(
                session, rfc8785.dumps(ev.detail), _ctx(call, "call-event", f"{call.id}/{seq}")
            )
        session.add(
            CallEvent(
                call_id=call.id,
                seq=seq,
                tenant_id=call.tenant_id,
                kind=ev.kind,
                at_ms=ev.at_ms,
                detail_sealed=sealed,
            )
        )
    call.event_count = first + len(events)
    session.flush()
    return list(range(first, first + len(events)))


def end_call(session: Session, call: Call, *, status: str = "completed") -> Call:
    _require_open(call)
    call.status = status
    call.ended_at = utcnow()
    session.flush()
    return call


_REDACTOR: Redactor | None = None


def shared_redactor() -> Redactor:
    """The process's one redaction engine (built on first use)."""
    global _REDACTOR  # noqa: PLW0603 - one engine for the process, built on first use
    if _REDACTOR is None:
        _REDACTOR = Redactor()
    return _REDACTOR


def _redacted_view(text: str) -> str:
    """The QA view: entities replaced by their labels, then every number left masked too.

    The engine names what it found ("[CARD_NUMBER]"); the over-broad numeric mask
    behind it is the second wall, so a number the engine missed still never shows.
    """
    redacted = shared_redactor().redact(text)
    out: list[str] = []
    at = 0
    for m in _TOKEN_DISPLAY.finditer(redacted):
        # A card token's id survives the numeric mask (a reviewer can cite it); its
        # last four digits do not: QA reviewers see no digits at all.
        out += [mask_numbers(redacted[at : m.start()]), f"[CARD {m.group(1)} ending ####]"]
        at = m.end()
    out.append(mask_numbers(redacted[at:]))
    return "".join(out)


#: A card token's display in stored text: ``[CARD tok_… ending 4242]``.
_TOKEN_DISPLAY = re.compile(r"\[CARD (tok_[a-z0-9]+) ending [0-9]{4}\]")


def _opened_segments(
    session: Session, sealer: Sealer, call: Call
) -> Iterator[tuple[TranscriptSegment, dict[str, Any]]]:
    """Each stored segment of ``call`` in order, with its opened body (text and words).

    Private: callers MUST have checked a grant for the read they serve.
    """
    rows = session.execute(
        select(TranscriptSegment)
        .where(TranscriptSegment.tenant_id == call.tenant_id, TranscriptSegment.call_id == call.id)
        .order_by(TranscriptSegment.seq)
    ).scalars()
    for row in rows:
        ctx = _ctx(call, "transcript-segment", f"{call.id}/{row.seq}")
        yield row, json.loads(sealer.open(session, row.sealed, ctx))


def read_transcript(session: Session, sealer: Sealer, grant: Grant, call: Call) -> TranscriptView:
    """Open a call's transcript as the grant allows: full, or masked for redacted readers."""
    grant.require(Action.TRANSCRIPT_READ, Action.TRANSCRIPT_READ_REDACTED, resource_id=call.id)
    redacted = grant.action is Action.TRANSCRIPT_READ_REDACTED
    view = _redacted_view if redacted else (lambda s: s)
    out: list[StoredSegment] = []
    for row, body in _opened_segments(session, sealer, call):
        words = tuple(Word(view(w[0]), int(w[1]), int(w[2])) for w in body["words"])
        seg = Segment(
            speaker=row.speaker,
            start_ms=row.start_ms,
            end_ms=row.end_ms,
            is_final=row.is_final,
            text=view(body["text"]),
            words=words,
        )
        out.append(StoredSegment(seq=row.seq, segment=seg))
    caller = None
    if call.caller_number_sealed is not None:
        number = sealer.open(
            session, call.caller_number_sealed, _ctx(call, "caller-number", call.id)
        )
        caller = view(number.decode("utf-8"))
    return TranscriptView(
        call_id=call.id, redacted=redacted, caller_number=caller, segments=tuple(out)
    )
