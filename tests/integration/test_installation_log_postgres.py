"""The installation audit log on a real PostgreSQL server, as the unprivileged service role.

Its rows sit in the tenants' audit tables under the reserved id, so the same
walls must hold for them: row-level security (a tenant's transaction neither
sees nor writes them; a tenantless one sees nothing), the grants and the
insert-only triggers (neither the service nor the owner rewrites them), and
the triggers of migration 0011 (no principal or deployment ever lands under
that id). A break-glass step writes its mirror inside the tenant's own
transaction; under concurrency with group-committed entries nothing
deadlocks and the exported log verifies.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from sqlalchemy import TextClause, text
from sqlalchemy.exc import DatabaseError, DBAPIError
from sqlalchemy.orm import Session

from callvault import operators
from callvault.audit.bundle import verify_bundle
from callvault.errors import AuthenticationError
from callvault.operators import INSTALLATION_LOG, OperatorRole, _admin, _installation_log
from callvault.operators._break_glass import request
from callvault.runtime import Runtime
from callvault.store import new_id
from callvault.store.models import AuditEntry, Deployment, Principal, utcnow
from tests.integration.pg import OWNER_ROLE, PgCluster
from tests.support.world import World
from tests.unit.api._harness import audit_entries, audit_size
from tests.unit.operators._support import make_operator

pytestmark = pytest.mark.postgres

REASON = "postgres: the installation log mirrors this"
_AUDIT_TABLES = ("audit_entries", "audit_heads", "audit_checkpoints", "audit_log_keys")
_TAMPER = [
    "UPDATE audit_entries SET entry = '\\x7b7d'::bytea WHERE tenant_id = 'installation'",
    "DELETE FROM audit_entries WHERE tenant_id = 'installation'",
    "TRUNCATE audit_entries",
    "UPDATE audit_checkpoints SET note = '\\x00'::bytea WHERE tenant_id = 'installation'",
    "DELETE FROM audit_checkpoints WHERE tenant_id = 'installation'",
    "UPDATE audit_log_keys SET verifier_key = 'x' WHERE tenant_id = 'installation'",
    "DELETE FROM audit_log_keys WHERE tenant_id = 'installation'",
]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _fill(rt: Runtime, client: TestClient, world: World) -> str:
    """Every kind of installation entry, a checkpoint and the log key. Returns a grant id."""
    a = world.a
    made = _admin.create(
        rt,
        name=f"pg-{uuid.uuid4().hex[:8]}",
        role=OperatorRole.SUPPORT_ENGINEER,
        key_ttl=timedelta(days=1),
        actor="cli:pg",
    )
    token = made.key.token
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert client.get("/v1/operator/me", headers=_auth(wrong)).status_code == 401
    base = f"/v1/operator/tenants/{a.id}"
    asked = client.post(
        f"{base}/break-glass",
        headers=_auth(token),
        json={
            "deployment_id": a.deployments[0],
            "reason": REASON,
            "ticket_ref": "PG-17",
            "duration_minutes": 20,
        },
    )
    assert asked.status_code == 201, asked.text
    grant = str(asked.json()["id"])
    admin = _auth(a.tokens[("admin", "tenant")])
    assert client.post(f"/v1/tenant/break-glass/{grant}/approve", headers=admin).status_code == 200
    read = client.get(f"{base}/calls/{a.calls[0]}/transcript", headers=_auth(token))
    assert read.status_code == 200, read.text
    _installation_log.checkpoint(rt)
    return grant


def _count(table: str) -> TextClause:
    return text(f"SELECT count(*) FROM {table}")  # noqa: S608 - table names from constants here


def _insert(tx: AbstractContextManager[Session], row: object) -> None:
    with tx as s:
        s.add(row)
        s.flush()


def _superuser_rows(pg_server: PgCluster, dbname: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    with pg_server.admin(dbname) as conn:
        for table in _AUDIT_TABLES:
            stmt = sql.SQL("SELECT tenant_id, count(*) FROM {} GROUP BY 1").format(
                sql.Identifier(table)
            )
            out[table] = {str(t): int(n) for t, n in conn.execute(stmt).fetchall()}
    return out


def test_the_log_works_end_to_end_as_the_service_role(
    pg_rt: Runtime, pg_client: TestClient, pg_world: World, tmp_path: Path
) -> None:
    grant = _fill(pg_rt, pg_client, pg_world)
    entries = audit_entries(pg_rt, INSTALLATION_LOG)
    actions = [e["action"] for e in entries]
    assert actions[:2] == ["operator.create", "operator.key.issue"]
    mirrored = [e["action"] for e in entries if e["detail"].get("break_glass") == grant]
    assert mirrored == ["break_glass.request", "break_glass.approve", "break_glass.use"]
    assert {e["tenant"] for e in entries} == {INSTALLATION_LOG}
    key = _installation_log.log_key(pg_rt)
    _installation_log.export(pg_rt, tmp_path / "bundle", actor="cli:pg")
    verdict = verify_bundle(tmp_path / "bundle", trusted_key=key)
    assert verdict.ok, verdict.lines()
    # The tenant's log keeps its own entries and none of the installation's.
    tenant = audit_entries(pg_rt, pg_world.a.id)
    assert {e["tenant"] for e in tenant} == {pg_world.a.id}
    assert not [e for e in tenant if e["action"].startswith(("operator.", "authn.operator"))]


def test_row_level_security_walls_the_installation_log_like_a_tenants(
    pg_server: PgCluster, pg_database: str, pg_rt: Runtime, pg_client: TestClient, pg_world: World
) -> None:
    _fill(pg_rt, pg_client, pg_world)
    a = pg_world.a
    truth = _superuser_rows(pg_server, pg_database)
    for table in _AUDIT_TABLES:
        assert truth[table].get(INSTALLATION_LOG, 0) > 0, table
        assert truth[table].get(a.id, 0) > 0, table
    # Each transaction sees exactly its own log's rows, even with no tenant filter.
    for owner in (a.id, INSTALLATION_LOG):
        with pg_rt.db.tenant_tx(owner) as s:
            for table in _AUDIT_TABLES:
                stmt = text(f"SELECT tenant_id FROM {table}")  # noqa: S608 - names from a constant
                seen = s.execute(stmt).scalars().all()
                assert set(seen) == {owner}, (owner, table)
                assert len(seen) == truth[table][owner], (owner, table)
    with pg_rt.db.tenant_tx(INSTALLATION_LOG) as s:
        for table in ("deployments", "calls", "principals", "break_glass_grants"):
            assert s.execute(_count(table)).scalar_one() == 0, table
    with pg_rt.db.system_tx() as s:
        for table in _AUDIT_TABLES:
            assert s.execute(_count(table)).scalar_one() == 0, table
    # A tenant's transaction can neither write the installation log nor move its head.
    forged = AuditEntry(tenant_id=INSTALLATION_LOG, idx=10**6, created_at=utcnow(), entry=b"{}")
    with pytest.raises(DBAPIError, match="row-level security"):
        _insert(pg_rt.db.tenant_tx(a.id), forged)
    with pg_rt.db.tenant_tx(a.id) as s:
        hit = s.execute(
            text("UPDATE audit_heads SET size = 0 WHERE tenant_id = :t"), {"t": INSTALLATION_LOG}
        )
        assert hit.rowcount == 0  # type: ignore[attr-defined]
    # Nor the other way round.
    forged = AuditEntry(tenant_id=a.id, idx=10**6, created_at=utcnow(), entry=b"{}")
    with pytest.raises(DBAPIError, match="row-level security"):
        _insert(pg_rt.db.tenant_tx(INSTALLATION_LOG), forged)
    assert _superuser_rows(pg_server, pg_database) == truth
    # The directory (background jobs) lists the row; the operator listing leaves it out.
    with pg_rt.db.directory_tx() as s:
        assert INSTALLATION_LOG in set(s.execute(text("SELECT id FROM tenants")).scalars())
    op = make_operator(pg_rt, f"pg-{uuid.uuid4().hex[:8]}", OperatorRole.SUPPORT_READONLY)
    listed = pg_client.get("/v1/operator/tenants", headers=_auth(op.token))
    assert listed.status_code == 200, listed.text
    assert INSTALLATION_LOG not in {t["id"] for t in listed.json()}


@pytest.mark.parametrize("statement", _TAMPER)
def test_installation_history_is_write_once_for_the_service_and_the_owner(
    pg_server: PgCluster,
    pg_database: str,
    pg_rt: Runtime,
    pg_client: TestClient,
    pg_world: World,
    statement: str,
) -> None:
    _fill(pg_rt, pg_client, pg_world)
    before = _superuser_rows(pg_server, pg_database)
    with (
        pytest.raises(DatabaseError, match="permission denied"),
        pg_rt.db.tenant_tx(INSTALLATION_LOG) as s,
    ):
        s.execute(text(statement))
    assert _superuser_rows(pg_server, pg_database) == before
    if "audit_log_keys" in statement:
        return  # the owner's wall there is the grants alone (as for tenants' keys)
    url = pg_server.url(pg_database, user=OWNER_ROLE).replace("+psycopg", "")
    with psycopg.connect(url) as c:
        c.execute("SELECT set_config('callvault.tenant_id', %s, false)", (INSTALLATION_LOG,))
        with pytest.raises(psycopg.Error, match="insert-only"):
            c.execute(statement)
    assert _superuser_rows(pg_server, pg_database) == before


def test_no_principal_or_deployment_can_be_put_under_the_installation_id(
    pg_server: PgCluster, pg_database: str, pg_rt: Runtime
) -> None:
    _installation_log.log_key(pg_rt)  # the row exists
    now = utcnow()
    rows = [
        Principal(
            id=new_id("prn"),
            tenant_id=INSTALLATION_LOG,
            kind="user",
            name="intruder",
            active=True,
            created_at=now,
        ),
        Deployment(
            id=new_id("dep"),
            tenant_id=INSTALLATION_LOG,
            name="intruder",
            region="eu-west-2",
            recording_retention_days=1,
            transcript_retention_days=1,
            key_provider="local",
            created_at=now,
        ),
    ]
    for row in rows:
        with pytest.raises(DBAPIError, match="holds no principals"):
            _insert(pg_rt.db.tenant_tx(INSTALLATION_LOG), row)
    # The owner role is refused too (the trigger is not a grant).
    url = pg_server.url(pg_database, user=OWNER_ROLE).replace("+psycopg", "")
    with psycopg.connect(url) as c:
        c.execute("SELECT set_config('callvault.tenant_id', %s, false)", (INSTALLATION_LOG,))
        with pytest.raises(psycopg.Error, match="holds no principals"):
            c.execute(
                "INSERT INTO principals (id, tenant_id, kind, name, active, created_at)"
                " VALUES (%s, %s, 'user', 'x', true, now())",
                (new_id("prn"), INSTALLATION_LOG),
            )
    with pg_server.admin(pg_database) as conn:
        for table in ("principals", "deployments"):
            stmt = sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(
                sql.Identifier(table)
            )
            assert conn.execute(stmt, (INSTALLATION_LOG,)).fetchone() == (0,)


def test_mirrors_and_group_commits_race_without_deadlock_and_the_log_verifies(
    pg_rt: Runtime, pg_world: World, tmp_path: Path
) -> None:
    """Break-glass requests in two tenants (installation head, then the tenant's, in one
    transaction) race refused sign-ins (group commit, in id order) and lifecycle changes."""
    a, b = pg_world.a, pg_world.b
    engineers = [
        make_operator(pg_rt, f"race-{uuid.uuid4().hex[:8]}", OperatorRole.SUPPORT_ENGINEER)
        for _ in range(2)
    ]
    start = {t: audit_size(pg_rt, t) for t in (a.id, b.id, INSTALLATION_LOG)}

    def ask(n: int) -> str:
        tw = (a, b)[n % 2]
        op = engineers[n % 2]
        with pg_rt.db.tenant_tx(tw.id) as s:
            row = request(
                s,
                pg_rt.sealer,
                pg_rt.audit,
                operator_id=op.id,
                tenant_id=tw.id,
                deployment_id=tw.deployments[0],
                reason=REASON,
                ticket_ref=f"RACE-{n}",
                duration=timedelta(minutes=5),
                now=utcnow(),
                actor=operators.Actor(op.id, "operator"),
            )
            return row.id

    def refuse(n: int) -> str:
        token = f"cvop1.opk_{'z' * 26}.{'A' * 43}"
        with pytest.raises(AuthenticationError):
            operators.sign_in(pg_rt, token, f"race-{n}")
        return "refused"

    def change(n: int) -> str:
        _admin.set_role(pg_rt, engineers[n % 2].id, OperatorRole.SUPPORT_ENGINEER, actor="cli:r")
        return "changed"

    work = [(ask, n) for n in range(12)] + [(refuse, n) for n in range(12)]
    work += [(change, n) for n in range(6)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda job: job[0](job[1]), work))
    grants = {r for r in results if r.startswith("bgr_")}
    assert len(grants) == 12
    log = audit_entries(pg_rt, INSTALLATION_LOG, start[INSTALLATION_LOG])
    assert len(log) == 12 + 12 + 6
    assert {e["detail"]["break_glass"] for e in log if e["action"] == "break_glass.request"} == (
        grants
    )
    assert sum(e["action"] == "authn.operator_key" for e in log) == 12
    for tw in (a, b):
        asked = [
            e
            for e in audit_entries(pg_rt, tw.id, start[tw.id])
            if e["action"] == "break_glass.request"
        ]
        assert len(asked) == 6
    key = _installation_log.log_key(pg_rt)
    _installation_log.export(pg_rt, tmp_path / "bundle", actor="cli:pg")
    verdict = verify_bundle(tmp_path / "bundle", trusted_key=key)
    assert verdict.ok, verdict.lines()
