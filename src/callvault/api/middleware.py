"""Pure ASGI middleware: request ids, security headers, and the body-size limit.

Written as plain ASGI (not BaseHTTPMiddleware) so they add microseconds, not
a task per request, and so the body limit applies while the body streams in.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callvault.api.problems import problem_body

log = logging.getLogger("callvault.api")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def security_headers(hsts_max_age_seconds: int) -> list[tuple[bytes, bytes]]:
    return [
        (
            b"strict-transport-security",
            f"max-age={hsts_max_age_seconds}; includeSubDomains".encode(),
        ),
        # Every API response may carry content or ids of content: never cache.
        (b"cache-control", b"no-store"),
        (b"pragma", b"no-cache"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-resource-policy", b"same-origin"),
    ]


class BodyTooLargeError(HTTPException):
    """Raised while the body streams in; an HTTPException so FastAPI passes it through as 413."""

    def __init__(self) -> None:
        super().__init__(status_code=413)


class Guard:
    """Adds a request id and security headers; refuses bodies over ``max_body_bytes``."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, hsts_max_age_seconds: int) -> None:
        self.app = app
        self.max = max_body_bytes
        self.headers = security_headers(hsts_max_age_seconds)
        # Request ids need to be unique, not secret: a random per-process prefix
        # and a counter (reading the OS's randomness per request showed in profiles).
        self._id_prefix = secrets.token_hex(6)
        self._id_counter = itertools.count(1)

    def _next_request_id(self) -> str:
        return f"{self._id_prefix}-{next(self._id_counter):x}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = _header(scope, b"x-request-id")
        request_id = (
            supplied if supplied and _REQUEST_ID_RE.match(supplied) else self._next_request_id()
        )
        scope.setdefault("state", {})["request_id"] = request_id
        extra = [*self.headers, (b"x-request-id", request_id.encode())]
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max):
            await self._problem(send_with_headers, request_id, 413)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max:
                    raise BodyTooLargeError
            return message

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except Exception as exc:  # noqa: BLE001 - last line of defence: nothing escapes to the server's logger
            # Starlette re-raises after its 500 handler ran; the server would
            # log the exception's message, which may quote content. Log the
            # type only, and answer if nothing was sent yet.
            log.error("request %s failed: %s", request_id, type(exc).__name__)
            if not started:
                await self._problem(send_with_headers, request_id, 500)

    async def _problem(self, send: Any, request_id: str, status: int) -> None:
        if status == 413:
            code, title, detail = (
                "payload-too-large",
                "Payload too large",
                f"request body exceeds {self.max} bytes",
            )
        else:
            code, title, detail = "internal", "Internal error", None
        body = problem_body(
            code=code,
            title=title,
            status=status,
            detail=detail,
            instance=f"urn:callvault:request:{request_id}",
            request_id=request_id,
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None
