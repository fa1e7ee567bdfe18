"""Every route that acts for a principal runs through the authenticating wrapper."""

from __future__ import annotations

import inspect

import pytest
from fastapi.routing import APIRoute

from callvault.api.routers import (
    agents,
    audit,
    calls,
    deployment_twilio,
    deployments,
    payments,
    principals,
    scim_tokens,
    tenant,
    versions,
)

ROUTERS = (
    agents,
    audit,
    calls,
    deployment_twilio,
    deployments,
    payments,
    principals,
    scim_tokens,
    tenant,
    versions,
)


def _routes() -> list[APIRoute]:
    return [r for m in ROUTERS for r in m.router.routes if isinstance(r, APIRoute)]


@pytest.mark.parametrize("route", _routes(), ids=lambda r: f"{sorted(r.methods)[0]} {r.path}")
def test_route_with_a_request_context_authenticates_before_its_body(route: APIRoute) -> None:
    params = inspect.signature(route.endpoint).parameters
    assert "ctx" in params, "every /v1 route acts for an authenticated principal"
    # `blocking` wraps the body so that Ctx.run authenticates the key first.
    assert inspect.iscoroutinefunction(route.endpoint)
    assert hasattr(route.endpoint, "__wrapped__")
    assert not inspect.iscoroutinefunction(route.endpoint.__wrapped__)
