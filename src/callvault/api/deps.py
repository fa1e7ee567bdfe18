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
        self._session: Session | None = None

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

    @contextmanager
    def tx(self) -> Iterator[Session]:
        """The request's tenant transaction (once): committed if the block succeeds."""
        session, self._session = self._session, None
        if session is None:
            raise RuntimeError("the request's transaction was already used")
        with self.rt.db.finish(session):
            yield session

    def close(self) -> None:
        """Roll back and release the transaction if the route never used it."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def enforce(self, action: Action, resource: Resource) -> Grant:
        return self.rt.gate.enforce(self.principal, action, resource, request_id=self.request_id)

    def allows(self, action: Action, resource: Resource) -> bool:
        return self.rt.gate.allows(self.principal, action, resource)

    def _authenticate(self) -> None:
        """Check the key in a new tenant transaction; audit a failure naming a real tenant."""
        rt, parts = self.rt, self._parts
        session = rt.db.begin_tenant(parts.tenant_id)
        try:
            self._principal = authenticate(session, parts)
        except AuthenticationError:
            session.close()
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
            session.close()
            raise
        self._session = session


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
