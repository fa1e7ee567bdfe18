"""SP-initiated SAML logins end to end: our routes, the real SAML adapter, real SimpleSAMLphp IdPs.

Two tenants of one installation, each a customer with its own SimpleSAMLphp
instance (its own signing key). Each tenant's admin creates its SAML
connection through the API with the IdP's metadata uploaded and group ``qa``
mapped to ``qa_reviewer`` at tenant scope, JIT on; the IdP is given the SP
entity id and ACS URL the API answered with. A browser (a client with a
cookie jar) starts at ``/sso/{tenant}/{connection}/login``, is sent to the
IdP, logs in there (SimpleSAMLphp's real form), and brings the IdP's
auto-POST form back to our ACS.

The app runs with ``sso.default_adapters()``, exactly as served: nothing is
installed through ``app.state.sso_adapters`` (the SAML adapter accepts the
IdP's plain-http loopback endpoints in metadata as it does for any loopback
URL; the SP side is the https ``CALLVAULT_PUBLIC_BASE_URL``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from callvault.store.models import SsoReplay
from tests.integration.simplesamlphp import USERS, PostForm, SpRemote, browser_login
from tests.integration.sso_e2e import (
    BASE,
    PII_MARKERS,
    SAML_QA_PASSWORD,
    SAML_QA_USER,
    STATE_COOKIE,
    E2e,
    E2eSamlIdp,
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
    start_saml_idp,
    whoami,
)
from tests.support.world import TenantWorld

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def idp_a() -> Iterator[E2eSamlIdp]:
    idp = start_saml_idp("e2ea")
    yield idp
    idp.stop()


@pytest.fixture(scope="module")
def idp_b() -> Iterator[E2eSamlIdp]:
    idp = start_saml_idp("e2eb")
    yield idp
    idp.stop()


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2e]:
    with e2e_installation(tmp_path_factory.mktemp("sso-e2e-saml") / "data") as inst:
        yield inst


@dataclass(frozen=True)
class Conn:
    tenant: TenantWorld
    id: str
    login_url: str
    acs_url: str
    idp: E2eSamlIdp

    @property
    def admin(self) -> str:
        return self.tenant.tokens[("admin", "tenant")]


def _connect(e2e: E2e, tenant: TenantWorld, idp: E2eSamlIdp) -> Conn:
    doc = create_connection(
        e2e,
        tenant.id,
        tenant.tokens[("admin", "tenant")],
        "saml",
        {
            "idp_metadata_xml": idp.metadata_xml().decode(),
            "email_attribute": "mail",
            "display_name_attribute": "displayName",
            "groups_attribute": "groups",
        },
    )
    urls = doc["urls"]
    root = f"{BASE}/sso/{tenant.id}/{doc['id']}"
    assert urls["login_url"] == f"{root}/login"
    assert urls["sp_entity_id"] == f"{root}/saml/metadata"
    assert urls["acs_url"] == f"{root}/saml/acs"
    # The customer's IdP administrator registers our SP as the API described it.
    idp.register_sp(SpRemote(entity_id=urls["sp_entity_id"], acs_url=urls["acs_url"]))
    return Conn(tenant, doc["id"], urls["login_url"], urls["acs_url"], idp)


@pytest.fixture(scope="module")
def conn_a(e2e: E2e, idp_a: E2eSamlIdp) -> Conn:
    return _connect(e2e, e2e.world.a, idp_a)


@pytest.fixture(scope="module")
def conn_b(e2e: E2e, idp_b: E2eSamlIdp) -> Conn:
    return _connect(e2e, e2e.world.b, idp_b)


@dataclass
class Started:
    browser: TestClient
    #: The login-state cookie's value our login route set.
    state: str
    #: The IdP's auto-POST form (SAMLResponse, RelayState) after the user logged in.
    form: PostForm


def _start(e2e: E2e, conn: Conn) -> tuple[TestClient, str, str]:
    """A new browser at our login URL: (browser, state cookie, the IdP URL it is sent to)."""
    browser = new_browser(e2e)
    r = browser.get(conn.login_url)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith(conn.idp.idp_initiated_url + "?SAMLRequest=")
    state = browser.cookies.get(STATE_COOKIE)
    assert state
    return browser, state, location


def _authenticate(
    e2e: E2e, conn: Conn, user: str = SAML_QA_USER, password: str = SAML_QA_PASSWORD
) -> Started:
    """Start at our login URL and log in at the IdP; the form is not posted yet."""
    browser, state, location = _start(e2e, conn)
    form = browser_login(location, username=user, password=password)
    assert form.action == conn.acs_url  # the IdP posts to the ACS the API told it
    return Started(browser, state, form)


def _post(
    client: TestClient, url: str, fields: dict[str, str], state: str | None = None
) -> httpx.Response:
    """The IdP's auto-POST form submitted to ``url``; ``state``: send that state cookie
    explicitly (an attacker's replay tool), else the client's own cookie jar."""
    headers = {"Content-Type": FORM, "Origin": "null"}
    if state is not None:
        headers["Cookie"] = f"{STATE_COOKIE}={state}"
    return client.post(url, content=str(httpx.QueryParams(fields)), headers=headers)


def _login(e2e: E2e, conn: Conn) -> LoggedIn:
    start = audit_size(e2e, conn.admin)
    with captured_logs() as logs:
        st = _authenticate(e2e, conn)
        done = _post(st.browser, conn.acs_url, st.form.fields)
    check_session_cookie(done)
    assert STATE_COOKIE not in st.browser.cookies  # cleared by the login answer
    entries = audit_since(e2e, conn.admin, start)
    return LoggedIn(st.browser, conn.tenant.id, conn.id, done, start, logs, entries)


@pytest.fixture(scope="module")
def qa_login(e2e: E2e, conn_a: Conn) -> LoggedIn:
    """The ``qa`` user's first login at tenant A (JIT provisioning). Every other test that
    logs this user in at A uses this fixture first, so this one is always the first login."""
    return _login(e2e, conn_a)


def _replay_rows(e2e: E2e, conn: Conn) -> int:
    """Rows of the connection in the database replay cache (assertion ids seen)."""
    with e2e.rt.db.tenant_tx(conn.tenant.id) as s:
        count = s.execute(
            select(func.count()).select_from(SsoReplay).where(SsoReplay.connection_id == conn.id)
        ).scalar_one()
    return int(count)


def _sso_failures(e2e: E2e, conn: Conn, start: int) -> list[tuple[str, str, str]]:
    return [
        (e["outcome"], e["resource"]["id"], e["detail"]["reason"])
        for e in audit_since(e2e, conn.admin, start)
        if e["action"] == "authn.sso"
    ]


# -- the connection as the admin made it --------------------------------------------------------


def test_our_sp_metadata_is_served_at_the_entity_id_the_api_returned(
    e2e: E2e, conn_a: Conn
) -> None:
    r = new_browser(e2e).get(f"{BASE}/sso/{conn_a.tenant.id}/{conn_a.id}/saml/metadata")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/samlmetadata+xml")
    assert (
        f'entityID="{BASE}/sso/{conn_a.tenant.id}/{conn_a.id}/saml/metadata"'.encode() in r.content
    )
    assert f'Location="{conn_a.acs_url}"'.encode() in r.content


# -- a qa user's login ----------------------------------------------------------------------------


def test_idp_login_opens_a_session_with_the_mapped_role(qa_login: LoggedIn) -> None:
    me = whoami(qa_login, "saml")
    assert me["session"]["id"]


def test_the_session_reads_what_qa_reviewer_may_and_nothing_more(
    e2e: E2e, qa_login: LoggedIn
) -> None:
    check_reads_the_role_allows(e2e, qa_login, "saml", e2e.world.a, e2e.world.b)


def test_a_write_outside_the_role_is_refused(e2e: E2e, qa_login: LoggedIn) -> None:
    check_writes_outside_the_role_are_refused(e2e, qa_login, "saml", e2e.world.a)


def test_a_state_change_without_the_csrf_token_is_refused(e2e: E2e, qa_login: LoggedIn) -> None:
    check_state_change_needs_the_csrf_token(e2e, qa_login, "saml", e2e.world.a)


def test_the_login_is_audited_with_ids_only(e2e: E2e, qa_login: LoggedIn) -> None:
    check_login_audit(e2e, qa_login, "saml", e2e.world.a, PII_MARKERS)


@pytest.mark.usefixtures("qa_login")  # the first login at A is qa_login's
def test_logout_ends_the_session(e2e: E2e, conn_a: Conn) -> None:
    check_logout_ends_the_session(_login(e2e, conn_a), "saml")


def test_a_user_in_no_mapped_group_is_denied_and_not_created(e2e: E2e, conn_a: Conn) -> None:
    admin = {"Authorization": f"Bearer {conn_a.admin}"}
    before = e2e.admin.get("/v1/principals", headers=admin).json()
    start = audit_size(e2e, conn_a.admin)
    st = _authenticate(e2e, conn_a, user="bob", password=USERS["bob"][0])  # groups: cv-agents
    r = _post(st.browser, conn_a.acs_url, st.form.fields)
    assert r.status_code == 403
    assert reason(r) == "no-role"
    assert not opened_session(r)
    assert e2e.admin.get("/v1/principals", headers=admin).json() == before
    assert _sso_failures(e2e, conn_a, start) == [("failure", conn_a.id, "no-role")]


# -- isolation: tenant B's IdP cannot log anyone into tenant A ----------------------------------


def test_tenant_b_idp_response_at_tenant_a_acs_is_refused(
    e2e: E2e, conn_a: Conn, conn_b: Conn
) -> None:
    # A browser at tenant A's login (its state cookie names A's pending AuthnRequest) ...
    victim, _, _ = _start(e2e, conn_a)
    # ... and a valid, signed response of tenant B's IdP to a login at tenant B.
    at_b = _authenticate(e2e, conn_b)
    a0, b0 = audit_size(e2e, conn_a.admin), audit_size(e2e, conn_b.admin)

    # (1) B's response POSTed to A's ACS in the browser holding A's login state: it answers
    #     another AuthnRequest (B's), and A's state holds A's.
    r = _post(victim, conn_a.acs_url, at_b.form.fields)
    assert (r.status_code, reason(r)) == (401, "in-response-to")
    assert not opened_session(r)
    # (2) ... or together with B's own state cookie: that state is not one of A's.
    r = _post(new_browser(e2e), conn_a.acs_url, at_b.form.fields, state=at_b.state)
    assert (r.status_code, reason(r)) == (401, "state-unknown")
    assert not opened_session(r)

    assert _sso_failures(e2e, conn_a, a0) == [
        ("failure", conn_a.id, "in-response-to"),
        ("failure", conn_a.id, "state-unknown"),
    ]
    assert audit_size(e2e, conn_b.admin) == b0  # nothing of A's requests in B's log
    # B's pending login was not touched by either request: it still completes, at B.
    done = _post(at_b.browser, conn_b.acs_url, at_b.form.fields)
    check_session_cookie(done)
    assert at_b.browser.get("/v1/session").json()["tenant_id"] == conn_b.tenant.id


def test_tenant_b_idp_answering_tenant_a_login_is_refused(
    e2e: E2e, conn_a: Conn, conn_b: Conn
) -> None:
    """Tenant B's IdP (its administrator registered A's public SP entity id and ACS URL
    there) answers A's own AuthnRequest: right InResponseTo, audience and destination,
    valid signature, but not from the IdP tenant A's connection trusts."""
    idp_b = conn_b.idp
    a_sp = SpRemote(
        entity_id=f"{BASE}/sso/{conn_a.tenant.id}/{conn_a.id}/saml/metadata", acs_url=conn_a.acs_url
    )
    idp_b.register_sp(a_sp)
    browser, _, location = _start(e2e, conn_a)
    at_b = location.replace(conn_a.idp.base_url, idp_b.base_url, 1)
    form = browser_login(at_b, username=SAML_QA_USER, password=SAML_QA_PASSWORD)
    assert form.action == conn_a.acs_url
    a0, b0 = audit_size(e2e, conn_a.admin), audit_size(e2e, conn_b.admin)
    r = _post(browser, conn_a.acs_url, form.fields)
    assert (r.status_code, reason(r)) == (401, "issuer")
    assert not opened_session(r)
    assert _sso_failures(e2e, conn_a, a0) == [("failure", conn_a.id, "issuer")]
    assert audit_size(e2e, conn_b.admin) == b0


