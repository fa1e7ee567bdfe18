"""Browser sessions: who am I, logout, recovery-code login; admin list and revoke; the
tenant's session policy and the owner's recovery codes.

- ``GET  /v1/session``: the caller (key or session) with, for a session, its
  expiry and CSRF token (every answer is ``Cache-Control: no-store``).
- ``POST /v1/session/logout``: ends the caller's session, clears the cookie.
- ``POST /v1/session/recovery``: tenant id, owner principal id and a recovery
  code → a session (method ``recovery_code``); public, same-origin only.
- ``GET /v1/tenant/sessions`` (``principal:read``), ``DELETE
  /v1/tenant/sessions/{id}`` and ``DELETE /v1/tenant/principals/{id}/sessions``
  (``principal:manage``): no secrets listed.
- ``GET``/``PATCH /v1/tenant/session-policy`` (``tenant:read``/``tenant:update``;
  changing "SSO required" also needs ``principal:grant_owner``).
- ``GET``/``POST /v1/tenant/recovery-codes``: the calling owner's set
  (``principal:grant_owner``); POST shows the new codes once.

Every change is an audit entry in the request's transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

from anyio import to_thread
from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from sqlalchemy.orm import Session

from callvault import access, sessions
from callvault.access import Action, Resource
from callvault.api import problems
from callvault.api.blocking import blocking
from callvault.api.deps import Ctx, CtxDep, ResourceId, session_clock
from callvault.audit import AuditEvent, Outcome
from callvault.audit._entry import OCSF_ACCOUNT_CHANGE, OCSF_AUTHENTICATION
from callvault.errors import NotFoundError
from callvault.runtime import Runtime
from callvault.store.ids import ID_PATTERN
from callvault.store.models import BrowserSession

router = APIRouter(tags=["sessions"])

P = ParamSpec("P")
R = TypeVar("R")


class BindingOut(BaseModel):
    role: str
    scope_kind: str
    scope_id: str


class SessionOut(BaseModel):
    id: str
    principal_id: str
    method: str
    connection_id: str | None
    created_at: datetime
    last_seen_at: datetime | None = None
    expires_at: datetime
    idle_expires_at: datetime
    #: Only to the session's own browser (GET /v1/session, recovery login).
    csrf_token: str | None = None


class WhoAmI(BaseModel):
    tenant_id: str
    principal_id: str
    principal_kind: str
    authenticated_by: Literal["api_key", "session"]
    bindings: list[BindingOut]
    session: SessionOut | None


class RecoveryLoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=ID_PATTERN, max_length=40)
    principal_id: str = Field(pattern=ID_PATTERN, max_length=40)
    code: str = Field(min_length=1, max_length=64)


class RevokedOut(BaseModel):
    revoked: int


class PolicyOut(BaseModel):
    absolute_timeout_minutes: int
    idle_timeout_minutes: int
    recovery_session_minutes: int
    sso_required: bool
    version_id: str | None
    updated_at: datetime | None


class PolicyPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    absolute_timeout_minutes: StrictInt | None = None
    idle_timeout_minutes: StrictInt | None = None
    recovery_session_minutes: StrictInt | None = None
    sso_required: StrictBool | None = None


class CodesOut(BaseModel):
    set_id: str | None
    created_at: datetime | None
    remaining: int
    total: int
    #: Only in the reply that generated them; never again.
    codes: list[str] | None = None


# -- helpers -----------------------------------------------------------------------------------


def _tenant(ctx: Ctx) -> Resource:
    return Resource.tenant(ctx.tenant_id)


def _audit(
    s: Session, ctx: Ctx, action: str, kind: str, id_: str, ocsf: int, **detail: object
) -> None:
    ctx.rt.audit.append_in(
        s,
        ctx.tenant_id,
        AuditEvent(
            action=action,
            outcome=Outcome.SUCCESS,
            actor=ctx.principal.id,
            resource_kind=kind,
            resource_id=id_,
            request_id=ctx.request_id,
            ocsf_class=ocsf,
            detail=dict(detail),
        ),
    )


def _row_out(row: BrowserSession) -> SessionOut:
    idle = row.last_seen_at + timedelta(seconds=row.idle_timeout_seconds)
    return SessionOut(
        id=row.id,
        principal_id=row.principal_id,
        method=row.method,
        connection_id=row.connection_id,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        idle_expires_at=min(idle, row.expires_at),
    )


def _issued_out(issued: sessions.IssuedSession) -> SessionOut:
    return SessionOut(
        id=issued.id,
        principal_id=issued.principal_id,
        method=issued.method,
        connection_id=None,
        created_at=issued.created_at,
        last_seen_at=issued.created_at,
        expires_at=issued.expires_at,
        idle_expires_at=min(
            issued.created_at + timedelta(seconds=issued.idle_timeout_seconds), issued.expires_at
        ),
        csrf_token=issued.csrf_token,
    )


def _policy_out(p: sessions.EffectivePolicy) -> PolicyOut:
    return PolicyOut(**p.policy.model_dump(), version_id=p.version_id, updated_at=p.updated_at)


def _now(request: Request) -> datetime:
    return session_clock(request)()


# -- the caller's own session ------------------------------------------------------------------


@router.get("/v1/session")
@blocking
def get_session(ctx: CtxDep) -> WhoAmI:
    with ctx.read():
        pass  # commits the session's recorded activity
    p, sess = ctx.principal, ctx.session
    return WhoAmI(
        tenant_id=p.tenant_id,
        principal_id=p.id,
        principal_kind=p.kind,
        authenticated_by="api_key" if sess is None else "session",
        bindings=sorted(
            (
                BindingOut(role=b.role.value, scope_kind=b.scope_kind.value, scope_id=b.scope_id)
                for b in p.bindings
            ),
            key=lambda b: (b.role, b.scope_kind, b.scope_id),
        ),
        session=None
        if sess is None
        else SessionOut(
            id=sess.id,
            principal_id=p.id,
            method=sess.method,
            connection_id=sess.connection_id,
            created_at=sess.created_at,
            expires_at=sess.expires_at,
            idle_expires_at=sess.idle_expires_at,
            csrf_token=sess.csrf_token,
        ),
    )


@router.post("/v1/session/logout", status_code=status.HTTP_204_NO_CONTENT)
@blocking
def logout(ctx: CtxDep, request: Request) -> Response:
    """End the caller's browser session (a state change: the CSRF token is required)."""
    if ctx.session is None:
        ctx.close()
        raise NotFoundError("this request is not authenticated by a browser session")
    sid = ctx.session.id
    with ctx.tx() as s:
        _row, ended = sessions.end_session(
            s, ctx.tenant_id, sid, reason="logout", by=ctx.principal.id, now=_now(request)
        )
        if ended:
            _audit(s, ctx, "session.logout", "browser_session", sid, OCSF_AUTHENTICATION)
    resp = Response(status_code=status.HTTP_204_NO_CONTENT)
    sessions.clear_session_cookie(resp)
    return resp


