"""Principals' lifecycle through the API: keys for owners, deactivation, removing bindings.

- ``POST /v1/principals/{id}/keys`` for a principal holding ``owner`` (at any scope)
  needs ``principal:grant_owner``: an admin minting one would act as an owner.
- ``PATCH /v1/principals/{id}`` ``{"active": false}`` revokes the principal's API keys
  and ends its browser sessions in the same transaction; never the tenant's last
  active owner; a SCIM user is activated only by its IdP.
- ``DELETE /v1/principals/{id}/roles/{binding}`` takes a role away at once; never
  the tenant's last owner binding.

Every refusal writes nothing; a change is one audit entry with ids and counts only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from callvault import access
from callvault.access import Role, ScopeKind
from callvault.errors import ConflictError
from callvault.store import new_id
from callvault.store.models import ApiKey, RoleBinding
from callvault.store.models import Principal as PrincipalRow
from tests.unit.api._harness import audit_entries, audit_size, auth, problem_json, row_counts
from tests.unit.sessions._env import (
    Env,
    cookie,
    open_for,
    other_tenant,
    principal,
    session_env,
    session_row,
)

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with session_env(tmp_path) as e:
        yield e


def _key(env: Env, principal_id: str, tenant: str | None = None) -> tuple[str, dict[str, str]]:
    """A new API key of the principal: its id and bearer headers."""
    t = tenant or env.tenant
    with env.rt.db.tenant_tx(t) as s:
        issued = access.issue_key(s, t, principal_id, label="k", ttl=timedelta(days=1))
    return issued.id, auth(issued.token)


def _bind(env: Env, principal_id: str, role: Role, kind: ScopeKind, scope: str) -> str:
    with env.rt.db.tenant_tx(env.tenant) as s:
        return access.bind_role(
            s, env.tenant, principal_id, role, kind, scope, created_by="test:lifecycle"
        ).id


def _binding_of(env: Env, principal_id: str, role: str, tenant: str | None = None) -> str:
    t = tenant or env.tenant
    with env.rt.db.tenant_tx(t) as s:
        return next(b.id for b in access.list_bindings(s, t, principal_id) if b.role == role)


def _deployment(env: Env) -> str:
    r = env.client.post(
        "/v1/deployments", headers=env.owner, json={"name": "d", "region": "eu-west-1"}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _patch(env: Env, pid: str, *, active: Any, headers: dict[str, str] | None = None) -> Any:
    return env.client.patch(
        f"/v1/principals/{pid}", headers=headers or env.owner, json={"active": active}
    )


def _unbind(env: Env, pid: str, binding: str, headers: dict[str, str] | None = None) -> Any:
    return env.client.delete(f"/v1/principals/{pid}/roles/{binding}", headers=headers or env.owner)


def _me(env: Env, creds: dict[str, str]) -> int:
    status = int(env.client.get("/v1/session", headers=creds).status_code)
    env.client.cookies.clear()
    return status


def _new_entries(env: Env, start: int, tenant: str | None = None) -> list[dict[str, Any]]:
    return audit_entries(env.rt, tenant or env.tenant, start)


def _changes(env: Env, start: int) -> list[dict[str, Any]]:
    """The ``principal.*`` entries from ``start`` (refused logins are entries too)."""
    return [e for e in _new_entries(env, start) if e["action"].startswith("principal.")]


def _keys_of(env: Env, pid: str) -> int:
    with env.rt.db.tenant_tx(env.tenant) as s:
        return int(
            s.execute(
                select(func.count()).select_from(ApiKey).where(ApiKey.principal_id == pid)
            ).scalar_one()
        )


def _state(env: Env) -> dict[str, int]:
    """Rows per table, the audit log's aside (a denial writes its entry)."""
    counts = row_counts(env.rt)
    return {k: v for k, v in counts.items() if not k.startswith("audit_")}


