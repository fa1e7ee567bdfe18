"""SCIM Groups: members, PATCH on members (RFC 7644 and the Entra ID form), all-or-nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.unit.scim.conftest import GROUP, Tenant, assert_scim_error, new_group, new_user, patch


def _members(client: TestClient, t: Tenant, group_id: object) -> list[str]:
    r = client.get(f"{t.base}/Groups/{group_id}", headers=t.scim)
    assert r.status_code == 200, r.text
    return sorted(m["value"] for m in r.json().get("members", []))


def _users(client: TestClient, t: Tenant, n: int) -> list[str]:
    return [str(new_user(client, t, f"member{i}@example.com")["id"]) for i in range(n)]


def test_group_lists_its_members_with_references(scim_client: TestClient, tenant: Tenant) -> None:
    a, b = _users(scim_client, tenant, 2)
    group = new_group(scim_client, tenant, "Engineering", [a, b])
    members = group["members"]
    assert isinstance(members, list)
    assert sorted(m["value"] for m in members) == sorted([a, b])
    assert all(m["$ref"].endswith(f"/scim/v2/{tenant.id}/Users/{m['value']}") for m in members)


def test_patch_adds_and_removes_members_by_path_filter(
    scim_client: TestClient, tenant: Tenant
) -> None:
    a, b, c = _users(scim_client, tenant, 3)
    group = new_group(scim_client, tenant, "Ops", [a])
    url = f"{tenant.base}/Groups/{group['id']}"
    r = scim_client.patch(
        url,
        headers=tenant.scim,
        json=patch({"op": "add", "path": "members", "value": [{"value": b}, {"value": c}]}),
    )
    assert r.status_code == 200, r.text
    assert sorted(m["value"] for m in r.json()["members"]) == sorted([a, b, c])
    r = scim_client.patch(
        url, headers=tenant.scim, json=patch({"op": "remove", "path": f'members[value eq "{b}"]'})
    )
    assert r.status_code == 200, r.text
    assert _members(scim_client, tenant, group["id"]) == sorted([a, c])


def test_patch_remove_with_a_value_list_as_entra_sends_it(
    scim_client: TestClient, tenant: Tenant
) -> None:
    a, b = _users(scim_client, tenant, 2)
    group = new_group(scim_client, tenant, "Sales", [a, b])
    r = scim_client.patch(
        f"{tenant.base}/Groups/{group['id']}",
        headers=tenant.scim,
        json=patch({"op": "Remove", "path": "members", "value": [{"value": a}]}),
    )
    assert r.status_code == 200, r.text
    assert _members(scim_client, tenant, group["id"]) == [b]


def test_patch_replace_members_and_remove_all(scim_client: TestClient, tenant: Tenant) -> None:
    a, b = _users(scim_client, tenant, 2)
    group = new_group(scim_client, tenant, "QA", [a])
    url = f"{tenant.base}/Groups/{group['id']}"
    r = scim_client.patch(
        url,
        headers=tenant.scim,
        json=patch({"op": "replace", "path": "members", "value": [{"value": b}]}),
    )
    assert r.status_code == 200
    assert _members(scim_client, tenant, group["id"]) == [b]
    r = scim_client.patch(url, headers=tenant.scim, json=patch({"op": "remove", "path": "members"}))
    assert r.status_code == 200
    assert _members(scim_client, tenant, group["id"]) == []


def test_unknown_member_refuses_the_whole_patch(scim_client: TestClient, tenant: Tenant) -> None:
    (a,) = _users(scim_client, tenant, 1)
    group = new_group(scim_client, tenant, "Finance", [])
    r = scim_client.patch(
        f"{tenant.base}/Groups/{group['id']}",
        headers=tenant.scim,
        json=patch(
            {"op": "replace", "path": "displayName", "value": "Renamed"},
            {"op": "add", "path": "members", "value": [{"value": a}]},
            {"op": "add", "path": "members", "value": [{"value": "prn_" + "a" * 26}]},
        ),
    )
    body = assert_scim_error(r, 400, "invalidValue")
    assert "prn_" not in str(body["detail"])
    after = scim_client.get(f"{tenant.base}/Groups/{group['id']}", headers=tenant.scim).json()
    assert (after["displayName"], after.get("members")) == ("Finance", None)


def test_another_tenants_user_cannot_be_a_member(
    scim_client: TestClient, tenant: Tenant, other: Tenant
) -> None:
    (theirs,) = _users(scim_client, other, 1)
    r = scim_client.post(
        f"{tenant.base}/Groups",
        headers=tenant.scim,
        json={"schemas": [GROUP], "displayName": "X", "members": [{"value": theirs}]},
    )
    assert_scim_error(r, 400, "invalidValue")
    listed = scim_client.get(f"{tenant.base}/Groups", headers=tenant.scim).json()
    assert listed["totalResults"] == 0


def test_deleting_a_user_removes_it_from_its_groups(
    scim_client: TestClient, tenant: Tenant
) -> None:
    a, b = _users(scim_client, tenant, 2)
    group = new_group(scim_client, tenant, "Support", [a, b])
    assert scim_client.delete(f"{tenant.base}/Users/{a}", headers=tenant.scim).status_code == 204
    assert _members(scim_client, tenant, group["id"]) == [b]


def test_group_filters_and_excluded_members(scim_client: TestClient, tenant: Tenant) -> None:
    (a,) = _users(scim_client, tenant, 1)
    group = new_group(scim_client, tenant, "Legal Team", [a])
    new_group(scim_client, tenant, "Marketing", [])
    r = scim_client.get(
        f"{tenant.base}/Groups",
        headers=tenant.scim,
        params={"filter": 'displayName eq "legal team"', "excludedAttributes": "members"},
    )
    body = r.json()
    assert body["totalResults"] == 1
    assert body["Resources"][0]["id"] == group["id"]
    assert "members" not in body["Resources"][0]
    by_member = scim_client.get(
        f"{tenant.base}/Groups", headers=tenant.scim, params={"filter": f'members[value eq "{a}"]'}
    ).json()
    assert [g["id"] for g in by_member["Resources"]] == [group["id"]]


def test_put_replaces_members_and_delete_removes_the_group(
    scim_client: TestClient, tenant: Tenant
) -> None:
    a, b = _users(scim_client, tenant, 2)
    group = new_group(scim_client, tenant, "Design", [a])
    url = f"{tenant.base}/Groups/{group['id']}"
    r = scim_client.put(
        url,
        headers=tenant.scim,
        json={"schemas": [GROUP], "displayName": "Design 2", "members": [{"value": b}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["displayName"] == "Design 2"
    assert _members(scim_client, tenant, group["id"]) == [b]
    assert scim_client.delete(url, headers=tenant.scim).status_code == 204
    assert_scim_error(scim_client.get(url, headers=tenant.scim), 404)