@router.post("/v1/session/recovery")
async def recovery_login(body: RecoveryLoginIn, request: Request) -> Response:
    """An owner's recovery code → a short session (when the identity provider is down)."""
    rt: Runtime = request.app.state.runtime
    facts = sessions.RequestFacts(
        method="POST",
        origin=request.headers.get("origin"),
        fetch_site=request.headers.get("sec-fetch-site"),
        csrf_token=None,
        expected_origin=sessions.expected_origin(
            rt.settings.public_base_url, request.headers.get("host")
        ),
    )
    reason = sessions.cross_site_reason(facts)
    if reason is not None:
        raise sessions.CsrfError(reason)
    login = sessions.RecoveryLogin(
        rt.db,
        rt.audit,
        max_failures=rt.settings.session_recovery_max_failures,
        lockout=timedelta(minutes=rt.settings.session_recovery_lockout_minutes),
    )
    now, rid = _now(request), request.scope.get("state", {}).get("request_id")
    try:
        # Argon2id takes tens of milliseconds: never on the event loop.
        result = await to_thread.run_sync(
            lambda: login.attempt(
                body.tenant_id, body.principal_id, body.code, now=now, request_id=rid
            )
        )
    except sessions.RecoveryLockedError as exc:
        wait = max(1, int((exc.until - now).total_seconds()))
        return problems.problem(
            request,
            code=exc.code,
            title="Too many attempts",
            status=429,
            detail=exc.message,
            headers={"Retry-After": str(wait)},
        )
    resp = Response(
        SessionOut.model_validate(_issued_out(result.session)).model_dump_json(),
        media_type="application/json",
    )
    sessions.set_session_cookie(resp, result.session)
    return resp


# -- administration ----------------------------------------------------------------------------


@router.get("/v1/tenant/sessions")
@blocking
def list_sessions(
    ctx: CtxDep,
    request: Request,
    principal_id: Annotated[str | None, Query(pattern=ID_PATTERN, max_length=40)] = None,
) -> list[SessionOut]:
    with ctx.tx() as s:
        ctx.enforce(Action.PRINCIPAL_READ, _tenant(ctx))
        rows = sessions.list_sessions(
            s, ctx.tenant_id, now=_now(request), principal_id=principal_id
        )
        return [_row_out(r) for r in rows]


