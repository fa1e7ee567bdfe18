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
from starlette.types import Message
from starlette.websockets import WebSocketState

from callvault.access import Action, Resource, authenticate, parse_token
from callvault.api.ws_protocol import TEXT_SINK
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
    goes quiet: a poller releases it every quarter second (one timer per stream
    while it holds frames, none otherwise). What it releases may end with the
    ``stop`` (a ``stop`` that came behind a hole): the poller then wakes the
    pump (``woken``), which returns although no frame arrived, so the call ends
    and the socket closes while the client keeps it open.

    Once the call has started, and when served by ``callvault serve``
    (:mod:`callvault.api.ws_protocol`), text frames are fed as the protocol
    reads them (:func:`_sink`) and the pump waits for anything else: a
    disconnect, a binary frame, ``woken``. Otherwise (before ``start``, which
    commits off the loop, or under another server) each message is read here,
    from the ASGI ``receive`` itself (:func:`_frame`), not through Starlette's
    ``receive_text``: its checks cost more than the rest of the read, and
    :func:`_frame` keeps the socket's state as Starlette would.
    """
    receive = ws._receive  # the ASGI receive, read directly (see above)
    woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    holding = asyncio.Event()
    poller = asyncio.create_task(_poll(call, woken, holding))
    take_text = ws.scope.get("extensions", {}).get(TEXT_SINK, {}).get("set")
    sink = _sink(call, woken, holding, take_text) if take_text is not None else None
    try:
        while True:
            sinking = (
                (take_text, sink)
                if sink is not None and call.ingest is not None and not woken.done()
                else None
            )
            if sinking is not None or woken.done() or call.stream.holding:
                if call.stream.holding:
                    holding.set()
                got = await _receive_or_wake(ws, receive, woken, sinking)
                if got is None:
                    return "stop"
                message = got
            else:
                message = await receive()
            frame = _frame(ws, message)
            if call.ingest is None:  # 'connected' / 'start': commits (fsync), off the loop
                await to_thread.run_sync(lambda f=frame: call.feed(f))  # type: ignore[misc]
            else:
                call.feed(frame)  # audio: guard and seal, microseconds, on the loop
            if call.stream.stopped:
                return "stop"
    finally:
        poller.cancel()
        if woken.done() and not woken.cancelled():
            woken.exception()  # retrieved: the pump raised it, or the stream ended anyway


def _sink(
    call: TwilioCall,
    woken: asyncio.Future[None],
    holding: asyncio.Event,
    take_text: Callable[[Callable[[str], None] | None], None],
) -> Callable[[str], None]:
    """What the served protocol (:mod:`callvault.api.ws_protocol`) calls with each text
    frame as it reads it, once the call has started: the frame is fed there and then,
    without waking the pump's task for it (a queued message, a future and a task step
    per 20 ms frame: a tenth of the frame's cost). The pump waits meanwhile for what
    only it handles: any other message (a disconnect, a binary frame), or ``woken``,
    which this sets when the frame was the ``stop`` or was refused (its error: the
    pump raises it and the socket is closed as if the pump had fed the frame). After
    that, frames are not fed: the pump has stopped reading, as it does after ``stop``.
    """

    def sink(text: str) -> None:
        if woken.done():
            return
        try:
            call.feed(text)
        except Exception as exc:  # noqa: BLE001 - handed to the pump, which ends the stream
            take_text(None)
            woken.set_exception(exc)
            return
        if call.stream.stopped:
            take_text(None)
            woken.set_result(None)
        elif call.stream.holding:
            holding.set()  # the poller releases held frames, and may release the stop

    return sink


def _frame(ws: WebSocket, message: Message) -> str:
    """The text of one ASGI message; raises for a disconnect (as ``receive_text`` does,
    marking the socket disconnected) and refuses binary frames (1007: Twilio sends text)."""
    kind = message["type"]
    if kind == "websocket.receive":
        text = message.get("text")
        if text is None:
            raise ProtocolError("bad-json", "frame is not a text frame")
        return str(text)
    if kind == "websocket.disconnect":
        ws.client_state = WebSocketState.DISCONNECTED
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    raise RuntimeError(f"unexpected ASGI message {kind!r}")


async def _receive_or_wake(
    ws: WebSocket,
    receive: Callable[[], Awaitable[Message]],
    woken: asyncio.Future[None],
    sinking: tuple[Callable[[Callable[[str], None] | None], None], Callable[[str], None]]
    | None = None,
) -> Message | None:
    """The next message, or None once ``woken`` (the ``stop`` was released: it wins over
    a message that came at the same moment; a disconnect still marks the socket).
    Raises what ``woken`` holds. ``sinking`` (the protocol's setter and :func:`_sink`)
    feeds text frames as they are read meanwhile."""
    if not woken.done():
        get: asyncio.Future[Message] = asyncio.ensure_future(receive())
        if sinking is not None:
            sinking[0](sinking[1])
        try:
            await asyncio.wait((get, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if sinking is not None:
                sinking[0](None)
            got = get.done()
            if not got:
                get.cancel()  # nothing is lost: a cancelled queue read takes no message
        if not woken.done():
            return get.result()
        if got and get.result()["type"] == "websocket.disconnect":
            ws.client_state = WebSocketState.DISCONNECTED
    woken.result()
    return None


async def _poll(call: TwilioCall, woken: asyncio.Future[None], holding: asyncio.Event) -> None:
    """Release held frames every quarter second while there are any (``holding``, set
    by the pump); wake the pump (``woken``) when that released the ``stop`` or failed.
    Nothing held, nothing to release: then it waits without a timer."""
    while True:
        await holding.wait()
        await asyncio.sleep(_POLL_S)
        if call.ingest is not None and not call.stream.stopped:
            try:
                call.poll()
            except Exception as exc:  # noqa: BLE001 - the call is marked; ids only in the log
                log.error("ingest poll failed: %s", type(exc).__name__)
                call.ingest.mark_broken()
                woken.set_exception(exc)  # the pump ends the stream: fail closed
                return
            if call.stream.stopped:
                woken.set_result(None)
                return
        if not call.stream.holding:
            holding.clear()


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
        # A task of its own: each frame then resumes the pump alone, not the twenty
        # coroutines of the ASGI stack above this route (uvicorn, middleware, routing)
        # it would otherwise wake through. Cancelling this handler cancels the task.
        reason = await asyncio.ensure_future(pump())
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