# -- replay and single use --------------------------------------------------------------------


@pytest.mark.usefixtures("qa_login")  # the first login at A is qa_login's
def test_a_replayed_saml_response_is_refused(e2e: E2e, conn_a: Conn) -> None:
    st = _authenticate(e2e, conn_a)
    cached = _replay_rows(e2e, conn_a)
    ok = _post(st.browser, conn_a.acs_url, st.form.fields)
    check_session_cookie(ok)
    assert _replay_rows(e2e, conn_a) == cached + 1  # the assertion id is in the DB cache
    start = audit_size(e2e, conn_a.admin)

    # The same response with the same (captured) state cookie: the state is used up.
    r = _post(new_browser(e2e), conn_a.acs_url, st.form.fields, state=st.state)
    assert (r.status_code, reason(r)) == (401, "state-used")
    assert not opened_session(r)
    # In a browser with a fresh login state: the response answers another AuthnRequest.
    fresh, _, _ = _start(e2e, conn_a)
    r = _post(fresh, conn_a.acs_url, st.form.fields)
    assert (r.status_code, reason(r)) == (401, "in-response-to")
    assert not opened_session(r)
    # With no login state at all.
    r = _post(new_browser(e2e), conn_a.acs_url, st.form.fields)
    assert (r.status_code, reason(r)) == (401, "state-missing")
    assert not opened_session(r)

    assert _sso_failures(e2e, conn_a, start) == [
        ("failure", conn_a.id, "state-used"),
        ("failure", conn_a.id, "in-response-to"),
        ("failure", conn_a.id, "state-missing"),
    ]
    # Each replay was stopped by the browser-bound state before the adapter's replay cache.
    assert _replay_rows(e2e, conn_a) == cached + 1


def test_a_login_state_is_used_up_even_by_a_failed_answer(e2e: E2e, conn_a: Conn) -> None:
    st = _authenticate(e2e, conn_a)
    # A garbage answer first (the state cookie still in the browser's jar) ...
    r = _post(st.browser, conn_a.acs_url, {"SAMLResponse": "bm90IGEgcmVzcG9uc2U="}, state=st.state)
    assert (r.status_code, reason(r)) == (401, "malformed")
    # ... and the IdP's genuine response with the same state is then refused.
    r = _post(new_browser(e2e), conn_a.acs_url, st.form.fields, state=st.state)
    assert (r.status_code, reason(r)) == (401, "state-used")
    assert not opened_session(r)