@router.delete("/v1/tenant/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
@blocking
def revoke_session(session_id: ResourceId, ctx: CtxDep, request: Request) -> Response:
    with ctx.tx() as s:
        ctx.enforce(Action.PRINCIPAL_MANAGE, _tenant(ctx))
        row, ended = sessions.end_session(
            s, ctx.tenant_id, session_id, reason="revoked", by=ctx.principal.id, now=_now(request)
        )
        if ended:
            _audit(
                s,
                ctx,
                "session.revoke",
                "browser_session",
                row.id,
                OCSF_AUTHENTICATION,
                principal=row.principal_id,
            )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/v1/tenant/principals/{principal_id}/sessions")
@blocking
def revoke_principal_sessions(
    principal_id: ResourceId, ctx: CtxDep, request: Request
) -> RevokedOut:
    with ctx.tx() as s:
        ctx.enforce(Action.PRINCIPAL_MANAGE, _tenant(ctx))
        row = access.get_principal(s, ctx.tenant_id, principal_id)
        n = sessions.revoke_principal_sessions(
            s,
            tenant_id=ctx.tenant_id,
            principal_id=row.id,
            reason="revoked",
            by=ctx.principal.id,
            now=_now(request),
        )
        _audit(s, ctx, "session.revoke_all", "principal", row.id, OCSF_AUTHENTICATION, revoked=n)
        return RevokedOut(revoked=n)


@router.get("/v1/tenant/session-policy")
@blocking
def get_policy(ctx: CtxDep) -> PolicyOut:
    with ctx.read() as c:
        ctx.enforce(Action.TENANT_READ, _tenant(ctx))
        return _policy_out(sessions.read_policy(c, ctx.tenant_id))


@router.patch("/v1/tenant/session-policy")
@blocking
def update_policy(body: PolicyPatch, ctx: CtxDep, request: Request) -> PolicyOut:
    patch: dict[str, Any] = body.model_dump(exclude_unset=True)
    with ctx.tx() as s:
        ctx.enforce(Action.TENANT_UPDATE, _tenant(ctx))
        current = sessions.read_policy(s, ctx.tenant_id)
        if "sso_required" in patch and patch["sso_required"] != current.policy.sso_required:
            ctx.enforce(Action.PRINCIPAL_GRANT_OWNER, _tenant(ctx))
        change = sessions.update_policy(
            s,
            ctx.rt.sealer,
            ctx.rt.audit,
            ctx.tenant_id,
            patch,
            actor_id=ctx.principal.id,
            request_id=ctx.request_id,
            now=_now(request),
        )
        return _policy_out(change.policy)


@router.get("/v1/tenant/recovery-codes")
@blocking
def recovery_code_status(ctx: CtxDep) -> CodesOut:
    with ctx.tx() as s:
        ctx.enforce(Action.PRINCIPAL_GRANT_OWNER, _tenant(ctx))
        st = sessions.code_status(s, ctx.tenant_id, ctx.principal.id)
        return CodesOut(
            set_id=st.set_id, created_at=st.created_at, remaining=st.remaining, total=st.total
        )


def _threaded(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Like :func:`~callvault.api.blocking.blocking`, but always in a worker thread: the
    body hashes with Argon2id (tens of milliseconds a code), which must not stall the loop."""

    @functools.wraps(fn)
    async def route(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx: Ctx = kwargs["ctx"]  # type: ignore[assignment]
        return await to_thread.run_sync(functools.partial(ctx.run, fn, args, kwargs))

    return route


@router.post("/v1/tenant/recovery-codes", status_code=status.HTTP_201_CREATED)
@_threaded
def generate_recovery_codes(ctx: CtxDep, request: Request) -> CodesOut:
    """A new set of recovery codes for the calling owner (the old set stops working)."""
    with ctx.tx() as s:
        ctx.enforce(Action.PRINCIPAL_GRANT_OWNER, _tenant(ctx))
        made = sessions.generate_codes(s, ctx.tenant_id, ctx.principal.id, now=_now(request))
        _audit(
            s,
            ctx,
            "recovery_codes.generate",
            "principal",
            ctx.principal.id,
            OCSF_ACCOUNT_CHANGE,
            code_set=made.set_id,
            count=len(made.codes),
            revoked_unused=made.revoked,
        )
    return CodesOut(
        set_id=made.set_id,
        created_at=made.created_at,
        remaining=len(made.codes),
        total=len(made.codes),
        codes=list(made.codes),
    )
