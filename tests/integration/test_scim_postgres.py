"""SCIM on PostgreSQL: the IdP replays, key revocation, and the row-level-security wall."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.runtime import Runtime
from callvault.store.models import ScimGroup, ScimToken, ScimUser
from tests.unit.scim.conftest import Tenant, make_tenant, new_group, new_user, patch, scim_asgi
from tests.unit.scim.test_idp_replay import ENTRA, OKTA, Step, _replay

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_scim(pg_rt: Runtime) -> Iterator[TestClient]:
    with TestClient(scim_asgi(pg_rt), base_url="https://testserver") as c:
        yield c


@pytest.mark.parametrize(("name", "steps"), [("okta", OKTA), ("entra", ENTRA)])
def test_identity_provider_sequences_replay_on_postgresql(
    pg_rt: Runtime, pg_scim: TestClient, name: str, steps: list[Step]
) -> None:
    t = make_tenant(pg_rt, pg_scim, name)
    saved = _replay(pg_scim, t, steps)
    assert saved["user"].startswith("prn_")


def test_deactivation_revokes_keys_on_postgresql(pg_rt: Runtime, pg_scim: TestClient) -> None:
    t = make_tenant(pg_rt, pg_scim, "acme")
    pid = str(new_user(pg_scim, t, "pg.user@example.com")["id"])
    r = pg_scim.post(
        f"/v1/principals/{pid}/roles",
        headers=t.owner,
        json={"role": "auditor", "scope": {"kind": "tenant", "id": t.id}},
    )
    assert r.status_code == 201, r.text
    key = pg_scim.post(f"/v1/principals/{pid}/keys", headers=t.owner, json={"label": "k"}).json()
    auth = {"Authorization": f"Bearer {key['token']}"}
    assert pg_scim.get("/v1/tenant", headers=auth).status_code == 200
    r = pg_scim.patch(
        f"{t.base}/Users/{pid}",
        headers=t.scim,
        json=patch({"op": "replace", "path": "active", "value": False}),
    )
    assert r.status_code == 200, r.text
    assert pg_scim.get("/v1/tenant", headers=auth).status_code == 401


def _rows(rt: Runtime, t: Tenant) -> tuple[set[str], set[str], set[str]]:
    with rt.db.tenant_tx(t.id) as s:
        # No tenant filter on purpose: the wall alone must confine these reads.
        users = set(s.execute(select(ScimUser.principal_id)).scalars())
        groups = set(s.execute(select(ScimGroup.id)).scalars())
        tokens = set(s.execute(select(ScimToken.id)).scalars())
    return users, groups, tokens


def test_scim_rows_stay_behind_the_tenant_wall(pg_rt: Runtime, pg_scim: TestClient) -> None:
    a, b = make_tenant(pg_rt, pg_scim, "a"), make_tenant(pg_rt, pg_scim, "b")
    ua = str(new_user(pg_scim, a, "same@example.com")["id"])
    ub = str(new_user(pg_scim, b, "same@example.com")["id"])
    ga = str(new_group(pg_scim, a, "G", [ua])["id"])
    assert _rows(pg_rt, a) == ({ua}, {ga}, {a.scim_token_id})
    assert _rows(pg_rt, b) == ({ub}, set(), {b.scim_token_id})
    assert pg_scim.get(f"{a.base}/Users/{ub}", headers=a.scim).status_code == 404
    assert pg_scim.get(f"{b.base}/Users", headers=a.scim).status_code == 401