# -- keys for owners -------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["tenant", "deployment"])
def test_an_admin_cannot_mint_a_key_for_an_owner(env: Env, scope: str) -> None:
    _, admin = principal(env, "admin", "admin", key=True)
    assert admin is not None
    if scope == "tenant":
        target, _ = principal(env, "second-owner", "owner")
    else:  # owner at any scope: a key of it acts as that owner
        target, _ = principal(env, "dep-owner", None)
        _bind(env, target, Role.OWNER, ScopeKind.DEPLOYMENT, _deployment(env))
    before, start = _state(env), audit_size(env.rt, env.tenant)
    r = env.client.post(f"/v1/principals/{target}/keys", headers=admin, json={"label": "x"})
    assert r.status_code == 403, r.text  # not 503: refused before anything was written
    assert problem_json(r)["type"].endswith(":forbidden")
    assert _keys_of(env, target) == 0
    assert _state(env) == before
    [denied] = _new_entries(env, start)
    assert (denied["action"], denied["outcome"]) == ("principal:grant_owner", "denied")
    # The owner may, and the key acts as that owner.
    r = env.client.post(f"/v1/principals/{target}/keys", headers=env.owner, json={"label": "x"})
    assert r.status_code == 201, r.text
    assert _keys_of(env, target) == 1
    as_target = env.client.get("/v1/principals", headers=auth(r.json()["token"]))
    assert as_target.status_code == (200 if scope == "tenant" else 404)


def test_an_admin_still_mints_keys_for_everyone_else(env: Env) -> None:
    _, admin = principal(env, "admin", "admin", key=True)
    assert admin is not None
    for name, role in (("peer-admin", "admin"), ("svc", "ingest"), ("nobody", None)):
        target, _ = principal(env, name, role, kind="service")
        r = env.client.post(f"/v1/principals/{target}/keys", headers=admin, json={})
        assert r.status_code == 201, (name, r.text)


# -- deactivation ----------------------------------------------------------------------------


def test_deactivating_revokes_keys_and_ends_sessions_at_once(env: Env) -> None:
    target, _ = principal(env, "leaver", "admin")
    key_id, key = _key(env, target)
    other_key_id, _ = _key(env, target)
    one, two = open_for(env, target), open_for(env, target, method="saml")
    assert env.client.get("/v1/principals", headers=key).status_code == 200
    assert _me(env, cookie(one)) == 200
    start = audit_size(env.rt, env.tenant)
    r = _patch(env, target, active=False)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == target
    assert r.json()["active"] is False
    assert [b["role"] for b in r.json()["bindings"]] == ["admin"]  # bindings stay
    # The very next request of each credential is refused.
    assert env.client.get("/v1/principals", headers=key).status_code == 401
    assert (_me(env, cookie(one)), _me(env, cookie(two))) == (401, 401)
    row = session_row(env, one.id)
    assert (row.end_reason, row.ended_by) == ("principal-deactivated", env.owner_id)
    [entry] = _changes(env, start)
    assert (entry["action"], entry["outcome"], entry["actor"]) == (
        "principal.deactivate",
        "success",
        env.owner_id,
    )
    assert entry["resource"] == {"kind": "principal", "id": target}
    assert entry["detail"] == {
        "keys": sorted([key_id, other_key_id]),
        "keys_revoked": 2,
        "sessions_revoked": 2,
    }
    assert "leaver" not in str(entry)  # ids and counts, never a name


def test_activating_again_restores_no_key_and_is_audited(env: Env) -> None:
    target, key = principal(env, "returner", "admin", key=True)
    assert key is not None
    assert _patch(env, target, active=False).status_code == 200
    start = audit_size(env.rt, env.tenant)
    r = _patch(env, target, active=True)
    assert r.status_code == 200, r.text
    assert r.json()["active"] is True
    [entry] = _changes(env, start)
    assert entry["action"] == "principal.activate"
    assert entry["detail"] == {"keys": [], "keys_revoked": 0, "sessions_revoked": 0}
    assert env.client.get("/v1/principals", headers=key).status_code == 401
    _, fresh = _key(env, target)
    assert env.client.get("/v1/principals", headers=fresh).status_code == 200


