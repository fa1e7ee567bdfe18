"""Per-request context: the runtime, the authenticated principal, and the gate.

Routers get a :class:`Ctx` and use it for three things only: open the
tenant's transaction, pass the gate for a resource, and know who acts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Request
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from callvault import sessions
from callvault.access import (
    Action,
    Grant,
    Principal,
    Resource,
    TokenParts,
    authenticate,
    parse_token,
)
from callvault.audit import AuditEvent, Outcome
from callvault.audit._entry import OCSF_AUTHENTICATION
from callvault.errors import AuthenticationError
from callvault.runtime import Runtime
from callvault.store.ids import ID_PATTERN, VERSION_ID_PATTERN
from callvault.store.models import Tenant, utcnow
from callvault.tenancy import Change

log = logging.getLogger("callvault.api")
R = TypeVar("R")

ResourceId = Annotated[str, Path(pattern=ID_PATTERN, max_length=40)]
VersionId = Annotated[str, Path(pattern=VERSION_ID_PATTERN)]


async def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


class Ctx:
    """What a router needs: the principal, the request's tenant transaction and the gate.

    A ``Ctx`` is created from the bearer token or, when there is none, the
    browser session cookie (parsed, not yet checked) and opened by :meth:`run`,
    which authenticates the credential in the tenant transaction that the
    route body then continues (one transaction per request) and releases it
    when the body returns. A session's principal passes the same gate as a
    key's; ``session`` is set for a cookie-authenticated request.
    """

    def __init__(
        self,
        rt: Runtime,
        parts: TokenParts | sessions.SessionCredential,
        request_id: str | None,
    ) -> None:
        self.rt = rt
        self.request_id = request_id
        self._parts = parts
        self._principal: Principal | None = None
        self._conn: Connection | None = None
        self.session: sessions.AuthenticatedSession | None = None

    @property
    def principal(self) -> Principal:
        if self._principal is None:
            raise RuntimeError("request context used before authentication")
        return self._principal

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    @property
    def change(self) -> Change:
        return Change(actor_id=self.principal.id, request_id=self.request_id)

    def run(self, body: Callable[..., R], args: Any, kwargs: Any) -> R:
        """Authenticate, run the route ``body``, release the transaction."""
        self._authenticate()
        try:
            return body(*args, **kwargs)
        finally:
            self.close()

    def _take(self) -> Connection:
        conn, self._conn = self._conn, None
        if conn is None:
            raise RuntimeError("the request's transaction was already used")
        return conn

    @contextmanager
    def tx(self) -> Iterator[Session]:
        """The request's tenant transaction (once), as an ORM session: committed if
        the block succeeds, rolled back if it raises."""
        conn = self._take()
        session = self.rt.db.session_on(conn)
        try:
            yield session
            session.commit()  # flushes; the transaction is the connection's
            conn.commit()
        finally:
            session.close()
            conn.close()  # rolls back whatever was not committed

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """The request's tenant transaction (once), as a Core connection for reads."""
        conn = self._take()
        try:
            yield conn
            conn.commit()
        finally:
            conn.close()

    def close(self) -> None:
        """Release the transaction if the route never used it: rolled back, except that a
        session's recorded activity (its only write then) is committed."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                if self.session is not None and self.session.touched:
                    conn.commit()
            finally:
                conn.close()

    def enforce(self, action: Action, resource: Resource) -> Grant:
        return self.rt.gate.enforce(self.principal, action, resource, request_id=self.request_id)

    def allows(self, action: Action, resource: Resource) -> bool:
        return self.rt.gate.allows(self.principal, action, resource)

    def _authenticate(self) -> None:
        """Check the key in a new tenant transaction; audit a failure naming a real tenant."""
        if isinstance(self._parts, sessions.SessionCredential):
            self._authenticate_session(self._parts)
            return
        rt, parts = self.rt, self._parts
        conn = rt.db.begin_tenant_connection(parts.tenant_id)
        try:
            self._principal = _key_allowed(conn, authenticate(conn, parts))
        except AuthenticationError as exc:
            conn.close()
            with rt.db.tenant_tx(parts.tenant_id) as probe:
                known = probe.get(Tenant, parts.tenant_id) is not None
            if known:
                rt.audit.append(
                    parts.tenant_id,
                    AuditEvent(
                        action="authn.api_key",
                        outcome=Outcome.FAILURE,
                        actor="anonymous",
                        resource_kind="api_key",
                        resource_id=parts.key_id,
                        request_id=self.request_id,
                        ocsf_class=OCSF_AUTHENTICATION,
                        detail={"reason": exc.reason} if isinstance(exc, _SsoRequiredError) else {},
                    ),
                )
            raise
        except BaseException:  # any failure (even cancellation): release the connection, re-raise
            conn.close()
            raise
        self._conn = conn

    def _authenticate_session(self, cred: sessions.SessionCredential) -> None:
        """Check the session cookie (and, for a state change, its CSRF token) in a new tenant
        transaction; audit a failure (and end an expired session) in a transaction of its own."""
        rt = self.rt
        conn = rt.db.begin_tenant_connection(cred.tenant_id)
        try:
            self.session = sessions.authenticate_session(conn, cred)
        except (sessions.SessionAuthError, sessions.CsrfError) as exc:
            conn.close()
            sessions.record_failure(rt.db, rt.audit, cred, exc, self.request_id)
            raise
        except BaseException:  # any failure (even cancellation): release the connection, re-raise
            conn.close()
            raise
        self._principal = self.session.principal
        self._conn = conn


def _key_allowed(conn: Connection, principal: Principal) -> Principal:
    """Under "SSO required" a person comes through single sign-on, not with an API key."""
    if principal.kind == "user" and sessions.sso_required(conn, principal.tenant_id):
        raise _SsoRequiredError
    return principal


class _SsoRequiredError(AuthenticationError):
    reason = "sso-required"

    def __init__(self) -> None:
        super().__init__(
            "this tenant requires single sign-on for users: API keys of users are refused"
        )


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationError("missing bearer token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("malformed authorization header")
    return token.strip()


def session_clock(request: Request) -> Callable[[], datetime]:
    """The clock sessions are checked against (tests install one; else the system's)."""
    state = request.app.state
    clock = getattr(state, "session_clock", None) or getattr(state, "sso_clock", None)
    return clock if clock is not None else utcnow


def _session_credential(request: Request, value: str) -> sessions.SessionCredential:
    rt: Runtime = request.app.state.runtime
    headers = request.headers
    facts = sessions.RequestFacts(
        method=request.method,
        origin=headers.get("origin"),
        fetch_site=headers.get("sec-fetch-site"),
        csrf_token=headers.get(sessions.CSRF_HEADER),
        expected_origin=sessions.expected_origin(rt.settings.public_base_url, headers.get("host")),
    )
    return sessions.SessionCredential(
        parts=sessions.parse_cookie(value), facts=facts, now=session_clock(request)()
    )


async def context(request: Request) -> Ctx:
    """Parse the bearer token, or else the session cookie; checked when the route body runs.

    A missing or malformed credential is refused here (401). A well-formed one
    is checked against the database inside the route's own transaction (see
    :meth:`Ctx.run`), so a request costs one transaction, and a route body
    never runs unauthenticated: :func:`~callvault.api.blocking.blocking`
    calls it only through :meth:`Ctx.run`. A request with an ``Authorization``
    header is authenticated by it alone (any cookie is ignored).
    """
    rt: Runtime = request.app.state.runtime
    request_id = request.scope.get("state", {}).get("request_id")
    if "authorization" not in request.headers:
        cookie = request.cookies.get(sessions.COOKIE_NAME)
        if cookie is not None:
            return Ctx(rt, _session_credential(request, cookie), request_id)
    return Ctx(rt, parse_token(_bearer(request)), request_id)


CtxDep = Annotated[Ctx, Depends(context)]
