"""A deployment's Twilio auth token: sealed storage, and the API that sets, reports and removes it.

The token must never leave: not in a response, an error, an audit entry, a
log line or the database in the clear. Another tenant's deployment answers
exactly as one that does not exist.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select

from callvault.access import authenticate, parse_token
from callvault.api.app import create_fastapi
from callvault.api.middleware import Guard
from callvault.api.routers import deployment_twilio
from callvault.calls._twilio_token import (
    MAX_CHARS,
    OWNER_KIND,
    AuthToken,
    TwilioAuthTokens,
)
from callvault.errors import DecryptionError, InvalidInputError
from callvault.runtime import Runtime
from callvault.store import new_id
from callvault.store.models import TENANT_TABLES, Base, DataKey, Deployment, TwilioAuthToken
from tests.support.world import World
from tests.unit.api._harness import audit_entries, audit_size, auth, problem_json

#: Twilio's format: 32 lowercase hexadecimal characters.
TOKEN = "9f86d081884c7d659a2feaa0c55ad015"
OTHER_TOKEN = "a3c1e5b7d9f1a3c5e7b9d1f3a5c7e9b1"
TABLE = "twilio_auth_tokens"


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    """The API with the Twilio token routes, whether or not app.py registers them yet."""
    app = create_fastapi(rt)
    paths = {getattr(r, "path", None) for r in app.routes}
    if "/v1/deployments/{deployment_id}/twilio" not in paths:
        app.include_router(deployment_twilio.router)
    guarded = Guard(
        app,
        max_body_bytes=rt.settings.max_body_bytes,
        hsts_max_age_seconds=rt.settings.hsts_max_age_seconds,
    )
    with TestClient(guarded, base_url="https://testserver") as c:
        yield c


def _url(dep: str) -> str:
    return f"/v1/deployments/{dep}/twilio"


def _owner(world: World) -> dict[str, str]:
    return auth(world.a.owner_token)


def _deployment(rt: Runtime, tenant: str, dep: str) -> Deployment:
    with rt.db.tenant_tx(tenant) as s:
        row = s.get(Deployment, dep)
        assert row is not None
        s.expunge(row)
        return row


def _token_rows(rt: Runtime, tenant: str) -> list[TwilioAuthToken]:
    with rt.db.tenant_tx(tenant) as s:
        stmt = select(TwilioAuthToken).where(TwilioAuthToken.tenant_id == tenant)
        return list(s.execute(stmt).scalars())


def _token_keys(rt: Runtime, tenant: str, dep: str) -> int:
    with rt.db.tenant_tx(tenant) as s:
        return int(
            s.execute(
                select(func.count())
                .select_from(DataKey)
                .where(
                    DataKey.tenant_id == tenant,
                    DataKey.owner_kind == OWNER_KIND,
                    DataKey.owner_id == dep,
                )
            ).scalar_one()
        )


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every log record in full: message, arguments and ``extra`` fields."""
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)


def _comparable(resp: httpx.Response) -> tuple[int, str, Any]:
    body = json.loads(resp.content)
    body.pop("request_id", None)
    body.pop("instance", None)
    return resp.status_code, resp.headers.get("content-type", ""), body


# -- the schema ----------------------------------------------------------------------------------


def test_migration_builds_the_table_the_model_declares(rt: Runtime) -> None:
    with rt.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        columns = {c["name"] for c in inspect(conn).get_columns(TABLE)}
        primary = inspect(conn).get_pk_constraint(TABLE)["constrained_columns"]
        foreign = {fk["referred_table"] for fk in inspect(conn).get_foreign_keys(TABLE)}
    assert [d for d in diff if TABLE in repr(d)] == []
    assert columns == {"tenant_id", "deployment_id", "token_sealed", "configured_at"}
    assert primary == ["tenant_id", "deployment_id"]
    assert foreign == {"tenants", "deployments"}


def test_the_table_is_walled_per_tenant() -> None:
    # PostgreSQL row-level security is created for every table listed here
    # (tests/integration/test_postgres_rls.py checks the policies exist).
    assert TABLE in TENANT_TABLES


# -- the value -----------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [TOKEN, TOKEN.upper(), "AC" + "x" * 14, "!" * MAX_CHARS])
def test_what_twilio_issues_is_accepted(token: str) -> None:
    assert AuthToken(token).reveal() == token


