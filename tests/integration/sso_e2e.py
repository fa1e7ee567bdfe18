"""End-to-end SSO through callvault's own routes: the real app, real adapters, real IdPs.

The API tests of the login routes (``tests/unit/api/test_sso_login.py``) use
the adapter test double; the adapter suites (``test_saml_login.py``,
``test_oidc_login.py``) talk to real IdPs without the routes. The e2e suites
(``test_sso_e2e_saml.py``, ``test_sso_e2e_oidc.py``) join the two with what
is here:

- :func:`e2e_installation`: a runtime with ``CALLVAULT_PUBLIC_BASE_URL`` set
  to :data:`BASE`, the API app (optionally with adapters installed through
  ``app.state.sso_adapters``, the app's documented hook), an admin client
  entered once (it runs the app's lifespan) and the two-tenant world of
  ``tests/support/world.py``.
- :func:`new_browser`: a fresh client with its own cookie jar on the same app,
  at the installation's public https origin, following no redirects (a test
  follows each hop itself, as a browser would).
- :class:`E2eSamlIdp`: SimpleSAMLphp (``tests/integration/simplesamlphp.py``)
  with one more user, in the IdP group ``qa``.
- Audit and cookie helpers.

Everything the IdPs hold about their users is test-only data.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from callvault import sessions
from callvault.api.app import create_fastapi
from callvault.api.middleware import Guard
from callvault.config import load_settings
from callvault.egress import EgressGuard
from callvault.runtime import Runtime
from callvault.sso import SsoAdapter
from tests.integration.simplesamlphp import (
    USERS,
    SamlPeerUnavailableError,
    SimpleSamlIdp,
    _php_str,
    find_simplesamlphp,
)
from tests.support.world import TenantWorld, World, build_world
from tests.unit.api._harness import auth, problem_json

#: The installation's public base URL: derived SSO URLs and the browser's origin.
BASE = "https://cv.example.test"
STATE_COOKIE = "__Host-cv-sso-state"
SESSION_COOKIE = sessions.COOKIE_NAME
#: The IdP group the connections map to ``qa_reviewer`` at tenant scope.
QA_GROUP = "qa"

#: The SAML IdPs' extra user (in group ``qa``). Test-only values; ``quinn`` is the marker
#: that must never reach an audit entry or a log line.
SAML_QA_USER = "quinn"
SAML_QA_PASSWORD = "quinn-pass"
SAML_QA_ATTRIBUTES: dict[str, list[str]] = {
    "uid": ["quinn.reviewer"],
    "mail": ["quinn.reviewer@customer.example"],
    "displayName": ["Quinn Reviewer"],
    "groups": [QA_GROUP],
}
#: What the IdP sends about the user that callvault must keep out of audit entries and logs.
PII_MARKERS = ("quinn", "Quinn Reviewer", "customer.example")


class E2eSamlIdp(SimpleSamlIdp):
    """A SimpleSAMLphp instance whose users are :data:`USERS` plus the ``qa`` user."""

    def _write_config(self) -> None:
        super()._write_config()
        users = {**USERS, SAML_QA_USER: (SAML_QA_PASSWORD, SAML_QA_ATTRIBUTES)}
        entries = ",\n".join(
            f"        {_php_str(f'{u}:{pw}')} => ["
            + ", ".join(
                f"{_php_str(k)} => [" + ", ".join(_php_str(v) for v in vals) + "]"
                for k, vals in attrs.items()
            )
            + "]"
            for u, (pw, attrs) in users.items()
        )
        (self.dir / "config" / "authsources.php").write_text(f"""<?php
