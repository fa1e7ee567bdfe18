"""Opening a call's recording for playback, as the grant allows (full or masked).

The route enforces (and so audits, committed) the read first; this module
then, inside the same transaction, finds the recording and the call's data
key and, for the masked view, reads the transcript's segments (sealed), turns
their times into the silences, and places the beeps of the first piece read
(:class:`~callvault.calls._playback.MaskPlanner`, opening only the segments
near it). The audio, and the segments later pieces need, are decrypted
lazily, piece by piece, after the transaction ends, under the keys found
inside it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from callvault.access import Action, Grant, Resource, load_principal
from callvault.calls._playback import (
    ByteRange,
    Interval,
    MaskPlanner,
    TimedSegment,
    parse_range,
    silence_plan,
    wav_range,
    wav_samples,
    wav_size,
)
from callvault.calls._playback_url import PlaybackClaims, View, mint, peek_tenant, verify
from callvault.calls._recording import header_context, recording_context
from callvault.calls._store import _ctx, get_call, shared_redactor
from callvault.crypto import open_value, stream_key
from callvault.crypto.stream import DEFAULT_SEGMENT_SIZE, RangeReader
from callvault.errors import NotFoundError
from callvault.keys import KeyOwner
from callvault.runtime import Runtime
from callvault.store.models import Call, Deployment, Recording, TranscriptSegment
from callvault.store.prepared import Prepared, connection_of


@dataclass(frozen=True, slots=True)
class Playback:
    status: int
    headers: dict[str, str]
    body: Iterator[bytes]


def open_playback(
    rt: Runtime, session: Session, grant: Grant, call: Call, range_header: str | None
) -> Playback:
    """The WAV bytes (all, or the one requested range) of ``call``'s recording."""
    grant.require(Action.RECORDING_READ, Action.RECORDING_READ_MASKED, resource_id=call.id)
    conn = connection_of(session)
    ids = {"t": call.tenant_id, "c": call.id, "d": call.deployment_id}
    recordings = _RECORDINGS.rows(conn, ids)  # newest first
    if not recordings:
        raise NotFoundError("the call has no recording", field="call_id")
    rec = recordings[0]
    samples = rec.duration_ms * rec.sample_rate_hz // 1000
    total = wav_size(samples)
    rng = parse_range(range_header, total)
    deployment = _REGION.one_or_none(conn, ids)
    if deployment is None:  # pragma: no cover - the call's deployment is its tenant's (FK)
        raise NotFoundError("deployment not found", field="call_id")
    key = rt.keys.data_key(
        session, KeyOwner(call.tenant_id, call.deployment_id, "call", call.id), create=False
    )
    served = rng or ByteRange(0, total)
    planner: MaskPlanner | None = None
    silence: list[Interval] = []
    if grant.action is Action.RECORDING_READ_MASKED:
        planner, silence = _masking(conn, call, key, rec.sample_rate_hz, rec.duration_ms)
        touched = wav_samples(served)
        if touched is not None:  # the first piece's beeps now, inside the transaction
            first, stop = touched
            planner.beeps_for(first, min(stop, first + DEFAULT_SEGMENT_SIZE))
    ctx = recording_context(call.tenant_id, call.deployment_id, call.id)
    store = rt.objects.for_region(deployment.region)
    obj = store.reader(rec.object_ref)
    try:
        reader = RangeReader(stream_key(key, ctx), obj.read_at, obj.size, header_context(ctx))
    except BaseException:  # release the object reader, re-raise
        obj.close()
        raise
    headers = {
        "accept-ranges": "bytes",
        "content-length": str(served.end - served.start),
        "x-callvault-view": "masked" if grant.action is Action.RECORDING_READ_MASKED else "full",
    }
    if rng is not None:
        headers["content-range"] = rng.content_range(total)

    def body() -> Iterator[bytes]:
        try:
            yield from wav_range(
                reader, rec.sample_rate_hz, samples, served, silence=silence, planner=planner
            )
        finally:
            obj.close()

    return Playback(206 if rng is not None else 200, headers, body())


