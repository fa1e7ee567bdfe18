"""Calls: create and feed (ingest role), list and read metadata, read transcripts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from callvault import calls, tenancy
from callvault.access import Action
from callvault.api import resources, schemas
from callvault.api.blocking import blocking
from callvault.api.deps import CtxDep, ResourceId
from callvault.calls._card_text import append_protected
from callvault.calls._listen import mint_playback_url, open_playback
from callvault.calls._store import shared_redactor
from callvault.payments import TokenVault
from callvault.store.ids import ID_PATTERN

router = APIRouter(prefix="/v1", tags=["calls"])

OptionalId = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=40)]


@router.get("/calls")
@blocking
def list_calls(
    ctx: CtxDep,
    deployment_id: OptionalId = None,
    agent_id: OptionalId = None,
    status: Annotated[
        Literal["active", "completed", "incomplete", "failed"] | None, Query()
    ] = None,
    started_after: Annotated[AwareDatetime | None, Query()] = None,
    started_before: Annotated[AwareDatetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[schemas.CallOut]:
    """Calls of one agent, one deployment, or the tenant (needs call:list on that scope),
    newest first, optionally by status and start time (``started_after`` inclusive,
    ``started_before`` exclusive; with a time zone). Metadata only, never content."""
    with ctx.tx() as s:
        if agent_id is not None:
            scope = resources.of_agent(tenancy.read_agent(s, ctx.tenant_id, agent_id))
        elif deployment_id is not None:
            scope = resources.of_deployment(
                tenancy.read_deployment(s, ctx.tenant_id, deployment_id)
            )
        else:
            scope = resources.of_tenant(tenancy.read_tenant(s, ctx.tenant_id))
        ctx.enforce(Action.CALL_LIST, scope)
        rows = calls.list_calls(
            s,
            ctx.tenant_id,
            deployment_id=deployment_id,
            agent_id=agent_id,
            status=status,
            started_after=started_after,
            started_before=started_before,
            limit=limit,
        )
        return [resources.call_out(r) for r in rows]


@router.post("/agents/{agent_id}/calls", status_code=status.HTTP_201_CREATED)
@blocking
def create_call(agent_id: ResourceId, body: schemas.CallCreate, ctx: CtxDep) -> schemas.CallOut:
    with ctx.tx() as s:
        agent = tenancy.get_agent(s, ctx.tenant_id, agent_id)
        ctx.enforce(Action.CALL_CREATE, resources.of_agent(agent))
        row = calls.create_call(
            s,
            ctx.rt.sealer,
            ctx.rt.audit,
            agent,
            direction=body.direction,
            caller_number=body.caller_number,
            started_at=body.started_at,
            actor_id=ctx.principal.id,
            request_id=ctx.request_id,
        )
        return resources.call_out(row)


@router.get("/calls/{call_id}")
@blocking
def get_call(call_id: ResourceId, ctx: CtxDep) -> schemas.CallOut:
    with ctx.read() as c:
        row = calls.read_call(c, ctx.tenant_id, call_id)
        ctx.enforce(Action.CALL_READ, resources.of_call(row))
        return resources.call_out(row)


@router.post("/calls/{call_id}/segments", status_code=status.HTTP_201_CREATED)
@blocking
def append_segments(
    call_id: ResourceId, body: schemas.SegmentsAppend, ctx: CtxDep
) -> schemas.AppendOut:
    with ctx.tx() as s:
        row = calls.get_call(s, ctx.tenant_id, call_id)
        ctx.enforce(Action.CALL_APPEND, resources.of_call(row))
        segments = [
            calls.Segment(
                speaker=g.speaker,
                start_ms=g.start_ms,
                end_ms=g.end_ms,
                is_final=g.is_final,
                text=g.text,
                words=tuple(calls.Word(w.text, w.start_ms, w.end_ms) for w in g.words),
            )
            for g in body.segments
        ]
        # Card numbers go to the tokenization vault; the stored text keeps their tokens.
        seqs = append_protected(
            s,
            ctx.rt.sealer,
            TokenVault(ctx.rt.keys, ctx.rt.audit),
            row,
            segments,
            shared_redactor(),
            actor=ctx.principal.id,
            request_id=ctx.request_id,
        )
        return schemas.AppendOut(seqs=seqs)


@router.post("/calls/{call_id}/events", status_code=status.HTTP_201_CREATED)
@blocking
def append_events(
    call_id: ResourceId, body: schemas.EventsAppend, ctx: CtxDep
) -> schemas.AppendOut:
    with ctx.tx() as s:
        row = calls.get_call(s, ctx.tenant_id, call_id)
        ctx.enforce(Action.CALL_APPEND, resources.of_call(row))
        events = [calls.Event(kind=e.kind, at_ms=e.at_ms, detail=e.detail) for e in body.events]
        return schemas.AppendOut(seqs=calls.append_events(s, ctx.rt.sealer, row, events))


@router.post("/calls/{call_id}/end")
@blocking
def end_call(call_id: ResourceId, body: schemas.CallEnd, ctx: CtxDep) -> schemas.CallOut:
    with ctx.tx() as s:
        row = calls.get_call(s, ctx.tenant_id, call_id)
        ctx.enforce(Action.CALL_APPEND, resources.of_call(row))
        return resources.call_out(calls.end_call(s, row, status=body.status))


@router.get("/calls/{call_id}/transcript")
@blocking
def read_transcript(
    call_id: ResourceId,
    ctx: CtxDep,
    view: Annotated[Literal["full", "redacted"] | None, Query()] = None,
) -> schemas.TranscriptOut:
    """The transcript as the caller's role allows: full, or redacted.

    Without ``view``, the fullest view the caller is allowed. The read is
    audited (and committed) before anything is opened.
    """
    with ctx.tx() as s:
        row = calls.get_call(s, ctx.tenant_id, call_id)
        res = resources.of_call(row)
        if view is None:
            view = "full" if ctx.allows(Action.TRANSCRIPT_READ, res) else "redacted"
        action = Action.TRANSCRIPT_READ if view == "full" else Action.TRANSCRIPT_READ_REDACTED
        grant = ctx.enforce(action, res)
        t = calls.read_transcript(s, ctx.rt.sealer, grant, row)
        return schemas.TranscriptOut.of(t)


@router.get(
    "/calls/{call_id}/recording",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"audio/wav": {}}, "description": "The whole recording (WAV)."},
        206: {"content": {"audio/wav": {}}, "description": "The requested byte range."},
        416: {"description": "The range is past the end of the recording."},
    },
)
@blocking
def play_recording(
    call_id: ResourceId,
    ctx: CtxDep,
    request: Request,
    view: Annotated[Literal["full", "masked"] | None, Query()] = None,
) -> StreamingResponse:
    """The call's recording as 16-bit PCM WAV, full or masked as the caller's role allows.

    Without ``view``, the fullest view allowed. ``Range: bytes=…`` is served
    (206) by decrypting only the segments it touches. The read is audited
    (and committed) before anything is opened.
    """
    with ctx.tx() as s:
        row = calls.get_call(s, ctx.tenant_id, call_id)
        res = resources.of_call(row)
        if view is None:
            view = "full" if ctx.allows(Action.RECORDING_READ, res) else "masked"
        action = Action.RECORDING_READ if view == "full" else Action.RECORDING_READ_MASKED
        grant = ctx.enforce(action, res)
        played = open_playback(ctx.rt, s, grant, row, request.headers.get("range"))
    return StreamingResponse(
        played.body, status_code=played.status, headers=played.headers, media_type="audio/wav"
    )


@router.post("/calls/{call_id}/recording/url")
@blocking
def playback_url(
    call_id: ResourceId,
    ctx: CtxDep,
    view: Annotated[Literal["full", "masked"] | None, Query()] = None,
) -> schemas.PlaybackUrlOut:
    """A short-lived URL a browser player can fetch the recording from (one call, one
    view). Minting is a recording read (audited); each use passes the gate again."""
    with ctx.tx() as s:
        row = calls.get_call(s, ctx.tenant_id, call_id)
        res = resources.of_call(row)
        if view is None:
            view = "full" if ctx.allows(Action.RECORDING_READ, res) else "masked"
        action = Action.RECORDING_READ if view == "full" else Action.RECORDING_READ_MASKED
        ctx.enforce(action, res)
        url, expires = mint_playback_url(ctx.rt, s, ctx.principal.id, row, view)
    return schemas.PlaybackUrlOut(url=url, view=view, expires_at=expires)
