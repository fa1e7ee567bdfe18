"""Opening a call's recording for playback, as the grant allows (full or masked).

The route enforces (and so audits, committed) the read first; this module
then, inside the same transaction, finds the recording and the call's data
key and, for the masked view, turns the transcript into time intervals.
The audio itself is read and decrypted lazily, range by range, after the
transaction ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.access import Action, Grant, Resource, load_principal
from callvault.calls._playback import (
    ByteRange,
    mask_plan,
    parse_range,
    wav_range,
    wav_size,
)
from callvault.calls._playback_url import PlaybackClaims, View, mint, peek_tenant, verify
from callvault.calls._recording import header_context, recording_context
from callvault.calls._store import get_call, masking_segments, shared_redactor
from callvault.crypto import stream_key
from callvault.crypto.stream import RangeReader
from callvault.errors import NotFoundError
from callvault.keys import KeyOwner
from callvault.runtime import Runtime
from callvault.store.models import Call, Deployment, Recording


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
    rec = (
        session.execute(
            select(Recording)
            .where(Recording.tenant_id == call.tenant_id, Recording.call_id == call.id)
            .order_by(Recording.created_at.desc())
        )
        .scalars()
        .first()
    )
    if rec is None:
        raise NotFoundError("the call has no recording", field="call_id")
    samples = rec.duration_ms * rec.sample_rate_hz // 1000
    total = wav_size(samples)
    rng = parse_range(range_header, total)
    deployment = session.get(Deployment, call.deployment_id)
    if deployment is None or deployment.tenant_id != call.tenant_id:  # pragma: no cover - FK
        raise NotFoundError("deployment not found", field="call_id")
    key = rt.keys.data_key(
        session, KeyOwner(call.tenant_id, call.deployment_id, "call", call.id), create=False
    )
    beep: list[tuple[float, float]] = []
    silence: list[tuple[float, float]] = []
    if grant.action is Action.RECORDING_READ_MASKED:
        segments = masking_segments(session, rt.sealer, grant, call)
        beep, silence = mask_plan(segments, rec.duration_ms, shared_redactor())
    ctx = recording_context(call.tenant_id, call.deployment_id, call.id)
    store = rt.objects.for_region(deployment.region)
    obj = store.reader(rec.object_ref)
    try:
        reader = RangeReader(stream_key(key, ctx), obj.read_at, obj.size, header_context(ctx))
    except BaseException:  # release the object reader, re-raise
        obj.close()
        raise
    served = rng or ByteRange(0, total)
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
                reader, rec.sample_rate_hz, samples, served, beep=beep, silence=silence
            )
        finally:
            obj.close()

    return Playback(206 if rng is not None else 200, headers, body())


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
