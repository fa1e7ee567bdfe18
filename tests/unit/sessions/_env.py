"""A test installation for the session suites: one tenant, an owner, a movable clock.

The API runs with the SSO test double's adapters (``tests/unit/sso/_double.py``:
no real IdP can answer arbitrary logins here; the real adapters have their own
suites against real IdPs) so a full SSO login can open a session too. Sessions
are otherwise opened through :func:`callvault.sessions.open_session`, exactly
as the login core does after a verified login.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault import access, sessions, sso
from callvault.access import Role, ScopeKind
from callvault.bootstrap import create_tenant_with_owner
from callvault.config import load_settings
from callvault.runtime import Runtime
from callvault.store.models import BrowserSession
from tests.unit.api._harness import audit_entries, auth
from tests.unit.sso._double import sso_asgi

BASE = "https://cv.example.test"
ORIGIN = BASE
COOKIE = sessions.COOKIE_NAME


class Clock:
    """The time sessions are opened and checked at; tests move it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Env:
    rt: Runtime
    client: TestClient
    clock: Clock
    tenant: str
    owner_id: str
    owner: dict[str, str]


@contextmanager
def session_env(tmp_path: Path, **settings: object) -> Iterator[Env]:
    rt = Runtime.open(
        load_settings({}, data_dir=tmp_path / "data", public_base_url=BASE, **settings),
        create_key=True,
    )
    clock = Clock()
    try:
        with TestClient(sso_asgi(rt, clock=clock), base_url="https://testserver") as client:
            init = create_tenant_with_owner(rt, tenant_name="acme", owner_name="acme-owner")
            yield Env(rt, client, clock, init.tenant_id, init.principal_id, auth(init.token))
    finally:
        rt.close()


def other_tenant(env: Env, name: str = "globex") -> tuple[str, str, dict[str, str]]:
    """A second tenant: its id, owner id and owner key headers."""
    init = create_tenant_with_owner(env.rt, tenant_name=name, owner_name=f"{name}-owner")
    return init.tenant_id, init.principal_id, auth(init.token)


def principal(
    env: Env,
    name: str,
    role: str | None = "admin",
    *,
    kind: str = "user",
    tenant: str | None = None,
    key: bool = False,
) -> tuple[str, dict[str, str] | None]:
    """A principal bound to ``role`` at tenant scope (and an API key's headers if asked)."""
    t = tenant or env.tenant
    with env.rt.db.tenant_tx(t) as s:
        p = access.create_principal(s, t, kind=kind, name=name)
        if role is not None:
            access.bind_role(
                s, t, p.id, Role(role), ScopeKind.TENANT, t, created_by="test:sessions"
            )
        headers = None
        if key:
            issued = access.issue_key(s, t, p.id, label="k", ttl=timedelta(days=1))
            headers = auth(issued.token)
        return p.id, headers


def open_for(
    env: Env,
    principal_id: str,
    *,
    method: str = "oidc",
    tenant: str | None = None,
) -> sessions.IssuedSession:
    """Open a session the way the login core does (in a tenant transaction, at the clock)."""
    t = tenant or env.tenant
    conn = None if method == "recovery_code" else sso.new_connection_id()
    with env.rt.db.tenant_tx(t) as s:
        return sessions.open_session(
            s,
            tenant_id=t,
            principal_id=principal_id,
            method=method,
            connection_id=conn,
            now=env.clock(),
        )


def cookie(issued: sessions.IssuedSession | str) -> dict[str, str]:
    value = issued if isinstance(issued, str) else issued.cookie_value
    return {"Cookie": f"{COOKIE}={value}"}


def writes(issued: sessions.IssuedSession) -> dict[str, str]:
    """Headers of a state-changing request from the session's own page."""
    return {
        **cookie(issued),
        sessions.CSRF_HEADER: issued.csrf_token,
        "Origin": ORIGIN,
        "Sec-Fetch-Site": "same-origin",
    }


def session_row(env: Env, session_id: str, tenant: str | None = None) -> BrowserSession:
    with env.rt.db.tenant_tx(tenant or env.tenant) as s:
        return s.execute(select(BrowserSession).where(BrowserSession.id == session_id)).scalar_one()


def entries(env: Env, prefix: tuple[str, ...], tenant: str | None = None) -> list[dict[str, Any]]:
    return [
        e for e in audit_entries(env.rt, tenant or env.tenant) if e["action"].startswith(prefix)
    ]