@pytest.mark.parametrize(
    ("token", "rule"),
    [
        ("", "required"),
        ("a" * (MAX_CHARS + 1), "at most"),
        (TOKEN[:15], "at least"),
        (TOKEN + "\n", "printable"),
        (" " + TOKEN, "printable"),
        (TOKEN[:16] + "\t" + TOKEN[16:], "printable"),
        (TOKEN[:16] + "\x00" + TOKEN[16:], "printable"),
        (TOKEN[:16] + "\x7f" + TOKEN[16:], "printable"),
        (TOKEN[:16] + "é" + TOKEN[16:], "printable"),
    ],
)
def test_empty_overlong_short_or_unprintable_tokens_are_refused_without_the_value(
    token: str, rule: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        AuthToken(token)
    assert info.value.field == "auth_token"
    assert rule in info.value.message
    if token:
        assert token.strip() not in str(info.value)
        assert TOKEN[:8] not in str(info.value)


def test_the_token_is_masked_in_repr_and_str() -> None:
    token = AuthToken(TOKEN)
    assert TOKEN not in repr(token)
    assert TOKEN not in str(token)
    assert TOKEN not in f"{[token]}"


# -- storage -------------------------------------------------------------------------------------


def test_a_token_is_stored_sealed_and_opens_only_for_its_tenant_and_deployment(
    rt: Runtime, world: World
) -> None:
    tokens = TwilioAuthTokens(rt.keys, rt.sealer)
    a, b = world.a, world.b
    dep = _deployment(rt, a.id, a.deployments[0])
    with rt.db.tenant_tx(a.id) as s:
        state, replaced = tokens.set(s, dep, AuthToken(TOKEN))
    assert state.configured
    assert state.configured_at is not None
    assert not replaced
    (row,) = _token_rows(rt, a.id)
    assert TOKEN.encode() not in row.token_sealed
    assert TOKEN.encode().hex().encode() not in row.token_sealed
    with rt.db.tenant_tx(a.id) as s:
        opened = tokens.open(s, a.id, a.deployments[0])
        assert opened is not None
        assert opened.reveal() == TOKEN
        assert tokens.open(s, a.id, a.deployments[1]) is None
    # Asked from the other tenant, the deployment has no token (nothing says it has one).
    with rt.db.tenant_tx(b.id) as s:
        assert tokens.open(s, b.id, a.deployments[0]) is None
    assert _token_rows(rt, b.id) == []


def test_a_sealed_token_copied_to_another_deployment_does_not_open(
    rt: Runtime, world: World
) -> None:
    tokens = TwilioAuthTokens(rt.keys, rt.sealer)
    a = world.a
    dep0, dep1 = (_deployment(rt, a.id, d) for d in a.deployments)
    with rt.db.tenant_tx(a.id) as s:
        tokens.set(s, dep0, AuthToken(TOKEN))
        tokens.set(s, dep1, AuthToken(OTHER_TOKEN))
    with rt.db.tenant_tx(a.id) as s:
        rows = {r.deployment_id: r for r in s.execute(select(TwilioAuthToken)).scalars()}
        rows[dep1.id].token_sealed = rows[dep0.id].token_sealed
    with rt.db.tenant_tx(a.id) as s, pytest.raises(DecryptionError):
        tokens.open(s, a.id, dep1.id)


def test_replacing_a_token_shreds_the_key_of_the_old_one(rt: Runtime, world: World) -> None:
    tokens = TwilioAuthTokens(rt.keys, rt.sealer)
    a = world.a
    dep = _deployment(rt, a.id, a.deployments[0])
    with rt.db.tenant_tx(a.id) as s:
        tokens.set(s, dep, AuthToken(TOKEN))
    (old,) = _token_rows(rt, a.id)
    with rt.db.tenant_tx(a.id) as s:
        _, replaced = tokens.set(s, dep, AuthToken(OTHER_TOKEN))
    assert replaced
    assert _token_keys(rt, a.id, dep.id) == 1
    with rt.db.tenant_tx(a.id) as s:
        opened = tokens.open(s, a.id, dep.id)
        assert opened is not None
        assert opened.reveal() == OTHER_TOKEN
        # A copy of the old row (a backup) no longer opens.
        row = s.get(TwilioAuthToken, (a.id, dep.id))
        assert row is not None
        row.token_sealed = old.token_sealed
        with pytest.raises(DecryptionError):
            tokens.open(s, a.id, dep.id)
        s.rollback()


def test_removing_a_token_deletes_the_row_and_shreds_its_key(rt: Runtime, world: World) -> None:
    tokens = TwilioAuthTokens(rt.keys, rt.sealer)
    a = world.a
    dep = _deployment(rt, a.id, a.deployments[0])
    with rt.db.tenant_tx(a.id) as s:
        tokens.set(s, dep, AuthToken(TOKEN))
    assert _token_keys(rt, a.id, dep.id) == 1
    with rt.db.tenant_tx(a.id) as s:
        assert tokens.remove(s, dep)
        assert not tokens.remove(s, dep)
        assert not tokens.status(s, dep).configured
        assert tokens.open(s, a.id, dep.id) is None
    assert _token_rows(rt, a.id) == []
    assert _token_keys(rt, a.id, dep.id) == 0


# -- the API -------------------------------------------------------------------------------------


def test_an_admin_sets_reads_and_removes_the_token_and_it_never_comes_back(
    rt: Runtime, client: TestClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    a = world.a
    dep = a.deployments[0]
    owner = _owner(world)
    start = audit_size(rt, a.id)
    replies = []

    r = client.get(_url(dep), headers=owner)
    replies.append(r)
    assert r.status_code == 200
    assert r.json() == {"configured": False, "configured_at": None}

    r = client.put(_url(dep), headers=owner, json={"auth_token": TOKEN})
    replies.append(r)
    assert r.status_code == 200, r.text
    assert r.json()["configured"] is True
    assert r.json()["configured_at"]

    r = client.get(_url(dep), headers=owner)
    replies.append(r)
    assert r.json()["configured"] is True
    # The other deployment is untouched.
    assert client.get(_url(a.deployments[1]), headers=owner).json()["configured"] is False

    r = client.put(_url(dep), headers=owner, json={"auth_token": OTHER_TOKEN})
    replies.append(r)
    assert r.status_code == 200

    r = client.delete(_url(dep), headers=owner)
    replies.append(r)
    assert r.status_code == 204
    r = client.get(_url(dep), headers=owner)
    replies.append(r)
    assert r.json() == {"configured": False, "configured_at": None}
    # Removing what is not there is no error, and no change.
    before = audit_size(rt, a.id)
    r = client.delete(_url(dep), headers=owner)
    replies.append(r)
    assert r.status_code == 204
    assert audit_size(rt, a.id) == before

    for reply in replies:
        for secret in (TOKEN, OTHER_TOKEN):
            assert secret not in reply.text
            assert secret not in str(reply.headers)
    entries = audit_entries(rt, a.id, start)
    text = json.dumps(entries)
    assert TOKEN not in text
    assert OTHER_TOKEN not in text
    assert TOKEN not in _logged(caplog)
    assert OTHER_TOKEN not in _logged(caplog)
    changes = [e for e in entries if e["action"].startswith("deployment.twilio_auth_token.")]
    assert [e["action"].rsplit(".", 1)[1] for e in changes] == ["set", "set", "delete"]
    assert all(e["outcome"] == "success" for e in changes)
    assert all(e["resource"]["id"] == dep for e in changes)
    assert all(e["actor"] == _owner_id(rt, world) for e in changes)
    # The token is named by its HMAC under the tenant's log key: matchable, not readable.
    log_key = rt.audit.log_key(a.id)
    assert changes[0]["detail"]["auth_token"] == log_key.secret_ref(TOKEN)
    assert changes[1]["detail"]["auth_token"] == log_key.secret_ref(OTHER_TOKEN)
    assert changes[0]["detail"]["auth_token"].startswith("hmac-sha256:")
    assert [c["detail"].get("replaced") for c in changes[:2]] == [False, True]


def _owner_id(rt: Runtime, world: World) -> str:
    parts = parse_token(world.a.owner_token)
    with rt.db.tenant_tx(parts.tenant_id) as s:
        return authenticate(s, parts).id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"auth_token": ""}, "auth_token"),
        ({"auth_token": "f" * (MAX_CHARS + 1)}, "auth_token"),
        ({"auth_token": TOKEN + "\r\n"}, "auth_token"),
        ({"auth_token": TOKEN[:16] + "\x1b[31m" + TOKEN[16:]}, "auth_token"),
        ({"auth_token": TOKEN[:16] + "\u200b" + TOKEN[16:]}, "auth_token"),
        ({"auth_token": 12345678901234567890}, "body.auth_token"),
        ({}, "body.auth_token"),
        ({"auth_token": TOKEN, "account_sid": "AC" + "0" * 32}, "body.account_sid"),
    ],
)
def test_bad_tokens_are_refused_with_problem_json_naming_the_field_not_the_value(
    rt: Runtime, client: TestClient, world: World, body: dict[str, Any], field: str
) -> None:
    a = world.a
    r = client.put(_url(a.deployments[0]), headers=_owner(world), json=body)
    assert r.status_code == 422
    problem = problem_json(r)
    assert problem["type"].endswith(":invalid-input")
    assert [e["field"] for e in problem["errors"]] == [field]
    for value in body.values():
        if isinstance(value, str) and value:
            assert value.strip() not in r.text
    assert TOKEN[:16] not in r.text
    assert _token_rows(rt, a.id) == []


