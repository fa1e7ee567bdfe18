"""Opening, authenticating, listing and ending browser sessions.

:func:`authenticate_session` runs on every cookie-authenticated request, in
the request's own tenant transaction:

1. Look up the session, its principal and the principal's role bindings by
   id within the cookie's tenant (one query).
2. Compare SHA-256 of the cookie's secret in constant time.
3. Refuse a session that was ended (logout, revocation, an expiry already
   noticed), is past its absolute end, or idle: ``last_seen_at`` plus the
   idle timeout has passed. ``last_seen_at`` is written at most once a minute,
   so a session may end up to a minute *early*, never late.
4. Refuse it if the principal is not active (deactivation also revokes its
   sessions in the same transaction; this is the second wall).
5. A state-changing request MUST pass the CSRF checks (:mod:`._csrf`).
6. Record activity: ``last_seen_at`` is moved forward when it is a minute
   old or more (a conditional UPDATE in the request's transaction).

Every failure raises :class:`SessionAuthError` (401) or ``CsrfError`` (403)
with a reason code; :func:`record_failure` then audits it (and ends an
expired session, auditing the expiry once) in a transaction of its own.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from callvault.access._model import Binding, Principal
from callvault.access.roles import Role, ScopeKind
from callvault.audit import AuditEvent, AuditLog, Outcome
from callvault.audit._entry import OCSF_AUTHENTICATION
from callvault.errors import AuthenticationError, InvalidInputError, NotFoundError
from callvault.sessions._cookies import (
    CookieParts,
    IssuedSession,
    cookie_value,
    new_secret,
    secret_hash,
)
from callvault.sessions._csrf import CsrfError, RequestFacts, check_csrf, csrf_hash, csrf_token
from callvault.sessions._policy import RECOVERY_METHOD, read_policy
from callvault.store import Database
from callvault.store.ids import is_id
from callvault.store.models import BrowserSession, RoleBinding, Tenant, utcnow
from callvault.store.models import Principal as PrincipalRow
from callvault.store.prepared import Prepared, Reader, connection_of

METHODS: Final = frozenset({"saml", "oidc", RECOVERY_METHOD})
SESSION_ID_PREFIX: Final = "ses"
TOUCH_INTERVAL: Final = timedelta(seconds=60)
RESOURCE_KIND: Final = "browser_session"


def opaque_id(prefix: str) -> str:
    """``<prefix>_`` + 128 random bits in lowercase base32: the format of ``store.new_id``,
    whose prefix list does not have this package's (``ses``, ``rcs``) yet."""
    body = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
    return f"{prefix}_{body}"


class SessionAuthError(AuthenticationError):
    """The session cookie does not authenticate (``reason`` says why, for the audit)."""

    def __init__(
        self, reason: str, *, principal_id: str | None = None, expired: bool = False
    ) -> None:
        super().__init__("invalid or expired session")
        self.reason = reason
        self.principal_id = principal_id
        #: The session is past a limit but not yet marked ended: record_failure ends it.
        self.expired = expired


@dataclass(frozen=True, slots=True)
class SessionCredential:
    """A parsed session cookie with what the request's CSRF checks need, at ``now``."""

    parts: CookieParts
    facts: RequestFacts
    now: datetime

    @property
    def tenant_id(self) -> str:
        return self.parts.tenant_id

    @property
    def session_id(self) -> str:
        return self.parts.session_id


@dataclass(frozen=True, slots=True)
class AuthenticatedSession:
    """The session a request authenticated with (``csrf_token`` derived, never stored)."""

    id: str
    principal: Principal
    method: str
    connection_id: str | None
    created_at: datetime
    expires_at: datetime
    idle_expires_at: datetime
    csrf_token: str
    #: Whether step 6 wrote ``last_seen_at`` (the request's transaction must commit it).
    touched: bool


# -- open --------------------------------------------------------------------------------------


