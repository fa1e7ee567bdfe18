"""On PostgreSQL the audit log is write-once twice over: no grants, and triggers.

The service's role holds only SELECT and INSERT on the write-once tables (the
schema owner grants it after migrating), so it cannot change history even if
the triggers were gone; the owner, who could, is stopped by the triggers. The
service refuses to start as a role that could alter the log.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from callvault import tenancy
from callvault.audit import AuditEvent, Outcome, merkle
from callvault.config import Settings, load_settings
from callvault.errors import ConfigError
from callvault.runtime import Runtime
from tests.integration.pg import OWNER_ROLE, PgCluster
from tests.support.world import TRANSCRIPT, World

pytestmark = pytest.mark.postgres

_TAMPER = [
    "UPDATE audit_entries SET entry = '\\x7b7d'::bytea WHERE idx = 0",
    "DELETE FROM audit_entries WHERE idx = 0",
    "TRUNCATE audit_entries",
    "UPDATE audit_checkpoints SET note = '\\x00'::bytea",
    "DELETE FROM audit_checkpoints",
    "UPDATE audit_log_keys SET verifier_key = 'x'",
    "DELETE FROM audit_log_keys",
]


def _snapshot(rt: Runtime, tenant: str) -> tuple[object, ...]:
    with rt.db.tenant_tx(tenant) as s:
        return (
            rt.audit.read(s, tenant, start=0, limit=1000),
            s.execute(text("SELECT size, note FROM audit_checkpoints ORDER BY size")).all(),
            s.execute(text("SELECT verifier_key FROM audit_log_keys")).all(),
        )


@pytest.mark.parametrize("statement", _TAMPER)
def test_service_role_has_no_privilege_to_change_history(
    pg_rt: Runtime, pg_world: World, statement: str
) -> None:
    tenant = pg_world.a.id
    pg_rt.audit.checkpoint(tenant)
    before = _snapshot(pg_rt, tenant)
    with pytest.raises(DatabaseError, match="permission denied"), pg_rt.db.tenant_tx(tenant) as s:
        s.execute(text(statement))
    assert _snapshot(pg_rt, tenant) == before


@pytest.mark.parametrize("statement", [t for t in _TAMPER if "audit_log_keys" not in t])
def test_owner_role_is_stopped_by_the_insert_only_triggers(
    pg_server: PgCluster, pg_database: str, pg_rt: Runtime, pg_world: World, statement: str
) -> None:
    tenant = pg_world.a.id
    pg_rt.audit.checkpoint(tenant)
    before = _snapshot(pg_rt, tenant)
    url = pg_server.url(pg_database, user=OWNER_ROLE).replace("+psycopg", "")
    with psycopg.connect(url) as c:
        c.execute("SELECT set_config('callvault.tenant_id', %s, false)", (tenant,))
        with pytest.raises(psycopg.Error, match="insert-only"):
            c.execute(statement)
    assert _snapshot(pg_rt, tenant) == before


def test_service_refuses_to_run_as_the_owner_of_the_audit_tables(
    tmp_path: Path, pg_server: PgCluster, pg_database: str, pg_settings: Settings
) -> None:
    Runtime.open(pg_settings, create_key=True).close()  # migrated by the owner
    as_owner = load_settings(
        {},
        data_dir=pg_settings.data_dir,
        database_url=pg_server.url(pg_database, user=OWNER_ROLE),
    )
    with pytest.raises(ConfigError) as info:
        Runtime.open(as_owner)
    assert info.value.field == "CALLVAULT_DATABASE_URL"
    assert "owns audit_entries" in str(info.value)
    assert OWNER_ROLE not in str(info.value)


def test_service_refuses_a_role_that_was_granted_update_on_the_log(
    pg_server: PgCluster, pg_database: str, pg_settings: Settings
) -> None:
    Runtime.open(pg_settings, create_key=True).close()
    with pg_server.admin(pg_database) as conn:
        conn.execute("GRANT UPDATE, DELETE ON audit_checkpoints TO callvault")
    with pytest.raises(ConfigError, match="UPDATE on audit_checkpoints"):
        Runtime.open(pg_settings, migrate=False)


def test_when_the_log_becomes_unwritable_mid_run_no_guarded_action_happens(
    pg_server: PgCluster, pg_database: str, pg_rt: Runtime, pg_client: TestClient, pg_world: World
) -> None:
    """Content reads run while the service role loses INSERT on the log, then gets it back.

    Every read that returned content has its ``allowed`` entry committed in the
    log; every read after the revoke answered 503 with no content; a config
    change in that window left no version behind.
    """
    a = pg_world.a
    call, agent = a.calls[0], a.agents[0]
    headers = {"Authorization": f"Bearer {a.tokens[('compliance_officer', 'tenant')]}"}
    owner = {"Authorization": f"Bearer {a.owner_token}"}
    served: list[str] = []
    refused: list[str] = []
    for n in range(30):
        if n == 10:
            with pg_server.admin(pg_database) as conn:
                conn.execute("REVOKE INSERT ON audit_entries FROM callvault")
        if n == 20:
            with pg_server.admin(pg_database) as conn:
                conn.execute("GRANT INSERT ON audit_entries TO callvault")
        rid = f"mid-run-{n}"
        r = pg_client.get(
            f"/v1/calls/{call}/transcript",
            headers={**headers, "X-Request-ID": rid},
            params={"view": "full"},
        )
        if r.status_code == 200:
            served.append(rid)
            continue
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert TRANSCRIPT[1]["text"] not in r.text
        refused.append(rid)
        if n == 15:
            with pg_rt.db.tenant_tx(a.id) as s:
                before = tenancy.get_agent(s, a.id, agent).current_version_id
            patch = pg_client.patch(f"/v1/agents/{agent}", headers=owner, json={"prompt": "x"})
            assert patch.status_code == 503, patch.text
            with pg_rt.db.tenant_tx(a.id) as s:
                assert tenancy.get_agent(s, a.id, agent).current_version_id == before
    assert refused == [f"mid-run-{n}" for n in range(10, 20)]
    assert len(served) == 20
    with pg_rt.db.tenant_tx(a.id) as s:
        log = [json.loads(e) for _, e in pg_rt.audit.read(s, a.id, start=0, limit=100_000)]
    allowed = {e["request_id"] for e in log if e["outcome"] == "allowed"}
    assert set(served) <= allowed
    assert not set(refused) & {e["request_id"] for e in log}


def test_two_service_processes_appending_to_one_log_keep_it_contiguous(
    pg_settings: Settings, pg_rt: Runtime, pg_world: World
) -> None:
    """Each process's writer caches the heads it wrote; the other's appends make that
    cache stale, which the optimistic head update detects and retries."""
    other = Runtime.open(pg_settings, migrate=False)
    tenant = pg_world.a.id
    try:
        with pg_rt.db.tenant_tx(tenant) as s:
            start = pg_rt.audit.size(s, tenant)
        errors: list[BaseException] = []

        def work(rt: Runtime, n: int) -> None:
            try:
                for i in range(40):
                    rt.audit.append(tenant, AuditEvent("t", Outcome.SUCCESS, f"p{n}", "x", str(i)))
            except BaseException as exc:  # noqa: BLE001 - collected and asserted on below
                errors.append(exc)

        threads = [
            threading.Thread(target=work, args=(rt, n))
            for n, rt in enumerate([pg_rt, other, pg_rt, other])
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, [type(e).__name__ for e in errors]
        with pg_rt.db.tenant_tx(tenant) as s:
            rows = pg_rt.audit.read(s, tenant, start=0, limit=100_000)
        assert [i for i, _ in rows] == list(range(start + 160))
        cp = other.audit.checkpoint(tenant).checkpoint
        assert cp.root_hash == merkle.root([merkle.leaf_hash(e) for _, e in rows])
    finally:
        other.close()
