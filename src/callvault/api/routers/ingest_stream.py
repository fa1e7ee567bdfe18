"""Live ingest for agents that run their own media: ``wss://…/v1/ingest/stream/{agent_id}``.

The protocol (JSON text frames, binary audio frames) is
:mod:`callvault.calls._generic_ingest`'s. Who streams is the API key sent as
``Authorization: Bearer …`` on the upgrade: a principal with ``call:create``
on the agent (and ``call:append`` on the call for segments and events, e.g.
the ``ingest`` role). A missing or bad key, an unknown agent (or one of
another tenant) and a denied principal are refused before the upgrade is
accepted (HTTP 403), so nothing is created.

Frames that commit (start, segments, events, a captured card) run in a
worker thread; audio runs on the loop (microseconds). The end of the call
(sealing the tail, the recording row, the status) runs shielded in a worker
thread, so a dropped client or a stopping server still ends the call,
``incomplete`` unless the client sent ``stop``. Refusals close the socket
with an RFC 6455 code and a reason naming no value.
"""

from __future__ import annotations

import json
import logging
import re

from anyio import to_thread
from fastapi import APIRouter, WebSocket

from callvault import tenancy
from callvault.access import Action, Principal, Resource, authenticate, parse_token
from callvault.api.routers.ingest import _bearer, _refusal, serve_stream
from callvault.calls._generic_ingest import GenericCall, Opener, Reply
from callvault.calls._ingest import CallIngest, EndReason, IngestSettings
from callvault.errors import AuthenticationError, Error
from callvault.runtime import Runtime
from callvault.store.ids import ID_PATTERN

log = logging.getLogger("callvault.api.ingest")
router = APIRouter(prefix="/v1/ingest", tags=["ingest"])

_ID = re.compile(ID_PATTERN)


def _open(rt: Runtime, token: str | None, agent_id: str, request_id: str | None) -> Opener:
    """Authenticate and check ``call:create`` on the agent; raises the refusal."""
    if not token:
        raise AuthenticationError("an API key is required")
    parts = parse_token(token)
    with rt.db.tenant_tx(parts.tenant_id) as s:
        principal: Principal = authenticate(s, parts)
        agent = tenancy.read_agent(s, principal.tenant_id, agent_id)
    rt.gate.enforce(
        principal,
        Action.CALL_CREATE,
        Resource.agent(agent.tenant_id, agent.deployment_id, agent.id),
        request_id=request_id,
    )

    def permit_append(ingest: CallIngest) -> None:
        resource = Resource.call(agent.tenant_id, agent.deployment_id, agent.id, ingest.call_id)
        rt.gate.enforce(principal, Action.CALL_APPEND, resource, request_id=request_id)

    return Opener(principal.tenant_id, agent.id, principal.id, request_id, permit_append)


async def _send(ws: WebSocket, replies: list[Reply]) -> None:
    for reply in replies:
        await ws.send_text(json.dumps(reply, separators=(",", ":")))


async def _pump(ws: WebSocket, call: GenericCall) -> EndReason:
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return "disconnect"
        data = message.get("bytes")
        if data is not None:
            await _send(ws, call.audio(data))
            if call.unsettled:  # a keypad capture went idle: tokenizing commits
                await _send(ws, await to_thread.run_sync(call.settle))
            continue
        text = message.get("text") or ""
        await _send(ws, await to_thread.run_sync(call.text, text))
        if call.stopped:
            return "stop"


@router.websocket("/stream/{agent_id}")
async def generic_stream(ws: WebSocket, agent_id: str) -> None:
    rt: Runtime = ws.app.state.runtime
    if _ID.fullmatch(agent_id) is None:
        await ws.close(code=1008, reason="malformed agent id")
        return
    request_id = ws.scope.get("state", {}).get("request_id")
    try:
        opener = await to_thread.run_sync(_open, rt, _bearer(ws), agent_id, request_id)
    except Exception as exc:  # noqa: BLE001 - every refusal closes the socket; ids only logged
        code, why = _refusal(exc)
        if isinstance(exc, AuthenticationError):
            code, why = 1008, "invalid or missing API key"
        elif isinstance(exc, Error) and code == 1011:
            code, why = 1008, "agent not found"
        log.info("ingest stream refused", extra={"agent_id": agent_id, "close_code": code})
        await ws.close(code=code, reason=why[:120])
        return
    await ws.accept()
    call = GenericCall(
        rt,
        opener,
        settings=IngestSettings(
            hold_ms=rt.settings.ingest_hold_ms, max_hold_ms=rt.settings.ingest_max_hold_ms
        ),
    )

    def close(reason: EndReason) -> str | None:
        summary = call.close(reason)
        return summary.status if summary else None

    async def farewell(reason: EndReason, status: str | None) -> None:
        if reason == "stop" and status is not None:
            await _send(ws, [{"type": "stopped", "call_id": call.call_id, "status": status}])

    await serve_stream(
        ws, lambda: _pump(ws, call), close, call_id=lambda: call.call_id, farewell=farewell
    )
