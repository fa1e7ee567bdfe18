"""Row-level security and the service on a real PostgreSQL server.

The domain layer scopes every query by tenant; these tests pin the second
wall: even SQL that forgets its tenant filter, or writes another tenant's id,
only ever touches the current tenant's rows, and the service refuses to run
as a role that would slip past the policies.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import AbstractContextManager
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from psycopg import sql
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import DatabaseError, DBAPIError
from sqlalchemy.orm import Session

from callvault.audit import AuditEvent, Outcome
from callvault.bootstrap import initialise
from callvault.calls._twilio_token import AuthToken, TwilioAuthTokens
from callvault.config import Settings, load_settings
from callvault.errors import ConfigError, ConflictError
from callvault.payments import TokenVault
from callvault.runtime import Runtime
from callvault.store import Database, new_id
from callvault.store.grants import WRITE_ONCE
from callvault.store.models import (
    TENANT_TABLES,
    AuditEntry,
    AuditHead,
    AuditSink,
    AuditSinkCursor,
    Base,
    CallEvent,
    Deployment,
    Recording,
    Tenant,
    TranscriptSegment,
    TwilioAuthToken,
    utcnow,
)
from callvault.store.prepared import Prepared
from tests.integration.pg import PgCluster
from tests.support.world import CALLER_NUMBER, PROMPT, TRANSCRIPT, World, build_world
from tests.unit.operators._support import fill_break_glass_table
from tests.unit.sessions._fill import fill_session_tables
from tests.unit.sso._double import fill_sso_tables

pytestmark = pytest.mark.postgres

#: Every walled table and the column its policy compares with the tenant setting.
#: SQL in this module interpolates table and column names from here only.
WALLED: dict[str, str] = {"tenants": "id", **dict.fromkeys(TENANT_TABLES, "tenant_id")}
#: Tables that hold no tenant's data, so no wall: each one is a deliberate decision.
UNWALLED = frozenset({"installation", "operators", "operator_keys"})
RLS_VIOLATION = re.compile(r"row-level security", re.IGNORECASE)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _true_counts(pg_server: PgCluster, dbname: str) -> dict[str, dict[str, int]]:
    """Rows per tenant in every walled table, as the superuser sees them (past RLS)."""
    out: dict[str, dict[str, int]] = {}
    with pg_server.admin(dbname) as conn:
        for table, column in WALLED.items():
            stmt = sql.SQL("SELECT {}, count(*) FROM {} GROUP BY 1").format(
                sql.Identifier(column), sql.Identifier(table)
            )
            rows = conn.execute(stmt).fetchall()
            out[table] = {str(t): int(n) for t, n in rows}
    return out


def _fill_every_table(rt: Runtime, client: TestClient, world: World) -> None:
    """Give both tenants rows in the tables the world leaves empty (events, recordings)."""
    for tw in (world.a, world.b):
        r = client.post(
            f"/v1/calls/{tw.calls[0]}/events",
            headers=_auth(tw.tokens[("ingest", "tenant")]),
            json={"events": [{"kind": "dtmf", "at_ms": 1500, "detail": {"digit": "5"}}]},
        )
        assert r.status_code == 201, r.text
        with rt.db.tenant_tx(tw.id) as s:
            s.add(
                Recording(
                    id=new_id("rec"),
                    tenant_id=tw.id,
                    call_id=tw.calls[0],
                    object_ref=f"local://{tw.id}/{tw.calls[0]}",
                    codec="opus",
                    sample_rate_hz=16_000,
                    duration_ms=6_000,
                    size_bytes=12_345,
                    complete=True,
                    created_at=utcnow(),
                )
            )
        # The log key and a signed checkpoint; a SIEM sink with its cursor.
        rt.audit.checkpoint(tw.id)
        with rt.db.tenant_tx(tw.id) as s:
            s.add(
                AuditSink(
                    tenant_id=tw.id,
                    id="snk_rls",
                    kind="webhook",
                    name="siem",
                    config=b"{}",
                    secret_sealed=None,
                    enabled=False,
                    created_at=utcnow(),
                )
            )
            s.add(
                AuditSinkCursor(
                    tenant_id=tw.id,
                    sink_id="snk_rls",
                    next_index=0,
                    failures=0,
                    last_error=None,
                    updated_at=utcnow(),
                )
            )
        # A card token (the vault's own keys) in the call.
        with rt.db.tenant_tx(tw.id) as s:
            TokenVault(rt.keys, rt.audit).tokenize(
                s, tw.id, tw.deployments[0], tw.calls[0], "4539148803436467", source="dtmf"
            )
        # The deployment's Twilio auth token (sealed under a key of its own).
        with rt.db.tenant_tx(tw.id) as s:
            dep = s.get(Deployment, tw.deployments[0])
            assert dep is not None
            TwilioAuthTokens(rt.keys, rt.sealer).set(
                s, dep, AuthToken("9f86d081884c7d659a2feaa0c55ad015")
            )
        # SCIM: a token, a user and a group with that member (through the SCIM API).
        r = client.post(
            "/v1/tenant/scim-tokens", headers=_auth(tw.owner_token), json={"label": "rls"}
        )
        assert r.status_code == 201, r.text
        scim = {"Authorization": f"Bearer {r.json()['token']}"}
        r = client.post(
            f"/scim/v2/{tw.id}/Users",
            headers=scim,
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": f"rls-{tw.id}@example.org",
            },
        )
        assert r.status_code == 201, r.text
        r = client.post(
            f"/scim/v2/{tw.id}/Groups",
            headers=scim,
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "rls",
                "members": [{"value": r.json()["id"]}],
            },
        )
        assert r.status_code == 201, r.text
        # SSO: a connection, a pending login, a replay-cache row and an identity link.
        fill_sso_tables(rt, tw.id)
        # Browser sessions: a session, a policy version, recovery codes, a failure count.
        fill_session_tables(rt, tw.id)
        # Break-glass: a request of an operator for one of the tenant's deployments.
        fill_break_glass_table(rt, tw.id)


@pytest.fixture
def full_world(pg_rt: Runtime, pg_client: TestClient, pg_world: World) -> World:
    """The world with a row of both tenants in every walled table (checked as superuser)."""
    _fill_every_table(pg_rt, pg_client, pg_world)
    return pg_world


def _assert_every_table_holds_both(counts: dict[str, dict[str, int]], world: World) -> None:
    for table, per_tenant in counts.items():
        assert per_tenant.get(world.a.id, 0) > 0, table
        assert per_tenant.get(world.b.id, 0) > 0, table


# -- the schema ----------------------------------------------------------------


def _migrations_head() -> str | None:
    scripts = ScriptDirectory(str(files("callvault.store") / "migrations"))
    return scripts.get_current_head()


def test_migrations_force_row_level_security_with_a_policy_on_every_tenant_table(
    pg_settings: Settings,
) -> None:
    rt = Runtime.open(pg_settings, create_key=True)  # migrates the empty database
    try:
        with rt.db.engine.connect() as conn:
            tables = {
                name: (rls, force, owner)
                for name, rls, force, owner in conn.execute(
                    text(
                        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
                        " pg_get_userbyid(c.relowner) FROM pg_class c"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE n.nspname = 'public' AND c.relkind = 'r'"
                    )
                )
            }
            policies = conn.execute(
                text(
                    "SELECT policyname, tablename, cmd, permissive, roles, qual, with_check"
                    " FROM pg_policies WHERE schemaname = 'public'"
                )
            ).all()
            with_tenant_column = set(
                conn.execute(
                    text(
                        "SELECT table_name FROM information_schema.columns"
                        " WHERE table_schema = 'public' AND column_name = 'tenant_id'"
                    )
                ).scalars()
            )
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        rt.close()

    assert version == _migrations_head()
    # Every table that holds a tenant's rows is in the walled list, and vice versa;
    # every other table is known to hold no tenant's data.
    assert with_tenant_column == set(TENANT_TABLES)
    assert set(tables) - {"alembic_version"} == set(WALLED) | UNWALLED
    for table, column in WALLED.items():
        rls, force, owner = tables[table]
        assert rls, f"{table}: row level security not enabled"
        assert force, f"{table}: row level security not forced on the owner"
        # The owner role owns the tables: without FORCE it would pass every policy.
        assert owner == "callvault_owner", table
        mine = [p for p in policies if p.tablename == table and p.policyname != "directory_read"]
        assert mine, f"{table}: no policy"
        for p in mine:
            assert p.cmd == "ALL", table
            assert p.permissive == "PERMISSIVE", table
            for expr in (p.qual, p.with_check):
                assert expr is not None, table
                assert column in expr, table
                assert "current_setting('callvault.tenant_id'::text, true)" in expr, table
    # One more, on purpose: a read-only "directory" transaction may list tenants
    # (background jobs learn whom to visit); it opens no other table.
    directory = [p for p in policies if p.policyname == "directory_read"]
    assert len(directory) == 1
    assert directory[0].tablename == "tenants"
    assert directory[0].cmd == "SELECT"
    assert (
        directory[0].qual == "(current_setting('callvault.scope'::text, true) = 'directory'::text)"
    )
    # No policy anywhere else quietly opens a walled table.
    assert {p.tablename for p in policies} == set(WALLED)


def test_migrations_are_idempotent_on_postgresql(pg_settings: Settings) -> None:
    Runtime.open(pg_settings, create_key=True).close()
    rt = Runtime.open(pg_settings)
    try:
        assert rt.readiness().ready
    finally:
        rt.close()


# -- reads ---------------------------------------------------------------------


def test_query_that_forgets_tenant_filter_sees_no_other_tenants_rows(
    pg_server: PgCluster, pg_database: str, pg_rt: Runtime, full_world: World
) -> None:
    world = full_world
    counts = _true_counts(pg_server, pg_database)
    _assert_every_table_holds_both(counts, world)

    for tw in (world.a, world.b):
        with pg_rt.db.tenant_tx(tw.id) as s:
            for table, column in WALLED.items():
                stmt = text(f"SELECT {column} FROM {table}")  # noqa: S608 - names from WALLED
                seen = s.execute(stmt).scalars().all()
                assert set(seen) == {tw.id}, table
                assert len(seen) == counts[table][tw.id], table


def test_orm_select_without_where_sees_only_the_current_tenant(
    pg_server: PgCluster, pg_database: str, pg_rt: Runtime, full_world: World
) -> None:
    world = full_world
    counts = _true_counts(pg_server, pg_database)
    models = [m.class_ for m in Base.registry.mappers if m.class_.__tablename__ not in UNWALLED]
    assert {m.__tablename__ for m in models} == set(WALLED)
    with pg_rt.db.tenant_tx(world.a.id) as s:
        for model in models:
            rows = s.execute(select(model)).scalars().all()
            owners = {r.id if model is Tenant else r.tenant_id for r in rows}
            assert owners == {world.a.id}, model.__tablename__
            assert len(rows) == counts[model.__tablename__][world.a.id], model.__tablename__
        # Looking a row of the other tenant up by its primary key finds nothing either.
        assert s.get(Deployment, world.b.deployments[0]) is None
        assert s.get(Tenant, world.b.id) is None
        assert s.get(TranscriptSegment, (world.b.calls[0], 0)) is None
        assert s.get(AuditEntry, (world.b.id, 0)) is None


def test_transaction_without_tenant_sees_no_rows_of_any_tenant_table(
    pg_server: PgCluster, pg_database: str, pg_rt: Runtime, full_world: World
) -> None:
    counts = _true_counts(pg_server, pg_database)
    _assert_every_table_holds_both(counts, full_world)
    with pg_rt.db.system_tx() as s:
        for table in WALLED:
            stmt = text(f"SELECT count(*) FROM {table}")  # noqa: S608 - names from WALLED
            assert s.execute(stmt).scalar_one() == 0, table
    with pg_rt.db.tenant_tx(new_id("ten")) as s:
        for table in WALLED:
            stmt = text(f"SELECT count(*) FROM {table}")  # noqa: S608 - names from WALLED
            assert s.execute(stmt).scalar_one() == 0, f"{table}: visible to an unknown tenant"


def test_a_directory_transaction_lists_tenant_ids_and_sees_nothing_else(
    pg_server: PgCluster, pg_database: str, pg_rt: Runtime, full_world: World
) -> None:
    with pg_rt.db.directory_tx() as s:
        ids = set(s.execute(text("SELECT id FROM tenants")).scalars())
        assert {full_world.a.id, full_world.b.id} <= ids
        for table in WALLED:
            if table == "tenants":
                continue
            stmt = text(f"SELECT count(*) FROM {table}")  # noqa: S608 - names from WALLED
            assert s.execute(stmt).scalar_one() == 0, table
    with (
        pytest.raises(DatabaseError, match="read-only"),
        pg_rt.db.directory_tx() as s,
    ):
        s.execute(text("UPDATE tenants SET name = 'x'"))
    # The setting does not outlive the transaction on the pooled connection.
    with pg_rt.db.system_tx() as s:
        assert s.execute(text("SELECT count(*) FROM tenants")).scalar_one() == 0


def test_tenant_setting_ends_with_its_transaction_on_a_pooled_connection(
    pg_settings: Settings, pg_world: World
) -> None:
    # One pooled connection, so the tenantless transaction reuses the tenant's.
    db = Database(pg_settings.model_copy(update={"db_pool_size": 1}))
    try:
        with db.tenant_tx(pg_world.a.id) as s:
            pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
            assert s.execute(select(func.count()).select_from(Deployment)).scalar_one() > 0
        with pytest.raises(RuntimeError), db.tenant_tx(pg_world.a.id):
            raise RuntimeError  # a rolled-back tenant transaction must not leak its tenant either
        with db.system_tx() as s:
            assert s.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid
            setting = text("SELECT current_setting('callvault.tenant_id', true)")
            assert not s.execute(setting).scalar()
            assert s.execute(select(func.count()).select_from(Deployment)).scalar_one() == 0
            assert s.execute(select(func.count()).select_from(Tenant)).scalar_one() == 0
    finally:
        db.dispose()


# -- writes --------------------------------------------------------------------


def _foreign_rows(world: World) -> dict[str, Any]:
    """Rows of tenant B that a tenant-A transaction tries to write."""
    b = world.b
    now = utcnow()
    return {
        "tenants": Tenant(id=new_id("ten"), name="intruder", created_at=now),
        "deployments": Deployment(
            id=new_id("dep"),
            tenant_id=b.id,
            name="intruder",
            region="eu-west-2",
            recording_retention_days=1,
            transcript_retention_days=1,
            key_provider="local",
            created_at=now,
        ),
        "transcript_segments": TranscriptSegment(
            call_id=b.calls[0],
            seq=999,
            tenant_id=b.id,
            speaker="caller",
            start_ms=0,
            end_ms=1,
            is_final=True,
            sealed=b"x",
        ),
        "call_events": CallEvent(call_id=b.calls[0], seq=999, tenant_id=b.id, kind="mark", at_ms=0),
        "audit_entries": AuditEntry(tenant_id=b.id, idx=999_999, created_at=now, entry=b"{}"),
        "audit_heads": AuditHead(tenant_id=b.id, size=0),
        "twilio_auth_tokens": TwilioAuthToken(
            tenant_id=b.id, deployment_id=b.deployments[1], token_sealed=b"x", configured_at=now
        ),
    }


def _insert(tx: AbstractContextManager[Session], row: object) -> None:
    with tx as s:
        s.add(row)
        s.flush()


@pytest.mark.parametrize(
    "table",
    [
        "tenants",
        "deployments",
        "transcript_segments",
        "call_events",
        "audit_entries",
        "audit_heads",
        "twilio_auth_tokens",
    ],
)
def test_insert_with_another_tenants_id_is_rejected_and_nothing_is_written(
    pg_server: PgCluster, pg_database: str, pg_rt: Runtime, pg_world: World, table: str
) -> None:
    before = _true_counts(pg_server, pg_database)
    row = _foreign_rows(pg_world)[table]
    with pytest.raises(DBAPIError, match=RLS_VIOLATION):
        _insert(pg_rt.db.tenant_tx(pg_world.a.id), row)
    assert _true_counts(pg_server, pg_database) == before


def test_raw_insert_with_another_tenants_id_is_rejected(
    pg_server: PgCluster, pg_database: str, pg_rt: Runtime, pg_world: World
) -> None:
    before = _true_counts(pg_server, pg_database)
    with pytest.raises(DBAPIError, match=RLS_VIOLATION), pg_rt.db.tenant_tx(pg_world.a.id) as s:
        s.execute(
            text(
                "INSERT INTO audit_heads (tenant_id, size) VALUES (:t, 0)"
                " ON CONFLICT (tenant_id) DO UPDATE SET size = 0"
            ),
            {"t": pg_world.b.id},
        )
    assert _true_counts(pg_server, pg_database) == before


def test_transaction_without_tenant_can_insert_nothing(
    pg_server: PgCluster, pg_database: str, pg_rt: Runtime, pg_world: World
) -> None:
    before = _true_counts(pg_server, pg_database)
    orphan = Tenant(id=new_id("ten"), name="orphan", created_at=utcnow())
    with pytest.raises(DBAPIError, match=RLS_VIOLATION):
        _insert(pg_rt.db.system_tx(), orphan)
    with pytest.raises(DBAPIError, match=RLS_VIOLATION):
        _insert(pg_rt.db.system_tx(), _foreign_rows(pg_world)["deployments"])
    assert _true_counts(pg_server, pg_database) == before


def test_update_cannot_move_a_row_to_another_tenant(
    pg_server: PgCluster, pg_database: str, pg_rt: Runtime, pg_world: World
) -> None:
    before = _true_counts(pg_server, pg_database)
    with pytest.raises(DBAPIError, match=RLS_VIOLATION), pg_rt.db.tenant_tx(pg_world.a.id) as s:
        s.execute(
            text("UPDATE deployments SET tenant_id = :b WHERE id = :dep"),
            {"b": pg_world.b.id, "dep": pg_world.a.deployments[0]},
        )
    assert _true_counts(pg_server, pg_database) == before


def test_update_and_delete_across_tenants_affect_no_rows(
    pg_server: PgCluster, pg_database: str, pg_rt: Runtime, full_world: World
) -> None:
    a, b = full_world.a, full_world.b
    before = _true_counts(pg_server, pg_database)
    with pg_server.admin(pg_database) as conn:
        b_names_before = conn.execute(
            "SELECT id, name FROM deployments WHERE tenant_id = %s ORDER BY id", (b.id,)
        ).fetchall()
    with pg_rt.db.tenant_tx(a.id) as s:
        # Targeted by id, and blanket statements that name no tenant at all.
        hit = s.execute(
            text("UPDATE deployments SET name = 'pwned' WHERE id = :dep"),
            {"dep": b.deployments[0]},
        )
        assert hit.rowcount == 0
        hit = s.execute(text("UPDATE tenants SET name = 'pwned' WHERE id = :b"), {"b": b.id})
        assert hit.rowcount == 0
        hit = s.execute(
            text("UPDATE api_keys SET revoked_at = now() WHERE tenant_id = :b"), {"b": b.id}
        )
        assert hit.rowcount == 0
        hit = s.execute(text("UPDATE audit_heads SET size = 0 WHERE tenant_id <> :a"), {"a": a.id})
        assert hit.rowcount == 0
        # Children first, so a delete that did reach B would not stop at a foreign key.
        # (The write-once tables refuse any DELETE from this role: test_postgres_audit.)
        walled = [t.name for t in Base.metadata.sorted_tables if t.name in WALLED]
        for name in reversed([t for t in walled if t not in WRITE_ONCE]):
            column = WALLED[name]
            stmt = text(f"DELETE FROM {name} WHERE {column} = :b")  # noqa: S608 - names from WALLED
            hit = s.execute(stmt, {"b": b.id})
            assert hit.rowcount == 0, name
    after = _true_counts(pg_server, pg_database)
    assert after == before
    with pg_server.admin(pg_database) as conn:
        assert (
            conn.execute(
                "SELECT id, name FROM deployments WHERE tenant_id = %s ORDER BY id", (b.id,)
            ).fetchall()
            == b_names_before
        )


# -- the service role ----------------------------------------------------------


@pytest.mark.parametrize("attribute", ["SUPERUSER", "BYPASSRLS"])
def test_service_refuses_to_start_as_a_role_that_bypasses_row_level_security(
    tmp_path: Path, pg_server: PgCluster, pg_database: str, attribute: str
) -> None:
    role = f"cv_{attribute.lower()}_{new_id('key')[-8:]}"
    pg_server.create_role(role, "LOGIN", attribute)
    settings = load_settings(
        {}, data_dir=tmp_path / "data", database_url=pg_server.url(pg_database, user=role)
    )
    with pytest.raises(ConfigError) as info:
        Runtime.open(settings, create_key=True)
    assert info.value.field == "CALLVAULT_DATABASE_URL"
    assert role not in str(info.value)
    db = Database(settings)
    try:
        with pytest.raises(ConfigError):
            db.check_role()
    finally:
        db.dispose()
    # Fail closed before doing anything: nothing was migrated.
    with pg_server.admin(pg_database) as conn:
        assert conn.execute("SELECT to_regclass('public.alembic_version')").fetchone() == (None,)


def test_service_starts_as_the_unprivileged_role(pg_rt: Runtime) -> None:
    pg_rt.db.check_role()
    with pg_rt.db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        ).one()
    assert tuple(row) == (False, False)
    assert pg_rt.readiness().ready


def test_initialise_refuses_to_run_twice_on_postgresql(
    pg_server: PgCluster, pg_database: str, pg_settings: Settings
) -> None:
    """``callvault init`` MUST refuse once a tenant exists, although RLS hides every tenant."""
    first = initialise(pg_settings, tenant_name="acme", owner_name="owner")
    before = _true_counts(pg_server, pg_database)
    assert set(before["tenants"]) == {first.tenant_id}
    with pytest.raises(ConflictError):
        initialise(pg_settings, tenant_name="globex", owner_name="owner")
    assert _true_counts(pg_server, pg_database) == before


# -- the API end to end --------------------------------------------------------


def test_prepared_reads_match_core_and_stay_behind_the_wall(
    pg_rt: Runtime, pg_world: World
) -> None:
    """store.prepared runs on the driver's cursor: same rows and types as Core, and
    row-level security still applies to a prepared query with no tenant filter."""
    dep = Deployment.__table__
    no_filter = Prepared(select(dep.c.id, dep.c.tenant_id, dep.c.created_at), name="all_deps")
    by_id = Prepared(
        select(dep).where(dep.c.tenant_id == bindparam("t"), dep.c.id == bindparam("i")),
        name="dep",
    )
    a, b = pg_world.a, pg_world.b
    conn = pg_rt.db.begin_tenant_connection(a.id)
    try:
        fast = no_filter.rows(conn, {})
        core = conn.execute(no_filter.statement).all()
        assert [tuple(r) for r in fast] == [tuple(r) for r in core]
        assert {r.tenant_id for r in fast} == {a.id}
        assert sorted(r.id for r in fast) == sorted(a.deployments)
        assert all(r.created_at.tzinfo is not None for r in fast)
        row = by_id.one_or_none(conn, {"t": a.id, "i": a.deployments[0]})
        assert row is not None
        assert tuple(row) == tuple(conn.execute(by_id.statement, {"t": a.id, "i": row.id}).one())
        # B's deployment by id, even naming B as the tenant: the policy hides it.
        assert by_id.one_or_none(conn, {"t": b.id, "i": b.deployments[0]}) is None
    finally:
        conn.close()


def test_api_builds_two_tenants_with_calls_on_postgresql(
    pg_server: PgCluster, pg_database: str, pg_rt: Runtime, pg_client: TestClient
) -> None:
    world = build_world(pg_rt, pg_client)  # asserts every request it makes succeeded
    for tw in (world.a, world.b):
        r = pg_client.get("/v1/deployments", headers=_auth(tw.owner_token))
        assert r.status_code == 200, r.text
        assert [d["id"] for d in r.json()] == tw.deployments
        r = pg_client.get("/v1/calls", headers=_auth(tw.tokens[("compliance_officer", "tenant")]))
        assert r.status_code == 200, r.text
        assert {c["id"] for c in r.json()} == set(tw.calls)
        assert {c["segment_count"] for c in r.json()} == {len(TRANSCRIPT)}
    counts = _true_counts(pg_server, pg_database)
    assert set(counts["tenants"]) == {world.a.id, world.b.id}


def test_agent_versions_list_diff_and_revert_work_on_postgresql(
    pg_client: TestClient, pg_world: World
) -> None:
    a = pg_world.a
    owner = _auth(a.owner_token)
    agent = a.agents[0]
    r = pg_client.patch(f"/v1/agents/{agent}", headers=owner, json={"prompt": "Say hello."})
    assert r.status_code == 200, r.text

    r = pg_client.get(f"/v1/agents/{agent}/versions", headers=owner)
    assert r.status_code == 200, r.text
    v1, v2 = r.json()
    assert (v1["seq"], v1["op"], v2["seq"], v2["op"]) == (1, "create", 2, "update")
    assert v2["parent_id"] == v1["id"]

    r = pg_client.get(
        f"/v1/agents/{agent}/versions/diff",
        headers=owner,
        params={"from": v1["id"], "to": v2["id"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["patch"] == [{"op": "replace", "path": "/prompt", "value": "Say hello."}]

    r = pg_client.post(f"/v1/agents/{agent}/versions/{v1['id']}/revert", headers=owner)
    assert r.status_code == 201, r.text
    v3 = r.json()
    assert (v3["seq"], v3["op"], v3["parent_id"]) == (3, "revert", v2["id"])

    r = pg_client.get(f"/v1/agents/{agent}/config", headers=owner)
    assert r.status_code == 200, r.text
    assert r.json()["version_id"] == v3["id"]
    assert r.json()["config"]["prompt"] == PROMPT

    # The other tenant's versions of the same shape are out of reach.
    r = pg_client.get(f"/v1/agents/{pg_world.b.agents[0]}/versions", headers=owner)
    assert r.status_code == 404, r.text
    r = pg_client.post(
        f"/v1/agents/{pg_world.b.agents[0]}/versions/{v1['id']}/revert", headers=owner
    )
    assert r.status_code == 404, r.text


def test_cross_tenant_reads_are_not_found_on_postgresql(
    pg_client: TestClient, pg_world: World
) -> None:
    a, b = pg_world.a, pg_world.b
    for token in (a.owner_token, a.tokens[("compliance_officer", "tenant")]):
        for path in (
            f"/v1/deployments/{b.deployments[0]}",
            f"/v1/agents/{b.agents[0]}",
            f"/v1/agents/{b.agents[0]}/config",
            f"/v1/calls/{b.calls[0]}",
            f"/v1/calls/{b.calls[0]}/transcript",
        ):
            r = pg_client.get(path, headers=_auth(token))
            assert r.status_code == 404, (path, r.text)
    # A's call listing holds A's calls only.
    r = pg_client.get("/v1/calls", headers=_auth(a.tokens[("compliance_officer", "tenant")]))
    assert r.status_code == 200, r.text
    assert {c["id"] for c in r.json()} == set(a.calls)


def test_transcripts_read_back_full_and_redacted_on_postgresql(
    pg_client: TestClient, pg_world: World
) -> None:
    a = pg_world.a
    call = a.calls[0]
    r = pg_client.get(
        f"/v1/calls/{call}/transcript", headers=_auth(a.tokens[("compliance_officer", "tenant")])
    )
    assert r.status_code == 200, r.text
    full = r.json()
    assert full["view"] == "full"
    assert full["caller_number"] == CALLER_NUMBER
    assert "31926819" in full["segments"][0]["text"]
    assert "twelfth of march" in full["segments"][0]["text"]

    r = pg_client.get(
        f"/v1/calls/{call}/transcript", headers=_auth(a.tokens[("qa_reviewer", "tenant")])
    )
    assert r.status_code == 200, r.text
    redacted = r.json()
    assert redacted["view"] == "redacted"
    assert len(redacted["segments"]) == len(full["segments"])
    texts = [redacted["caller_number"]]
    for seg in redacted["segments"]:
        texts.append(seg["text"])
        texts.extend(w["text"] for w in seg["words"])
    assert not any(re.search(r"\d", t) for t in texts), texts

    # Both reads were audited, into A's log, with contiguous indices.
    r = pg_client.get(
        "/v1/audit/entries",
        headers=_auth(a.tokens[("auditor", "tenant")]),
        params={"limit": 1000},
    )
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    assert [e["index"] for e in entries] == list(range(len(entries)))
    assert {e["entry"]["tenant"] for e in entries} == {a.id}
    reads = [e["entry"] for e in entries if e["entry"]["action"].startswith("transcript:")]
    assert [(e["action"], e["resource"]["id"]) for e in reads] == [
        ("transcript:read", call),
        ("transcript:read_redacted", call),
    ]


# -- the audit sequencer ---------------------------------------------------------


def _new_bare_tenant(rt: Runtime, *, with_head: bool) -> str:
    """A tenant row with no audit entries (and, optionally, its empty head row)."""
    tenant_id = new_id("ten")
    with rt.db.tenant_tx(tenant_id) as s:
        s.add(Tenant(id=tenant_id, name="bare", created_at=utcnow()))
        if with_head:
            s.flush()
            s.add(AuditHead(tenant_id=tenant_id, size=0))
    return tenant_id


def _event(actor: str, n: int) -> AuditEvent:
    return AuditEvent(
        action="test.append",
        outcome=Outcome.SUCCESS,
        actor=actor,
        resource_kind="test",
        resource_id=str(n),
    )


class _Appenders:
    """``threads`` threads, released together, each appending ``per_thread`` single events."""

    def __init__(self, rt: Runtime, tenant_id: str, *, threads: int, per_thread: int) -> None:
        self.results: list[list[int]] = [[] for _ in range(threads)]
        self.errors: list[BaseException] = []
        self._go = threading.Barrier(threads)
        self._threads = [
            threading.Thread(target=self._work, args=(rt, tenant_id, n, per_thread))
            for n in range(threads)
        ]

    def _work(self, rt: Runtime, tenant_id: str, n: int, per_thread: int) -> None:
        try:
            self._go.wait()
            for i in range(per_thread):
                self.results[n].extend(rt.audit.append(tenant_id, _event(f"thread-{n}", i)))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted on in the test
            self.errors.append(exc)

    def start(self) -> _Appenders:
        for t in self._threads:
            t.start()
        return self

    def join(self) -> _Appenders:
        for t in self._threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in self._threads), "audit appends deadlocked"
        return self

    def indices(self) -> list[int]:
        return sorted(i for r in self.results for i in r)


def _stored_indices(rt: Runtime, tenant_id: str) -> tuple[list[int], int]:
    with rt.db.tenant_tx(tenant_id) as s:
        idx = s.execute(
            select(AuditEntry.idx).where(AuditEntry.tenant_id == tenant_id).order_by(AuditEntry.idx)
        ).scalars()
        head = s.execute(select(AuditHead.size).where(AuditHead.tenant_id == tenant_id))
        return list(idx), head.scalar_one()


def _wait_for_lock_waiters(pg_server: PgCluster, dbname: str, n: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    with pg_server.admin(dbname) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = %s AND wait_event_type = 'Lock'",
                (dbname,),
            ).fetchone()
            if waiting is not None and waiting[0] >= n:
                return
            time.sleep(0.02)


def test_audit_indices_stay_contiguous_under_concurrent_appends(pg_rt: Runtime) -> None:
    tenant_id = _new_bare_tenant(pg_rt, with_head=True)
    run = _Appenders(pg_rt, tenant_id, threads=8, per_thread=25).start().join()
    assert not run.errors, [type(e).__name__ for e in run.errors]
    assert run.indices() == list(range(200))  # no gaps, no duplicates
    for r in run.results:
        assert r == sorted(r)  # each thread's own appends are in order
    assert _stored_indices(pg_rt, tenant_id) == (list(range(200)), 200)


def test_concurrent_first_appends_to_a_tenants_log_all_succeed(
    pg_server: PgCluster, pg_database: str, pg_rt: Runtime
) -> None:
    """Appends that find no head row yet (another transaction is creating it) MUST NOT fail."""
    tenant_id = _new_bare_tenant(pg_rt, with_head=False)
    with pg_rt.db.tenant_tx(tenant_id) as s:
        # The first append's head row stays uncommitted until the group
        # committer, carrying the threads' first appends, waits on it.
        assert pg_rt.audit.append_in(s, tenant_id, _event("main", 0)) == [0]
        run = _Appenders(pg_rt, tenant_id, threads=8, per_thread=3).start()
        _wait_for_lock_waiters(pg_server, pg_database, 1, timeout_s=4)
    run.join()
    assert not run.errors, [type(e).__name__ for e in run.errors]
    assert run.indices() == list(range(1, 25))
    assert _stored_indices(pg_rt, tenant_id) == (list(range(25)), 25)
