"""An app with the SCIM routers (added here until app.py registers them), a tenant, a token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import ASGIApp

from callvault.api.app import create_fastapi
from callvault.api.middleware import Guard
from callvault.api.routers import scim as scim_router
from callvault.api.routers import scim_tokens
from callvault.bootstrap import create_tenant_with_owner
from callvault.runtime import Runtime

SCIM_JSON = "application/scim+json"


def with_scim(app: FastAPI) -> FastAPI:
    """Include the SCIM routers unless the app already does."""
    paths = {getattr(r, "path", None) for r in app.router.routes}
    if "/v1/tenant/scim-tokens" not in paths:
        app.include_router(scim_tokens.router)
    if "/scim/v2/{tenant}/{path:path}" not in paths:
        app.include_router(scim_router.router)
    return app


def scim_asgi(rt: Runtime) -> ASGIApp:
    return Guard(
        with_scim(create_fastapi(rt)),
        max_body_bytes=rt.settings.max_body_bytes,
        hsts_max_age_seconds=rt.settings.hsts_max_age_seconds,
    )


@dataclass
class Tenant:
    id: str
    owner_key: str
    owner_id: str
    scim_token: str
    scim_token_id: str

    @property
    def base(self) -> str:
        return f"/scim/v2/{self.id}"

    @property
    def owner(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.owner_key}"}

    @property
    def scim(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.scim_token}", "Content-Type": SCIM_JSON}


@pytest.fixture
def scim_client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(scim_asgi(rt), base_url="https://testserver") as c:
        yield c


def make_tenant(rt: Runtime, client: TestClient, name: str) -> Tenant:
    init = create_tenant_with_owner(rt, tenant_name=name, owner_name=f"{name}-owner")
    r = client.post(
        "/v1/tenant/scim-tokens",
        headers={"Authorization": f"Bearer {init.token}"},
        json={"label": "okta"},
    )
    assert r.status_code == 201, r.text
    return Tenant(init.tenant_id, init.token, init.principal_id, r.json()["token"], r.json()["id"])


@pytest.fixture
def tenant(rt: Runtime, scim_client: TestClient) -> Tenant:
    return make_tenant(rt, scim_client, "acme")


@pytest.fixture
def other(rt: Runtime, scim_client: TestClient) -> Tenant:
    return make_tenant(rt, scim_client, "globex")


USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def new_user(client: TestClient, t: Tenant, user_name: str, **extra: object) -> dict[str, object]:
    r = client.post(
        f"{t.base}/Users", headers=t.scim, json={"schemas": [USER], "userName": user_name, **extra}
    )
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def new_group(client: TestClient, t: Tenant, name: str, members: list[str]) -> dict[str, object]:
    r = client.post(
        f"{t.base}/Groups",
        headers=t.scim,
        json={"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]},
    )
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def patch(*operations: dict[str, object]) -> dict[str, object]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def assert_scim_error(r: Any, status: int, scim_type: str | None = None) -> dict[str, object]:
    """The response is a SCIM Error message (RFC 7644 §3.12) with this status and scimType."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(SCIM_JSON)
    body: dict[str, object] = r.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type
    return body