$config = [
    'admin' => ['core:AdminPassword'],
    'example-userpass' => [
        'exampleauth:UserPass',
{entries},
    ],
];
""")


def start_saml_idp(name: str) -> E2eSamlIdp:
    """Start an instance; skip without SimpleSAMLphp, fail instead if ``CV_TEST_REQUIRE_SAML``."""
    try:
        find_simplesamlphp()
    except SamlPeerUnavailableError as exc:
        if os.environ.get("CV_TEST_REQUIRE_SAML"):
            pytest.fail(f"CV_TEST_REQUIRE_SAML is set but {exc}")
        pytest.skip(f"SimpleSAMLphp IdP unavailable: {exc}")
    idp = E2eSamlIdp.start(name)
    assert isinstance(idp, E2eSamlIdp)
    return idp


@dataclass
class E2e:
    rt: Runtime
    #: The ASGI app (FastAPI inside the Guard), shared by every client.
    app: Any
    #: Entered once (the app's lifespan); used with API keys only, never with cookies.
    admin: TestClient
    world: World


@contextmanager
def e2e_installation(
    data_dir: Path,
    *,
    adapters: Mapping[str, SsoAdapter] | None = None,
    egress: EgressGuard | None = None,
) -> Iterator[E2e]:
    """The installation; ``adapters`` (if given) replaces the app's own; ``egress`` (if
    given) replaces the installation's guard for tenant-supplied URLs (``sso_egress_guard``:
    the app's own adapters are then made with it)."""
    rt = Runtime.open(load_settings({}, data_dir=data_dir, public_base_url=BASE), create_key=True)
    try:
        api: FastAPI = create_fastapi(rt)
        if adapters is not None:
            api.state.sso_adapters = dict(adapters)
        if egress is not None:
            api.state.sso_egress_guard = egress
        app = Guard(
            api,
            max_body_bytes=rt.settings.max_body_bytes,
            hsts_max_age_seconds=rt.settings.hsts_max_age_seconds,
        )
        with TestClient(app, base_url=BASE) as admin:
            yield E2e(rt=rt, app=app, admin=admin, world=build_world(rt, admin))
    finally:
        rt.close()


def new_browser(e2e: E2e) -> TestClient:
    """A browser: its own cookie jar, at the public origin, following no redirects.

    Not entered as a context manager: entering would run the app's lifespan a second time.
    """
    return TestClient(e2e.app, base_url=BASE, follow_redirects=False)


def create_connection(
    e2e: E2e, tenant_id: str, admin_token: str, protocol: str, config: Mapping[str, Any]
) -> dict[str, Any]:
    """``POST /v1/tenant/sso/connections`` as the tenant's admin: group ``qa`` → qa_reviewer
    at tenant scope, JIT on. Returns the API's answer (``id``, ``urls``...)."""
    r = e2e.admin.post(
        "/v1/tenant/sso/connections",
        headers=auth(admin_token),
        json={
            "protocol": protocol,
            "name": f"{protocol} e2e",
            "config": dict(config),
            "role_mappings": [
                {
                    "group": QA_GROUP,
                    "role": "qa_reviewer",
                    "scope_kind": "tenant",
                    "scope_id": tenant_id,
                }
            ],
            "jit": True,
            "post_login_path": "/console/",
        },
    )
    assert r.status_code == 201, r.text
    doc: dict[str, Any] = r.json()
    return doc


def set_cookies(resp: httpx.Response) -> dict[str, str]:
    """Cookie name → the full ``Set-Cookie`` header, for every cookie ``resp`` sets."""
    return {h.split("=", 1)[0]: h for h in resp.headers.get_list("set-cookie")}


def opened_session(resp: httpx.Response) -> bool:
    """Whether ``resp`` hands the browser a (non-empty) session cookie."""
    header = set_cookies(resp).get(SESSION_COOKIE)
    if header is None:
        return False
    value = header.split(";", 1)[0].split("=", 1)[1].strip('"')
    return value.startswith("cvs1.")  # the session cookie value format (ADR 15)


def reason(resp: httpx.Response) -> str:
    return str(problem_json(resp)["reason"])


def audit_size(e2e: E2e, admin_token: str) -> int:
    r = e2e.admin.get("/v1/audit/entries", headers=auth(admin_token), params={"limit": 1})
    assert r.status_code == 200, r.text
    return int(r.json()["size"])


def audit_since(e2e: E2e, admin_token: str, start: int) -> list[dict[str, Any]]:
    """The tenant's audit entries from ``start``, read through the API as its admin would."""
    r = e2e.admin.get(
        "/v1/audit/entries", headers=auth(admin_token), params={"start": start, "limit": 1000}
    )
    assert r.status_code == 200, r.text
    return [item["entry"] for item in r.json()["entries"]]


def audit_text(e2e: E2e, admin_token: str) -> str:
    """Every entry of the tenant's log, canonical JSON, one per line (all pages)."""
    lines: list[str] = []
    while True:
        r = e2e.admin.get(
            "/v1/audit/entries",
            headers=auth(admin_token),
            params={"start": len(lines), "limit": 1000},
        )
        assert r.status_code == 200, r.text
        doc = r.json()
        lines.extend(item["canonical"] for item in doc["entries"])
        if not doc["entries"] or len(lines) >= doc["size"]:
            return "\n".join(lines)