_REC = Recording.__table__.c
_RECORDINGS = Prepared(
    select(_REC.object_ref, _REC.sample_rate_hz, _REC.duration_ms)
    .where(_REC.tenant_id == bindparam("t"), _REC.call_id == bindparam("c"))
    .order_by(_REC.created_at.desc()),
    name="call_recordings",
)
_DEP = Deployment.__table__.c
_REGION = Prepared(
    select(_DEP.region).where(_DEP.tenant_id == bindparam("t"), _DEP.id == bindparam("d")),
    name="deployment_region",
)
_SEG = TranscriptSegment.__table__.c
_SEGMENTS = Prepared(
    select(_SEG.seq, _SEG.start_ms, _SEG.end_ms, _SEG.sealed)
    .where(_SEG.tenant_id == bindparam("t"), _SEG.call_id == bindparam("c"))
    .order_by(_SEG.seq),
    name="call_segments_sealed",
)


def _masking(
    conn: Connection, call: Call, key: bytes, sample_rate: int, duration_ms: int
) -> tuple[MaskPlanner, list[Interval]]:
    """A planner for the masked view's beeps and its silences, for ``call``'s transcript.

    Private: the caller MUST hold a grant for the masked read. The segments'
    times and sealed bodies are read here (one query); each body is opened
    under ``key`` (the call's data key, which seals the whole call) only when
    the planner needs it, and its text never leaves the planner.
    """
    rows = _SEGMENTS.rows(conn, {"t": call.tenant_id, "c": call.id})
    spans = [(int(r.start_ms), int(r.end_ms)) for r in rows]
    call_id = call.id
    base = _ctx(call, "transcript-segment", call_id)  # the object id is each segment's, below

    def open_segment(i: int) -> TimedSegment:
        row = rows[i]
        ctx = replace(base, object_id=f"{call_id}/{row.seq}")  # as calls/_store.py seals it
        body = json.loads(open_value(key, row.sealed, ctx))
        words = tuple((str(w[0]), int(w[1]), int(w[2])) for w in body["words"])
        start, end = spans[i]
        return TimedSegment(start, end, str(body["text"]), words)

    redactor = shared_redactor()
    planner = MaskPlanner(spans, open_segment, redactor, sample_rate)
    if any(len(r.sealed) > redactor.max_chars for r in rows):
        # A text too long to redact may be among them: refuse now, as the whole plan did.
        planner.read_all()
    return planner, silence_plan(spans, duration_ms)


def mint_playback_url(
    rt: Runtime, session: Session, principal_id: str, call: Call, view: View
) -> tuple[str, datetime]:
    """A signed playback path for ``call`` and ``view`` (the caller passed the gate)."""
    ttl = rt.settings.playback_url_ttl_seconds
    expires = int(time.time()) + ttl
    claims = PlaybackClaims(call.tenant_id, call.id, principal_id, view, expires)
    token = mint(rt.keys, session, claims)
    return f"/v1/playback/{token}", datetime.fromtimestamp(expires, UTC)


def play_by_url(rt: Runtime, token: str, range_header: str | None) -> Playback:
    """Serve a signed playback URL: verify it, load its principal as it is now, pass the
    gate again (audited, committed) and open the recording."""
    tenant_id = peek_tenant(token)
    with rt.db.tenant_tx(tenant_id) as s:
        claims = verify(rt.keys, s, token, int(time.time()))
        principal = load_principal(s, claims.tenant_id, claims.principal_id)
        call = get_call(s, claims.tenant_id, claims.call_id)
        action = Action.RECORDING_READ if claims.view == "full" else Action.RECORDING_READ_MASKED
        resource = Resource.call(call.tenant_id, call.deployment_id, call.agent_id, call.id)
        grant = rt.gate.enforce(principal, action, resource)
        return open_playback(rt, s, grant, call, range_header)
