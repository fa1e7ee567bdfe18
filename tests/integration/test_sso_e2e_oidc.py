"""OIDC logins end to end: our routes, the real OIDC adapter, real providers (oidc-provider-mock).

Two tenants of one installation, each a customer with its own provider
(authlib's server in a thread: its own signing key, registered clients only,
nonce required, single-use codes bound to the client). Each tenant's admin
creates its OIDC connection through the API with the provider's issuer, reads
the redirect URI the API derived, registers a client with exactly that
redirect URI at the provider, and sets the client id and secret on the
connection (``PATCH``); group ``qa`` maps to ``qa_reviewer`` at tenant scope,
JIT on. A browser (a client with a cookie jar) starts at
``/sso/{tenant}/{connection}/login``, submits the provider's login form, and
follows the provider's redirect to our callback.

The providers speak plain http on loopback. The shipped adapter refuses that
unless the installation built it with ``allow_http_loopback=True`` (the
OIDC adapter's test/development switch) and the connection asks for it, so
the app is given ``OidcAdapter(allow_http_loopback=True)`` through
``app.state.sso_adapters``; everything else is as served.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from callvault import sso
from callvault.sso.oidc import OidcAdapter
from tests.integration.oidc_provider import OidcProvider, running_provider
from tests.integration.sso_e2e import (
    BASE,
    QA_GROUP,
    STATE_COOKIE,
    E2e,
    LoggedIn,
    audit_since,
    audit_size,
    captured_logs,
    check_login_audit,
    check_logout_ends_the_session,
    check_reads_the_role_allows,
    check_session_cookie,
    check_state_change_needs_the_csrf_token,
    check_writes_outside_the_role_are_refused,
    create_connection,
    e2e_installation,
    new_browser,
    opened_session,
    reason,
    whoami,
)
from tests.support.world import TenantWorld
from tests.unit.api._harness import auth

#: The provider's user in group ``qa`` (test-only values); ``ozzie`` marks what must not leak.
QA_SUB = "ozzie-7f3a"
QA_CLAIMS = {
    "email": "ozzie.reviewer@customer.example",
    "email_verified": True,
    "name": "Ozzie Reviewer",
    "groups": [QA_GROUP],
}
#: A user in no mapped group.
AGENT_SUB = "agent-91c2"
AGENT_CLAIMS = {
    "email": "agent-91c2@customer.example",
    "email_verified": True,
    "name": "Agent Example",
    "groups": ["cv-agents"],
}
PII = ("ozzie", "Ozzie Reviewer", "customer.example")


def _provider() -> Iterator[OidcProvider]:
    with running_provider(require_client_registration=True, require_nonce=True) as p:
        p.set_user(QA_SUB, QA_CLAIMS)
        p.set_user(AGENT_SUB, AGENT_CLAIMS)
        yield p


@pytest.fixture(scope="module")
def provider_a() -> Iterator[OidcProvider]:
    yield from _provider()


@pytest.fixture(scope="module")
def provider_b() -> Iterator[OidcProvider]:
    yield from _provider()


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2e]:
    # Plain http on loopback: a plain client (the default one goes through the egress guard).
    plain = httpx.Client(follow_redirects=False)
    adapters = {**sso.default_adapters(), "oidc": OidcAdapter(http=plain, allow_http_loopback=True)}
    with e2e_installation(
        tmp_path_factory.mktemp("sso-e2e-oidc") / "data", adapters=adapters
    ) as inst:
        yield inst


@dataclass(frozen=True)
class Conn:
    tenant: TenantWorld
    id: str
    login_url: str
    redirect_uri: str
    provider: OidcProvider

    @property
    def admin(self) -> str:
        return self.tenant.tokens[("admin", "tenant")]


def _connect(e2e: E2e, tenant: TenantWorld, provider: OidcProvider) -> Conn:
    admin = tenant.tokens[("admin", "tenant")]
    doc = create_connection(
        e2e,
        tenant.id,
        admin,
        "oidc",
        {
            "issuer": provider.issuer,
            "client_id": "not-registered-yet",
            "client_secret": "not-registered-yet",
            "allow_http_loopback": True,
        },
    )
    urls = doc["urls"]
    root = f"{BASE}/sso/{tenant.id}/{doc['id']}"
    assert urls["login_url"] == f"{root}/login"
    assert urls["redirect_uri"] == f"{root}/oidc/callback"
    # The customer's provider administrator registers a client for exactly that redirect URI.
    client_id, secret = provider.register_client([urls["redirect_uri"]])
    r = e2e.admin.patch(
        f"/v1/tenant/sso/connections/{doc['id']}",
        headers=auth(admin),
        json={"config": {"client_id": client_id, "client_secret": secret}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["config"]["client_id"] == client_id
    assert r.json()["secrets_set"] == ["client_secret"]
    assert secret not in r.text
    return Conn(tenant, doc["id"], urls["login_url"], urls["redirect_uri"], provider)


@pytest.fixture(scope="module")
def conn_a(e2e: E2e, provider_a: OidcProvider) -> Conn:
    return _connect(e2e, e2e.world.a, provider_a)


@pytest.fixture(scope="module")
def conn_b(e2e: E2e, provider_b: OidcProvider) -> Conn:
    return _connect(e2e, e2e.world.b, provider_b)


@dataclass
class Started:
    browser: TestClient
    #: The login-state cookie's value our login route set.
    state: str
    #: The provider's authorization URL our login route redirected to.
    authorize_url: str

    @property
    def state_param(self) -> str:
        return parse_qs(urlsplit(self.authorize_url).query)["state"][0]


def _start(e2e: E2e, conn: Conn) -> Started:
    browser = new_browser(e2e)
    r = browser.get(conn.login_url)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith(conn.provider.issuer + "/")
    query = parse_qs(urlsplit(location).query)
    assert query["redirect_uri"] == [conn.redirect_uri]
    state = browser.cookies.get(STATE_COOKIE)
    assert state
    return Started(browser, state, location)


def _authorize(st: Started, conn: Conn, sub: str = QA_SUB) -> str:
    """The user logs in at the provider; the URL it redirects the browser to (our callback)."""
    answer = conn.provider.authorize(st.authorize_url, sub)
    assert answer.status_code in {302, 303}, answer.text
    callback = answer.headers["location"]
    assert callback.startswith(conn.redirect_uri + "?")
    return str(callback)


def _callback(
    client: TestClient, url: str, params: dict[str, str] | None = None, state: str | None = None
) -> httpx.Response:
    """GET our callback; ``params`` replace the query; ``state`` sends that state cookie
    explicitly (an attacker's tool), else the client's own cookie jar."""
    if params is not None:
        url = url.split("?", 1)[0] + "?" + urlencode(params)
    headers = {"Cookie": f"{STATE_COOKIE}={state}"} if state is not None else {}
    return client.get(url, headers=headers)


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _login(e2e: E2e, conn: Conn) -> LoggedIn:
    start = audit_size(e2e, conn.admin)
    with captured_logs() as logs:
        st = _start(e2e, conn)
        done = _callback(st.browser, _authorize(st, conn))
    check_session_cookie(done)
    assert STATE_COOKIE not in st.browser.cookies
    entries = audit_since(e2e, conn.admin, start)
    return LoggedIn(st.browser, conn.tenant.id, conn.id, done, start, logs, entries)


@pytest.fixture(scope="module")
def qa_login(e2e: E2e, conn_a: Conn) -> LoggedIn:
    """The ``qa`` user's first login at tenant A (JIT provisioning). Every other test that
    logs this user in at A uses this fixture first, so this one is always the first login."""
    return _login(e2e, conn_a)


def _sso_failures(e2e: E2e, conn: Conn, start: int) -> list[tuple[str, str, str]]:
    return [
        (e["outcome"], e["resource"]["id"], e["detail"]["reason"])
        for e in audit_since(e2e, conn.admin, start)
        if e["action"] == "authn.sso"
    ]


def _principals(e2e: E2e, conn: Conn) -> list[Any]:
    r = e2e.admin.get("/v1/principals", headers=auth(conn.admin))
    assert r.status_code == 200, r.text
    return list(r.json())


# -- a qa user's login ----------------------------------------------------------------------------


def test_provider_login_opens_a_session_with_the_mapped_role(qa_login: LoggedIn) -> None:
    assert whoami(qa_login, "oidc")["session"]["id"]


def test_the_session_reads_what_qa_reviewer_may_and_nothing_more(
    e2e: E2e, qa_login: LoggedIn
) -> None:
    check_reads_the_role_allows(e2e, qa_login, "oidc", e2e.world.a, e2e.world.b)


def test_a_write_outside_the_role_is_refused(e2e: E2e, qa_login: LoggedIn) -> None:
    check_writes_outside_the_role_are_refused(e2e, qa_login, "oidc", e2e.world.a)


def test_a_state_change_without_the_csrf_token_is_refused(e2e: E2e, qa_login: LoggedIn) -> None:
    check_state_change_needs_the_csrf_token(e2e, qa_login, "oidc", e2e.world.a)


def test_the_login_is_audited_with_ids_only(e2e: E2e, qa_login: LoggedIn) -> None:
    check_login_audit(e2e, qa_login, "oidc", e2e.world.a, PII)


@pytest.mark.usefixtures("qa_login")  # the first login at A is qa_login's
def test_logout_ends_the_session(e2e: E2e, conn_a: Conn) -> None:
    check_logout_ends_the_session(_login(e2e, conn_a), "oidc")


def test_a_user_in_no_mapped_group_is_denied_and_not_created(e2e: E2e, conn_a: Conn) -> None:
    before = _principals(e2e, conn_a)
    start = audit_size(e2e, conn_a.admin)
    st = _start(e2e, conn_a)
    r = _callback(st.browser, _authorize(st, conn_a, AGENT_SUB))
    assert (r.status_code, reason(r)) == (403, "no-role")
    assert not opened_session(r)
    assert _principals(e2e, conn_a) == before
    assert _sso_failures(e2e, conn_a, start) == [("failure", conn_a.id, "no-role")]


# -- isolation: tenant B's provider cannot log anyone into tenant A -----------------------------


def test_tenant_b_code_at_tenant_a_callback_is_refused(
    e2e: E2e, conn_a: Conn, conn_b: Conn
) -> None:
    # A browser at tenant A's login (its state cookie names A's pending state, nonce, PKCE) ...
    victim = _start(e2e, conn_a)
    # ... and a valid code of tenant B's provider, issued to B's client for a login at B.
    at_b = _start(e2e, conn_b)
    b_callback = _authorize(at_b, conn_b)
    b_params = _query(b_callback)
    a0, b0 = audit_size(e2e, conn_a.admin), audit_size(e2e, conn_b.admin)

    # (1) B's answer as the provider sent it, at A's callback in the browser holding A's state.
    r = _callback(victim.browser, conn_a.redirect_uri, b_params)
    assert (r.status_code, reason(r)) == (401, "state")
    assert not opened_session(r)
    # (2) B's code with A's state parameter spliced in (so only the code is foreign): A's
    #     provider does not know B's code.
    spliced = _start(e2e, conn_a)
    r = _callback(spliced.browser, conn_a.redirect_uri, {**b_params, "state": spliced.state_param})
    assert (r.status_code, reason(r)) == (401, "token-exchange")
    assert not opened_session(r)
    # (3) B's answer with B's own state cookie: that state is not one of A's.
    r = _callback(new_browser(e2e), conn_a.redirect_uri, b_params, state=at_b.state)
    assert (r.status_code, reason(r)) == (401, "state-unknown")
    assert not opened_session(r)

    assert _sso_failures(e2e, conn_a, a0) == [
        ("failure", conn_a.id, "state"),
        ("failure", conn_a.id, "token-exchange"),
        ("failure", conn_a.id, "state-unknown"),
    ]
    assert audit_size(e2e, conn_b.admin) == b0  # nothing of A's requests in B's log
    # Neither B's pending login nor B's code was used up by those requests: B's login completes.
    done = _callback(at_b.browser, b_callback)
    check_session_cookie(done)
    assert at_b.browser.get("/v1/session").json()["tenant_id"] == conn_b.tenant.id


# -- single use ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("qa_login")  # the first login at A is qa_login's
def test_a_login_state_used_twice_is_refused(e2e: E2e, conn_a: Conn) -> None:
    st = _start(e2e, conn_a)
    callback = _authorize(st, conn_a)
    ok = _callback(st.browser, callback)
    check_session_cookie(ok)
    start = audit_size(e2e, conn_a.admin)

    # The same callback with the same (captured) state cookie: the state is used up.
    r = _callback(new_browser(e2e), callback, state=st.state)
    assert (r.status_code, reason(r)) == (401, "state-used")
    assert not opened_session(r)
    # The same code under a fresh login state of this connection: the provider's codes are
    # single use, so the exchange fails.
    fresh = _start(e2e, conn_a)
    r = _callback(
        fresh.browser, conn_a.redirect_uri, {**_query(callback), "state": fresh.state_param}
    )
    assert (r.status_code, reason(r)) == (401, "token-exchange")
    assert not opened_session(r)

    assert _sso_failures(e2e, conn_a, start) == [
        ("failure", conn_a.id, "state-used"),
        ("failure", conn_a.id, "token-exchange"),
    ]
