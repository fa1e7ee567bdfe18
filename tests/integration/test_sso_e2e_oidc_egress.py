"""OIDC logins whose every provider fetch goes through the installation's egress guard.

A tenant administrator names the provider (issuer, discovery URL), so the
discovery document, the key set and the token exchange are fetches to URLs
a tenant chose. The app makes its OIDC adapter with the installation's
guard (``callvault.api.sso_wiring``); here the guard is a test's own
(``app.state.sso_egress_guard``): the provider (oidc-provider-mock, served
over TLS on 127.0.0.1 with a certificate only the test's guard trusts) is
reachable only with the guard's test-only loopback switch and its port in
the allowed set.

- With them, a full login through our routes works: the guard is no
  obstacle to a provider the installation may reach.
- Without the loopback switch (the installation default: only global
  addresses), the login is refused at its start with the guard's reason
  code, and not one request reaches the provider.
- A discovery URL on a port the installation does not allow is refused when
  the connection is created (422 naming the field), and nothing is stored.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from callvault.egress import EgressGuard
from tests.integration.oidc_provider import OidcProvider, running_provider
from tests.integration.sso_e2e import (
    QA_GROUP,
    E2e,
    LoggedIn,
    audit_since,
    audit_size,
    captured_logs,
    create_connection,
    e2e_installation,
    new_browser,
    whoami,
)
from tests.support.processor import write_self_signed
from tests.unit.api._harness import auth

SUB = "egress-user-1"
CLAIMS = {"email": "egress.user@customer.example", "email_verified": True, "groups": [QA_GROUP]}


class Counting:
    """WSGI middleware: how many requests reached the provider."""

    def __init__(self) -> None:
        self.requests = 0

    def wrap(self, app: Callable[..., Any]) -> Callable[..., Any]:
        def counted(environ: Any, start_response: Any) -> Any:
            self.requests += 1
            return app(environ, start_response)

        return counted


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_self_signed(tmp_path_factory.mktemp("oidc-tls"), "provider")


@pytest.fixture(scope="module")
def counter() -> Counting:
    return Counting()


@pytest.fixture(scope="module")
def provider(tls: tuple[Path, Path], counter: Counting) -> Iterator[OidcProvider]:
    with running_provider(
        require_client_registration=True, require_nonce=True, tls=tls, wsgi=counter.wrap
    ) as p:
        p.set_user(SUB, CLAIMS)
        yield p


def _guard(tls: tuple[Path, Path], provider: OidcProvider, *, loopback: bool) -> EgressGuard:
    port = urlsplit(provider.issuer).port
    assert port is not None
    return EgressGuard(
        ports={port},
        ssl_context=ssl.create_default_context(cafile=str(tls[0])),
        allow_loopback=loopback,
    )


def _installation(
    tmp_path_factory: pytest.TempPathFactory, guard: EgressGuard, name: str
) -> Iterator[E2e]:
    with e2e_installation(tmp_path_factory.mktemp(name) / "data", egress=guard) as inst:
        yield inst


@pytest.fixture(scope="module")
def reachable(
    tmp_path_factory: pytest.TempPathFactory, tls: tuple[Path, Path], provider: OidcProvider
) -> Iterator[E2e]:
    yield from _installation(tmp_path_factory, _guard(tls, provider, loopback=True), "reach")


@pytest.fixture(scope="module")
def walled(
    tmp_path_factory: pytest.TempPathFactory, tls: tuple[Path, Path], provider: OidcProvider
) -> Iterator[E2e]:
    yield from _installation(tmp_path_factory, _guard(tls, provider, loopback=False), "walled")


def _connect(e2e: E2e, provider: OidcProvider) -> tuple[str, str, str]:
    """A connection at tenant A to ``provider`` over https: (admin token, id, login URL)."""
    admin = e2e.world.a.tokens[("admin", "tenant")]
    doc = create_connection(
        e2e,
        e2e.world.a.id,
        admin,
        "oidc",
        {"issuer": provider.issuer, "client_id": "pending", "client_secret": "pending"},
    )
    client_id, secret = provider.register_client([doc["urls"]["redirect_uri"]])
    r = e2e.admin.patch(
        f"/v1/tenant/sso/connections/{doc['id']}",
        headers=auth(admin),
        json={"config": {"client_id": client_id, "client_secret": secret}},
    )
    assert r.status_code == 200, r.text
    return admin, doc["id"], doc["urls"]["login_url"]


def test_a_login_through_the_guard_reaches_an_allowed_provider(
    reachable: E2e, provider: OidcProvider
) -> None:
    admin, conn_id, login_url = _connect(reachable, provider)
    start = audit_size(reachable, admin)
    browser = new_browser(reachable)
    r = browser.get(login_url)
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith(provider.issuer + "/")
    answer = provider.authorize(r.headers["location"], SUB)
    assert answer.status_code in {302, 303}, answer.text
    done = browser.get(answer.headers["location"])
    assert done.status_code == 303, done.text
    li = LoggedIn(browser, reachable.world.a.id, conn_id, done, start, [], [])
    assert whoami(li, "oidc")["bindings"][0]["role"] == "qa_reviewer"
    outcomes = [e["outcome"] for e in audit_since(reachable, admin, start)]
    assert "success" in outcomes


def test_the_default_policy_refuses_a_loopback_provider_before_any_request(
    walled: E2e, provider: OidcProvider, counter: Counting
) -> None:
    admin, _, login_url = _connect(walled, provider)  # https and an allowed port: stored
    start, before = audit_size(walled, admin), counter.requests
    with captured_logs() as logs:
        r = new_browser(walled).get(login_url, headers={"Accept": "application/json"})
    assert r.status_code == 401, r.text
    problem = r.json()
    assert problem["reason"] == "discovery"
    assert "egress-loopback" in problem["detail"]  # the guard's reason code, never the URL
    assert counter.requests == before  # nothing reached the provider
    # Starting a login is not a login attempt: no tenant audit entry, and no log line or
    # answer names the provider.
    assert [e["action"] for e in audit_since(walled, admin, start)] == []
    for text in [r.text, *logs]:
        assert urlsplit(provider.issuer).netloc not in text


def test_a_discovery_url_on_a_port_not_allowed_is_refused_at_creation(
    walled: E2e, provider: OidcProvider
) -> None:
    admin = walled.world.a.tokens[("admin", "tenant")]
    listed = walled.admin.get("/v1/tenant/sso/connections", headers=auth(admin)).json()
    r = walled.admin.post(
        "/v1/tenant/sso/connections",
        headers=auth(admin),
        json={
            "protocol": "oidc",
            "name": "port",
            "config": {
                "issuer": provider.issuer,
                "discovery_url": "https://idp.customer.example:8443/.well-known/openid-configuration",
                "client_id": "c",
                "client_secret": "s",
            },
            "role_mappings": [],
        },
    )
    assert r.status_code == 422, r.text
    assert "discovery_url" in str(r.json())
    assert "8443" not in r.text
    assert "customer.example" not in r.text
    assert walled.admin.get("/v1/tenant/sso/connections", headers=auth(admin)).json() == listed
