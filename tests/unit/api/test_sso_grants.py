"""What SSO connections may grant, and taking it back when a connection changes or goes.

- A login that would newly link to a SCIM user holding ``owner`` is refused
  unless the connection allows owners (``owner-not-allowed``), audited.
- Deleting a connection removes every binding it granted at logins; changing
  its mapping removes those no rule or default can give any more; both
  audited per binding, both at once (the user's live session loses them).
  Bindings an administrator made stay.
"""

from __future__ import annotations

from typing import Any

from callvault import access
from callvault.access import Role, ScopeKind
from tests.unit.api._harness import audit_entries
from tests.unit.api.test_sso_login import (
    EMAIL,
    Env,
    bindings,
    connection,
    login,
    reason,
)
from tests.unit.api.test_sso_login import env as env  # noqa: PLC0414 - the fixture, reused

CONNS = "/v1/tenant/sso/connections"


def _scim_user(env: Env) -> str:
    r = env.client.post("/v1/tenant/scim-tokens", headers=env.owner, json={"label": "okta"})
    scim = {"Authorization": f"Bearer {r.json()['token']}", "Content-Type": "application/scim+json"}
    user = env.client.post(
        f"/scim/v2/{env.tenant}/Users",
        headers=scim,
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": EMAIL},
    )
    assert user.status_code == 201, user.text
    return str(user.json()["id"])


def _bind(env: Env, pid: str, role: Role) -> None:
    with env.rt.db.tenant_tx(env.tenant) as s:
        access.bind_role(
            s, env.tenant, pid, role, ScopeKind.TENANT, env.tenant, created_by="prn_" + "a" * 26
        )


def _unbinds(env: Env) -> list[dict[str, Any]]:
    return [e for e in audit_entries(env.rt, env.tenant) if e["action"] == "principal.unbind_role"]


def _oidc_login(env: Env, conn: str, *groups: str) -> Any:
    return login(env, conn, groups=groups, protocol="oidc", email=EMAIL, email_verified=True)


def test_a_new_link_to_an_owner_is_refused_unless_the_connection_allows_owners(env: Env) -> None:
    pid = _scim_user(env)
    _bind(env, pid, Role.OWNER)
    conn = connection(env, "oidc", link_scim="email", jit=False)
    r = _oidc_login(env, conn, "cv-admins")
    assert r.status_code == 403
    assert reason(r) == "owner-not-allowed"
    failure = [e for e in audit_entries(env.rt, env.tenant) if e["action"] == "authn.sso"][-1]
    assert failure["outcome"] == "failure"
    assert failure["detail"]["reason"] == "owner-not-allowed"
    assert bindings(env, pid) == {("owner", "tenant", env.tenant, "prn_" + "a" * 26)}
    allowing = connection(env, "oidc", link_scim="email", jit=False, allow_owner=True)
    assert _oidc_login(env, allowing, "cv-admins").status_code == 303


def test_deleting_a_connection_takes_back_what_it_granted(env: Env) -> None:
    pid = _scim_user(env)
    _bind(env, pid, Role.AUDITOR)  # an administrator's grant: stays
    conn = connection(env, "oidc", link_scim="email", jit=False)
    assert _oidc_login(env, conn, "cv-admins", "cv-qa").status_code == 303
    roles = {(role, by) for role, _, _, by in bindings(env, pid)}
    assert roles == {("admin", conn), ("qa_reviewer", conn), ("auditor", "prn_" + "a" * 26)}
    r = env.client.delete(f"{CONNS}/{conn}", headers=env.owner)
    assert r.status_code == 204, r.text
    assert {role for role, _, _, _ in bindings(env, pid)} == {"auditor"}
    gone = _unbinds(env)
    assert sorted(e["detail"]["role"] for e in gone) == ["admin", "qa_reviewer"]
    assert {e["detail"]["source"] for e in gone} == {"sso-connection-deleted"}
    assert {e["resource"]["id"] for e in gone} == {pid}
    deleted = [
        e for e in audit_entries(env.rt, env.tenant) if e["action"] == "sso_connection.delete"
    ]
    assert deleted[-1]["detail"]["roles_withdrawn"] == 2


def test_a_mapping_change_takes_back_what_no_rule_gives_any_more(env: Env) -> None:
    pid = _scim_user(env)
    conn = connection(env, "oidc", link_scim="email", jit=False)
    assert _oidc_login(env, conn, "cv-admins", "cv-qa").status_code == 303
    assert env.client.get("/v1/principals").status_code == 200  # admin, by the session
    r = env.client.patch(
        f"{CONNS}/{conn}",
        headers=env.owner,
        json={
            "role_mappings": [
                {
                    "group": "cv-qa",
                    "role": "qa_reviewer",
                    "scope_kind": "deployment",
                    "scope_id": env.dep,
                }
            ]
        },
    )
    assert r.status_code == 200, r.text
    assert {role for role, _, _, _ in bindings(env, pid)} == {"qa_reviewer"}
    assert env.client.get("/v1/principals").status_code in {403, 404}  # the same session
    (entry,) = _unbinds(env)
    assert entry["detail"]["source"] == "sso-mapping-changed"
    assert entry["detail"]["role"] == "admin"
    # A change that leaves every granted binding givable withdraws nothing.
    r = env.client.patch(f"{CONNS}/{conn}", headers=env.owner, json={"name": "renamed"})
    assert r.status_code == 200
    assert len(_unbinds(env)) == 1
