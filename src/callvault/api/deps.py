"""Per-request context: the runtime, the authenticated principal, and the gate.

Routers get a :class:`Ctx` and use it for three things only: open the
tenant's transaction, pass the gate for a resource, and know who acts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Request
from sqlalchemy import Connection
from sqlalchemy.orm import Session

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
from callvault.store.models import Tenant
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

    A ``Ctx`` is created from the bearer token (parsed, not yet checked) and
    opened by :meth:`run`, which authenticates the key in the tenant
    transaction that the route body then continues (one transaction per
    request) and releases it when the body returns.
    """

    def __init__(self, rt: Runtime, parts: TokenParts, request_id: str | None) -> None:
        self.rt = rt
        self.request_id = request_id
        self._parts = parts
        self._principal: Principal | None = None
        self._conn: Connection | None = None

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
        """Roll back and release the transaction if the route never used it."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def enforce(self, action: Action, resource: Resource) -> Grant:
        return self.rt.gate.enforce(self.principal, action, resource, request_id=self.request_id)

    def allows(self, action: Action, resource: Resource) -> bool:
        return self.rt.gate.allows(self.principal, action, resource)

    def _authenticate(self) -> None:
        """Check the key in a new tenant transaction; audit a failure naming a real tenant."""
        rt, parts = self.rt, self._parts
        conn = rt.db.begin_tenant_connection(parts.tenant_id)
        try:
            self._principal = authenticate(conn, parts)
        except AuthenticationError:
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
                    ),
                )
            raise
        except BaseException:  # any failure (even cancellation): release the connection, re-raise
            conn.close()
            raise
        self._conn = conn


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationError("missing bearer token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("malformed authorization header")
    return token.strip()


async def context(request: Request) -> Ctx:
    """Parse the bearer token; the key itself is checked when the route body runs.

    A missing or malformed token is refused here (401). A well-formed one is
    checked against the database inside the route's own transaction (see
    :meth:`Ctx.run`), so a request costs one transaction, and a route body
    never runs unauthenticated: :func:`~callvault.api.blocking.blocking`
    calls it only through :meth:`Ctx.run`.
    """
    rt: Runtime = request.app.state.runtime
    request_id = request.scope.get("state", {}).get("request_id")
    return Ctx(rt, parse_token(_bearer(request)), request_id)


CtxDep = Annotated[Ctx, Depends(context)]
