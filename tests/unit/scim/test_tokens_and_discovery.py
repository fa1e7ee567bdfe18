"""SCIM tokens (/v1/tenant/scim-tokens) and the discovery endpoints."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault import access
from callvault.access import Role, ScopeKind
from callvault.runtime import Runtime
from callvault.store.models import AuditEntry, ScimToken
from tests.unit.scim.conftest import GROUP, USER, Tenant, assert_scim_error, new_group, new_user


def _key(rt: Runtime, tenant_id: str, role: Role) -> dict[str, str]:
    from datetime import timedelta  # noqa: PLC0415 - one use

    with rt.db.tenant_tx(tenant_id) as s:
        p = access.create_principal(s, tenant_id, kind="user", name=f"{role}-x")
        access.bind_role(s, tenant_id, p.id, role, ScopeKind.TENANT, tenant_id, created_by="t")
        key = access.issue_key(s, tenant_id, p.id, label="t", ttl=timedelta(days=1))
    return {"Authorization": f"Bearer {key.token}"}


def test_token_is_shown_once_and_kept_only_as_a_salted_hash(
    rt: Runtime, scim_client: TestClient, tenant: Tenant
) -> None:
    listed = scim_client.get("/v1/tenant/scim-tokens", headers=tenant.owner).json()
    assert [t["id"] for t in listed] == [tenant.scim_token_id]
    assert listed[0]["token"] is None
    assert listed[0]["scim_base_path"] == f"/scim/v2/{tenant.id}"
    secret = tenant.scim_token.rsplit(".", 1)[1]
    with rt.db.tenant_tx(tenant.id) as s:
        row = s.get(ScimToken, tenant.scim_token_id)
        entries = [json.loads(e) for e in s.execute(select(AuditEntry.entry)).scalars()]
    assert row is not None
    assert secret.encode() not in row.secret_hash + row.salt
    created = [e for e in entries if e["action"] == "scim_token.create"]
    assert created[0]["resource"]["id"] == tenant.scim_token_id
    assert created[0]["detail"]["token"].startswith("hmac-sha256:")
    assert secret not in json.dumps(entries)


@pytest.mark.parametrize("role", [Role.QA_REVIEWER, Role.AUDITOR, Role.DEVELOPER, Role.INGEST])
def test_only_owners_and_admins_manage_scim_tokens(
    rt: Runtime, scim_client: TestClient, tenant: Tenant, role: Role
) -> None:
    headers = _key(rt, tenant.id, role)
    assert scim_client.post(
        "/v1/tenant/scim-tokens", headers=headers, json={"label": "x"}
    ).status_code in {403, 404}
    assert scim_client.get("/v1/tenant/scim-tokens", headers=headers).status_code in {403, 404}
    r = scim_client.delete(f"/v1/tenant/scim-tokens/{tenant.scim_token_id}", headers=headers)
    assert r.status_code in {403, 404}
    assert scim_client.get(f"{tenant.base}/Users", headers=tenant.scim).status_code == 200


def test_admin_creates_a_token_that_works(
    rt: Runtime, scim_client: TestClient, tenant: Tenant
) -> None:
    headers = _key(rt, tenant.id, Role.ADMIN)
    r = scim_client.post(
        "/v1/tenant/scim-tokens", headers=headers, json={"label": "entra", "ttl_days": 30}
    )
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert token.startswith(f"cvscim1.{tenant.id}.")
    assert (
        scim_client.get(
            f"{tenant.base}/Users", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 200
    )


def test_revoking_is_idempotent_and_audited_once(
    rt: Runtime, scim_client: TestClient, tenant: Tenant
) -> None:
    url = f"/v1/tenant/scim-tokens/{tenant.scim_token_id}"
    first = scim_client.delete(url, headers=tenant.owner)
    second = scim_client.delete(url, headers=tenant.owner)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["revoked_at"] == second.json()["revoked_at"] is not None
    with rt.db.tenant_tx(tenant.id) as s:
        actions = [json.loads(e)["action"] for e in s.execute(select(AuditEntry.entry)).scalars()]
    assert actions.count("scim_token.revoke") == 1


def test_another_tenants_token_id_is_not_found(
    scim_client: TestClient, tenant: Tenant, other: Tenant
) -> None:
    r = scim_client.delete(f"/v1/tenant/scim-tokens/{other.scim_token_id}", headers=tenant.owner)
    assert r.status_code == 404
    assert scim_client.get(f"{other.base}/Users", headers=other.scim).status_code == 200


@pytest.mark.parametrize(
    "body", [{"label": ""}, {"label": "x", "ttl_days": 0}, {"label": "x", "extra": 1}]
)
def test_bad_token_requests_are_422(
    scim_client: TestClient, tenant: Tenant, body: dict[str, object]
) -> None:
    assert (
        scim_client.post("/v1/tenant/scim-tokens", headers=tenant.owner, json=body).status_code
        == 422
    )


# -- discovery -------------------------------------------------------------------------------


def test_service_provider_config_announces_what_is_supported(
    scim_client: TestClient, tenant: Tenant
) -> None:
    config = scim_client.get(f"{tenant.base}/ServiceProviderConfig", headers=tenant.scim).json()
    assert config["patch"] == {"supported": True}
    assert config["bulk"]["supported"] is False
    assert config["sort"] == {"supported": False}
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"


def test_resource_types_and_schemas_describe_only_what_is_kept(
    scim_client: TestClient, tenant: Tenant
) -> None:
    types = scim_client.get(f"{tenant.base}/ResourceTypes", headers=tenant.scim).json()
    assert {(t["name"], t["endpoint"], t["schema"]) for t in types["Resources"]} == {
        ("User", "/Users", USER),
        ("Group", "/Groups", GROUP),
    }
    user = scim_client.get(f"{tenant.base}/Schemas/{USER}", headers=tenant.scim).json()
    assert {a["name"] for a in user["attributes"]} == {"userName", "displayName", "active"}
    assert user["meta"]["location"].endswith(f"/Schemas/{USER}")
    one = scim_client.get(f"{tenant.base}/ResourceTypes/Group", headers=tenant.scim).json()
    assert one["endpoint"] == "/Groups"
    assert_scim_error(scim_client.get(f"{tenant.base}/ResourceTypes/Pet", headers=tenant.scim), 404)
    assert_scim_error(scim_client.get(f"{tenant.base}/Schemas/urn:x", headers=tenant.scim), 404)
    r = scim_client.get(
        f"{tenant.base}/Schemas", headers=tenant.scim, params={"filter": 'id eq "x"'}
    )
    assert_scim_error(r, 403)


def test_search_at_the_root_covers_users_and_groups(
    scim_client: TestClient, tenant: Tenant
) -> None:
    user = new_user(scim_client, tenant, "root.search@example.com", displayName="Root")
    group = new_group(scim_client, tenant, "Root Group", [str(user["id"])])
    r = scim_client.post(
        f"{tenant.base}/.search",
        headers=tenant.scim,
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "attributes": ["displayName"],
        },
    )
    assert r.status_code == 200, r.text
    found = {(res["id"], res["displayName"]) for res in r.json()["Resources"]}
    assert found == {(user["id"], "Root"), (group["id"], "Root Group")}
    narrowed = scim_client.post(
        f"{tenant.base}/Users/.search",
        headers=tenant.scim,
        json={"filter": 'displayName eq "Root"', "count": 5},
    ).json()
    assert [res["id"] for res in narrowed["Resources"]] == [user["id"]]


def test_every_token_route_authenticates_before_its_body() -> None:
    import inspect  # noqa: PLC0415 - this test only

    from fastapi.routing import APIRoute  # noqa: PLC0415 - this test only

    from callvault.api.routers import scim_tokens  # noqa: PLC0415 - this test only

    routes = [r for r in scim_tokens.router.routes if isinstance(r, APIRoute)]
    assert len(routes) == 3
    for route in routes:
        assert "ctx" in inspect.signature(route.endpoint).parameters
        assert inspect.iscoroutinefunction(route.endpoint)
        assert not inspect.iscoroutinefunction(route.endpoint.__wrapped__)  # type: ignore[attr-defined]


def test_concurrent_create_losing_the_unique_race_is_a_conflict(
    rt: Runtime, scim_client: TestClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callvault.scim._store import ScimStore  # noqa: PLC0415 - this test only

    new_user(scim_client, tenant, "race@example.com")
    # The other request checked before this one committed: the check says "free".
    monkeypatch.setattr(ScimStore, "user_name_taken", lambda *_a, **_k: False)
    r = scim_client.post(
        f"{tenant.base}/Users",
        headers=tenant.scim,
        json={"schemas": [USER], "userName": "RACE@example.com"},
    )
    assert_scim_error(r, 409, "uniqueness")
    assert scim_client.get(f"{tenant.base}/Users", headers=tenant.scim).json()["totalResults"] == 1
