"""Browser logins end to end through the routes: state binding, JIT, mapping, denials, audit.

The IdP side is the test double of ``tests/unit/sso/_double.py`` (the real
SAML and OIDC adapters are tested against real IdPs in their own suites);
sessions are the real ``callvault.sessions``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault import access
from callvault.bootstrap import create_tenant_with_owner
from callvault.config import load_settings
from callvault.errors import AuditUnavailableError
from callvault.runtime import Runtime
from callvault.store.models import Principal, RoleBinding, SsoLoginState
from tests.unit.api._harness import audit_entries, auth, problem_json, row_counts
from tests.unit.sso._double import IDP_URL, answer, config, sso_asgi

BASE = "https://cv.example.test"
STATE = "__Host-cv-sso-state"
SUBJECT = "00u1a2b3c4-jane.doe"
EMAIL = "jane.doe@example-trust.nhs.uk"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    rt: Runtime
    client: TestClient
    clock: Clock
    tenant: str
    owner: dict[str, str]
    dep: str


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    rt = Runtime.open(
        load_settings({}, data_dir=tmp_path / "data", public_base_url=BASE), create_key=True
    )
    clock = Clock()
    try:
        with TestClient(sso_asgi(rt, clock=clock), base_url="https://testserver") as client:
            init = create_tenant_with_owner(rt, tenant_name="acme", owner_name="acme-owner")
            owner = auth(init.token)
            r = client.post(
                "/v1/deployments", headers=owner, json={"name": "d", "region": "eu-west-1"}
            )
            assert r.status_code == 201, r.text
            yield Env(rt, client, clock, init.tenant_id, owner, r.json()["id"])
    finally:
        rt.close()


def connection(env: Env, protocol: str = "saml", **over: Any) -> str:
    doc: dict[str, Any] = {
        "protocol": protocol,
        "name": f"{protocol} idp",
        "config": config(),
        "role_mappings": [
            {"group": "cv-admins", "role": "admin"},
            {
                "group": "cv-qa",
                "role": "qa_reviewer",
                "scope_kind": "deployment",
                "scope_id": env.dep,
            },
        ],
    }
    doc.update(over)
    r = env.client.post("/v1/tenant/sso/connections", headers=env.owner, json=doc)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@dataclass
class Started:
    request_id: str
    cookie: str
    response: httpx.Response


def start(env: Env, conn: str, tenant: str | None = None) -> Started:
    env.client.cookies.clear()
    r = env.client.get(f"/sso/{tenant or env.tenant}/{conn}/login", follow_redirects=False)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith(IDP_URL)
    request_id = parse_qs(urlsplit(location).query)["request"][0]
    cookie = r.cookies[STATE]
    env.client.cookies.clear()
    return Started(request_id, cookie, r)


def finish(
    env: Env,
    conn: str,
    token: str,
    cookie: str | None,
    *,
    protocol: str = "saml",
    tenant: str | None = None,
    accept: str = "application/json",
) -> httpx.Response:
    env.client.cookies.clear()
    headers = {"Accept": accept}
    if cookie is not None:
        headers["Cookie"] = f"{STATE}={cookie}"
    base = f"/sso/{tenant or env.tenant}/{conn}"
    if protocol == "saml":
        return env.client.post(
            f"{base}/saml/acs",
            content=str(httpx.QueryParams({"SAMLResponse": token, "RelayState": "x"})),
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
    return env.client.get(
        f"{base}/oidc/callback",
        params={"code": token, "state": "s"},
        headers=headers,
        follow_redirects=False,
    )


def login(
    env: Env, conn: str, groups: tuple[str, ...] = ("cv-admins",), protocol: str = "saml", **kw: Any
) -> httpx.Response:
    st = start(env, conn)
    return finish(
        env, conn, answer(st.request_id, SUBJECT, groups=groups, **kw), st.cookie, protocol=protocol
    )


def sso_principals(env: Env) -> list[Principal]:
    with env.rt.db.tenant_tx(env.tenant) as s:
        return list(
            s.execute(select(Principal).where(Principal.name.like("sso:%"))).scalars().all()
        )


def bindings(env: Env, principal_id: str) -> set[tuple[str, str, str, str]]:
    with env.rt.db.tenant_tx(env.tenant) as s:
        rows = s.execute(select(RoleBinding).where(RoleBinding.principal_id == principal_id))
        return {(r.role, r.scope_kind, r.scope_id, r.created_by) for r in rows.scalars()}


def reason(r: httpx.Response) -> str:
    return str(problem_json(r)["reason"])


def sso_entries(env: Env) -> list[dict[str, Any]]:
    return [
        e
        for e in audit_entries(env.rt, env.tenant)
        if e["action"].startswith(("authn.sso", "sso.", "principal.bind", "principal.unbind"))
    ]


# -- start -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "samesite"), [("saml", "none"), ("oidc", "lax")])
def test_login_start_binds_the_state_to_the_browser_with_a_host_cookie(
    env: Env, protocol: str, samesite: str
) -> None:
    conn = connection(env, protocol)
    st = start(env, conn)
    header = st.response.headers["set-cookie"]
    attrs = {a.strip().split("=")[0].lower(): a.strip() for a in header.split(";")}
    assert header.startswith(f"{STATE}=")
    assert "secure" in attrs
    assert "httponly" in attrs
    assert attrs["path"] == "Path=/"
    assert attrs["samesite"].lower() == f"samesite={samesite}"
    assert "domain" not in attrs
    assert int(attrs["max-age"].split("=")[1]) == 600
    with env.rt.db.tenant_tx(env.tenant) as s:
        row = s.execute(select(SsoLoginState)).scalar_one()
    assert row.binding_hash == hashlib.sha256(st.cookie.encode()).digest()
    assert st.cookie.encode() not in row.pending_sealed
    assert st.request_id.encode() not in row.pending_sealed
    assert row.expires_at - row.created_at == timedelta(minutes=10)


# -- success -----------------------------------------------------------------------------------


def test_first_login_creates_the_user_with_mapped_roles_and_opens_a_session(env: Env) -> None:
    conn = connection(env, post_login_path="/console/")
    r = login(env, conn, groups=("cv-admins", "cv-qa", "other"), email=EMAIL)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/console/"
    assert any(c.startswith("__Host-") and STATE not in c for c in r.headers.get_list("set-cookie"))
    (p,) = sso_principals(env)
    assert p.kind == "user"
    assert p.active
    assert bindings(env, p.id) == {
        ("admin", "tenant", env.tenant, conn),
        ("qa_reviewer", "deployment", env.dep, conn),
    }
    entries = sso_entries(env)
    actions = [e["action"] for e in entries]
    assert actions.count("sso.user.provision") == 1
    assert actions.count("principal.bind_role") == 2
    assert actions[-1] == "authn.sso"
    assert entries[-1]["outcome"] == "success"
    assert entries[-1]["actor"] == p.id
    assert entries[-1]["detail"]["subject"].startswith("hmac-sha256:")
    text = repr(entries)
    for raw in (SUBJECT, EMAIL, "cv-admins", "cv-qa"):
        assert raw not in text


def test_next_login_updates_roles_from_the_mapping_and_audits_the_change(env: Env) -> None:
    conn = connection(env)
    assert login(env, conn, groups=("cv-admins",)).status_code == 303
    (p,) = sso_principals(env)
    with env.rt.db.tenant_tx(env.tenant) as s:  # an administrator's own grant stays
        access.bind_role(
            s,
            env.tenant,
            p.id,
            access.Role.AUDITOR,
            access.ScopeKind.TENANT,
            env.tenant,
            created_by="prn_manual",
        )
    before = len(audit_entries(env.rt, env.tenant))
    assert login(env, conn, groups=("cv-qa",)).status_code == 303
    assert [q.id for q in sso_principals(env)] == [p.id]
    assert bindings(env, p.id) == {
        ("qa_reviewer", "deployment", env.dep, conn),
        ("auditor", "tenant", env.tenant, "prn_manual"),
    }
    new = [e["action"] for e in audit_entries(env.rt, env.tenant)[before:]]
    assert new == ["principal.unbind_role", "principal.bind_role", "authn.sso"]


def test_oidc_callback_logs_in_and_a_saml_route_does_not_serve_an_oidc_connection(
    env: Env,
) -> None:
    conn = connection(env, "oidc")
    st = start(env, conn)
    token = answer(st.request_id, SUBJECT, groups=("cv-admins",))
    assert finish(env, conn, token, st.cookie, protocol="saml").status_code == 404
    assert finish(env, conn, token, st.cookie, protocol="oidc").status_code == 303


# -- the state binding -------------------------------------------------------------------------


def test_replayed_state_cookie_is_refused(env: Env) -> None:
    conn = connection(env)
    st = start(env, conn)
    assert (
        finish(
            env, conn, answer(st.request_id, SUBJECT, groups=("cv-admins",)), st.cookie
        ).status_code
        == 303
    )
    again = finish(env, conn, answer(st.request_id, SUBJECT, groups=("cv-admins",)), st.cookie)
    assert again.status_code == 401
    assert reason(again) == "state-used"


def test_answer_without_the_browsers_state_cookie_is_refused(env: Env) -> None:
    conn = connection(env)
    st = start(env, conn)
    r = finish(env, conn, answer(st.request_id, SUBJECT, groups=("cv-admins",)), None)
    assert r.status_code == 401
    assert reason(r) == "state-missing"
    assert sso_principals(env) == []


def test_answer_for_another_browsers_login_is_refused(env: Env) -> None:
    conn = connection(env)
    victim, attacker = start(env, conn), start(env, conn)
    # The victim's IdP answer replayed in the attacker's browser: InResponseTo is bound to the
    # browser that started the login, so the pending values the attacker's cookie unlocks differ.
    r = finish(
        env, conn, answer(victim.request_id, SUBJECT, groups=("cv-admins",)), attacker.cookie
    )
    assert r.status_code == 401
    assert reason(r) == "in-response-to"


def test_state_cookie_of_another_connection_is_unknown_here(env: Env) -> None:
    one, two = connection(env), connection(env, name="two")
    st = start(env, one)
    r = finish(env, two, answer(st.request_id, SUBJECT, groups=("cv-admins",)), st.cookie)
    assert r.status_code == 401
    assert reason(r) == "state-unknown"


def test_state_expires_after_ten_minutes(env: Env) -> None:
    conn = connection(env)
    st = start(env, conn)
    env.clock.now += timedelta(minutes=10, seconds=1)
    token = answer(
        st.request_id,
        SUBJECT,
        groups=("cv-admins",),
        not_on_or_after=env.clock.now + timedelta(minutes=5),
    )
    r = finish(env, conn, token, st.cookie)
    assert r.status_code == 401
    assert reason(r) == "state-expired"


def test_replayed_assertion_is_refused_by_the_database_cache(env: Env) -> None:
    conn = connection(env)
    one, two = start(env, conn), start(env, conn)
    ok = finish(
        env,
        conn,
        answer(one.request_id, SUBJECT, groups=("cv-admins",), assertion_id="_same"),
        one.cookie,
    )
    assert ok.status_code == 303
    r = finish(
        env,
        conn,
        answer(two.request_id, SUBJECT, groups=("cv-admins",), assertion_id="_same"),
        two.cookie,
    )
    assert r.status_code == 401
    assert reason(r) == "replay"


# -- refusals ----------------------------------------------------------------------------------


def test_forged_answer_is_refused_and_creates_nothing(env: Env) -> None:
    conn = connection(env)
    st = start(env, conn)
    before = row_counts(env.rt)
    token = answer(
        st.request_id, SUBJECT, groups=("cv-admins",), secret="attacker-secret-0123456789"
    )
    r = finish(env, conn, token, st.cookie)
    assert r.status_code == 401
    assert reason(r) == "signature"
    after = row_counts(env.rt)
    changed = {t for t in after if after[t] != before[t]}
    assert changed <= {"audit_entries", "audit_heads", "sso_replay"}
    failure = sso_entries(env)[-1]
    assert failure["outcome"] == "failure"
    assert failure["detail"]["reason"] == "signature"
    assert failure["resource"]["id"] == conn


def test_a_connection_used_under_another_tenants_path_is_not_found(env: Env) -> None:
    conn = connection(env)
    other = create_tenant_with_owner(env.rt, tenant_name="globex", owner_name="g").tenant_id
    r = env.client.get(f"/sso/{other}/{conn}/login", follow_redirects=False)
    assert r.status_code == 404
    st = start(env, conn)
    r = finish(env, conn, answer(st.request_id, SUBJECT), st.cookie, tenant=other)
    assert r.status_code == 404
    assert env.client.get(f"/sso/{other}/{conn}/saml/metadata").status_code == 404


def test_identity_naming_another_tenant_is_refused(env: Env) -> None:
    conn = connection(env)
    st = start(env, conn)
    token = answer(st.request_id, SUBJECT, groups=("cv-admins",), tenant_id="ten_" + "z" * 26)
    r = finish(env, conn, token, st.cookie)
    assert r.status_code == 401
    assert reason(r) == "identity-mismatch"


def test_unknown_or_malformed_connection_is_not_found(env: Env) -> None:
    for path in (
        f"/sso/{env.tenant}/sso_{'a' * 26}/login",
        f"/sso/{env.tenant}/nope/login",
        "/sso/x/y/login",
    ):
        r = env.client.get(path, follow_redirects=False)
        assert r.status_code == 404, path
        assert problem_json(r)["status"] == 404


def test_disabled_connection_refuses_logins(env: Env) -> None:
    conn = connection(env)
    st = start(env, conn)
    r = env.client.patch(
        f"/v1/tenant/sso/connections/{conn}", headers=env.owner, json={"enabled": False}
    )
    assert r.status_code == 200
    assert env.client.get(f"/sso/{env.tenant}/{conn}/login").status_code == 403
    r = finish(env, conn, answer(st.request_id, SUBJECT, groups=("cv-admins",)), st.cookie)
    assert r.status_code == 403
    assert reason(r) == "connection-disabled"
    assert sso_principals(env) == []


def test_without_jit_an_unknown_user_is_denied(env: Env) -> None:
    conn = connection(env, jit=False)
    r = login(env, conn)
    assert r.status_code == 403
    assert reason(r) == "not-provisioned"
    assert sso_principals(env) == []
    assert sso_entries(env)[-1]["detail"]["reason"] == "not-provisioned"


def test_no_matching_role_and_no_default_is_denied_and_nothing_is_created(env: Env) -> None:
    conn = connection(env)
    r = login(env, conn, groups=("unmapped",))
    assert r.status_code == 403
    assert reason(r) == "no-role"
    assert sso_principals(env) == []


def test_losing_every_mapped_group_removes_the_roles_and_denies(env: Env) -> None:
    conn = connection(env)
    assert login(env, conn, groups=("cv-admins",)).status_code == 303
    (p,) = sso_principals(env)
    r = login(env, conn, groups=())
    assert r.status_code == 403
    assert bindings(env, p.id) == set()
    assert [e["action"] for e in sso_entries(env)[-2:]] == ["principal.unbind_role", "authn.sso"]


def test_default_role_is_granted_when_no_group_matches(env: Env) -> None:
    conn = connection(env, default_role="qa_reviewer")
    assert login(env, conn, groups=("unmapped",)).status_code == 303
    (p,) = sso_principals(env)
    assert bindings(env, p.id) == {("qa_reviewer", "tenant", env.tenant, conn)}


def test_a_deactivated_principal_can_never_log_in(env: Env) -> None:
    conn = connection(env)
    assert login(env, conn).status_code == 303
    (p,) = sso_principals(env)
    with env.rt.db.tenant_tx(env.tenant) as s:
        access._principals.set_active(s, env.tenant, p.id, active=False)
    r = login(env, conn)
    assert r.status_code == 403
    assert reason(r) == "inactive"


def test_when_the_audit_append_fails_no_session_is_opened(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = connection(env)
    st = start(env, conn)
    before = row_counts(env.rt)

    def broken(*_a: object, **_k: object) -> list[int]:
        raise AuditUnavailableError("audit log is not writable")

    monkeypatch.setattr(env.rt.audit, "append_in", broken)
    r = finish(env, conn, answer(st.request_id, SUBJECT, groups=("cv-admins",)), st.cookie)
    assert r.status_code == 503
    assert not any("__Host-cv-session" in c for c in r.headers.get_list("set-cookie"))
    after = row_counts(env.rt)
    changed = {t for t in after if after[t] != before[t]}
    assert changed <= {"sso_replay", "data_keys"}
    assert sso_principals(env) == []


# -- bad input ---------------------------------------------------------------------------------


def test_oversized_saml_post_is_refused_before_anything_runs(env: Env) -> None:
    conn = connection(env)
    st = start(env, conn)
    big = "A" * (env.rt.settings.sso_max_form_bytes + 1)
    r = finish(env, conn, big, st.cookie)
    assert r.status_code == 413
    assert problem_json(r)["status"] == 413


@pytest.mark.parametrize(
    "token", ["", "garbage", "PHhtbD4=", "<samlp:Response/>", "a.b", "\u00e9t\u00e9.x"]
)
def test_garbage_saml_response_is_a_clear_401(env: Env, token: str) -> None:
    conn = connection(env)
    st = start(env, conn)
    r = finish(env, conn, token, st.cookie)
    assert r.status_code == 401
    assert "Traceback" not in r.text
    assert sso_principals(env) == []


def test_wrong_form_shapes_are_400(env: Env) -> None:
    conn = connection(env)
    url = f"/sso/{env.tenant}/{conn}/saml/acs"
    r = env.client.post(
        url, content=b'{"SAMLResponse": "x"}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    r = env.client.post(
        url,
        content=b"SAMLResponse=a&SAMLResponse=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400
    assert problem_json(r)["reason"] == "bad-sso-request"


def test_browser_gets_a_minimal_html_page_with_the_reason(env: Env) -> None:
    conn = connection(env)
    st = start(env, conn)
    r = finish(env, conn, "garbage", st.cookie, accept="text/html")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("text/html")
    assert "malformed" in r.text
    assert r.headers["cache-control"] == "no-store"


def test_scim_provisioned_user_logs_in_as_that_principal_and_not_once_deactivated(
    env: Env,
) -> None:
    r = env.client.post("/v1/tenant/scim-tokens", headers=env.owner, json={"label": "okta"})
    scim = {"Authorization": f"Bearer {r.json()['token']}", "Content-Type": "application/scim+json"}
    user = env.client.post(
        f"/scim/v2/{env.tenant}/Users",
        headers=scim,
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": EMAIL.upper()},
    )
    assert user.status_code == 201, user.text
    pid = user.json()["id"]
    conn = connection(env, "oidc", link_scim="email", jit=False)
    unverified = login(env, conn, protocol="oidc", email=EMAIL, email_verified=False)
    assert unverified.status_code == 403
    assert reason(unverified) == "not-provisioned"
    ok = login(env, conn, protocol="oidc", email=EMAIL, email_verified=True)
    assert ok.status_code == 303, ok.text
    assert bindings(env, pid) == {("admin", "tenant", env.tenant, conn)}
    assert sso_principals(env) == []
    assert [e["action"] for e in sso_entries(env)][-3:] == [
        "sso.user.link",
        "principal.bind_role",
        "authn.sso",
    ]
    r = env.client.patch(
        f"/scim/v2/{env.tenant}/Users/{pid}",
        headers=scim,
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    assert r.status_code == 200, r.text
    again = login(env, conn, protocol="oidc", email=EMAIL, email_verified=True)
    assert again.status_code == 403
    assert reason(again) == "inactive"


def _failures(env: Env) -> list[tuple[str, str]]:
    return [
        (e["resource"]["id"], e["detail"]["reason"])
        for e in sso_entries(env)
        if e["action"] == "authn.sso" and e["outcome"] == "failure"
    ]


def test_answers_refused_before_they_are_read_are_failed_logins_too(env: Env) -> None:
    conn = connection(env)
    oidc = connection(env, "oidc")
    st = start(env, conn)
    big = "A" * (env.rt.settings.sso_max_form_bytes + 1)
    assert finish(env, conn, big, st.cookie).status_code == 413
    r = env.client.post(
        f"/sso/{env.tenant}/{conn}/saml/acs",
        content=b"SAMLResponse=a&SAMLResponse=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400
    r = env.client.get(f"/sso/{env.tenant}/{oidc}/oidc/callback?code=a&code=b&state=s")
    assert r.status_code == 400
    assert _failures(env) == [(conn, "too-large"), (conn, "malformed"), (oidc, "malformed")]
    # A path that names no connection (of that protocol) writes nothing.
    r = env.client.get(f"/sso/{env.tenant}/{conn}/oidc/callback?code=a&code=b&state=s")
    assert r.status_code == 400
    assert len(_failures(env)) == 3


def test_an_unexpected_error_in_a_login_is_a_failed_login(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = connection(env)
    st = start(env, conn)

    def boom(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("unexpected")

    monkeypatch.setattr("callvault.sso._link.IdentityLinker.resolve", boom)
    # Not entered: the app's lifespan already runs under env.client.
    c = TestClient(env.client.app, base_url="https://testserver", raise_server_exceptions=False)
    token = answer(st.request_id, SUBJECT, groups=("cv-admins",))
    r = c.post(
        f"/sso/{env.tenant}/{conn}/saml/acs",
        content=str(httpx.QueryParams({"SAMLResponse": token})),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"{STATE}={st.cookie}",
        },
    )
    assert r.status_code == 500
    assert _failures(env) == [(conn, "internal-error")]
    assert sso_principals(env) == []
