"""Per-request context: the runtime, the authenticated principal, and the gate.

Routers get a :class:`Ctx` and use it for three things only: open the
tenant's transaction, pass the gate for a resource, and know who acts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated

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
from callvault.api.blocking import run_blocking
from callvault.audit import AuditEvent, Outcome
from callvault.audit._entry import OCSF_AUTHENTICATION
from callvault.errors import AuthenticationError
from callvault.runtime import Runtime
from callvault.store.ids import ID_PATTERN, VERSION_ID_PATTERN
from callvault.store.models import Tenant
from callvault.tenancy import Change

log = logging.getLogger("callvault.api")

ResourceId = Annotated[str, Path(pattern=ID_PATTERN, max_length=40)]
VersionId = Annotated[str, Path(pattern=VERSION_ID_PATTERN)]


async def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


class Ctx:
    """What a router needs: the principal, a tenant transaction and the gate."""

    def __init__(
        self, rt: Runtime, principal: Principal, request_id: str | None, session: Session
    ) -> None:
        self.rt = rt
        self.principal = principal
        self.request_id = request_id
        # The transaction the key was authenticated in; the route continues it.
        self._session: Session | None = session

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    @property
    def change(self) -> Change:
        return Change(actor_id=self.principal.id, request_id=self.request_id)

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


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationError("missing bearer token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("malformed authorization header")
    return token.strip()


async def context(request: Request) -> AsyncIterator[Ctx]:
    """Authenticate the bearer API key in the request's tenant transaction.

    Failures with a known tenant are audited. The transaction stays open for
    the route (one transaction per request) and is released when the route
    returns, before the response is sent.
    """
    rt: Runtime = request.app.state.runtime
    request_id = request.scope.get("state", {}).get("request_id")
    parts = parse_token(_bearer(request))
    ctx = await run_blocking(rt, lambda: _authenticate(rt, parts, request_id))
    try:
        yield ctx
    finally:
        await run_blocking(rt, ctx.close)


def _authenticate(rt: Runtime, parts: TokenParts, request_id: str | None) -> Ctx:
    session = rt.db.begin_tenant(parts.tenant_id)
    try:
        principal = authenticate(session, parts)
    except AuthenticationError:
        session.close()
        with rt.db.tenant_tx(parts.tenant_id) as session:
            known = session.get(Tenant, parts.tenant_id) is not None
        if known:
            rt.audit.append(
                parts.tenant_id,
                AuditEvent(
                    action="authn.api_key",
                    outcome=Outcome.FAILURE,
                    actor="anonymous",
                    resource_kind="api_key",
                    resource_id=parts.key_id,
                    request_id=request_id,
                    ocsf_class=OCSF_AUTHENTICATION,
                ),
            )
        raise
    except BaseException:
        session.close()
        raise
    return Ctx(rt, principal, request_id, session)


# scope="function": the transaction is finished when the route returns, before
# the response is sent (a write is committed before the client hears of it).
CtxDep = Annotated[Ctx, Depends(context, scope="function")]