def test_a_body_that_is_not_json_is_refused_with_problem_json(
    rt: Runtime, client: TestClient, world: World
) -> None:
    r = client.put(
        _url(world.a.deployments[0]),
        headers={**_owner(world), "Content-Type": "application/json"},
        content=b'{"auth_token": "' + TOKEN.encode(),
    )
    assert r.status_code == 422
    problem_json(r)
    assert TOKEN not in r.text
    assert _token_rows(rt, world.a.id) == []


def test_an_unknown_deployment_and_another_tenants_answer_the_same_404(
    rt: Runtime, client: TestClient, world: World
) -> None:
    a, b = world.a, world.b
    # Tenant b's deployment has a token: tenant a must not learn it, nor change it.
    with rt.db.tenant_tx(b.id) as s:
        TwilioAuthTokens(rt.keys, rt.sealer).set(
            s, _deployment(rt, b.id, b.deployments[0]), AuthToken(OTHER_TOKEN)
        )
    (b_row,) = _token_rows(rt, b.id)
    owner = _owner(world)
    for method, body in (("GET", None), ("PUT", {"auth_token": TOKEN}), ("DELETE", None)):
        foreign = client.request(method, _url(b.deployments[0]), headers=owner, json=body)
        nowhere = client.request(method, _url(new_id("dep")), headers=owner, json=body)
        assert foreign.status_code == 404, (method, foreign.text)
        assert _comparable(foreign) == _comparable(nowhere), method
        assert problem_json(foreign)["detail"] == "deployment not found"
    (after,) = _token_rows(rt, b.id)
    assert (after.token_sealed, after.configured_at) == (b_row.token_sealed, b_row.configured_at)
    assert _token_rows(rt, a.id) == []