def test_a_no_op_answers_200_and_writes_nothing(env: Env) -> None:
    target, _ = principal(env, "steady", "auditor")
    _key(env, target)
    before, start = _state(env), audit_size(env.rt, env.tenant)
    r = _patch(env, target, active=True)  # already active
    assert r.status_code == 200, r.text
    assert r.json()["active"] is True
    assert audit_size(env.rt, env.tenant) == start
    assert _state(env) == before
    assert _patch(env, target, active=False).status_code == 200
    start = audit_size(env.rt, env.tenant)
    r = _patch(env, target, active=False)  # already inactive
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False
    assert audit_size(env.rt, env.tenant) == start


def test_an_admin_cannot_deactivate_an_owner(env: Env) -> None:
    _, admin = principal(env, "admin", "admin", key=True)
    assert admin is not None
    owner, owner_key = principal(env, "second-owner", "owner", key=True)
    assert owner_key is not None
    peer, _ = principal(env, "peer", "admin")
    before, start = _state(env), audit_size(env.rt, env.tenant)
    r = _patch(env, owner, active=False, headers=admin)
    assert r.status_code == 403, r.text
    problem_json(r)
    assert _state(env) == before
    assert [(e["action"], e["outcome"]) for e in _new_entries(env, start)] == [
        ("principal:grant_owner", "denied")
    ]
    assert env.client.get("/v1/principals", headers=owner_key).status_code == 200
    # A principal holding no owner binding needs principal:manage only.
    assert _patch(env, peer, active=False, headers=admin).status_code == 200
    assert _patch(env, owner, active=False).status_code == 200  # an owner may


def test_the_last_active_owner_cannot_be_deactivated(env: Env) -> None:
    # An owner at deployment scope is no owner of the tenant; an inactive one counts for nothing.
    dep_owner, _ = principal(env, "dep-owner", None)
    _bind(env, dep_owner, Role.OWNER, ScopeKind.DEPLOYMENT, _deployment(env))
    gone, _ = principal(env, "gone-owner", "owner")
    assert _patch(env, gone, active=False).status_code == 200
    before, start = _state(env), audit_size(env.rt, env.tenant)
    r = _patch(env, env.owner_id, active=False)
    assert r.status_code == 409, r.text
    assert problem_json(r)["errors"][0]["field"] == "active"
    assert _state(env) == before
    assert audit_size(env.rt, env.tenant) == start
    assert env.client.get("/v1/tenant", headers=env.owner).status_code == 200
    # With a second active owner the first may go, and then the second is the last.
    second, second_key = principal(env, "second-owner", "owner", key=True)
    assert second_key is not None
    assert _patch(env, env.owner_id, active=False, headers=second_key).status_code == 200
    assert env.client.get("/v1/tenant", headers=env.owner).status_code == 401
    r = _patch(env, second, active=False, headers=second_key)
    assert r.status_code == 409, r.text
    assert env.client.get("/v1/tenant", headers=second_key).status_code == 200