def strings_in(value: object) -> Iterator[str]:
    """Every string value (and key) anywhere in a decoded JSON document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from strings_in(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from strings_in(v)


def assert_no_pii(texts: Iterable[str], markers: Iterable[str]) -> None:
    """None of ``markers`` (what the IdP sent) appears in any of ``texts``, case-insensitively."""
    joined = "\n".join(texts).lower()
    for marker in markers:
        assert marker.lower() not in joined, f"IdP-sent value {marker!r} leaked"


# -- a logged-in browser and what every protocol's login must give it ---------------------------


@dataclass
class LoggedIn:
    """A browser after a successful login through our routes."""

    browser: TestClient
    tenant_id: str
    connection_id: str
    #: Our ACS / callback answer (303 with the session cookie).
    response: httpx.Response
    #: The tenant log's size before the login started.
    audit_start: int
    #: Every log record emitted by the app while the login ran, formatted with its arguments.
    logs: list[str]
    #: The tenant's audit entries the login wrote (read right after it).
    entries: list[dict[str, Any]]


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(level=logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every record of every logger (DEBUG and up) while the block runs."""
    lines: list[str] = []
    handler = _Collect(lines)
    root = logging.getLogger()
    app = logging.getLogger("callvault")
    levels = (root.level, app.level)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    app.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        app.setLevel(levels[1])


def check_session_cookie(resp: httpx.Response) -> None:
    """The login answer: 303 to the connection's page, a ``__Host-`` session cookie, state gone."""
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == "/console/"
    assert opened_session(resp)
    attrs = [a.strip().lower() for a in set_cookies(resp)[SESSION_COOKIE].split(";")[1:]]
    assert {"secure", "httponly", "path=/", "samesite=lax"} <= set(attrs)
    assert not any(a.startswith("domain") for a in attrs)
    state = set_cookies(resp).get(STATE_COOKIE)
    assert state is not None
    assert "max-age=0" in state.lower()


def whoami(li: LoggedIn, protocol: str) -> dict[str, Any]:
    """``GET /v1/session`` with the cookie: the user, the mapped role, this session."""
    r = li.browser.get("/v1/session")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    doc: dict[str, Any] = r.json()
    assert doc["tenant_id"] == li.tenant_id
    assert doc["authenticated_by"] == "session"
    assert doc["principal_kind"] == "user"
    assert doc["bindings"] == [
        {"role": "qa_reviewer", "scope_kind": "tenant", "scope_id": li.tenant_id}
    ]
    sess = doc["session"]
    assert sess["principal_id"] == doc["principal_id"]
    assert sess["method"] == protocol
    assert sess["connection_id"] == li.connection_id
    assert sess["csrf_token"]
    return doc


def csrf_headers(li: LoggedIn, protocol: str) -> dict[str, str]:
    """What the console page sends with a state change: same origin and the CSRF token."""
    token = whoami(li, protocol)["session"]["csrf_token"]
    return {sessions.CSRF_HEADER: token, "Origin": BASE, "Sec-Fetch-Site": "same-origin"}


def check_reads_the_role_allows(
    e2e: E2e, li: LoggedIn, protocol: str, own: TenantWorld, other: TenantWorld
) -> None:
    """qa_reviewer with the cookie: redacted transcript and call metadata yes; the full
    transcript no (403, audited as denied); another tenant's call does not exist (404)."""
    pid = whoami(li, protocol)["principal_id"]
    admin = own.tokens[("admin", "tenant")]
    start = audit_size(e2e, admin)
    call = own.calls[0]
    meta = li.browser.get(f"/v1/calls/{call}")
    assert meta.status_code == 200, meta.text
    assert meta.json()["id"] == call
    r = li.browser.get(f"/v1/calls/{call}/transcript")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["call_id"] == call
    assert doc["view"] == "redacted"
    assert doc["segments"]
    assert "31926819" not in r.text  # the world transcript's account number
    full = li.browser.get(f"/v1/calls/{call}/transcript", params={"view": "full"})
    assert full.status_code == 403
    assert problem_json(full)["status"] == 403
    foreign = li.browser.get(f"/v1/calls/{other.calls[0]}/transcript")
    assert foreign.status_code == 404
    assert problem_json(foreign)["status"] == 404
    gate = [
        (e["action"], e["outcome"], e["resource"]["id"])
        for e in audit_since(e2e, admin, start)
        if e["actor"] == pid
    ]
    assert ("transcript:read_redacted", "allowed", call) in gate
    assert ("transcript:read", "denied", call) in gate


