"""Browser sessions on PostgreSQL: the row-level-security wall over the session tables, a
cookie-authenticated request end to end, activity recorded, one recovery code used once
under concurrency, and SCIM-style deactivation ending sessions in the same transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from callvault import access, sessions
from callvault.api import create_app
from callvault.bootstrap import create_tenant_with_owner
from callvault.config import Settings
from callvault.runtime import Runtime
from callvault.store.models import BrowserSession
from tests.integration.pg import OWNER_ROLE, PgCluster
from tests.unit.sessions._fill import fill_session_tables
from tests.unit.sessions.lockout_migration import check_lockout_migration

pytestmark = pytest.mark.postgres

TABLES = ("browser_sessions", "tenant_session_policies", "recovery_codes", "recovery_lockouts")
RACERS = 6


@pytest.fixture
def rt(pg_settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.open(pg_settings, create_key=True)
    yield runtime
    runtime.close()


def _tenant(rt: Runtime, name: str) -> tuple[str, str]:
    init = create_tenant_with_owner(rt, tenant_name=name, owner_name=f"{name}-owner")
    return init.tenant_id, init.principal_id


def test_each_tenant_sees_and_writes_only_its_own_session_rows(
    rt: Runtime, pg_server: PgCluster, pg_database: str
) -> None:
    a, _ = _tenant(rt, "a")
    b, _ = _tenant(rt, "b")
    ids_a, ids_b = fill_session_tables(rt, a), fill_session_tables(rt, b)
    with pg_server.admin(pg_database) as admin:  # past RLS: both tenants hold rows everywhere
        for table in TABLES:
            stmt = sql.SQL("SELECT DISTINCT tenant_id FROM {}").format(sql.Identifier(table))
            owners = {r[0] for r in admin.execute(stmt)}
            assert owners == {a, b}, table
    for mine in (a, b):
        with rt.db.tenant_tx(mine) as s:
            for table in TABLES:
                seen = set(s.execute(text(f"SELECT DISTINCT tenant_id FROM {table}")).scalars())  # noqa: S608 - fixed names
                assert seen == {mine}, table
    # Writing a row that names the other tenant is refused by the policy's WITH CHECK.
    with pytest.raises(DBAPIError, match="row-level security"), rt.db.tenant_tx(a) as s:
        s.execute(
            text("UPDATE browser_sessions SET tenant_id = :b WHERE id = :id"),
            {"b": b, "id": ids_a["session"]},
        )
    with rt.db.tenant_tx(a) as s:
        gone = s.execute(
            text("UPDATE browser_sessions SET ended_at = now() WHERE id = :id"),
            {"id": ids_b["session"]},
        )
        assert gone.rowcount == 0  # type: ignore[attr-defined]


class _Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_cookie_authenticates_and_records_activity_on_postgresql(rt: Runtime) -> None:
    tenant, owner = _tenant(rt, "acme")
    clock = _Clock()
    app = create_app(rt)
    app.app.state.session_clock = clock  # type: ignore[attr-defined]
    with rt.db.tenant_tx(tenant) as s:
        issued = sessions.open_session(
            s, tenant_id=tenant, principal_id=owner, method="recovery_code", connection_id=None,
            now=clock.now,
        )  # fmt: skip
    jar = {"Cookie": f"{sessions.COOKIE_NAME}={issued.cookie_value}"}
    with TestClient(app, base_url="https://testserver") as client:
        clock.now += timedelta(minutes=5)
        r = client.get("/v1/tenant", headers=jar)
        assert r.status_code == 200, r.text
        with rt.db.tenant_tx(tenant) as s:
            assert s.get(BrowserSession, issued.id).last_seen_at == clock.now  # type: ignore[union-attr]
        r = client.post("/v1/deployments", headers=jar, json={"name": "d", "region": "eu-west-1"})
        assert r.status_code == 403
        r = client.post(
            "/v1/deployments",
            headers={**jar, sessions.CSRF_HEADER: issued.csrf_token},
            json={"name": "d", "region": "eu-west-1"},
        )
        assert r.status_code == 201, r.text
        clock.now += timedelta(hours=2)  # past the recovery session's 1 h
        assert client.get("/v1/tenant", headers=jar).status_code == 401
    with rt.db.tenant_tx(tenant) as s:
        assert s.get(BrowserSession, issued.id).end_reason == "absolute-timeout"  # type: ignore[union-attr]


def test_concurrent_uses_of_one_recovery_code_open_one_session(rt: Runtime) -> None:
    tenant, owner = _tenant(rt, "acme")
    now = datetime.now(UTC)
    with rt.db.tenant_tx(tenant) as s:
        code = sessions.generate_codes(s, tenant, owner, now=now).codes[0]
    login = sessions.RecoveryLogin(rt.db, rt.audit, max_failures=20, lockout=timedelta(minutes=1))
    barrier = threading.Barrier(RACERS)

    def one() -> str:
        barrier.wait()
        try:
            login.attempt(tenant, owner, code, now=now, request_id=None)
        except sessions.RecoveryFailedError as exc:
            return exc.reason
        except DBAPIError:  # a serialisation failure is a refusal too
            return "db"
        return "ok"

    with ThreadPoolExecutor(RACERS) as pool:
        results = list(pool.map(lambda _: one(), range(RACERS)))
    assert results.count("ok") == 1, results
    with rt.db.tenant_tx(tenant) as s:
        assert s.execute(select(func.count()).select_from(BrowserSession)).scalar_one() == 1


def test_deactivation_ends_sessions_in_the_same_transaction(rt: Runtime) -> None:
    tenant, _ = _tenant(rt, "acme")
    with rt.db.tenant_tx(tenant) as s:
        p = access.create_principal(s, tenant, kind="user", name="jane")
    with rt.db.tenant_tx(tenant) as s:
        issued = sessions.open_session(
            s, tenant_id=tenant, principal_id=p.id, method="oidc",
            connection_id="sso_" + "a" * 26, now=datetime.now(UTC),
        )  # fmt: skip
    s = rt.db.begin_tenant(tenant)
    try:
        access._principals.set_active(s, tenant, p.id, active=False)
    finally:
        s.close()  # rolled back: the revocation goes with it
    with rt.db.tenant_tx(tenant) as s:
        assert s.get(BrowserSession, issued.id).ended_at is None  # type: ignore[union-attr]
        access._principals.set_active(s, tenant, p.id, active=False)
    with rt.db.tenant_tx(tenant) as s:
        assert s.get(BrowserSession, issued.id).end_reason == "principal-deactivated"  # type: ignore[union-attr]


def test_the_lockout_migration_keeps_rows_and_the_wall(
    pg_settings: Settings, pg_server: PgCluster, pg_database: str
) -> None:
    """Migration 0012 on PostgreSQL: rows kept both ways, then (after the service role's
    grants are renewed by opening the runtime) an id of nothing is counted behind the wall."""
    rt = Runtime.open(pg_settings, create_key=True)
    try:
        tenant, owner = _tenant(rt, "acme")
        other, _ = _tenant(rt, "globex")
    finally:
        rt.close()
    engine = create_engine(pg_server.url(pg_database, user=OWNER_ROLE), poolclass=NullPool)
    try:
        check_lockout_migration(engine, tenant, owner)
    finally:
        engine.dispose()
    rt = Runtime.open(pg_settings)
    try:
        login = sessions.RecoveryLogin(rt.db, rt.audit, max_failures=2, lockout=timedelta(hours=1))
        nobody, now = "prn_" + "z" * 26, datetime(2026, 11, 29, 3, tzinfo=UTC)
        for expected in (sessions.RecoveryFailedError, sessions.RecoveryLockedError):
            with pytest.raises(sessions.RecoveryFailedError) as caught:
                login.attempt(tenant, nobody, "AAAAA-AAAAA-AAAAA-AAAAA", now=now, request_id=None)
            assert type(caught.value) is expected
        with rt.db.tenant_tx(other) as s:  # the other tenant sees none of it
            assert s.execute(text("SELECT count(*) FROM recovery_lockouts")).scalar_one() == 0
        with rt.db.tenant_tx(tenant) as s:  # the migrated row's window had ended: pruned
            ids = s.execute(text("SELECT principal_id FROM recovery_lockouts")).scalars()
            assert list(ids) == [nobody]
    finally:
        rt.close()