def open_session(
    session: Session,
    *,
    tenant_id: str,
    principal_id: str,
    method: str,
    connection_id: str | None,
    now: datetime,
) -> IssuedSession:
    """Open a session for an active principal of kind ``user`` in the caller's transaction.

    The caller MUST have verified the login (SSO response, recovery code) and
    MUST audit it (with the returned id) in the same transaction.
    """
    if method not in METHODS:
        raise InvalidInputError("unknown session method", field="method")
    if (method == RECOVERY_METHOD) != (connection_id is None) or (
        connection_id is not None and not is_id(connection_id, "sso")
    ):
        raise InvalidInputError("connection_id does not fit the method", field="connection_id")
    principal = session.execute(
        select(PrincipalRow).where(
            PrincipalRow.tenant_id == tenant_id, PrincipalRow.id == principal_id
        )
    ).scalar_one_or_none()
    if principal is None or not principal.active or principal.kind != "user":
        raise AuthenticationError("this principal cannot open a browser session")
    policy = read_policy(session, tenant_id)
    secret = new_secret()
    token = csrf_token(secret)
    row = BrowserSession(
        id=opaque_id(SESSION_ID_PREFIX),
        tenant_id=tenant_id,
        principal_id=principal_id,
        secret_hash=secret_hash(secret),
        csrf_hash=csrf_hash(token),
        method=method,
        connection_id=connection_id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + policy.lifetime(method),
        idle_timeout_seconds=int(policy.idle(method).total_seconds()),
        ended_at=None,
        end_reason=None,
        ended_by=None,
    )
    session.add(row)
    session.flush()
    return IssuedSession(
        id=row.id,
        tenant_id=tenant_id,
        principal_id=principal_id,
        method=method,
        cookie_value=cookie_value(tenant_id, row.id, secret),
        csrf_token=token,
        created_at=now,
        expires_at=row.expires_at,
        idle_timeout_seconds=row.idle_timeout_seconds,
    )


# -- authenticate ------------------------------------------------------------------------------

_S = BrowserSession
_AUTHENTICATE = Prepared(
    select(
        _S.secret_hash,
        _S.csrf_hash,
        _S.method,
        _S.connection_id,
        _S.created_at,
        _S.last_seen_at,
        _S.expires_at,
        _S.idle_timeout_seconds,
        _S.ended_at,
        PrincipalRow.id,
        PrincipalRow.kind,
        PrincipalRow.active,
        RoleBinding.role,
        RoleBinding.scope_kind,
        RoleBinding.scope_id,
    )
    .join(PrincipalRow, PrincipalRow.id == _S.principal_id)
    .outerjoin(
        RoleBinding,
        (RoleBinding.principal_id == PrincipalRow.id)
        & (RoleBinding.tenant_id == bindparam("tenant")),
    )
    .where(_S.tenant_id == bindparam("tenant"), _S.id == bindparam("id")),
    name="authenticate_session",
)


def authenticate_session(db: Reader, cred: SessionCredential) -> AuthenticatedSession:
    """Resolve a session cookie to its principal with bindings, or raise (module doc)."""
    conn = connection_of(db)
    now = cred.now
    # (1)
    rows = _AUTHENTICATE.rows(conn, {"tenant": cred.tenant_id, "id": cred.session_id})
    if not rows:
        raise SessionAuthError("unknown")
    first = rows[0]
    # (2)
    if not hmac.compare_digest(first.secret_hash, secret_hash(cred.parts.secret)):
        raise SessionAuthError("bad-secret")
    principal_id = first.id
    # (3)
    if first.ended_at is not None:
        raise SessionAuthError("ended", principal_id=principal_id)
    idle_expires_at = first.last_seen_at + timedelta(seconds=first.idle_timeout_seconds)
    if now >= first.expires_at:
        raise SessionAuthError("absolute-timeout", principal_id=principal_id, expired=True)
    if now >= idle_expires_at:
        raise SessionAuthError("idle-timeout", principal_id=principal_id, expired=True)
    # (4)
    if not first.active:
        raise SessionAuthError("principal-inactive", principal_id=principal_id)
    # (5)
    check_csrf(cred.facts, first.csrf_hash)
    # (6)
    touched = False
    if now - first.last_seen_at >= TOUCH_INTERVAL:
        result = conn.execute(
            update(_S)
            .where(
                _S.tenant_id == cred.tenant_id,
                _S.id == cred.session_id,
                _S.last_seen_at <= now - TOUCH_INTERVAL,
            )
            .values(last_seen_at=now)
        )
        touched = result.rowcount == 1
        if touched:
            idle_expires_at = now + timedelta(seconds=first.idle_timeout_seconds)
    bindings = frozenset(
        Binding(Role(r.role), ScopeKind(r.scope_kind), r.scope_id) for r in rows if r.role
    )
    principal = Principal(
        id=principal_id,
        tenant_id=cred.tenant_id,
        kind=first.kind,
        active=True,
        bindings=bindings,
        key_id=None,
    )
    return AuthenticatedSession(
        id=cred.session_id,
        principal=principal,
        method=first.method,
        connection_id=first.connection_id,
        created_at=first.created_at,
        expires_at=first.expires_at,
        idle_expires_at=min(idle_expires_at, first.expires_at),
        csrf_token=csrf_token(cred.parts.secret),
        touched=touched,
    )


