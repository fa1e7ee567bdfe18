"""SCIM Users: filters, pagination, PATCH, PUT, deactivation and deletion."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.runtime import Runtime
from callvault.scim._models import MAX_RESULTS
from callvault.store.models import AuditEntry, DataKey, ScimUser
from callvault.store.models import Principal as PrincipalRow
from tests.unit.scim.conftest import USER, Tenant, new_user, patch


def _list(client: TestClient, t: Tenant, **params: str) -> dict[str, object]:
    r = client.get(f"{t.base}/Users", headers=t.scim, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/scim+json")
    body: dict[str, object] = r.json()
    return body


def _ids(body: dict[str, object]) -> list[str]:
    resources = body.get("Resources") or []
    assert isinstance(resources, list)
    return [r["id"] for r in resources]


def _audit(rt: Runtime, tenant_id: str) -> list[dict[str, object]]:
    with rt.db.tenant_tx(tenant_id) as s:
        rows = s.execute(
            select(AuditEntry.entry)
            .where(AuditEntry.tenant_id == tenant_id)
            .order_by(AuditEntry.idx)
        ).scalars()
        return [json.loads(e) for e in rows]


# -- create and filter ---------------------------------------------------------------------


def test_created_user_is_a_user_principal_and_is_found_by_user_name_case_insensitively(
    rt: Runtime, scim_client: TestClient, tenant: Tenant
) -> None:
    made = new_user(scim_client, tenant, "Ada.Lovelace@example.com", displayName="Ada")
    found = _list(scim_client, tenant, filter='userName eq "ada.lovelace@EXAMPLE.com"')
    assert found["totalResults"] == 1
    assert _ids(found) == [made["id"]]
    with rt.db.tenant_tx(tenant.id) as s:
        row = s.get(PrincipalRow, made["id"])
        assert row is not None
        assert (row.kind, row.active) == ("user", True)


def test_filter_before_create_finds_nothing(scim_client: TestClient, tenant: Tenant) -> None:
    found = _list(scim_client, tenant, filter='userName eq "nobody@example.com"')
    assert found["totalResults"] == 0
    assert found["Resources"] == []


def test_external_id_filter_is_case_exact(scim_client: TestClient, tenant: Tenant) -> None:
    made = new_user(scim_client, tenant, "grace@example.com", externalId="00uAbC")
    assert _ids(_list(scim_client, tenant, filter='externalId eq "00uAbC"')) == [made["id"]]
    assert _ids(_list(scim_client, tenant, filter='externalId eq "00uabc"')) == []


def test_user_name_is_unique_per_tenant_regardless_of_case(
    scim_client: TestClient, tenant: Tenant, other: Tenant
) -> None:
    new_user(scim_client, tenant, "linus@example.com")
    r = scim_client.post(
        f"{tenant.base}/Users",
        headers=tenant.scim,
        json={"schemas": [USER], "userName": "LINUS@example.com"},
    )
    assert r.status_code == 409
    assert r.json()["scimType"] == "uniqueness"
    # Another tenant has its own namespace.
    new_user(scim_client, other, "linus@example.com")
    assert _list(scim_client, tenant)["totalResults"] == 1


def test_other_filters_are_evaluated_on_the_tenants_users(
    scim_client: TestClient, tenant: Tenant
) -> None:
    a = new_user(scim_client, tenant, "alan@example.com", displayName="Alan T")
    b = new_user(scim_client, tenant, "barbara@example.com", displayName="Barbara L", active=False)
    assert _ids(_list(scim_client, tenant, filter="active eq false")) == [b["id"]]
    assert _ids(_list(scim_client, tenant, filter='displayName co "an t"')) == [a["id"]]
    both = _list(scim_client, tenant, filter='userName sw "a" or userName sw "b"')
    assert _ids(both) == [a["id"], b["id"]]


def test_pagination_pages_in_creation_order(scim_client: TestClient, tenant: Tenant) -> None:
    ids = [new_user(scim_client, tenant, f"u{i}@example.com")["id"] for i in range(5)]
    page = _list(scim_client, tenant, startIndex="2", count="2")
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (5, 2, 2)
    assert _ids(page) == ids[1:3]
    assert _ids(_list(scim_client, tenant, startIndex="5", count="10")) == ids[4:]
    assert _ids(_list(scim_client, tenant, startIndex="0")) == ids  # less than 1 reads as 1
    empty = _list(scim_client, tenant, count="0")
    assert (empty["totalResults"], empty["Resources"]) == (5, [])
    past = _list(scim_client, tenant, startIndex="9")
    assert (past["totalResults"], past["Resources"]) == (5, [])


def test_count_is_capped_at_the_advertised_maximum(scim_client: TestClient, tenant: Tenant) -> None:
    new_user(scim_client, tenant, "one@example.com")
    page = _list(scim_client, tenant, count=str(MAX_RESULTS * 10))
    assert page["itemsPerPage"] == 1
    config = scim_client.get(f"{tenant.base}/ServiceProviderConfig", headers=tenant.scim).json()
    assert config["filter"] == {"supported": True, "maxResults": MAX_RESULTS}


def test_attributes_and_excluded_attributes_shape_the_reply(
    scim_client: TestClient, tenant: Tenant
) -> None:
    made = new_user(scim_client, tenant, "edsger@example.com", displayName="Edsger")
    one = scim_client.get(
        f"{tenant.base}/Users/{made['id']}",
        headers=tenant.scim,
        params={"attributes": "displayName"},
    ).json()
    assert one["displayName"] == "Edsger"
    assert "userName" not in one
    assert one["id"] == made["id"]  # always returned
    listed = _list(scim_client, tenant, excludedAttributes="displayName")
    assert "displayName" not in listed["Resources"][0]  # type: ignore[index]


def test_standard_attributes_callvault_does_not_keep_are_dropped_and_nothing_is_plain(
    rt: Runtime, scim_client: TestClient, tenant: Tenant
) -> None:
    made = new_user(
        scim_client,
        tenant,
        "margaret.hamilton@example.com",
        name={"givenName": "Margaret", "familyName": "Hamilton"},
        emails=[{"value": "margaret.hamilton@example.com", "type": "work", "primary": True}],
        phoneNumbers=[{"value": "+1 555 0100", "type": "work"}],
        externalId="okta-123",
    )
    assert set(made) == {"schemas", "id", "externalId", "meta", "userName", "active"}
    with rt.db.tenant_tx(tenant.id) as s:
        row = s.get(ScimUser, made["id"])
        assert row is not None
        stored = repr((row.user_name_ref, row.external_id_ref, row.profile_sealed))
        principal = s.get(PrincipalRow, made["id"])
        assert principal is not None
    for plain in ("margaret", "Hamilton", "okta-123", "555"):
        assert plain not in stored
        assert plain not in principal.name


# -- PATCH -----------------------------------------------------------------------------------


def test_patch_answers_200_with_the_resource(scim_client: TestClient, tenant: Tenant) -> None:
    made = new_user(scim_client, tenant, "ken@example.com")
    r = scim_client.patch(
        f"{tenant.base}/Users/{made['id']}",
        headers=tenant.scim,
        json=patch(
            {"op": "add", "path": "displayName", "value": "Ken T"},
            {"op": "replace", "path": "externalId", "value": "x-1"},
        ),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["displayName"], r.json()["externalId"]) == ("Ken T", "x-1")
    again = scim_client.get(f"{tenant.base}/Users/{made['id']}", headers=tenant.scim).json()
    assert (again["displayName"], again["externalId"]) == ("Ken T", "x-1")


def test_patch_remove_and_value_object_without_path(
    scim_client: TestClient, tenant: Tenant
) -> None:
    made = new_user(scim_client, tenant, "dennis@example.com", displayName="Dennis")
    url = f"{tenant.base}/Users/{made['id']}"
    removed = scim_client.patch(
        url, headers=tenant.scim, json=patch({"op": "remove", "path": "displayName"})
    )
    assert removed.status_code == 200
    assert "displayName" not in removed.json()
    replaced = scim_client.patch(
        url,
        headers=tenant.scim,
        json=patch(
            {"op": "replace", "value": {"displayName": "D. Ritchie", "userName": "dmr@example.com"}}
        ),
    )
    assert (replaced.json()["displayName"], replaced.json()["userName"]) == (
        "D. Ritchie",
        "dmr@example.com",
    )
    assert _ids(_list(scim_client, tenant, filter='userName eq "dmr@example.com"')) == [made["id"]]
    assert _ids(_list(scim_client, tenant, filter='userName eq "dennis@example.com"')) == []


def test_patch_user_name_to_a_taken_one_is_a_conflict_and_changes_nothing(
    scim_client: TestClient, tenant: Tenant
) -> None:
    new_user(scim_client, tenant, "taken@example.com")
    made = new_user(scim_client, tenant, "free@example.com")
    r = scim_client.patch(
        f"{tenant.base}/Users/{made['id']}",
        headers=tenant.scim,
        json=patch(
            {"op": "replace", "path": "displayName", "value": "changed"},
            {"op": "replace", "path": "userName", "value": "Taken@example.com"},
        ),
    )
    assert r.status_code == 409
    after = scim_client.get(f"{tenant.base}/Users/{made['id']}", headers=tenant.scim).json()
    assert (after["userName"], after.get("displayName")) == ("free@example.com", None)


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "active", "value": False},  # RFC 7644
        {"op": "Replace", "path": "active", "value": "False"},  # Entra ID
        {"op": "replace", "value": {"active": False}},  # Okta
    ],
    ids=["path", "entra-string", "okta-value-object"],
)
def test_active_false_deactivates_however_it_is_sent_and_the_user_stays_listed(
    rt: Runtime, scim_client: TestClient, tenant: Tenant, operation: dict[str, object]
) -> None:
    made = new_user(scim_client, tenant, "ivan@example.com")
    r = scim_client.patch(
        f"{tenant.base}/Users/{made['id']}", headers=tenant.scim, json=patch(operation)
    )
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False
    listed = _list(scim_client, tenant, filter='userName eq "ivan@example.com"')
    assert listed["Resources"][0]["active"] is False  # type: ignore[index]
    with rt.db.tenant_tx(tenant.id) as s:
        principal = s.get(PrincipalRow, made["id"])
        assert principal is not None
        assert principal.active is False


def _user_with_api_key(
    scim_client: TestClient, tenant: Tenant, user_name: str
) -> tuple[str, dict[str, str]]:
    """A SCIM user holding an API key that reads /v1/tenant (auditor at tenant scope)."""
    made = new_user(scim_client, tenant, user_name)
    pid = str(made["id"])
    r = scim_client.post(
        f"/v1/principals/{pid}/roles",
        headers=tenant.owner,
        json={"role": "auditor", "scope": {"kind": "tenant", "id": tenant.id}},
    )
    assert r.status_code == 201, r.text
    r = scim_client.post(
        f"/v1/principals/{pid}/keys", headers=tenant.owner, json={"label": "laptop"}
    )
    assert r.status_code == 201, r.text
    key = {"Authorization": f"Bearer {r.json()['token']}"}
    assert scim_client.get("/v1/tenant", headers=key).status_code == 200
    return pid, key


def test_deactivation_revokes_the_users_api_keys_at_once(
    rt: Runtime, scim_client: TestClient, tenant: Tenant
) -> None:
    pid, key = _user_with_api_key(scim_client, tenant, "mallory@example.com")
    r = scim_client.patch(
        f"{tenant.base}/Users/{pid}",
        headers=tenant.scim,
        json=patch({"op": "replace", "path": "active", "value": False}),
    )
    assert r.status_code == 200
    assert scim_client.get("/v1/tenant", headers=key).status_code == 401
    # Reactivating does not bring the revoked key back.
    r = scim_client.patch(
        f"{tenant.base}/Users/{pid}",
        headers=tenant.scim,
        json=patch({"op": "replace", "path": "active", "value": True}),
    )
    assert r.json()["active"] is True
    assert scim_client.get("/v1/tenant", headers=key).status_code == 401
    entries = [e for e in _audit(rt, tenant.id) if e["action"] == "scim.user.patch"]
    assert entries[0]["resource"]["id"] == pid
    assert entries[0]["detail"]["active"] is False  # type: ignore[index]
    assert len(entries[0]["detail"]["keys_revoked"]) == 1  # type: ignore[index, arg-type]


def test_delete_revokes_keys_hides_the_user_and_keeps_an_inactive_principal(
    rt: Runtime, scim_client: TestClient, tenant: Tenant
) -> None:
    pid, key = _user_with_api_key(scim_client, tenant, "trudy@example.com")
    r = scim_client.delete(f"{tenant.base}/Users/{pid}", headers=tenant.scim)
    assert r.status_code == 204
    assert scim_client.get("/v1/tenant", headers=key).status_code == 401
    assert scim_client.get(f"{tenant.base}/Users/{pid}", headers=tenant.scim).status_code == 404
    assert _list(scim_client, tenant)["totalResults"] == 0
    with rt.db.tenant_tx(tenant.id) as s:
        principal = s.get(PrincipalRow, pid)
        row = s.get(ScimUser, pid)
        keys = s.execute(
            select(DataKey).where(DataKey.owner_kind == "scim_user", DataKey.owner_id == pid)
        ).all()
        assert principal is not None
        assert principal.active is False
        assert row is not None
        assert row.deleted_at is not None
        assert (row.profile_sealed, row.user_name_ref) == (None, None)
        assert keys == []  # the profile's key is shredded
    # The userName is free again, for a new user.
    again = new_user(scim_client, tenant, "trudy@example.com")
    assert again["id"] != pid


def test_put_replaces_and_an_omitted_active_is_unassigned_and_inactive(
    rt: Runtime, scim_client: TestClient, tenant: Tenant
) -> None:
    made = new_user(scim_client, tenant, "niklaus@example.com", displayName="NW", externalId="e-1")
    r = scim_client.put(
        f"{tenant.base}/Users/{made['id']}",
        headers=tenant.scim,
        json={
            "schemas": [USER],
            "id": made["id"],
            "userName": "niklaus@example.com",
            "externalId": "e-2",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["externalId"], body.get("displayName"), body.get("active")) == ("e-2", None, None)
    with rt.db.tenant_tx(tenant.id) as s:
        principal = s.get(PrincipalRow, made["id"])
        assert principal is not None
        assert principal.active is False


def test_every_change_is_an_audit_entry_with_ids_only(
    rt: Runtime, scim_client: TestClient, tenant: Tenant
) -> None:
    made = new_user(scim_client, tenant, "secret.person@example.com", displayName="Secret Person")
    url = f"{tenant.base}/Users/{made['id']}"
    scim_client.patch(
        url,
        headers=tenant.scim,
        json=patch({"op": "replace", "path": "displayName", "value": "S P"}),
    )
    scim_client.put(
        url,
        headers=tenant.scim,
        json={"schemas": [USER], "userName": "secret.person@example.com", "active": True},
    )
    scim_client.delete(url, headers=tenant.scim)
    entries = [e for e in _audit(rt, tenant.id) if str(e["action"]).startswith("scim.user.")]
    assert [e["action"] for e in entries] == [
        "scim.user.create",
        "scim.user.patch",
        "scim.user.replace",
        "scim.user.delete",
    ]
    assert {e["actor"] for e in entries} == {tenant.scim_token_id}
    assert {e["resource"]["id"] for e in entries} == {made["id"]}
    text = json.dumps(entries)
    assert "secret" not in text.lower()
    assert "Person" not in text


def test_a_request_that_changes_nothing_writes_no_audit_entry(
    rt: Runtime, scim_client: TestClient, tenant: Tenant
) -> None:
    made = new_user(scim_client, tenant, "same@example.com", displayName="Same")
    before = len(_audit(rt, tenant.id))
    r = scim_client.patch(
        f"{tenant.base}/Users/{made['id']}",
        headers=tenant.scim,
        json=patch({"op": "replace", "path": "displayName", "value": "Same"}),
    )
    assert r.status_code == 200
    assert len(_audit(rt, tenant.id)) == before
