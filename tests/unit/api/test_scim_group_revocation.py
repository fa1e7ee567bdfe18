"""A user who leaves a group over SCIM loses, at once, the roles SSO granted for that group.

Roles come from the groups the IdP asserts at login (the SSO test double
here); between logins the IdP's SCIM client reports group changes. Removing
a member, deleting the group or renaming it away from the mapped name takes
back the bindings the connection granted for that name (unless another SCIM
group the user is still in gives the same binding), in the SCIM request's
transaction, audited; the user's live session loses the role on its next
request. Bindings an administrator made, claim rules and other groups are
untouched; adding a member grants nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from callvault import access
from callvault.access import Role, ScopeKind
from tests.unit.api._harness import audit_entries
from tests.unit.api.test_sso_login import EMAIL, Env, bindings, connection, login
from tests.unit.api.test_sso_login import env as sso_env  # noqa: F401 - the fixture, reused

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTRA_OBJECT_ID = "5f1c7b8e-2d4a-4c1e-9b7f-0a1b2c3d4e5f"


@dataclass
class Setup:
    env: Env
    scim: dict[str, str]
    pid: str
    conn: str
    groups: dict[str, str]  # display name -> SCIM group id

    def group(self, name: str, members: list[str], external_id: str | None = None) -> str:
        doc: dict[str, Any] = {
            "schemas": [GROUP],
            "displayName": name,
            "members": [{"value": m} for m in members],
        }
        if external_id:
            doc["externalId"] = external_id
        r = self.env.client.post(f"/scim/v2/{self.env.tenant}/Groups", headers=self.scim, json=doc)
        assert r.status_code == 201, r.text
        self.groups[name] = r.json()["id"]
        return str(r.json()["id"])

    def patch_group(self, name: str, *ops: dict[str, Any]) -> None:
        r = self.env.client.patch(
            f"/scim/v2/{self.env.tenant}/Groups/{self.groups[name]}",
            headers=self.scim,
            json={"schemas": [PATCH], "Operations": list(ops)},
        )
        assert r.status_code == 200, r.text

    def remove_member(self, name: str) -> None:
        self.patch_group(name, {"op": "remove", "path": f'members[value eq "{self.pid}"]'})

    def held(self) -> set[tuple[str, str]]:
        return {(role, scope_kind) for role, scope_kind, _, _ in bindings(self.env, self.pid)}

    def unbinds(self) -> list[dict[str, Any]]:
        return [
            e
            for e in audit_entries(self.env.rt, self.env.tenant)
            if e["action"] == "principal.unbind_role"
        ]


RULES = [
    {"group": "cv-admins", "role": "admin"},
    {"group": "cv-leads", "role": "admin"},
    {"group": ENTRA_OBJECT_ID, "role": "auditor"},
    {"claim": "department", "value": "quality", "role": "admin"},
]


@pytest.fixture
def setup(sso_env: Env) -> Setup:  # noqa: F811 - the imported fixture, by name
    env = sso_env
    r = env.client.post("/v1/tenant/scim-tokens", headers=env.owner, json={"label": "okta"})
    scim = {"Authorization": f"Bearer {r.json()['token']}", "Content-Type": "application/scim+json"}
    user = env.client.post(
        f"/scim/v2/{env.tenant}/Users",
        headers=scim,
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": EMAIL},
    )
    assert user.status_code == 201, user.text
    pid = str(user.json()["id"])
    rules = [
        *RULES,
        {"group": "cv-qa", "role": "qa_reviewer", "scope_kind": "deployment", "scope_id": env.dep},
    ]
    conn = connection(env, "oidc", link_scim="email", jit=False, role_mappings=rules)
    return Setup(env, scim, pid, conn, {})


def _login(st: Setup, *groups: str) -> None:
    r = login(st.env, st.conn, groups=groups, protocol="oidc", email=EMAIL, email_verified=True)
    assert r.status_code == 303, r.text  # the session cookie is now in the client's jar


def test_removing_a_member_takes_back_the_role_at_once(setup: Setup) -> None:
    st = setup
    st.group("cv-admins", [st.pid])
    st.group("cv-qa", [st.pid])
    _login(st, "cv-admins", "cv-qa")
    assert st.held() == {("admin", "tenant"), ("qa_reviewer", "deployment")}
    assert st.env.client.get("/v1/principals").status_code == 200  # admin, by the session
    st.remove_member("cv-admins")
    assert st.held() == {("qa_reviewer", "deployment")}
    # The same session, at once: refused (a caller with no tenant-wide role gets the
    # API's answer for a tenant-level list it may not see).
    assert st.env.client.get("/v1/principals").status_code in {403, 404}
    (entry,) = st.unbinds()[-1:]
    assert entry["actor"] == entry["detail"]["token"]  # the SCIM token that made the change
    assert entry["resource"]["id"] == st.pid
    assert entry["detail"]["source"] == "scim-group"
    assert entry["detail"]["connection"] == st.conn
    assert entry["detail"]["group"] == st.groups["cv-admins"]
    assert entry["detail"]["role"] == "admin"
    group_entry = [
        e for e in audit_entries(st.env.rt, st.env.tenant) if e["action"] == "scim.group.patch"
    ][-1]
    assert group_entry["detail"]["roles_revoked_count"] == 1
    assert "cv-admins" not in str(audit_entries(st.env.rt, st.env.tenant))  # names stay sealed


def test_a_role_another_scim_group_still_gives_is_kept(setup: Setup) -> None:
    st = setup
    st.group("cv-admins", [st.pid])
    st.group("cv-leads", [st.pid])
    _login(st, "cv-admins", "cv-leads")
    st.remove_member("cv-admins")
    assert st.held() == {("admin", "tenant")}
    assert st.unbinds() == []
    st.remove_member("cv-leads")
    assert st.held() == set()


def test_deleting_or_renaming_the_group_takes_back_its_role(setup: Setup) -> None:
    st = setup
    st.group("cv-admins", [st.pid])
    st.group("cv-qa", [st.pid])
    _login(st, "cv-admins", "cv-qa")
    st.patch_group("cv-qa", {"op": "replace", "path": "displayName", "value": "cv-qa-archive"})
    assert st.held() == {("admin", "tenant")}
    r = st.env.client.delete(
        f"/scim/v2/{st.env.tenant}/Groups/{st.groups['cv-admins']}", headers=st.scim
    )
    assert r.status_code == 204
    assert st.held() == set()
    assert [e["detail"]["role"] for e in st.unbinds()] == ["qa_reviewer", "admin"]


def test_a_group_asserted_by_object_id_matches_the_scim_external_id(setup: Setup) -> None:
    """Entra asserts group object ids; its SCIM client sends that id as ``externalId``."""
    st = setup
    st.group("Auditors", [st.pid], external_id=ENTRA_OBJECT_ID)
    _login(st, ENTRA_OBJECT_ID)
    assert st.held() == {("auditor", "tenant")}
    st.remove_member("Auditors")
    assert st.held() == set()


def test_unmapped_groups_admin_bindings_and_new_members_change_nothing(setup: Setup) -> None:
    st = setup
    st.group("cv-admins", [])
    st.group("payroll", [st.pid])
    _login(st, "cv-qa")
    with st.env.rt.db.tenant_tx(st.env.tenant) as s:  # an administrator's own grant
        access.bind_role(
            s, st.env.tenant, st.pid, Role.ADMIN, ScopeKind.TENANT, st.env.tenant,
            created_by="prn_" + "a" * 26,
        )  # fmt: skip
    before = st.held()
    assert before == {("admin", "tenant"), ("qa_reviewer", "deployment")}
    st.patch_group("cv-admins", {"op": "add", "path": "members", "value": [{"value": st.pid}]})
    assert st.held() == before  # joining a group grants nothing without the IdP's assertion
    st.remove_member("cv-admins")  # the admin binding is the administrator's, not the IdP's
    st.remove_member("payroll")
    assert st.held() == before
    assert st.unbinds() == []