def _event(
    action: str,
    outcome: Outcome,
    actor: str,
    session_id: str,
    request_id: str | None,
    **detail: object,
) -> AuditEvent:
    return AuditEvent(
        action=action,
        outcome=outcome,
        actor=actor,
        resource_kind=RESOURCE_KIND,
        resource_id=session_id,
        request_id=request_id,
        ocsf_class=OCSF_AUTHENTICATION,
        detail=dict(detail),
    )


def record_failure(
    db: Database,
    audit: AuditLog,
    cred: SessionCredential,
    exc: SessionAuthError | CsrfError,
    request_id: str | None,
) -> None:
    """Audit a refused cookie (for a tenant that exists); end an expired session, once."""
    with db.tenant_tx(cred.tenant_id) as s:
        if s.get(Tenant, cred.tenant_id) is None:
            return
        sid = cred.session_id
        if isinstance(exc, CsrfError):
            actor = _principal_of(s, cred) or "anonymous"
            denied = Outcome.DENIED
            event = _event("session.csrf", denied, actor, sid, request_id, reason=exc.reason)
            audit.append_in(s, cred.tenant_id, event)
            return
        if exc.expired:
            ended = s.execute(
                update(_S)
                .where(_S.tenant_id == cred.tenant_id, _S.id == sid, _S.ended_at.is_(None))
                .values(ended_at=cred.now, end_reason=exc.reason)
                .execution_options(synchronize_session=False)
            )
            if ended.rowcount == 1:  # type: ignore[attr-defined]
                event = _event(
                    "session.expire",
                    Outcome.SUCCESS,
                    "system",
                    sid,
                    request_id,
                    reason=exc.reason,
                    principal=exc.principal_id,
                )
                audit.append_in(s, cred.tenant_id, event)
                return
        actor = exc.principal_id or "anonymous"
        event = _event("authn.session", Outcome.FAILURE, actor, sid, request_id, reason=exc.reason)
        audit.append_in(s, cred.tenant_id, event)


def _principal_of(s: Session, cred: SessionCredential) -> str | None:
    return s.execute(
        select(_S.principal_id).where(_S.tenant_id == cred.tenant_id, _S.id == cred.session_id)
    ).scalar_one_or_none()


# -- list and end ------------------------------------------------------------------------------


def get_session(s: Session, tenant_id: str, session_id: str) -> BrowserSession:
    row = None
    if is_id(session_id, SESSION_ID_PREFIX):
        row = s.execute(
            select(_S).where(_S.tenant_id == tenant_id, _S.id == session_id)
        ).scalar_one_or_none()
    if row is None:
        raise NotFoundError("session not found", field="session_id")
    return row


def list_sessions(
    s: Session,
    tenant_id: str,
    *,
    now: datetime,
    principal_id: str | None = None,
    limit: int = 1000,
) -> list[BrowserSession]:
    """Sessions not ended and within their absolute lifetime, newest first."""
    stmt = select(_S).where(_S.tenant_id == tenant_id, _S.ended_at.is_(None), _S.expires_at > now)
    if principal_id is not None:
        stmt = stmt.where(_S.principal_id == principal_id)
    return list(s.execute(stmt.order_by(_S.created_at.desc()).limit(limit)).scalars())


def end_session(
    s: Session, tenant_id: str, session_id: str, *, reason: str, by: str | None, now: datetime
) -> tuple[BrowserSession, bool]:
    """End one session; return it and whether this call ended it (idempotent)."""
    row = get_session(s, tenant_id, session_id)
    if row.ended_at is not None:
        return row, False
    row.ended_at, row.end_reason, row.ended_by = now, reason, by
    s.flush()
    return row, True


def revoke_principal_sessions(
    session: Session,
    *,
    tenant_id: str,
    principal_id: str,
    reason: str,
    by: str | None = None,
    now: datetime | None = None,
) -> int:
    """End every session of the principal not yet ended, in the caller's transaction;
    return how many. Once it commits, none of them authenticates a request."""
    result = session.execute(
        update(_S)
        .where(
            _S.tenant_id == tenant_id,
            _S.principal_id == principal_id,
            _S.ended_at.is_(None),
        )
        .values(ended_at=now or utcnow(), end_reason=reason[:32], ended_by=by)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
