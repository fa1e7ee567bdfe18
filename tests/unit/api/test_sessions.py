"""Browser sessions through the API: the cookie, the gate, CSRF, lifetimes, logout, revocation,
SCIM deactivation and the tenant wall."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from callvault import sessions
from callvault.errors import AuthenticationError
from callvault.store.models import BrowserSession, Principal
from tests.unit.api._harness import audit_entries, problem_json
from tests.unit.sessions._env import (
    COOKIE,
    Env,
    cookie,
    entries,
    open_for,
    other_tenant,
    principal,
    session_env,
    session_row,
    writes,
)
from tests.unit.sso._double import answer, config


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with session_env(tmp_path) as e:
        yield e


def _deployment(name: str) -> dict[str, Any]:
    return {"name": name, "region": "eu-west-1"}


# -- the cookie ----------------------------------------------------------------------------------


def test_sso_login_sets_a_host_cookie_that_authenticates_the_user(env: Env) -> None:
    r = env.client.post(
        "/v1/tenant/sso/connections",
        headers=env.owner,
        json={
            "protocol": "saml",
            "name": "idp",
            "config": config(),
            "role_mappings": [{"group": "cv-admins", "role": "admin"}],
        },
    )
    assert r.status_code == 201, r.text
    conn = r.json()["id"]
    env.client.cookies.clear()
    start = env.client.get(f"/sso/{env.tenant}/{conn}/login", follow_redirects=False)
    request_id = start.headers["location"].split("request=")[1].split("&")[0]
    state = start.cookies["__Host-cv-sso-state"]
    env.client.cookies.clear()
    done = env.client.post(
        f"/sso/{env.tenant}/{conn}/saml/acs",
        content=f"SAMLResponse={answer(request_id, 'subject-1', groups=('cv-admins',))}",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"__Host-cv-sso-state={state}",
        },
        follow_redirects=False,
    )
    env.client.cookies.clear()
    assert done.status_code == 303, done.text
    header = next(h for h in done.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}="))
    attrs = {a.strip().split("=")[0].lower(): a.strip() for a in header.split(";")[1:]}
    assert set(attrs) == {"secure", "httponly", "path", "samesite"}  # no Domain, no Max-Age
    assert attrs["path"] == "Path=/"
    assert attrs["samesite"].lower() == "samesite=lax"
    value = header.split(";")[0].split("=", 1)[1]
    me = env.client.get("/v1/session", headers=cookie(value))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["authenticated_by"] == "session"
    assert body["session"]["method"] == "saml"
    assert body["session"]["connection_id"] == conn
    assert {b["role"] for b in body["bindings"]} == {"admin"}
    assert "no-store" in me.headers["cache-control"]


def test_cookie_holds_a_256_bit_secret_of_which_only_a_hash_is_stored(env: Env) -> None:
    pid, _ = principal(env, "alice")
    one, two = open_for(env, pid), open_for(env, pid)
    secret = base64.urlsafe_b64decode(one.cookie_value.rsplit(".", 1)[1] + "=")
    assert len(secret) == 32
    assert one.cookie_value != two.cookie_value
    row = session_row(env, one.id)
    stored = repr([getattr(row, c.key) for c in BrowserSession.__table__.columns])
    assert secret.hex() not in stored
    assert repr(secret) not in stored
    assert one.csrf_token not in stored
    assert row.secret_hash != secret


@pytest.mark.parametrize(
    "mangle",
    [
        lambda v: v[:-10] + ("A" if v[-10] != "A" else "B") + v[-9:],  # wrong secret
        lambda v: v.replace("cvs1.", "cvs2."),  # unknown format
        lambda v: v + "x",  # malformed
        lambda _: "",  # empty
    ],
    ids=["wrong-secret", "format", "malformed", "empty"],
)
def test_a_tampered_cookie_is_refused(env: Env, mangle: Any) -> None:
    pid, _ = principal(env, "alice")
    issued = open_for(env, pid)
    r = env.client.get("/v1/session", headers=cookie(mangle(issued.cookie_value)))
    assert r.status_code == 401
    problem_json(r)


def test_a_bearer_token_wins_over_a_cookie(env: Env) -> None:
    pid, _ = principal(env, "alice")
    issued = open_for(env, pid)
    r = env.client.get("/v1/session", headers={**cookie(issued), **env.owner})
    assert r.json()["principal_id"] == env.owner_id
    assert r.json()["session"] is None


# -- the gate ------------------------------------------------------------------------------------


def test_a_session_principal_gets_exactly_its_bindings_and_the_same_audit(env: Env) -> None:
    pid, key = principal(env, "aud", "auditor", key=True)
    assert key is not None
    issued = open_for(env, pid)
    for creds in (key, writes(issued)):
        assert env.client.get("/v1/audit/entries", headers=creds).status_code == 200
        r = env.client.post("/v1/deployments", headers=creds, json=_deployment("d"))
        assert r.status_code == 403
    denied = [e for e in audit_entries(env.rt, env.tenant) if e["outcome"] == "denied"]
    assert [e["actor"] for e in denied[-2:]] == [pid, pid]
    assert {e["action"] for e in denied[-2:]} == {denied[-1]["action"]}


def test_an_inactive_principal_is_refused_even_with_a_live_session_row(env: Env) -> None:
    pid, _ = principal(env, "alice")
    issued = open_for(env, pid)
    with env.rt.db.tenant_tx(env.tenant) as s:  # bypasses set_active: the second wall
        row = s.get(Principal, pid)
        assert row is not None
        row.active = False
    r = env.client.get("/v1/session", headers=cookie(issued))
    assert r.status_code == 401
    assert entries(env, ("authn.session",))[-1]["detail"]["reason"] == "principal-inactive"


# -- CSRF ----------------------------------------------------------------------------------------


def _post(env: Env, headers: dict[str, str], name: str = "d") -> Any:
    return env.client.post("/v1/deployments", headers=headers, json=_deployment(name))


def test_a_state_change_without_the_csrf_token_is_refused(env: Env) -> None:
    pid, _ = principal(env, "alice")
    issued = open_for(env, pid)
    headers = writes(issued)
    del headers[sessions.CSRF_HEADER]
    r = _post(env, headers)
    assert r.status_code == 403
    assert problem_json(r)["type"].endswith(":csrf-failed")
    (e,) = entries(env, ("session.csrf",))
    assert e["outcome"] == "denied"
    assert e["actor"] == pid
    assert e["detail"] == {"reason": "csrf-token-missing"}


def test_a_wrong_or_another_sessions_csrf_token_is_refused(env: Env) -> None:
    pid, _ = principal(env, "alice")
    issued, other = open_for(env, pid), open_for(env, pid)
    for token in ("x" * 43, other.csrf_token, issued.csrf_token + "x"):
        r = _post(env, {**writes(issued), sessions.CSRF_HEADER: token})
        assert r.status_code == 403
        assert problem_json(r)["type"].endswith(":csrf-failed")
    reasons = [e["detail"]["reason"] for e in entries(env, ("session.csrf",))]
    assert reasons == ["csrf-token-mismatch"] * 3


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Origin", "https://evil.example"),
        ("Origin", "null"),
        ("Origin", "http://cv.example.test"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),
    ],
)
def test_a_state_change_from_another_origin_is_refused_even_with_the_token(
    env: Env, header: str, value: str
) -> None:
    pid, _ = principal(env, "alice")
    issued = open_for(env, pid)
    r = _post(env, {**writes(issued), header: value})
    assert r.status_code == 403
    problem_json(r)


def test_a_state_change_with_the_token_from_the_same_origin_is_allowed(env: Env) -> None:
    pid, _ = principal(env, "alice")
    issued = open_for(env, pid)
    assert _post(env, writes(issued), "one").status_code == 201
    # Older browsers send neither Origin nor Sec-Fetch-Site: the token alone decides.
    bare = {**cookie(issued), sessions.CSRF_HEADER: issued.csrf_token}
    assert _post(env, bare, "two").status_code == 201
    assert _post(env, {**bare, "Origin": "https://CV.example.test:443"}, "three").status_code == 201


def test_safe_methods_need_no_csrf_token(env: Env) -> None:
    pid, _ = principal(env, "alice")
    issued = open_for(env, pid)
    r = env.client.get("/v1/deployments", headers={**cookie(issued), "Origin": "https://evil.x"})
    assert r.status_code == 200


def test_bearer_key_requests_are_not_subject_to_csrf_checks(env: Env) -> None:
    headers = {**env.owner, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert _post(env, headers).status_code == 201


def test_get_session_returns_the_csrf_token_again(env: Env) -> None:
    pid, _ = principal(env, "alice")
    issued = open_for(env, pid)
    r = env.client.get("/v1/session", headers=cookie(issued))
    assert r.json()["session"]["csrf_token"] == issued.csrf_token


# -- lifetimes -----------------------------------------------------------------------------------


def _me(env: Env, issued: sessions.IssuedSession) -> int:
    return int(env.client.get("/v1/session", headers=cookie(issued)).status_code)


def test_idle_timeout_ends_a_session_after_30_quiet_minutes(env: Env) -> None:
    pid, _ = principal(env, "alice")
    issued = open_for(env, pid)
    env.clock.advance(minutes=29)
    assert _me(env, issued) == 200
    env.clock.advance(minutes=29)  # 58 minutes in, 29 since last seen
    assert _me(env, issued) == 200
    env.clock.advance(minutes=30)
    assert _me(env, issued) == 401
    row = session_row(env, issued.id)
    assert row.end_reason == "idle-timeout"
    assert row.ended_at == env.clock.now
    env.clock.advance(seconds=1)
    assert _me(env, issued) == 401  # ended: no idle reset can revive it
    expire = entries(env, ("session.expire",))
    assert len(expire) == 1
    assert expire[0]["detail"] == {"reason": "idle-timeout", "principal": pid}
    assert entries(env, ("authn.session",))[-1]["detail"]["reason"] == "ended"


def test_absolute_lifetime_ends_an_active_session_after_12_hours(env: Env) -> None:
    pid, _ = principal(env, "alice")
    issued = open_for(env, pid)
    for _ in range(35):  # busy all day: 35 x 20 min = 11 h 40 min
        env.clock.advance(minutes=20)
        assert _me(env, issued) == 200
    env.clock.advance(minutes=20)
    assert _me(env, issued) == 401
    assert session_row(env, issued.id).end_reason == "absolute-timeout"


def test_last_seen_is_written_at_most_once_a_minute(env: Env) -> None:
    pid, _ = principal(env, "alice")
    issued = open_for(env, pid)
    opened = session_row(env, issued.id).last_seen_at
    env.clock.advance(seconds=30)
    assert _me(env, issued) == 200
    assert session_row(env, issued.id).last_seen_at == opened
    env.clock.advance(seconds=31)
    assert _me(env, issued) == 200
    assert session_row(env, issued.id).last_seen_at == env.clock.now
    # A refused state change records no activity.
    env.clock.advance(minutes=2)
    r = env.client.post("/v1/session/logout", headers={**writes(issued), "Origin": "https://x.y"})
    assert r.status_code == 403
    assert session_row(env, issued.id).last_seen_at == env.clock.now - timedelta(minutes=2)


# -- logout and revocation -----------------------------------------------------------------------


def test_logout_ends_the_session_and_clears_the_cookie(env: Env) -> None:
    pid, _ = principal(env, "alice")
    issued = open_for(env, pid)
    no_token = {**writes(issued)}
    del no_token[sessions.CSRF_HEADER]
    assert env.client.post("/v1/session/logout", headers=no_token).status_code == 403
    assert _me(env, issued) == 200  # a forged logout did nothing
    r = env.client.post("/v1/session/logout", headers=writes(issued))
    assert r.status_code == 204
    cleared = r.headers["set-cookie"]
    assert cleared.startswith((f'{COOKIE}=""', f"{COOKIE}=;"))
    assert "max-age=0" in cleared.lower()
    assert _me(env, issued) == 401
    (e,) = entries(env, ("session.logout",))
    assert (e["actor"], e["resource"]["id"]) == (pid, issued.id)
    assert session_row(env, issued.id).end_reason == "logout"


def test_logout_with_an_api_key_is_not_found(env: Env) -> None:
    assert env.client.post("/v1/session/logout", headers=env.owner).status_code == 404


def test_admins_list_sessions_without_secrets(env: Env) -> None:
    alice, _ = principal(env, "alice")
    bob, _ = principal(env, "bob", "qa_reviewer")
    a1, a2, b1 = open_for(env, alice), open_for(env, alice), open_for(env, bob, method="saml")
    ended = open_for(env, bob)
    assert env.client.post("/v1/session/logout", headers=writes(ended)).status_code == 204
    r = env.client.get("/v1/tenant/sessions", headers=env.owner)
    assert r.status_code == 200
    listed = {s["id"]: s for s in r.json()}
    assert set(listed) == {a1.id, a2.id, b1.id}
    assert listed[b1.id]["principal_id"] == bob
    assert listed[b1.id]["method"] == "saml"
    assert listed[b1.id]["connection_id"].startswith("sso_")
    assert all(s["csrf_token"] is None for s in listed.values())
    for secret in (a1.cookie_value, a1.csrf_token, a1.cookie_value.rsplit(".", 1)[1]):
        assert secret not in r.text
    only = env.client.get("/v1/tenant/sessions", headers=env.owner, params={"principal_id": bob})
    assert [s["id"] for s in only.json()] == [b1.id]


def test_an_admin_revokes_one_session(env: Env) -> None:
    alice, _ = principal(env, "alice")
    _, aud_key = principal(env, "aud", "auditor", key=True)
    assert aud_key is not None
    one, two = open_for(env, alice), open_for(env, alice)
    assert env.client.delete(f"/v1/tenant/sessions/{one.id}", headers=aud_key).status_code == 403
    r = env.client.delete(f"/v1/tenant/sessions/{one.id}", headers=env.owner)
    assert r.status_code == 204
    assert _me(env, one) == 401
    assert _me(env, two) == 200
    (e,) = entries(env, ("session.revoke",))
    assert (e["actor"], e["resource"]["id"], e["detail"]) == (
        env.owner_id,
        one.id,
        {"principal": alice},
    )
    missing = "ses_" + "a" * 26
    assert env.client.delete(f"/v1/tenant/sessions/{missing}", headers=env.owner).status_code == 404


def test_an_admin_revokes_every_session_of_a_principal(env: Env) -> None:
    alice, _ = principal(env, "alice")
    bob, _ = principal(env, "bob")
    a1, a2, b1 = open_for(env, alice), open_for(env, alice), open_for(env, bob)
    r = env.client.delete(f"/v1/tenant/principals/{alice}/sessions", headers=env.owner)
    assert r.json() == {"revoked": 2}
    assert (_me(env, a1), _me(env, a2), _me(env, b1)) == (401, 401, 200)
    assert entries(env, ("session.revoke_all",))[-1]["detail"] == {"revoked": 2}


def test_a_session_user_can_revoke_sessions_with_the_csrf_token(env: Env) -> None:
    admin, _ = principal(env, "adm", "admin")
    alice, _ = principal(env, "alice")
    mine, theirs = open_for(env, admin), open_for(env, alice)
    url = f"/v1/tenant/sessions/{theirs.id}"
    assert env.client.delete(url, headers=cookie(mine)).status_code == 403
    assert _me(env, theirs) == 200
    assert env.client.delete(url, headers=writes(mine)).status_code == 204
    assert _me(env, theirs) == 401


# -- SCIM deactivation and deletion --------------------------------------------------------------


def _scim_user(env: Env) -> tuple[dict[str, str], str]:
    r = env.client.post("/v1/tenant/scim-tokens", headers=env.owner, json={"label": "idp"})
    scim = {"Authorization": f"Bearer {r.json()['token']}"}
    r = env.client.post(
        f"/scim/v2/{env.tenant}/Users",
        headers=scim,
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "jane@example-trust.nhs.uk",
        },
    )
    assert r.status_code == 201, r.text
    return scim, str(r.json()["id"])


def test_scim_deactivation_kills_the_users_sessions_at_once(env: Env) -> None:
    scim, uid = _scim_user(env)
    one, two = open_for(env, uid), open_for(env, uid, method="saml")
    assert _me(env, one) == 200
    r = env.client.patch(
        f"/scim/v2/{env.tenant}/Users/{uid}",
        headers=scim,
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": False}}],
        },
    )
    assert r.status_code == 200, r.text
    assert (_me(env, one), _me(env, two)) == (401, 401)
    assert session_row(env, one.id).end_reason == "principal-deactivated"
    patched = [e for e in entries(env, ("scim.user.patch",)) if e["resource"]["id"] == uid]
    assert patched[-1]["detail"]["sessions_revoked"] == 2  # the audit entry counts them
    # Reactivation restores no session.
    r = env.client.patch(
        f"/scim/v2/{env.tenant}/Users/{uid}",
        headers=scim,
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": True}],
        },
    )
    assert r.status_code == 200
    assert _me(env, one) == 401


def test_scim_deletion_kills_the_users_sessions(env: Env) -> None:
    scim, uid = _scim_user(env)
    issued = open_for(env, uid)
    assert env.client.delete(f"/scim/v2/{env.tenant}/Users/{uid}", headers=scim).status_code == 204
    assert _me(env, issued) == 401
    assert session_row(env, issued.id).ended_at is not None
    deleted = [e for e in entries(env, ("scim.user.delete",)) if e["resource"]["id"] == uid]
    assert deleted[-1]["detail"]["sessions_revoked"] == 1


def test_a_deactivated_principal_cannot_open_a_session(env: Env) -> None:
    scim, uid = _scim_user(env)
    env.client.patch(
        f"/scim/v2/{env.tenant}/Users/{uid}",
        headers=scim,
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    with pytest.raises(AuthenticationError):
        open_for(env, uid)


# -- the tenant wall -----------------------------------------------------------------------------


def test_a_session_of_one_tenant_sees_nothing_of_another(env: Env) -> None:
    b_tenant, b_owner, _ = other_tenant(env)
    alice, _ = principal(env, "alice")
    mine = open_for(env, alice)
    theirs = open_for(env, b_owner, tenant=b_tenant)
    # The cookie names its tenant: pointing it at the other tenant finds nothing.
    forged = mine.cookie_value.replace(env.tenant, b_tenant)
    assert env.client.get("/v1/session", headers=cookie(forged)).status_code == 401
    listed = env.client.get("/v1/tenant/sessions", headers=cookie(mine)).json()
    assert theirs.id not in {s["id"] for s in listed}
    assert {s["principal_id"] for s in listed} == {alice}
    r = env.client.delete(f"/v1/tenant/sessions/{theirs.id}", headers=writes(mine))
    assert r.status_code == 404
    r = env.client.delete(f"/v1/tenant/principals/{b_owner}/sessions", headers=writes(mine))
    assert r.status_code == 404
    assert _me(env, theirs) == 200
    assert env.client.get("/v1/tenant", headers=cookie(mine)).json()["id"] == env.tenant
    # The forged cookie was an attempt on tenant B: B's log has it, as an unknown session.
    (forged_entry,) = [e for e in audit_entries(env.rt, b_tenant) if e["action"] == "authn.session"]
    assert (forged_entry["actor"], forged_entry["detail"]) == ("anonymous", {"reason": "unknown"})