def check_writes_outside_the_role_are_refused(
    e2e: E2e, li: LoggedIn, protocol: str, own: TenantWorld
) -> None:
    """With a valid CSRF token (so the gate, not the CSRF check, decides), writes qa_reviewer
    may not do are refused (403 ``forbidden``, audited as denied) and change nothing."""
    headers = csrf_headers(li, protocol)
    pid = whoami(li, protocol)["principal_id"]
    token = own.tokens[("admin", "tenant")]
    admin = auth(token)
    start = audit_size(e2e, token)
    before = e2e.admin.get("/v1/deployments", headers=admin).json()
    r = li.browser.post(
        "/v1/deployments", headers=headers, json={"name": "by-qa", "region": "eu-west-1"}
    )
    assert r.status_code == 403, r.text
    assert problem_json(r)["type"].endswith(":forbidden")
    agent = own.agents[0]
    r = li.browser.patch(f"/v1/agents/{agent}", headers=headers, json={"name": "renamed"})
    assert r.status_code == 403, r.text
    assert problem_json(r)["type"].endswith(":forbidden")
    assert e2e.admin.get("/v1/deployments", headers=admin).json() == before
    assert e2e.admin.get(f"/v1/agents/{agent}", headers=admin).json()["name"] != "renamed"
    denied = {
        (e["action"], e["outcome"])
        for e in audit_since(e2e, token, start)
        if e["actor"] == pid and e["action"] != "session.csrf"
    }
    assert denied == {("deployment:create", "denied"), ("agent:update", "denied")}


def check_state_change_needs_the_csrf_token(
    e2e: E2e, li: LoggedIn, protocol: str, own: TenantWorld
) -> None:
    """A cookie-authenticated POST without ``X-CSRF-Token``, or from another origin, is
    refused (403, audited) and does nothing: logout that way leaves the session alive."""
    admin = own.tokens[("admin", "tenant")]
    pid = whoami(li, protocol)["principal_id"]
    start = audit_size(e2e, admin)
    r = li.browser.post("/v1/session/logout", headers={"Origin": BASE})
    assert r.status_code == 403
    assert problem_json(r)["type"].endswith(":csrf-failed")
    cross_site = {**csrf_headers(li, protocol), "Origin": "https://evil.example"}
    r = li.browser.post("/v1/session/logout", headers=cross_site)
    assert r.status_code == 403
    assert problem_json(r)["type"].endswith(":csrf-failed")
    assert whoami(li, protocol)["session"]["csrf_token"]  # still signed in
    refused = [
        (e["outcome"], e["actor"], e["detail"]["reason"])
        for e in audit_since(e2e, admin, start)
        if e["action"] == "session.csrf"
    ]
    assert refused == [("denied", pid, "csrf-token-missing"), ("denied", pid, "origin")]


def check_login_audit(
    e2e: E2e, li: LoggedIn, protocol: str, own: TenantWorld, pii: Iterable[str]
) -> None:
    """The login in the tenant's log: provisioning, the role binding, the success entry, with
    ids, reason codes and HMACs only; nothing the IdP sent, in the log or in log lines."""
    me = whoami(li, protocol)
    pid, sid = me["principal_id"], me["session"]["id"]
    admin = own.tokens[("admin", "tenant")]
    entries = [e for e in li.entries if e["action"].startswith(("authn.sso", "sso.", "principal."))]
    actions = [e["action"] for e in entries]
    assert actions == ["sso.user.provision", "principal.bind_role", "authn.sso"], actions
    provision, bind, login = entries
    assert provision["actor"] == li.connection_id
    assert provision["resource"]["id"] == pid
    assert provision["detail"]["connection"] == li.connection_id
    assert bind["detail"]["role"] == "qa_reviewer"
    assert bind["detail"]["scope"] == li.tenant_id
    assert bind["detail"]["source"] == "sso"
    assert login["outcome"] == "success"
    assert login["actor"] == pid
    assert login["resource"] == {"kind": "sso_connection", "id": li.connection_id}
    assert login["detail"]["protocol"] == protocol
    assert login["detail"]["session"] == sid
    assert str(login["detail"]["subject"]).startswith("hmac-sha256:")
    # The principal JIT created carries no PII either.
    p = e2e.admin.get(f"/v1/principals/{pid}", headers=auth(admin))
    assert p.status_code == 200, p.text
    assert p.json()["name"].startswith("sso:")
    every = audit_text(e2e, admin)
    assert_no_pii([every, p.text, *li.logs], pii)
    assert QA_GROUP not in set(strings_in(li.entries))


def check_logout_ends_the_session(li: LoggedIn, protocol: str) -> None:
    r = li.browser.post("/v1/session/logout", headers=csrf_headers(li, protocol))
    assert r.status_code == 204, r.text
    assert li.browser.get("/v1/session").status_code == 401
