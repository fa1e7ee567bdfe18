"""Operators and break-glass on a real PostgreSQL server: the flow end to end as the
unprivileged service role, the row-level-security wall over break-glass requests, the
operator tables deliberately outside it, and expiry audited once under concurrency."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from callvault import operators
from callvault.operators import OperatorRole
from callvault.operators._break_glass import request
from callvault.runtime import Runtime
from callvault.store.models import BreakGlassGrant, utcnow
from tests.integration.pg import PgCluster
from tests.support.world import World
from tests.unit.api._harness import audit_entries, audit_size
from tests.unit.operators._support import make_operator

pytestmark = pytest.mark.postgres

REASON = "postgres: a customer ticket needs a look"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _pending(rt: Runtime, tenant: str, deployment: str, operator_id: str) -> str:
    with rt.db.tenant_tx(tenant) as s:
        row = request(
            s,
            rt.sealer,
            rt.audit,
            operator_id=operator_id,
            tenant_id=tenant,
            deployment_id=deployment,
            reason=REASON,
            ticket_ref="PG-1",
            duration=timedelta(minutes=30),
            now=utcnow(),
            actor=operators.Actor(operator_id, "operator"),
        )
        return row.id


def test_break_glass_end_to_end_as_the_service_role(
    pg_rt: Runtime, pg_client: TestClient, pg_world: World
) -> None:
    a = pg_world.a
    op = make_operator(pg_rt, f"pg-{uuid.uuid4().hex[:8]}", OperatorRole.SUPPORT_ENGINEER)
    base = f"/v1/operator/tenants/{a.id}"
    transcript = f"{base}/calls/{a.calls[0]}/transcript"
    assert pg_client.get(f"{base}/calls", headers=_auth(op.token)).status_code == 200
    # Listing tenants reads the directory (the one tenantless view PostgreSQL allows).
    tenants = pg_client.get("/v1/operator/tenants", headers=_auth(op.token))
    assert tenants.status_code == 200, tenants.text
    assert {t["id"] for t in tenants.json()} >= {a.id, pg_world.b.id}
    assert pg_client.get(transcript, headers=_auth(op.token)).status_code == 403
    start = audit_size(pg_rt, a.id)
    asked = pg_client.post(
        f"{base}/break-glass",
        headers=_auth(op.token),
        json={
            "deployment_id": a.deployments[0],
            "reason": REASON,
            "ticket_ref": "PG-2",
            "duration_minutes": 20,
        },
    )
    assert asked.status_code == 201, asked.text
    grant = asked.json()["id"]
    admin = _auth(a.tokens[("admin", "tenant")])
    listed = pg_client.get("/v1/tenant/break-glass?status=pending", headers=admin).json()
    assert [g["reason"] for g in listed if g["id"] == grant] == [REASON]
    approved = pg_client.post(f"/v1/tenant/break-glass/{grant}/approve", headers=admin)
    assert approved.status_code == 200, approved.text
    read = pg_client.get(transcript, headers=_auth(op.token))
    assert read.status_code == 200, read.text
    assert read.json()["view"] == "redacted"
    assert "twelfth of march" not in read.text
    other_dep = f"{base}/calls/{a.calls[1]}/transcript"
    assert pg_client.get(other_dep, headers=_auth(op.token)).status_code == 403
    assert (
        pg_client.post(f"/v1/tenant/break-glass/{grant}/revoke", headers=admin).status_code == 200
    )
    assert pg_client.get(transcript, headers=_auth(op.token)).status_code == 403
    steps = [
        (e["action"], e["detail"].get("break_glass"))
        for e in audit_entries(pg_rt, a.id, start)
        if e["action"].startswith(("break_glass.", "transcript:read_redacted"))
        and e["outcome"] in ("success", "allowed")
    ]
    assert steps == [
        ("break_glass.request", grant),
        ("break_glass.approve", grant),
        ("transcript:read_redacted", grant),
        ("break_glass.revoke", grant),
    ]


def test_break_glass_requests_are_walled_per_tenant(pg_rt: Runtime, pg_world: World) -> None:
    a, b = pg_world.a, pg_world.b
    op = make_operator(pg_rt, f"pg-{uuid.uuid4().hex[:8]}", OperatorRole.SUPPORT_ENGINEER)
    grant = _pending(pg_rt, a.id, a.deployments[0], op.id)
    # SQL that forgets its tenant filter still sees only the current tenant's rows.
    with pg_rt.db.tenant_tx(b.id) as s:
        assert s.execute(select(func.count()).select_from(BreakGlassGrant)).scalar_one() == 0
        assert s.get(BreakGlassGrant, grant) is None
    with pg_rt.db.system_tx() as s:
        assert s.execute(select(func.count()).select_from(BreakGlassGrant)).scalar_one() == 0
    with pg_rt.db.tenant_tx(a.id) as s:
        assert s.get(BreakGlassGrant, grant) is not None
    # Tenant b's transaction cannot change tenant a's row, nor write one into tenant a.
    with pg_rt.db.tenant_tx(b.id) as s:
        changed = s.execute(
            text("UPDATE break_glass_grants SET status = 'approved' WHERE id = :g"), {"g": grant}
        )
        assert changed.rowcount == 0  # type: ignore[attr-defined]
    with pytest.raises(DBAPIError, match="row-level security"), pg_rt.db.tenant_tx(b.id) as s:
        s.execute(
            text(
                "INSERT INTO break_glass_grants (id, tenant_id, deployment_id, operator_id,"
                " reason_sealed, ticket_ref, duration_minutes, status, requested_at, decide_by)"
                " VALUES ('bgr_x', :t, :d, :o, '\\x00', 'X', 1, 'approved', now(), now())"
            ),
            {"t": a.id, "d": a.deployments[0], "o": op.id},
        )
    with pg_rt.db.tenant_tx(a.id) as s:
        row = s.get(BreakGlassGrant, grant)
        assert row is not None
        assert row.status == "pending"


def test_the_catalog_walls_grants_and_leaves_operator_tables_installation_level(
    pg_rt: Runtime, pg_server: PgCluster, pg_database: str
) -> None:
    with pg_server.admin(pg_database) as conn:
        flags = {
            name: (rls, force)
            for name, rls, force in conn.execute(
                "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class"
                " WHERE relname IN ('operators', 'operator_keys', 'break_glass_grants')"
            ).fetchall()
        }
        policies = conn.execute(
            "SELECT policyname FROM pg_policies WHERE tablename = 'break_glass_grants'"
        ).fetchall()
    assert flags["break_glass_grants"] == (True, True)
    assert flags["operators"] == (False, False)
    assert flags["operator_keys"] == (False, False)
    assert [p[0] for p in policies] == ["tenant_wall"]
    # The service role can read operators without a tenant (authentication), but is not
    # their owner (it cannot re-grant itself anything).
    with pg_rt.db.engine.connect() as conn:
        owner = conn.execute(
            text("SELECT tableowner FROM pg_tables WHERE tablename = 'operators'")
        ).scalar_one()
        me = conn.execute(text("SELECT current_user")).scalar_one()
    assert owner != me


def test_concurrent_sweeps_audit_an_expiry_once(pg_rt: Runtime, pg_world: World) -> None:
    a = pg_world.a
    op = make_operator(pg_rt, f"pg-{uuid.uuid4().hex[:8]}", OperatorRole.SUPPORT_ENGINEER)
    grant = _pending(pg_rt, a.id, a.deployments[0], op.id)
    admin = operators.Actor(a.principals[("admin", "tenant")], "tenant")
    now = utcnow()
    with pg_rt.db.tenant_tx(a.id) as s:
        operators.approve(s, pg_rt.audit, a.id, grant, duration=None, now=now, actor=admin)
    later = now + timedelta(hours=1)
    start = audit_size(pg_rt, a.id)
    racers = 8
    barrier = threading.Barrier(racers)

    def sweep() -> list[str]:
        barrier.wait()
        with pg_rt.db.tenant_tx(a.id) as s:
            return operators.expire_due(s, pg_rt.audit, a.id, later)

    with ThreadPoolExecutor(racers) as pool:
        results = list(pool.map(lambda _: sweep(), range(racers)))
    assert sum(grant in r for r in results) == 1
    expired = [
        e
        for e in audit_entries(pg_rt, a.id, start)
        if e["action"] == "break_glass.expire" and e["resource"]["id"] == grant
    ]
    assert len(expired) == 1
