"""Replays of what Okta and Microsoft Entra ID send, written from their public SCIM 2.0 guides.

Each step is (method, path, body, expected status, check). Paths and bodies
may hold ``{user}`` / ``{group}`` / ``{user2}``, filled with the ids the
service returned earlier in the sequence. The bodies keep each IdP's quirks:
Okta's ``replace`` with a value object and no path, ``groups: []`` and a
password on create, a PUT for profile updates; Entra ID's capitalised ops,
``"False"`` as a string, ``emails[type eq "work"].value`` paths on a user
without emails, a ``remove`` carrying the members to remove, ``$ref: null``,
and its own schema URN listed on group creation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.runtime import Runtime
from callvault.store.models import AuditEntry
from tests.unit.scim.conftest import GROUP, PATCH_OP, USER, Tenant

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
Check = Callable[[dict[str, Any]], None]


@dataclass
class Step:
    method: str
    path: str
    body: dict[str, Any] | None
    status: int
    check: Check | None = None
    #: Remember the reply's ``id`` under this name.
    save: str | None = None
    query: dict[str, str] = field(default_factory=dict)


def _total(n: int) -> Check:
    def check(body: dict[str, Any]) -> None:
        assert body["totalResults"] == n, body

    return check


def _first(**expected: Any) -> Check:
    def check(body: dict[str, Any]) -> None:
        resource = body["Resources"][0] if "Resources" in body else body
        for key, value in expected.items():
            assert resource.get(key) == value, (key, resource)

    return check


def _members(*names: str) -> Check:
    def check(body: dict[str, Any]) -> None:
        assert sorted(m["value"] for m in body.get("members", [])) == sorted(names), body

    return check


OKTA_USER = "isaac.brock@example.com"
OKTA: list[Step] = [
    # Import / match: Okta looks the user up before it creates it.
    Step(
        "GET",
        "/Users",
        None,
        200,
        _total(0),
        query={"filter": f'userName eq "{OKTA_USER}"', "startIndex": "1", "count": "100"},
    ),
    Step(
        "POST",
        "/Users",
        {
            "schemas": [USER],
            "userName": OKTA_USER,
            "name": {"givenName": "Isaac", "familyName": "Brock"},
            "emails": [{"primary": True, "value": OKTA_USER, "type": "work"}],
            "displayName": "Isaac Brock",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq",
            "active": True,
        },
        201,
        _first(userName=OKTA_USER, displayName="Isaac Brock", active=True),
        save="user",
    ),
    Step(
        "GET",
        "/Users",
        None,
        200,
        _first(id="{user}"),
        query={"filter": f'userName eq "{OKTA_USER}"'},
    ),
    Step("GET", "/Users/{user}", None, 200, _first(externalId="00ujl29u0le5T6Aj10h7")),
    # Profile update: Okta PUTs the whole user.
    Step(
        "PUT",
        "/Users/{user}",
        {
            "schemas": [USER],
            "id": "{user}",
            "userName": OKTA_USER,
            "name": {"givenName": "Isaac", "familyName": "Brock-Smith"},
            "emails": [{"primary": True, "value": OKTA_USER, "type": "work"}],
            "displayName": "Isaac Brock-Smith",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "active": True,
        },
        200,
        _first(displayName="Isaac Brock-Smith"),
    ),
    # Deactivation: a replace with a value object and no path.
    Step(
        "PATCH",
        "/Users/{user}",
        {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]},
        200,
        _first(active=False),
    ),
    Step(
        "GET",
        "/Users",
        None,
        200,
        _first(id="{user}", active=False),
        query={"filter": f'userName eq "{OKTA_USER}"'},
    ),
    Step(
        "POST",
        "/Users",
        {"schemas": [USER], "userName": "second.user@example.com", "active": True},
        201,
        save="user2",
    ),
    # Push groups.
    Step("GET", "/Groups", None, 200, _total(0), query={"filter": 'displayName eq "Test SCIMv2"'}),
    Step(
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []},
        201,
        save="group",
    ),
    Step(
        "PATCH",
        "/Groups/{group}",
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "replace", "value": {"id": "{group}", "displayName": "Test SCIMv2 renamed"}}
            ],
        },
        200,
        _first(displayName="Test SCIMv2 renamed"),
    ),
    Step(
        "PATCH",
        "/Groups/{group}",
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "add",
                    "path": "members",
                    "value": [
                        {"value": "{user}", "display": OKTA_USER},
                        {"value": "{user2}", "display": "second"},
                    ],
                }
            ],
        },
        200,
        _members("{user}", "{user2}"),
    ),
    Step(
        "PATCH",
        "/Groups/{group}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "remove", "path": 'members[value eq "{user}"]'}],
        },
        200,
        _members("{user2}"),
    ),
    Step(
        "GET",
        "/Groups",
        None,
        200,
        _first(id="{group}"),
        query={"filter": 'displayName eq "Test SCIMv2 renamed"'},
    ),
    Step("DELETE", "/Groups/{group}", None, 204),
    Step("GET", "/Groups/{group}", None, 404),
]

ENTRA_USER = "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"
ENTRA: list[Step] = [
    Step("GET", "/Users", None, 200, _total(0), query={"filter": f'userName eq "{ENTRA_USER}"'}),
    Step(
        "POST",
        "/Users",
        {
            "schemas": [USER, ENTERPRISE],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": ENTRA_USER,
            "active": True,
            "emails": [
                {"primary": True, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}
            ],
            "meta": {"resourceType": "User"},
            "name": {
                "formatted": "givenName familyName",
                "familyName": "familyName",
                "givenName": "givenName",
            },
            "roles": [],
            ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations"},
        },
        201,
        _first(userName=ENTRA_USER, active=True),
        save="user",
    ),
    Step(
        "GET",
        "/Users",
        None,
        200,
        _first(id="{user}"),
        query={"filter": f'userName eq "{ENTRA_USER}"'},
    ),
    Step(
        "GET",
        "/Users",
        None,
        200,
        _first(id="{user}"),
        query={"filter": 'externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"'},
    ),
    Step(
        "PATCH",
        "/Users/{user}",
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "Replace",
                    "path": 'emails[type eq "work"].value',
                    "value": "updatedEmail@microsoft.com",
                },
                {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
                {"op": "Add", "path": "displayName", "value": "Test User"},
            ],
        },
        200,
        _first(displayName="Test User"),
    ),
    Step(
        "PATCH",
        "/Users/{user}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "Replace", "path": "userName", "value": "5b50642d@testuser.com"}],
        },
        200,
        _first(userName="5b50642d@testuser.com"),
    ),
    Step("GET", "/Users", None, 200, _total(0), query={"filter": f'userName eq "{ENTRA_USER}"'}),
    Step(
        "PATCH",
        "/Users/{user}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
        },
        200,
        _first(active=False),
    ),
    Step("GET", "/Users/{user}", None, 200, _first(active=False)),
    Step(
        "POST",
        "/Users",
        {"schemas": [USER], "userName": "entra.second@testuser.com", "active": True},
        201,
        save="user2",
    ),
    Step(
        "GET",
        "/Groups",
        None,
        200,
        _total(0),
        query={"excludedAttributes": "members", "filter": 'displayName eq "displayName"'},
    ),
    Step(
        "POST",
        "/Groups",
        {
            "schemas": [
                GROUP,
                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group",
            ],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta": {"resourceType": "Group"},
        },
        201,
        save="group",
    ),
    Step(
        "GET",
        "/Groups/{group}",
        None,
        200,
        _first(displayName="displayName"),
        query={"excludedAttributes": "members"},
    ),
    Step(
        "PATCH",
        "/Groups/{group}",
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "Add",
                    "path": "members",
                    "value": [
                        {"$ref": None, "value": "{user}"},
                        {"$ref": None, "value": "{user2}"},
                    ],
                }
            ],
        },
        200,
    ),
    Step("GET", "/Groups/{group}", None, 200, _members("{user}", "{user2}")),
    Step(
        "PATCH",
        "/Groups/{group}",
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": "{user}"}]}
            ],
        },
        200,
    ),
    Step("GET", "/Groups/{group}", None, 200, _members("{user2}")),
    Step(
        "PATCH",
        "/Groups/{group}",
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "Replace", "path": "displayName", "value": "displayName updated"}
            ],
        },
        200,
    ),
    Step(
        "GET",
        "/Groups",
        None,
        200,
        _first(id="{group}"),
        query={"filter": 'displayName eq "displayName updated"'},
    ),
    Step("DELETE", "/Groups/{group}", None, 204),
    Step("DELETE", "/Users/{user}", None, 204),
    Step("GET", "/Users/{user}", None, 404),
]


def _fill(value: Any, saved: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, id_ in saved.items():
            value = value.replace("{" + name + "}", id_)
        return value
    if isinstance(value, list):
        return [_fill(v, saved) for v in value]
    if isinstance(value, dict):
        return {_fill(k, saved): _fill(v, saved) for k, v in value.items()}
    return value


def _replay(client: TestClient, t: Tenant, steps: list[Step]) -> dict[str, str]:
    saved: dict[str, str] = {}
    for n, step in enumerate(steps):
        path = _fill(step.path, saved)
        r = client.request(
            step.method,
            f"{t.base}{path}",
            headers=t.scim,
            params=_fill(step.query, saved),
            content=None if step.body is None else json.dumps(_fill(step.body, saved)),
        )
        assert r.status_code == step.status, (n, step.method, path, r.text)
        if r.status_code == 204:
            assert r.content == b""
            continue
        assert r.headers["content-type"].startswith("application/scim+json")
        body = r.json()
        if step.save:
            saved[step.save] = body["id"]
        if step.check is not None:
            _check(step.check, body, saved)
    return saved


def _check(check: Check, body: dict[str, Any], saved: dict[str, str]) -> None:
    # Expected values may name saved ids: compare against a body with the ids written back.
    reverse = {id_: "{" + name + "}" for name, id_ in saved.items()}

    def unfill(value: Any) -> Any:
        if isinstance(value, str):
            return reverse.get(value, value)
        if isinstance(value, list):
            return [unfill(v) for v in value]
        if isinstance(value, dict):
            return {k: unfill(v) for k, v in value.items()}
        return value

    check(unfill(body))


@pytest.mark.parametrize(("name", "steps"), [("okta", OKTA), ("entra", ENTRA)])
def test_identity_provider_sequence_replays_and_every_change_is_audited(
    rt: Runtime, scim_client: TestClient, tenant: Tenant, name: str, steps: list[Step]
) -> None:
    saved = _replay(scim_client, tenant, steps)
    with rt.db.tenant_tx(tenant.id) as s:
        entries = [
            json.loads(e)
            for e in s.execute(select(AuditEntry.entry).order_by(AuditEntry.idx)).scalars()
        ]
    scim_entries = [e for e in entries if str(e["action"]).startswith("scim.")]
    changes = sum(
        1 for st in steps if st.method in {"POST", "PUT", "PATCH", "DELETE"} and st.status < 300
    )
    assert len(scim_entries) == changes, name
    assert {e["actor"] for e in scim_entries} == {tenant.scim_token_id}
    text = json.dumps(scim_entries)
    for plain in (
        "isaac",
        "Brock",
        "Test_User",
        "testuser.com",
        "microsoft.com",
        "displayName updated",
    ):
        assert plain not in text
    assert saved["user"] in text
