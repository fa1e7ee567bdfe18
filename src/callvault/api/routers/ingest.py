"""Live ingest: the Twilio Media Streams compatible WebSocket.

``wss://…/v1/ingest/twilio/{deployment_id}``. Who streams is an API key
(a principal with ``call:create`` on the agent, e.g. the ``ingest`` role):
sent as ``Authorization: Bearer …`` on the upgrade by clients that can, or
as the ``callvault_key`` custom parameter of the stream (``<Parameter>`` in
TwiML) by Twilio, which cannot send headers. The agent is the ``agent_id``
custom parameter. Everything about the stream itself (order, duplicates,
gaps, limits) is :class:`~callvault.calls._twilio_ingest.TwilioCall`'s.

When the deployment has a Twilio auth token (``PUT /v1/deployments/{id}/twilio``),
the upgrade MUST carry ``X-Twilio-Signature`` over the URL Twilio connected
to, which this route rebuilds from the request (:func:`_signed_url`); it is
checked at ``start``, once the API key has named the tenant, before any media.

A refused stream is closed with an RFC 6455 code (1008 policy, 1007 bad
data, 1009 too big) and a short reason naming the problem, never a value;
what was accepted before is sealed and the call marked with what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from anyio import CancelScope, to_thread
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from callvault.access import Action, Resource, authenticate, parse_token
from callvault.calls._ingest import EndReason, IngestSettings
from callvault.calls._twilio import ProtocolError, Start
from callvault.calls._twilio_ingest import (
    KEY_PARAMETER,
    SIGNATURE_HEADER,
    Caller,
    RefusedError,
    SignedUpgrade,
    TwilioCall,
)
from callvault.errors import AuthenticationError, Error, PermissionDeniedError
from callvault.runtime import Runtime
from callvault.store.ids import ID_PATTERN
from callvault.store.rows import AgentFields

log = logging.getLogger("callvault.api.ingest")
router = APIRouter(prefix="/v1/ingest", tags=["ingest"])

_POLL_S = 0.25
_ID = re.compile(ID_PATTERN)


def _identify(rt: Runtime, header: str | None, request_id: str | None) -> Callable[[Start], Caller]:
    def identify(start: Start) -> Caller:
        token = header or start.custom_parameters.get(KEY_PARAMETER)
        if not token:
            raise RefusedError("missing-field", "an API key is required")
        try:
            parts = parse_token(token)
            with rt.db.tenant_tx(parts.tenant_id) as s:
                principal = authenticate(s, parts)
        except AuthenticationError:
            raise RefusedError("bad-field", "invalid API key") from None

        def permit(agent: AgentFields) -> None:
            resource = Resource.agent(agent.tenant_id, agent.deployment_id, agent.id)
            rt.gate.enforce(principal, Action.CALL_CREATE, resource, request_id=request_id)

        return Caller(principal.tenant_id, principal.id, request_id, permit)

    return identify


def _bearer(ws: WebSocket) -> str | None:
    header = ws.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _signed_url(scope: Mapping[str, Any], host: str | None) -> str | None:
    """The URL Twilio signed for this upgrade, or None when it cannot be rebuilt.

    Scheme ``wss`` under TLS (``ws`` otherwise), the host as the ``Host``
    header gives it (port included if sent), then the path and the query
    string exactly as sent (``raw_path``, not the decoded path). Behind a
    proxy this is the URL the proxy forwarded, so the proxy MUST pass ``Host``
    through and the service see TLS (it terminates TLS itself by default).
    """
    if not host:
        return None
    scheme = "wss" if scope.get("scheme") in ("wss", "https") else "ws"
    raw_path = scope.get("raw_path")
    try:
        path = raw_path.decode("ascii") if raw_path else str(scope.get("path", ""))
        query = bytes(scope.get("query_string", b"")).decode("ascii")
    except UnicodeDecodeError:
        return None
    return f"{scheme}://{host}{path}" + (f"?{query}" if query else "")


def _upgrade(ws: WebSocket) -> SignedUpgrade:
    return SignedUpgrade(
        url=_signed_url(ws.scope, ws.headers.get("host")),
        signature=ws.headers.get(SIGNATURE_HEADER),
    )


async def _pump(ws: WebSocket, call: TwilioCall) -> EndReason:
    """Feed frames until ``stop`` (returns) or a disconnect / refusal (raises).

    A frame held for reordering must not wait past the window when the socket
    goes quiet: a poller releases it every quarter second (one timer per
    stream, not one per frame).
    """
    poller = asyncio.create_task(_poll(call))
    try:
        while True:
            frame = await ws.receive_text()
            if call.ingest is None:  # 'connected' / 'start': commits (fsync), off the loop
                await to_thread.run_sync(lambda f=frame: call.feed(f))  # type: ignore[misc]
            else:
                call.feed(frame)  # audio: guard and seal, microseconds, on the loop
            if call.stream.stopped:
                return "stop"
    finally:
        poller.cancel()


async def _poll(call: TwilioCall) -> None:
    while True:
        await asyncio.sleep(_POLL_S)
        if call.ingest is not None and not call.stream.stopped:
            try:
                call.poll()
            except Exception as exc:  # noqa: BLE001 - the call is marked; ids only in the log
                log.error("ingest poll failed: %s", type(exc).__name__)
                call.ingest.mark_broken()
                return


def _refusal(exc: Exception) -> tuple[int, str]:
    """The close code and reason for a stream ended by ``exc`` (never a value)."""
    if isinstance(exc, ProtocolError):
        return exc.close_code, f"{exc.code}: {exc.message}"
    if isinstance(exc, PermissionDeniedError):
        return 1008, "not allowed to stream calls for this agent"
    if isinstance(exc, Error):
        return 1011, type(exc).__name__
    log.error("ingest stream failed: %s", type(exc).__name__)
    return 1011, "internal error"


@router.websocket("/twilio/{deployment_id}")
async def twilio_stream(ws: WebSocket, deployment_id: str) -> None:
    rt: Runtime = ws.app.state.runtime
    if _ID.fullmatch(deployment_id) is None:
        await ws.close(code=1008, reason="malformed deployment id")
        return
    request_id = ws.scope.get("state", {}).get("request_id")
    await ws.accept()
    call = TwilioCall(
        rt,
        deployment_id=deployment_id,
        identify=_identify(rt, _bearer(ws), request_id),
        settings=IngestSettings(
            hold_ms=rt.settings.ingest_hold_ms, max_hold_ms=rt.settings.ingest_max_hold_ms
        ),
        upgrade=_upgrade(ws),
    )

    def close(reason: EndReason) -> str:
        summary = call.close(reason)
        return summary.call.status if summary.call else summary.stream.status

    await serve_stream(ws, lambda: _pump(ws, call), close, call_id=lambda: call.call_id)


async def serve_stream(
    ws: WebSocket,
    pump: Callable[[], Awaitable[EndReason]],
    close: Callable[[EndReason], str | None],
    *,
    call_id: Callable[[], str | None],
    farewell: Callable[[EndReason, str | None], Awaitable[None]] | None = None,
) -> None:
    """Run an accepted ingest socket to its end; the end of the call always runs.

    ``pump`` feeds frames until ``stop`` (returns) or a refusal (raises: the
    socket is closed with the error's code and a reason naming no value).
    ``close`` ends the call whatever happened (sealing the tail and committing
    its rows: off the loop, since a commit waits for fsync and hundreds of
    calls end together; shielded, so a cancelled handler — client gone,
    server stopping — still ends it) and returns its status. ``farewell``
    may send a last message before the socket closes.
    """
    reason: EndReason = "disconnect"
    code, why = 1000, "stream ended"
    try:
        reason = await pump()
    except WebSocketDisconnect:
        reason = "disconnect"
    except Exception as exc:  # noqa: BLE001 - every failure ends the call, marked; ids only logged
        reason = "protocol-error"
        code, why = _refusal(exc)
    finally:
        status = None
        try:
            with CancelScope(shield=True):
                status = await to_thread.run_sync(close, reason)
        except Exception as exc:  # noqa: BLE001 - never escape the socket; ids only in the log
            log.error("ingest stream could not be ended cleanly: %s", type(exc).__name__)
        if ws.client_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                if farewell is not None:
                    await farewell(reason, status)
                await ws.close(code=code, reason=why[:120])
        log.info("ingest stream closed", extra={"call_id": call_id(), "status": status})
