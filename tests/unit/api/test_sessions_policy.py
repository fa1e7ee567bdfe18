"""The tenant's session policy, "SSO required", and owner recovery codes, through the API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callvault.store import new_id
from callvault.store.models import ConfigVersion, RecoveryCode, RecoveryLockout
from tests.unit.api._harness import audit_entries, problem_json
from tests.unit.sessions._env import (
    ORIGIN,
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
from tests.unit.sso._double import fill_sso_tables

POLICY = "/v1/tenant/session-policy"
CODES = "/v1/tenant/recovery-codes"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with session_env(tmp_path) as e:
        yield e


def _codes(env: Env, headers: dict[str, str] | None = None) -> list[str]:
    r = env.client.post(CODES, headers=headers or env.owner)
    assert r.status_code == 201, r.text
    return list(r.json()["codes"])


def _recover(env: Env, code: str, principal_id: str | None = None, **headers: str) -> Any:
    return env.client.post(
        "/v1/session/recovery",
        json={"tenant_id": env.tenant, "principal_id": principal_id or env.owner_id, "code": code},
        headers=headers,
    )


# -- the policy ----------------------------------------------------------------------------------


def test_a_tenant_starts_with_12_hours_absolute_and_30_minutes_idle(env: Env) -> None:
    r = env.client.get(POLICY, headers=env.owner)
    assert r.json() == {
        "absolute_timeout_minutes": 720,
        "idle_timeout_minutes": 30,
        "recovery_session_minutes": 60,
        "sso_required": False,
        "version_id": None,
        "updated_at": None,
    }
    pid, _ = principal(env, "alice")
    issued = open_for(env, pid)
    assert issued.expires_at - env.clock.now == timedelta(hours=12)
    assert issued.idle_timeout_seconds == 30 * 60


def test_a_policy_change_is_a_version_and_an_audit_entry(env: Env) -> None:
    r = env.client.patch(POLICY, headers=env.owner, json={"idle_timeout_minutes": 15})
    assert r.status_code == 200, r.text
    version = r.json()["version_id"]
    assert r.json()["idle_timeout_minutes"] == 15
    with env.rt.db.tenant_tx(env.tenant) as s:
        row = s.get(ConfigVersion, version)
        assert row is not None
        assert (row.subject_kind, row.subject_id, row.actor_id) == (
            "session_policy",
            env.tenant,
            env.owner_id,
        )
        assert b"idle_timeout_minutes" not in row.sealed
    (e,) = entries(env, ("session_policy.",))
    assert e["detail"]["version"] == version
    assert e["detail"]["changed"] == ["idle_timeout_minutes"]
    again = env.client.patch(POLICY, headers=env.owner, json={"idle_timeout_minutes": 15})
    assert again.json()["version_id"] == version  # nothing changed: no version, no entry
    assert len(entries(env, ("session_policy.",))) == 1
    pid, _ = principal(env, "alice")
    assert open_for(env, pid).idle_timeout_seconds == 15 * 60


@pytest.mark.parametrize(
    "patch",
    [
        {"absolute_timeout_minutes": 1441},
        {"absolute_timeout_minutes": 4},
        {"idle_timeout_minutes": 0},
        {"absolute_timeout_minutes": 60, "idle_timeout_minutes": 61},
        {"recovery_session_minutes": 241},
        {"absolute_timeout_minutes": 30, "idle_timeout_minutes": 10},  # recovery 60 > 30
        {"idle_timeout_minutes": "30"},
        {"idle_timeout_minutes": None},
        {"sessions_forever": True},
    ],
)
def test_policy_bounds_are_enforced(env: Env, patch: dict[str, Any]) -> None:
    r = env.client.patch(POLICY, headers=env.owner, json=patch)
    assert r.status_code == 422
    problem_json(r)
    assert env.client.get(POLICY, headers=env.owner).json()["version_id"] is None


def test_a_tightened_policy_shortens_live_sessions_at_once(env: Env) -> None:
    pid, _ = principal(env, "alice")
    issued = open_for(env, pid)
    for _ in range(2):
        env.clock.advance(minutes=25)
        assert env.client.get("/v1/session", headers=cookie(issued)).status_code == 200
    r = env.client.patch(
        POLICY, headers=env.owner, json={"absolute_timeout_minutes": 60, "idle_timeout_minutes": 5}
    )
    assert r.status_code == 200, r.text
    assert entries(env, ("session_policy.",))[-1]["detail"]["sessions_shortened"] == 1
    row = session_row(env, issued.id)
    assert row.expires_at == issued.created_at + timedelta(minutes=60)
    assert row.idle_timeout_seconds == 300
    env.clock.advance(minutes=6)
    assert env.client.get("/v1/session", headers=cookie(issued)).status_code == 401
    # Loosening again does not lengthen a live session.
    other = open_for(env, pid)
    env.client.patch(POLICY, headers=env.owner, json={"absolute_timeout_minutes": 720})
    assert session_row(env, other.id).expires_at == other.expires_at


def test_only_those_who_run_the_tenant_change_the_policy(env: Env) -> None:
    _, qa = principal(env, "qa", "qa_reviewer", key=True)
    _, admin = principal(env, "adm", "admin", key=True)
    assert qa is not None
    assert admin is not None
    assert env.client.patch(POLICY, headers=qa, json={"idle_timeout_minutes": 5}).status_code == 403
    assert (
        env.client.patch(POLICY, headers=admin, json={"idle_timeout_minutes": 5}).status_code == 200
    )


# -- SSO required --------------------------------------------------------------------------------


def test_sso_cannot_be_required_without_a_connection_and_owner_recovery_codes(env: Env) -> None:
    r = env.client.patch(POLICY, headers=env.owner, json={"sso_required": True})
    assert r.status_code == 409
    fill_sso_tables(env.rt, env.tenant)  # an enabled SSO connection
    r = env.client.patch(POLICY, headers=env.owner, json={"sso_required": True})
    assert r.status_code == 409
    assert problem_json(r)["errors"][0]["field"] == "sso_required"
    _codes(env)
    assert (
        env.client.patch(POLICY, headers=env.owner, json={"sso_required": True}).status_code == 200
    )


def test_sso_required_refuses_user_api_keys_but_not_service_keys_or_sessions(env: Env) -> None:
    fill_sso_tables(env.rt, env.tenant)
    _codes(env)
    user_id, user_key = principal(env, "alice", "admin", key=True)
    _, service_key = principal(env, "svc", "admin", kind="service", key=True)
    assert user_key is not None
    assert service_key is not None
    session = open_for(env, user_id)
    assert (
        env.client.patch(POLICY, headers=env.owner, json={"sso_required": True}).status_code == 200
    )
    for refused in (env.owner, user_key):
        r = env.client.get("/v1/tenant", headers=refused)
        assert r.status_code == 401
        problem_json(r)
    failures = [e for e in entries(env, ("authn.api_key",)) if e["outcome"] == "failure"]
    assert [e["detail"] for e in failures[-2:]] == [{"reason": "sso-required"}] * 2
    assert env.client.get("/v1/tenant", headers=service_key).status_code == 200
    assert env.client.get("/v1/tenant", headers=cookie(session)).status_code == 200
    # Turning it off again is for owners only; the owner comes in through a session.
    r = env.client.patch(POLICY, headers=service_key, json={"sso_required": False})
    assert r.status_code == 403
    owner_session = open_for(env, env.owner_id)
    r = env.client.patch(POLICY, headers=writes(owner_session), json={"sso_required": False})
    assert r.status_code == 200
    assert env.client.get("/v1/tenant", headers=user_key).status_code == 200


# -- recovery codes ------------------------------------------------------------------------------


def test_an_owner_gets_ten_codes_shown_once_and_stored_as_slow_hashes(env: Env) -> None:
    codes = _codes(env)
    assert len(set(codes)) == 10
    assert all(len(c) == 23 and c.count("-") == 3 for c in codes)
    status = env.client.get(CODES, headers=env.owner).json()
    assert (status["remaining"], status["total"], status["codes"]) == (10, 10, None)
    with env.rt.db.tenant_tx(env.tenant) as s:
        rows = s.execute(select(RecoveryCode)).scalars().all()
    assert len(rows) == 10
    assert {r.kdf for r in rows} == {"argon2id$v=19$t=2$m=19456$p=1"}
    stored = repr([(r.code_hash, r.salt, r.id, r.set_id) for r in rows])
    for code in codes:
        assert code not in stored
        assert code.replace("-", "") not in stored
    (e,) = entries(env, ("recovery_codes.",))
    assert e["detail"]["count"] == 10
    assert not any(c in repr(e) for c in codes)


def test_recovery_codes_are_for_owners_only(env: Env) -> None:
    _, admin = principal(env, "adm", "admin", key=True)
    assert admin is not None
    assert env.client.post(CODES, headers=admin).status_code == 403
    _, svc_owner = principal(env, "svc", "owner", kind="service", key=True)
    assert svc_owner is not None
    assert env.client.post(CODES, headers=svc_owner).status_code == 409


def test_each_code_opens_one_short_session_once(env: Env) -> None:
    codes = _codes(env)
    r = _recover(env, codes[0].lower())  # case and hyphens do not matter
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["method"] == "recovery_code"
    assert body["principal_id"] == env.owner_id
    assert body["expires_at"].startswith((env.clock.now + timedelta(hours=1)).isoformat()[:19])
    set_cookie = r.headers["set-cookie"]
    assert set_cookie.startswith("__Host-cv-session=")
    value = set_cookie.split(";")[0].split("=", 1)[1]
    env.client.cookies.clear()
    me = env.client.get("/v1/session", headers=cookie(value)).json()
    assert me["session"]["csrf_token"] == body["csrf_token"]
    assert me["session"]["method"] == "recovery_code"
    assert _recover(env, codes[0]).status_code == 401  # used
    assert _recover(env, codes[1].replace("-", " ")).status_code == 200
    env.client.cookies.clear()
    assert env.client.get(CODES, headers=env.owner).json()["remaining"] == 8
    ok = [e for e in entries(env, ("authn.recovery_code",)) if e["outcome"] == "success"]
    assert [e["detail"]["codes_remaining"] for e in ok] == [9, 8]
    assert {e["detail"]["alert"] for e in ok} == {"owner-recovery-code-used"}
    assert not any(c in repr(entries(env, ("authn.",))) for c in codes)


def test_regenerating_invalidates_the_old_set(env: Env) -> None:
    old = _codes(env)
    new = _codes(env)
    assert not set(old) & set(new)
    assert _recover(env, old[0]).status_code == 401
    assert _recover(env, new[0]).status_code == 200
    env.client.cookies.clear()
    assert entries(env, ("recovery_codes.",))[-1]["detail"]["revoked_unused"] == 10


def test_codes_stop_working_when_the_principal_is_no_longer_an_owner(env: Env) -> None:
    second, second_key = principal(env, "owner2", "owner", key=True)
    assert second_key is not None
    codes = _codes(env, second_key)
    from callvault.store.models import RoleBinding  # noqa: PLC0415

    with env.rt.db.tenant_tx(env.tenant) as s:
        for b in s.execute(select(RoleBinding).where(RoleBinding.principal_id == second)).scalars():
            s.delete(b)
    assert _recover(env, codes[0], second).status_code == 401
    failures = [e for e in entries(env, ("authn.recovery_code",)) if e["outcome"] == "failure"]
    assert failures[-1]["detail"] == {"reason": "not-eligible"}


def test_repeated_failures_lock_recovery_login_for_a_while(env: Env) -> None:
    codes = _codes(env)
    wrong = "AAAAA-AAAAA-AAAAA-AAAAA"
    for _ in range(4):
        assert _recover(env, wrong).status_code == 401
    r = _recover(env, wrong)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) == 15 * 60
    problem_json(r)
    # Locked: even a right code is refused, and nothing is used up.
    assert _recover(env, codes[0]).status_code == 429
    env.clock.advance(minutes=16)
    assert _recover(env, codes[0]).status_code == 200
    env.client.cookies.clear()
    reasons = [e["detail"].get("reason") for e in entries(env, ("authn.recovery_code",))]
    assert reasons == ["wrong-code"] * 5 + ["locked", None]
    locked = entries(env, ("authn.recovery_code",))[4]
    assert locked["detail"]["alert"] == "recovery-login-locked"


def test_ids_of_nobody_are_counted_and_locked_like_real_ones_and_then_forgotten(env: Env) -> None:
    wrong = "AAAAA-AAAAA-AAAAA-AAAAA"
    nobody = [new_id("prn") for _ in range(3)]
    for pid in nobody:
        answers = [_recover(env, wrong, pid).status_code for _ in range(6)]
        assert answers == [401] * 4 + [429] * 2
    assert set(_lockout_rows(env)) == set(nobody)
    env.clock.advance(minutes=16)  # every window and lock has ended
    assert _recover(env, wrong, nobody[0]).status_code == 401  # counted afresh
    assert _lockout_rows(env) == {nobody[0]: 1}  # the rest pruned: the table stays small


def test_failures_in_another_tenant_never_lock_the_owner_here(env: Env) -> None:
    codes = _codes(env)
    other, _, _ = other_tenant(env)
    for _ in range(6):
        r = env.client.post(
            "/v1/session/recovery",
            json={"tenant_id": other, "principal_id": env.owner_id, "code": "A" * 20},
        )
        assert r.status_code in (401, 429)
    assert _lockout_rows(env) == {}
    assert _recover(env, codes[0]).status_code == 200


def _lockout_rows(env: Env) -> dict[str, int]:
    with env.rt.db.tenant_tx(env.tenant) as s:
        rows = s.execute(
            select(RecoveryLockout).where(RecoveryLockout.tenant_id == env.tenant)
        ).scalars()
        return {r.principal_id: r.failures for r in rows}


def test_recovery_login_is_refused_from_another_origin_and_for_unknown_tenants(env: Env) -> None:
    codes = _codes(env)
    assert _recover(env, codes[0], Origin="https://evil.example").status_code == 403
    assert _recover(env, codes[0], **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    other, _, _ = other_tenant(env)
    r = env.client.post(
        "/v1/session/recovery",
        json={"tenant_id": other, "principal_id": env.owner_id, "code": codes[0]},
    )
    assert r.status_code == 401
    r = env.client.post(
        "/v1/session/recovery",
        json={"tenant_id": "ten_" + "a" * 26, "principal_id": env.owner_id, "code": codes[0]},
    )
    assert r.status_code == 401
    assert not [e for e in audit_entries(env.rt, other) if e["action"] == "authn.recovery_code"][1:]
    assert _recover(env, codes[0], Origin=ORIGIN).status_code == 200
