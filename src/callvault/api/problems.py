"""RFC 9457 problem details: the only shape an error leaves the API in.

Responses name the field and the rule that failed, never the submitted value
(it may be content), and never a stack trace. Unexpected exceptions are
logged by type and traceback location only (no message: a database driver's
message can quote the row it failed on) and answered with a bare 500.
"""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from callvault import errors

log = logging.getLogger("callvault.api")

PROBLEM_TYPE_BASE = "urn:callvault:problem:"
MEDIA_TYPE = "application/problem+json"

_STATUS: dict[type[errors.Error], tuple[int, str]] = {
    errors.PayloadTooLargeError: (413, "Payload too large"),
    errors.RangeNotSatisfiableError: (416, "Range not satisfiable"),
    errors.InvalidInputError: (422, "Invalid input"),
    errors.AuthenticationError: (401, "Authentication required"),
    errors.PermissionDeniedError: (403, "Forbidden"),
    errors.NotFoundError: (404, "Not found"),
    errors.ConflictError: (409, "Conflict"),
    errors.AuditUnavailableError: (503, "Audit log unavailable"),
    errors.UnavailableError: (503, "Service unavailable"),
    errors.KeyUnavailableError: (503, "Key provider unavailable"),
    errors.DecryptionError: (500, "Stored data could not be opened"),
    errors.ConfigError: (500, "Server misconfigured"),
}

_HTTP_CODES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def problem_body(
    *,
    code: str,
    title: str,
    status: int,
    detail: str | None,
    instance: str,
    request_id: str | None,
    extra: dict[str, Any] | None = None,
) -> bytes:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "instance": instance,
    }
    if detail:
        body["detail"] = detail
    if request_id:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def problem(
    request: Request,
    *,
    code: str,
    title: str,
    status: int,
    detail: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    rid = request.scope.get("state", {}).get("request_id")
    body = problem_body(
        code=code,
        title=title,
        status=status,
        detail=detail,
        instance=f"urn:callvault:request:{rid}" if rid else "about:blank",
        request_id=rid,
        extra=extra,
    )
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


def _on_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.Error)  # noqa: S101 - registered for Error only
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            status, title = _STATUS[cls]
            break
    else:
        status, title = 500, "Internal error"
    extra = {"errors": [{"field": exc.field, "message": exc.message}]} if exc.field else None
    headers = {"WWW-Authenticate": 'Bearer realm="callvault"'} if status == 401 else None
    if isinstance(exc, errors.RangeNotSatisfiableError):
        headers = {"Content-Range": f"bytes */{exc.total}"}
    if status >= 500:
        log.error("request failed: %s", exc.code, extra={"error_code": exc.code})
    return problem(
        request,
        code=exc.code,
        title=title,
        status=status,
        detail=exc.message,
        extra=extra,
        headers=headers,
    )


def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    items = [
        # Only location, rule and message: never ``input`` or ``ctx`` (the value).
        {"field": _field(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ]
    detail = f"{items[0]['field']}: {items[0]['message']}" if items else "invalid request"
    return problem(
        request,
        code="invalid-input",
        title="Invalid input",
        status=422,
        detail=detail,
        extra={"errors": items},
    )


def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for it only
    code, title = _HTTP_CODES.get(exc.status_code, ("http-error", "HTTP error"))
    detail = "request body exceeds the configured limit" if exc.status_code == 413 else None
    return problem(
        request,
        code=code,
        title=title,
        status=exc.status_code,
        detail=detail,
        headers=dict(exc.headers) if exc.headers else None,
    )


def _on_db(request: Request, exc: Exception) -> Response:
    log.error("database error: %s", type(exc).__name__)
    return problem(request, code="unavailable", title="Service unavailable", status=503)


def _on_unexpected(request: Request, exc: Exception) -> Response:
    frames = traceback.extract_tb(exc.__traceback__)
    where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}" for f in frames[-6:])
    log.error("unhandled %s at %s", type(exc).__name__, where)
    return problem(request, code="internal", title="Internal error", status=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.Error, _on_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(SQLAlchemyError, _on_db)
    app.add_exception_handler(Exception, _on_unexpected)