def test_a_malformed_deployment_id_is_refused_with_problem_json(
    client: TestClient, world: World
) -> None:
    r = client.put("/v1/deployments/not%20an%20id/twilio", headers=_owner(world), json={})
    assert r.status_code == 422
    problem_json(r)


@pytest.mark.parametrize(
    ("role", "scope", "read", "change"),
    [
        ("owner", "tenant", 200, 200),
        ("admin", "dep0", 200, 200),
        ("admin", "agent0", 404, 404),  # cannot even see the deployment
        ("auditor", "tenant", 200, 403),
        ("qa_reviewer", "dep0", 200, 403),
        ("developer", "tenant", 200, 403),
        ("compliance_officer", "tenant", 200, 403),
        ("ingest", "tenant", 404, 404),
        ("payment_operator", "tenant", 404, 404),
    ],
)
def test_only_roles_that_change_a_deployment_may_set_or_remove_its_token(
    rt: Runtime, client: TestClient, world: World, role: str, scope: str, read: int, change: int
) -> None:
    a = world.a
    dep = a.deployments[0]
    headers = auth(a.tokens[(role, scope)])
    principal = a.principals[(role, scope)]
    start = audit_size(rt, a.id)

    assert client.get(_url(dep), headers=headers).status_code == read
    put = client.put(_url(dep), headers=headers, json={"auth_token": TOKEN})
    assert put.status_code == change
    delete = client.delete(_url(dep), headers=headers)
    assert delete.status_code == (204 if change == 200 else change)

    if change != 200:
        problem_json(put)
        problem_json(delete)
        assert _token_rows(rt, a.id) == []
        denied = [
            e
            for e in audit_entries(rt, a.id, start)
            if e["outcome"] == "denied" and e["actor"] == principal
        ]
        assert {e["action"] for e in denied} >= {"deployment:update"}
    assert TOKEN not in json.dumps(audit_entries(rt, a.id, start))


def test_unauthenticated_requests_are_refused(client: TestClient, world: World) -> None:
    dep = world.a.deployments[0]
    for method in ("GET", "PUT", "DELETE"):
        r = client.request(method, _url(dep), json={"auth_token": TOKEN})
        assert r.status_code == 401
        problem_json(r)
