"""Browser single sign-on: start a login, take the IdP's answer, open a session.

Public routes (no API key; the IdP's signed answer and the browser-bound
login state are the credentials), outside ``/v1`` and the OpenAPI document:

- ``GET  /sso/{tenant}/{connection}/login``: redirect (303) to the IdP, with
  the login-state cookie (``__Host-cv-sso-state``: Secure, HttpOnly, Path=/,
  SameSite=None for SAML, whose answer is a cross-site POST; Lax for OIDC,
  whose answer is a top-level GET).
- ``POST /sso/{tenant}/{connection}/saml/acs``: the SAML response
  (``application/x-www-form-urlencoded``, at most ``sso_max_form_bytes``).
- ``GET  /sso/{tenant}/{connection}/oidc/callback``: the OIDC authorization response.
- ``GET  /sso/{tenant}/{connection}/saml/metadata``: our SP metadata.

After a login the browser gets the session cookie and a 303 to the
connection's ``post_login_path``. Errors are problem+json, or a minimal HTML
page when the browser asks for HTML; either way they carry a reason code and
nothing the IdP sent.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Final, TypeVar
from urllib.parse import parse_qsl

from anyio import to_thread
from fastapi import APIRouter, Request, Response
from starlette.exceptions import HTTPException

from callvault import errors, sso
from callvault.api import problems, sso_wiring
from callvault.runtime import Runtime
from callvault.sso._login import saml_sp_metadata

router = APIRouter(prefix="/sso", tags=["sso"], include_in_schema=False)

STATE_COOKIE: Final = "__Host-cv-sso-state"
_SAML_FIELDS: Final = frozenset({"SAMLResponse", "RelayState"})
_OIDC_FIELDS: Final = frozenset(
    {"code", "state", "error", "error_description", "error_uri", "iss", "session_state"}
)
_MAX_PARAM_CHARS: Final = 8192
R = TypeVar("R")


class _BadRequestError(errors.InvalidInputError):
    code = "bad-sso-request"


def _login(request: Request) -> sso.SsoLogin:
    rt: Runtime = request.app.state.runtime
    adapters = sso_wiring.sso_adapters(request)
    clock = getattr(request.app.state, "sso_clock", None)
    extra = {"clock": clock} if clock is not None else {}
    return sso.SsoLogin(
        db=rt.db,
        keys=rt.keys,
        sealer=rt.sealer,
        audit=rt.audit,
        settings=rt.settings,
        adapters=adapters,
        **extra,
    )


async def _run(fn: Callable[[], R]) -> R:
    # Adapters may call the IdP (OIDC discovery, token exchange): never on the event loop.
    return await to_thread.run_sync(fn)


def _error(request: Request, exc: errors.Error) -> Response:
    reason = getattr(exc, "reason", None) or exc.code
    if isinstance(exc, errors.SsoError):
        status, title = 401, "Single sign-on failed"
    elif isinstance(exc, errors.PermissionDeniedError):
        status, title = 403, "Login refused"
    elif isinstance(exc, errors.PayloadTooLargeError):
        status, title = 413, "Payload too large"
    elif isinstance(exc, errors.InvalidInputError):
        status, title = 400, "Bad request"
    elif isinstance(exc, errors.NotFoundError):
        status, title = 404, "Not found"
    elif isinstance(exc, errors.UnavailableError | errors.KeyUnavailableError):
        status, title = 503, "Service unavailable"
    else:
        status, title = 500, "Internal error"
    if "text/html" in request.headers.get("accept", ""):
        page = (
            "<!doctype html><meta charset=utf-8><title>Sign-in failed</title>"
            f"<h1>{html.escape(title)}</h1><p>Reason: <code>{html.escape(reason)}</code></p>"
            "<p>Start again from your organisation's sign-in page.</p>"
        )
        return Response(page, status_code=status, media_type="text/html; charset=utf-8")
    return problems.problem(
        request,
        code=exc.code,
        title=title,
        status=status,
        detail=exc.message,
        extra={"reason": reason},
    )


def _state_cookie(resp: Response, value: str, *, protocol: str, max_age: int) -> None:
    resp.set_cookie(
        STATE_COOKIE,
        value,
        max_age=max_age,
        path="/",
        secure=True,
        httponly=True,
        samesite="none" if protocol == "saml" else "lax",
    )


def _clear_state_cookie(resp: Response, protocol: str) -> None:
    _state_cookie(resp, "", protocol=protocol, max_age=0)


def _params(pairs: list[tuple[str, str]], allowed: frozenset[str]) -> dict[str, str]:
    """Known parameters only, each at most once and bounded (the adapter checks the rest)."""
    out: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            continue
        if name in out:
            raise _BadRequestError(f"{name} was given more than once", field=name)
        if len(value) > _MAX_PARAM_CHARS and name != "SAMLResponse":
            raise _BadRequestError(f"{name} is too long", field=name)
        out[name] = value
    return out


async def _form(request: Request, limit: int) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise _BadRequestError("expected an HTML form post", field="content-type")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise errors.PayloadTooLargeError("the SAML response exceeds the configured limit")
            chunks.append(chunk)
    except HTTPException:  # the Guard's installation-wide body limit, raised while streaming
        raise errors.PayloadTooLargeError("request body exceeds the configured limit") from None
    try:
        text = b"".join(chunks).decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        raise _BadRequestError("the form is malformed", field="body") from None
    return _params(pairs, _SAML_FIELDS)


def _finish_response(done: sso.LoginDone) -> Response:
    sessions = import_module("callvault.sessions")  # fails loudly if absent: no silent login
    resp = Response(status_code=303, headers={"Location": done.redirect_path})
    sessions.set_session_cookie(resp, done.session)
    _clear_state_cookie(resp, done.protocol)
    return resp


@router.get("/{tenant_id}/{connection_id}/login")
async def sso_login(tenant_id: str, connection_id: str, request: Request) -> Response:
    login = _login(request)
    try:
        started = await _run(lambda: login.start(tenant_id, connection_id))
    except errors.Error as exc:
        return _error(request, exc)
    resp = Response(status_code=303, headers={"Location": started.redirect_url})
    _state_cookie(resp, started.binding, protocol=started.protocol, max_age=started.max_age_seconds)
    return resp


async def _finish(
    request: Request, tenant_id: str, connection_id: str, protocol: str, params: Mapping[str, str]
) -> Response:
    login = _login(request)
    binding = request.cookies.get(STATE_COOKIE)
    rid = request.scope.get("state", {}).get("request_id")
    try:
        done = await _run(
            lambda: login.finish(
                tenant_id,
                connection_id,
                protocol,
                binding=binding,
                params=params,
                request_id=rid,
            )
        )
    except errors.Error as exc:
        resp = _error(request, exc)
        _clear_state_cookie(resp, protocol)
        return resp
    return _finish_response(done)


async def _refused(
    request: Request, tenant_id: str, connection_id: str, protocol: str, exc: errors.Error
) -> Response:
    """An answer refused before it could be read: a failed login of the connection (audited
    when it exists), then the error."""
    reason = "too-large" if isinstance(exc, errors.PayloadTooLargeError) else "malformed"
    rid = request.scope.get("state", {}).get("request_id")
    login = _login(request)
    try:
        await _run(lambda: login.refuse(tenant_id, connection_id, protocol, reason, request_id=rid))
    except errors.Error as audit_exc:  # the audit log cannot take it: fail closed (503)
        return _error(request, audit_exc)
    return _error(request, exc)


@router.post("/{tenant_id}/{connection_id}/saml/acs")
async def sso_saml_acs(tenant_id: str, connection_id: str, request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    try:
        params = await _form(request, rt.settings.sso_max_form_bytes)
    except errors.Error as exc:
        return await _refused(request, tenant_id, connection_id, "saml", exc)
    return await _finish(request, tenant_id, connection_id, "saml", params)


@router.get("/{tenant_id}/{connection_id}/oidc/callback")
async def sso_oidc_callback(tenant_id: str, connection_id: str, request: Request) -> Response:
    try:
        params = _params(request.query_params.multi_items(), _OIDC_FIELDS)
    except errors.Error as exc:
        return await _refused(request, tenant_id, connection_id, "oidc", exc)
    return await _finish(request, tenant_id, connection_id, "oidc", params)


@router.get("/{tenant_id}/{connection_id}/saml/metadata")
async def sso_saml_metadata(tenant_id: str, connection_id: str, request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    login = _login(request)
    try:
        xml = await _run(lambda: saml_sp_metadata(login, rt.db, tenant_id, connection_id))
    except errors.Error as exc:
        return _error(request, exc)
    return Response(xml, media_type="application/samlmetadata+xml")