def test_concurrent_deactivations_never_leave_the_tenant_without_an_owner(env: Env) -> None:
    """Two owners, each deactivated at the same moment: one wins, the other is refused."""
    second, _ = principal(env, "second-owner", "owner")
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def deactivate(pid: str) -> None:
        barrier.wait()
        try:
            with env.rt.db.tenant_tx(env.tenant) as s:
                access.change_active(s, env.tenant, pid, active=False, by="test:race")
            outcomes[pid] = "done"
        except ConflictError:
            outcomes[pid] = "conflict"

    threads = [threading.Thread(target=deactivate, args=(p,)) for p in (env.owner_id, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["conflict", "done"]
    with env.rt.db.tenant_tx(env.tenant) as s:
        active = {p.id for p in access.list_principals(s, env.tenant) if p.active}
    assert len(active & {env.owner_id, second}) == 1


def test_a_scim_user_is_activated_by_its_idp_only(env: Env) -> None:
    r = env.client.post("/v1/tenant/scim-tokens", headers=env.owner, json={"label": "idp"})
    assert r.status_code == 201, r.text
    scim = {"Authorization": f"Bearer {r.json()['token']}"}
    r = env.client.post(
        f"/scim/v2/{env.tenant}/Users",
        headers=scim,
        json={"schemas": [SCIM_USER], "userName": "jo@acme.example", "active": True},
    )
    assert r.status_code == 201, r.text
    uid = str(r.json()["id"])
    issued = open_for(env, uid)
    # Deactivating is a kill switch the tenant keeps.
    r = _patch(env, uid, active=False)
    assert r.status_code == 200, r.text
    assert _me(env, cookie(issued)) == 401
    got = env.client.get(f"/scim/v2/{env.tenant}/Users/{uid}", headers=scim)
    assert got.json()["active"] is False  # the IdP sees it on its next sync
    before, start = _state(env), audit_size(env.rt, env.tenant)
    r = _patch(env, uid, active=True)
    assert r.status_code == 409, r.text
    assert problem_json(r)["errors"][0]["field"] == "active"
    assert _state(env) == before
    assert audit_size(env.rt, env.tenant) == start
    with env.rt.db.tenant_tx(env.tenant) as s:
        assert access.get_principal(s, env.tenant, uid).active is False


def test_another_tenants_principal_is_not_found(env: Env) -> None:
    b, b_owner, b_headers = other_tenant(env)
    b_start = audit_size(env.rt, b)
    here = _patch(env, b_owner, active=False)
    nothing = _patch(env, new_id("prn"), active=False)
    assert (here.status_code, nothing.status_code) == (404, 404)
    assert _strip(problem_json(here)) == _strip(problem_json(nothing))
    assert env.client.get("/v1/tenant", headers=b_headers).status_code == 200
    assert audit_size(env.rt, b) == b_start  # nothing landed in the other tenant's log


def _strip(problem: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in problem.items() if k not in ("request_id", "instance")}


@pytest.mark.parametrize(
    "body",
    [
        {"active": "false"},
        {"active": 0},
        {"active": None},
        {},
        {"active": False, "name": "renamed"},
        [],
    ],
    ids=["string", "int", "null", "empty", "unknown-field", "array"],
)
def test_the_patch_body_is_strict(env: Env, body: Any) -> None:
    target, _ = principal(env, "strict", "auditor")
    before = _state(env)
    r = env.client.patch(f"/v1/principals/{target}", headers=env.owner, json=body)
    assert r.status_code == 422, r.text
    problem_json(r)
    assert _state(env) == before


# -- removing role bindings ------------------------------------------------------------------


def test_unbinding_takes_the_role_away_at_once(env: Env) -> None:
    target, key = principal(env, "demoted", "admin", key=True)
    assert key is not None
    issued = open_for(env, target)
    binding = _binding_of(env, target, "admin")
    assert env.client.get("/v1/principals", headers=key).status_code == 200
    assert env.client.get("/v1/principals", headers=cookie(issued)).status_code == 200
    start = audit_size(env.rt, env.tenant)
    r = _unbind(env, target, binding)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == target
    assert r.json()["bindings"] == []
    # The key and the session stay valid; the role is gone from the very next request.
    assert env.client.get("/v1/principals", headers=key).status_code == 404
    assert env.client.get("/v1/principals", headers=cookie(issued)).status_code == 404
    env.client.cookies.clear()
    [entry] = _changes(env, start)
    assert (entry["action"], entry["outcome"], entry["actor"]) == (
        "principal.unbind_role",
        "success",
        env.owner_id,
    )
    assert entry["resource"] == {"kind": "principal", "id": target}
    assert entry["detail"] == {
        "binding": binding,
        "role": "admin",
        "scope_kind": "tenant",
        "scope": env.tenant,
        "source": "api",
    }
    # Gone: removing it again is a 404.
    assert _unbind(env, target, binding).status_code == 404


def test_an_admin_cannot_remove_an_owner_binding(env: Env) -> None:
    _, admin = principal(env, "admin", "admin", key=True)
    assert admin is not None
    owner, _ = principal(env, "second-owner", "owner")
    binding = _binding_of(env, owner, "owner")
    before, start = _state(env), audit_size(env.rt, env.tenant)
    r = _unbind(env, owner, binding, admin)
    assert r.status_code == 403, r.text
    assert _state(env) == before
    assert [(e["action"], e["outcome"]) for e in _new_entries(env, start)] == [
        ("principal:grant_owner", "denied")
    ]
    assert _unbind(env, owner, binding).status_code == 200  # an owner may


def test_the_last_owner_binding_cannot_be_removed(env: Env) -> None:
    own_binding = _binding_of(env, env.owner_id, "owner")
    # An inactive owner's binding and an owner binding at deployment scope do not count.
    gone, _ = principal(env, "gone-owner", "owner")
    assert _patch(env, gone, active=False).status_code == 200
    dep_owner, _ = principal(env, "dep-owner", None)
    dep_binding = _bind(env, dep_owner, Role.OWNER, ScopeKind.DEPLOYMENT, _deployment(env))
    before, start = _state(env), audit_size(env.rt, env.tenant)
    r = _unbind(env, env.owner_id, own_binding)
    assert r.status_code == 409, r.text
    assert problem_json(r)["errors"][0]["field"] == "binding_id"
    assert _state(env) == before
    assert audit_size(env.rt, env.tenant) == start
    # Those other owner bindings can go: they are not what keeps the tenant reachable.
    assert _unbind(env, gone, _binding_of(env, gone, "owner")).status_code == 200
    assert _unbind(env, dep_owner, dep_binding).status_code == 200
    # A second active owner at tenant scope: now the first binding may go.
    second, second_key = principal(env, "second-owner", "owner", key=True)
    assert second_key is not None
    assert _unbind(env, env.owner_id, own_binding).status_code == 200
    assert env.client.get("/v1/principals", headers=env.owner).status_code == 404
    r = _unbind(env, second, _binding_of(env, second, "owner"), second_key)
    assert r.status_code == 409, r.text


def test_a_binding_of_another_principal_or_tenant_is_not_found(env: Env) -> None:
    b, b_owner, b_headers = other_tenant(env)
    b_binding = _binding_of(env, b_owner, "owner", tenant=b)
    mine, _ = principal(env, "mine", "auditor")
    theirs, _ = principal(env, "theirs", "auditor")
    their_binding = _binding_of(env, theirs, "auditor")
    answers = {
        "other tenant's principal and binding": _unbind(env, b_owner, b_binding),
        "nothing at all": _unbind(env, new_id("prn"), new_id("rb")),
    }
    assert {k: r.status_code for k, r in answers.items()} == dict.fromkeys(answers, 404)
    there, nothing = (_strip(problem_json(r)) for r in answers.values())
    assert there == nothing  # the wall: another tenant's ids answer like ids of nothing
    # Another principal's binding in this tenant, and another tenant's binding id: 404.
    for binding in (their_binding, b_binding):
        r = _unbind(env, mine, binding)
        assert r.status_code == 404, r.text
        assert problem_json(r)["errors"][0]["field"] == "binding_id"
    with env.rt.db.system_tx() as s:
        kept = {row.id for row in s.execute(select(RoleBinding)).scalars() if row.id == b_binding}
        assert kept == {b_binding}
        assert s.get(PrincipalRow, theirs) is not None
    assert env.client.get("/v1/principals", headers=b_headers).status_code == 200
    assert _binding_of(env, theirs, "auditor") == their_binding
