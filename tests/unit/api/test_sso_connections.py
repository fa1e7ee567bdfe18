"""The SSO connection admin API: gated, audited, sealed, secrets never returned.

The protocol adapters are the test double of ``tests/unit/sso/_double.py``
(the real ones are tested against real IdPs in their own suites).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault import access
from callvault.access import Role, ScopeKind
from callvault.bootstrap import create_tenant_with_owner
from callvault.config import load_settings
from callvault.runtime import Runtime
from callvault.store.models import DataKey, SsoConnection
from tests.unit.api._harness import audit_entries, auth, problem_json, row_counts
from tests.unit.sso._double import SECRET, config, sso_asgi

BASE = "https://cv.example.test"
URL = "/v1/tenant/sso/connections"


class T:
    def __init__(self, rt: Runtime, name: str) -> None:
        init = create_tenant_with_owner(rt, tenant_name=name, owner_name=f"{name}-owner")
        self.id = init.tenant_id
        self.owner = auth(init.token)
        with rt.db.tenant_tx(self.id) as s:
            self.admin = self._key(s, Role.ADMIN, "admin")
            self.auditor = self._key(s, Role.AUDITOR, "auditor")
            self.qa = self._key(s, Role.QA_REVIEWER, "qa")

    def _key(self, s: Any, role: Role, name: str) -> dict[str, str]:
        p = access.create_principal(s, self.id, kind="user", name=name)
        access.bind_role(s, self.id, p.id, role, ScopeKind.TENANT, self.id, created_by="test")
        return auth(access.issue_key(s, self.id, p.id, label=name, ttl=timedelta(days=1)).token)


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime.open(
        load_settings({}, data_dir=tmp_path / "data", public_base_url=BASE), create_key=True
    )
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(sso_asgi(rt), base_url="https://testserver") as c:
        yield c


@pytest.fixture
def a(rt: Runtime) -> T:
    return T(rt, "acme")


@pytest.fixture
def b(rt: Runtime) -> T:
    return T(rt, "globex")


def body(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "protocol": "oidc",
        "name": "Entra",
        "config": config(),
        "role_mappings": [{"group": "cv-admins", "role": "admin"}],
    }
    doc.update(over)
    return doc


def create(client: TestClient, t: T, **over: Any) -> dict[str, Any]:
    r = client.post(URL, headers=t.owner, json=body(**over))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def test_created_connection_shows_urls_and_which_secrets_are_set_but_never_a_secret(
    client: TestClient, a: T
) -> None:
    out = create(client, a)
    assert out["secrets_set"] == ["shared_secret"]
    assert "shared_secret" not in out["config"]
    assert out["config"]["idp_url"].startswith("https://")
    root = f"{BASE}/sso/{a.id}/{out['id']}"
    assert out["urls"]["redirect_uri"] == f"{root}/oidc/callback"
    assert out["urls"]["login_url"] == f"{root}/login"
    listed = client.get(URL, headers=a.auditor)
    got = client.get(f"{URL}/{out['id']}", headers=a.auditor)
    for r in (listed, got):
        assert r.status_code == 200, r.text
        assert SECRET not in r.text


def test_saml_connection_gets_its_own_entity_id_and_acs_url(client: TestClient, a: T) -> None:
    one = create(client, a, protocol="saml")
    two = create(client, a, protocol="saml", name="second")
    assert one["urls"]["acs_url"] == f"{BASE}/sso/{a.id}/{one['id']}/saml/acs"
    assert one["urls"]["sp_entity_id"] != two["urls"]["sp_entity_id"]
    meta = client.get(f"/sso/{a.id}/{one['id']}/saml/metadata")
    assert meta.status_code == 200
    assert one["urls"]["acs_url"] in meta.text
    assert f'entityID="{one["urls"]["sp_entity_id"]}"' in meta.text


def test_config_is_sealed_at_rest(rt: Runtime, client: TestClient, a: T) -> None:
    out = create(client, a, role_mappings=[{"group": "Project Nightingale", "role": "admin"}])
    with rt.db.tenant_tx(a.id) as s:
        row = s.execute(select(SsoConnection).where(SsoConnection.id == out["id"])).scalar_one()
        assert SECRET.encode() not in row.settings_sealed
        assert b"Nightingale" not in row.settings_sealed


def test_adapter_config_error_is_422_naming_the_field(
    rt: Runtime, client: TestClient, a: T
) -> None:
    before = row_counts(rt)
    r = client.post(URL, headers=a.owner, json=body(config=config(shared_secret="short")))
    assert r.status_code == 422
    assert problem_json(r)["errors"][0]["field"] == "config.shared_secret"
    assert "short" not in r.text
    r = client.post(URL, headers=a.owner, json=body(config=config(redirect_uri="https://evil")))
    assert problem_json(r)["errors"][0]["field"] == "config.redirect_uri"
    assert row_counts(rt) == before


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"role_mappings": [{"group": "g", "role": "wizard"}]}, "role_mappings[0].role"),
        ({"default_role": "wizard"}, "default_role.role"),
        ({"post_login_path": "//evil.example/"}, "post_login_path"),
        ({"post_login_path": "https://evil.example/"}, "post_login_path"),
        (
            {
                "role_mappings": [
                    {
                        "group": "g",
                        "role": "qa_reviewer",
                        "scope_kind": "deployment",
                        "scope_id": "dep_" + "q" * 26,
                    }
                ]
            },
            "role_mappings",
        ),
    ],
)
def test_bad_connection_is_refused_and_nothing_is_created(
    rt: Runtime, client: TestClient, a: T, over: dict[str, Any], field: str
) -> None:
    before = row_counts(rt)
    r = client.post(URL, headers=a.owner, json=body(**over))
    assert r.status_code == 422, r.text
    assert problem_json(r)["errors"][0]["field"] == field
    assert row_counts(rt) == before


def test_owner_mapping_needs_allow_owner_and_an_owner(client: TestClient, a: T) -> None:
    owners = [{"group": "cv-owners", "role": "owner"}]
    r = client.post(URL, headers=a.owner, json=body(role_mappings=owners))
    assert r.status_code == 422
    r = client.post(URL, headers=a.admin, json=body(role_mappings=owners, allow_owner=True))
    assert r.status_code == 403
    assert create(client, a, role_mappings=owners, allow_owner=True)["allow_owner"] is True


def test_admin_cannot_change_an_owner_granting_connection(client: TestClient, a: T) -> None:
    out = create(client, a, role_mappings=[{"group": "o", "role": "owner"}], allow_owner=True)
    r = client.patch(f"{URL}/{out['id']}", headers=a.admin, json={"enabled": False})
    assert r.status_code == 403


def test_reading_needs_principal_read_and_writing_principal_manage(
    client: TestClient, a: T
) -> None:
    assert client.get(URL, headers=a.qa).status_code == 403
    assert client.get(URL, headers=a.auditor).status_code == 200
    assert client.post(URL, headers=a.auditor, json=body()).status_code == 403
    assert client.post(URL, headers=a.admin, json=body()).status_code == 201


def test_patch_keeps_stored_secret_and_merges_config(rt: Runtime, client: TestClient, a: T) -> None:
    out = create(client, a)
    r = client.patch(
        f"{URL}/{out['id']}",
        headers=a.owner,
        json={"config": {"note": "rotated"}, "enabled": False, "default_role": "qa_reviewer"},
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["secrets_set"] == ["shared_secret"]
    assert got["config"]["note"] == "rotated"
    assert got["enabled"] is False
    assert got["default_role"]["role"] == "qa_reviewer"
    r = client.patch(f"{URL}/{out['id']}", headers=a.owner, json={"default_role": None})
    assert r.json()["default_role"] is None
    r = client.patch(
        f"{URL}/{out['id']}", headers=a.owner, json={"config": {"shared_secret": None}}
    )
    assert r.status_code == 422
    assert problem_json(r)["errors"][0]["field"] == "config.shared_secret"


def test_protocol_cannot_change(client: TestClient, a: T) -> None:
    out = create(client, a)
    r = client.patch(f"{URL}/{out['id']}", headers=a.owner, json={"protocol": "saml"})
    assert r.status_code == 422


def test_every_change_is_audited_with_names_and_secret_refs_only(
    rt: Runtime, client: TestClient, a: T
) -> None:
    out = create(client, a)
    new_secret = "rotated-secret-" + "y" * 20
    r = client.patch(
        f"{URL}/{out['id']}", headers=a.owner, json={"config": {"shared_secret": new_secret}}
    )
    assert r.status_code == 200
    assert client.delete(f"{URL}/{out['id']}", headers=a.owner).status_code == 204
    entries = [e for e in audit_entries(rt, a.id) if e["resource"]["kind"] == "sso_connection"]
    actions = [e["action"] for e in entries]
    assert actions == [
        "sso_connection.create",
        "sso_connection.update",
        "sso_connection.delete",
    ]
    text = repr(entries)
    assert SECRET not in text
    assert new_secret not in text
    assert entries[1]["detail"]["config_fields"] == ["shared_secret"]
    assert entries[1]["detail"]["secrets"]["shared_secret"].startswith("hmac-sha256:")
    assert (
        entries[0]["detail"]["secrets"]["shared_secret"]
        != entries[1]["detail"]["secrets"]["shared_secret"]
    )


def test_delete_shreds_the_connection_key(rt: Runtime, client: TestClient, a: T) -> None:
    out = create(client, a)
    assert client.delete(f"{URL}/{out['id']}", headers=a.owner).status_code == 204
    with rt.db.tenant_tx(a.id) as s:
        keys = s.execute(select(DataKey).where(DataKey.owner_id == out["id"])).scalars().all()
    assert keys == []
    assert client.get(f"{URL}/{out['id']}", headers=a.owner).status_code == 404


def test_another_tenants_connection_is_not_found(client: TestClient, a: T, b: T) -> None:
    theirs = create(client, b)
    for method in ("GET", "PATCH", "DELETE"):
        r = client.request(
            method,
            f"{URL}/{theirs['id']}",
            headers=a.owner,
            json={"enabled": False} if method == "PATCH" else None,
        )
        assert r.status_code == 404, (method, r.text)
    assert client.get(URL, headers=a.owner).json() == []
    assert client.get(f"{URL}/{theirs['id']}", headers=b.owner).json()["enabled"] is True


def test_without_a_public_base_url_no_connection_can_be_created(tmp_path: Path) -> None:
    runtime = Runtime.open(load_settings({}, data_dir=tmp_path / "d"), create_key=True)
    try:
        t = T(runtime, "acme")
        with TestClient(sso_asgi(runtime), base_url="https://testserver") as c:
            r = c.post(URL, headers=t.owner, json=body())
        assert r.status_code == 503
        assert "PUBLIC_BASE_URL" in problem_json(r)["detail"]
    finally:
        runtime.close()


def test_linking_logins_to_scim_users_is_an_owner_grant(client: TestClient, a: T) -> None:
    """Whoever sets the IdP of a ``link_scim`` connection can sign in as any SCIM user
    (administrators and owners included): only an owner may write one."""
    before = client.get(URL, headers=a.owner).json()
    assert client.post(URL, headers=a.admin, json=body(link_scim="email")).status_code == 403
    plain = create(client, a)
    r = client.patch(f"{URL}/{plain['id']}", headers=a.admin, json={"link_scim": "subject"})
    assert r.status_code == 403
    linked = create(client, a, link_scim="email")  # by the owner
    r = client.patch(f"{URL}/{linked['id']}", headers=a.admin, json={"config": {"note": "x"}})
    assert r.status_code == 403
    assert client.delete(f"{URL}/{linked['id']}", headers=a.admin).status_code == 403
    assert len(client.get(URL, headers=a.owner).json()) == len(before) + 2
