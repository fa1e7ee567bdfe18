"""The principal lifecycle routes on PostgreSQL with row-level security: owner-key gate,
deactivation, unbinding, last-owner refusals and the two-owner race."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from callvault import access
from callvault.errors import ConflictError
from callvault.runtime import Runtime
from tests.support.world import World

pytestmark = pytest.mark.postgres


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_routes_on_postgres(pg_rt: Runtime, pg_client: TestClient, pg_world: World) -> None:
    a, b = pg_world.a, pg_world.b
    admin = _h(a.tokens[("admin", "tenant")])
    owner = _h(a.owner_token)
    target = a.principals[("owner", "dep0")]  # holds owner at deployment scope
    r = pg_client.post(f"/v1/principals/{target}/keys", headers=admin, json={})
    assert r.status_code == 403, r.text
    r = pg_client.post(f"/v1/principals/{target}/keys", headers=owner, json={})
    assert r.status_code == 201, r.text
    # deactivate with keys and a session
    victim = a.principals[("qa_reviewer", "tenant")]
    tok = _h(a.tokens[("qa_reviewer", "tenant")])
    assert pg_client.get("/v1/calls", headers=tok).status_code == 200
    r = pg_client.patch(f"/v1/principals/{victim}", headers=admin, json={"active": False})
    assert r.status_code == 200, r.text
    assert pg_client.get("/v1/calls", headers=tok).status_code == 401
    r = pg_client.patch(f"/v1/principals/{victim}", headers=admin, json={"active": False})
    assert r.status_code == 200, r.text
    # an admin cannot deactivate an owner
    o2 = a.principals[("owner", "tenant")]
    r = pg_client.patch(f"/v1/principals/{o2}", headers=admin, json={"active": False})
    assert r.status_code == 403, r.text
    # unbind
    dev = a.principals[("developer", "tenant")]
    with pg_rt.db.tenant_tx(a.id) as s:
        bid = access.list_bindings(s, a.id, dev)[0].id
    r = pg_client.delete(f"/v1/principals/{dev}/roles/{bid}", headers=admin)
    assert r.status_code == 200, r.text
    assert (
        pg_client.get("/v1/tenant", headers=_h(a.tokens[("developer", "tenant")])).status_code
        == 404
    )
    # the wall
    bp = b.principals[("developer", "tenant")]
    with pg_rt.db.tenant_tx(b.id) as s:
        bbid = access.list_bindings(s, b.id, bp)[0].id
    r = pg_client.delete(f"/v1/principals/{bp}/roles/{bbid}", headers=owner)
    assert r.status_code == 404, r.text
    r = pg_client.patch(f"/v1/principals/{bp}", headers=owner, json={"active": False})
    assert r.status_code == 404, r.text
    # last owners: tenant a has the bootstrap owner and owner@tenant; deactivate both
    with pg_rt.db.tenant_tx(a.id) as s:
        owners = [
            p.id
            for p in access.list_principals(s, a.id)
            if any(
                bd.role == "owner" and bd.scope_kind == "tenant"
                for bd in access.list_bindings(s, a.id, p.id)
            )
        ]
    assert len(owners) == 2, owners
    barrier = threading.Barrier(2)
    out: dict[str, str] = {}

    def go(pid: str) -> None:
        barrier.wait()
        try:
            with pg_rt.db.tenant_tx(a.id) as s:
                access.change_active(s, a.id, pid, active=False, by="test")
            out[pid] = "done"
        except ConflictError:
            out[pid] = "conflict"

    ts = [threading.Thread(target=go, args=(p,)) for p in owners]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(out.values()) == ["conflict", "done"], out


@pytest.mark.parametrize("i", range(5))
def test_unbind_vs_deactivate_race(
    pg_rt: Runtime, pg_client: TestClient, pg_world: World, i: int
) -> None:
    a = pg_world.a
    with pg_rt.db.tenant_tx(a.id) as s:
        owners = [
            (p.id, bd.id)
            for p in access.list_principals(s, a.id)
            for bd in access.list_bindings(s, a.id, p.id)
            if bd.role == "owner" and bd.scope_kind == "tenant"
        ]
    (p1, b1), (p2, _b2) = owners
    barrier = threading.Barrier(2)
    out: dict[str, str] = {}

    def unbind() -> None:
        barrier.wait()
        try:
            with pg_rt.db.tenant_tx(a.id) as s:
                access.unbind_role(s, a.id, p1, b1)
            out["unbind"] = "done"
        except ConflictError:
            out["unbind"] = "conflict"

    def deactivate() -> None:
        barrier.wait()
        try:
            with pg_rt.db.tenant_tx(a.id) as s:
                access.change_active(s, a.id, p2, active=False, by="test")
            out["deactivate"] = "done"
        except ConflictError:
            out["deactivate"] = "conflict"

    ts = [threading.Thread(target=unbind), threading.Thread(target=deactivate)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(out.values()) == ["conflict", "done"], out
