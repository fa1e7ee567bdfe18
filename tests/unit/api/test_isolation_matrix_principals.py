"""The isolation matrix for people who sign in with a browser: SSO users and SCIM users.

test_isolation_matrix.py runs every route x role x binding scope x target with
API keys. This module runs the same operations (its ``OPS``), the same targets
and the same expectation (its :func:`expected_status`, written from the
intended policy) for two other kinds of caller. Each holds the ``__Host-``
session cookie of a real login through the ``/sso`` routes, whose IdP side is
the adapter test double (tests/unit/sso/_double.py), and sends the session's
CSRF token (as ``GET /v1/session`` hands it to the page) on state changes:

- ``sso``: just-in-time users of an OIDC connection, one per role x scope, the
  binding coming from the connection's group -> role mapping;
- ``scim``: users created through ``/scim/v2/{tenant}/Users`` with a SCIM
  bearer token and put in a SCIM group; the SAML connection (``link_scim:
  email``, no JIT) maps that group, asserted by the IdP at login, to the role,
  and the login links to the SCIM principal (the principal id is the SCIM id).

A role is a role: a browser user holding it gets exactly what an API key
holding it gets, with the same problem+json, the same audit entries, no
content where none is due, no foreign ids, and another tenant's ids answering
byte for byte like ids that exist nowhere.

Sampling (the API-key matrix covers all 24 role x scope pairs per operation;
this one must stay fast): operation number *i* runs, for each kind, every role
once, role number *r* at scope ``SCOPES[(i + r + kind) % 3]``, against all of
the operation's targets. So every operation is decided for every role by both
kinds (at different scopes), and every role x scope pair of both kinds is
exercised on operations of every decision level;
:func:`test_the_sample_covers_every_role_and_scope_for_both_kinds` checks
that claim rather than trusting it.

Where a cookie caller's answer is not :func:`expected_status`'s, the module
says so in a table with the reason and the status it asserts instead
(:data:`COOKIE_POLICY`, :data:`CSRF_NOT_APPLICABLE`, :data:`NEEDS_NO_CREDENTIAL`);
no operation is left out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from callvault import access, sessions
from callvault.store import new_id
from callvault.store.models import Base, BrowserSession
from tests.support.world import TenantWorld
from tests.unit.api._harness import audit_entries, audit_size, auth, is_problem, problem_json
from tests.unit.api.test_isolation_matrix import (
    OPS,
    ROLES,
    SCOPES,
    TARGETS,
    Env,
    Level,
    Op,
    Sent,
    _check_audit,
    _comparable,
    _foreign_ids_of,
    _fresh,
    _send,
    _strings,
    expected_status,
    matrix_env,
    run_case,
)
from tests.unit.sso import _double as sso_double

COOKIE = sessions.COOKIE_NAME
STATE = "__Host-cv-sso-state"
ORIGIN = "https://cv.example.test"  # the installation's CALLVAULT_PUBLIC_BASE_URL
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
KINDS = ("sso", "scim")
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SCIM_PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_JSON = "application/scim+json"

#: Operations whose answer to a cookie caller is not :func:`expected_status`'s (they are the
#: matrix's PUBLIC ones, sent there without any credential): status asserted, and why.
COOKIE_POLICY: dict[str, tuple[int, str]] = {
    "GET /healthz": (200, "liveness probe: reads no credential"),
    "GET /readyz": (200, "readiness probe: reads no credential"),
    "GET /v1/session": (200, "the caller's own session: who, which bindings, the CSRF token"),
    "POST /v1/session/logout": (
        204,
        (
            "ends the caller's own session: sent with a second login of the same user, so "
            "the shared session lives on (and is checked to)"
        ),
    ),
    "POST /v1/session/recovery": (
        401,
        (
            "public recovery login: its credential is the body's code (a wrong one here, for "
            "the caller's own principal); a cookie is no credential for it"
        ),
    ),
    "GET /v1/playback/{token}": (401, "the signed URL is the only credential (a bad one here)"),
}

#: State-changing operations where "a cookie without the CSRF token" is not the question:
#: the status asserted instead, the tables the refusal may write, and why.
CSRF_NOT_APPLICABLE: dict[str, tuple[int, frozenset[str], str]] = {
    "POST /v1/session/recovery": (
        401,
        frozenset({"recovery_lockouts"}),  # a wrong code counts toward the lockout (ADR 15)
        (
            "opens a session rather than using one (no token exists yet); its cross-site "
            "defence is the Origin/Sec-Fetch-Site check (test_sessions.py); the code here "
            "is wrong"
        ),
    ),
    "POST /v1/operator/tenants/{tenant_id}/break-glass": (
        401,
        frozenset(),
        "operator realm: only an operator key (Authorization header) is a credential there",
    ),
    "POST /v1/operator/tenants/{tenant_id}/break-glass/{grant_id}/revoke": (
        401,
        frozenset(),
        "operator realm: only an operator key (Authorization header) is a credential there",
    ),
}

#: Operations a deactivated user's cookie does not get 401 from: status asserted, and why.
NEEDS_NO_CREDENTIAL: dict[str, tuple[int, str]] = {
    "GET /healthz": (200, "liveness probe: public, reads no credential"),
    "GET /readyz": (200, "readiness probe: public, reads no credential"),
}

_BY_KEY = {op.key: op for op in OPS}


# -- the browser users -------------------------------------------------------------------------


@dataclass(frozen=True)
class Browser:
    """A person signed in through SSO: the session cookie and its CSRF token."""

    kind: str  # "sso", "scim", or "b" (tenant b's SSO users)
    role: str
    scope: str
    principal: str
    cookie: str
    csrf: str
    # how the person signs in (again): connection, protocol, subject, e-mail, IdP group
    tenant: str
    conn: str
    protocol: str
    subject: str
    email: str | None
    group: str

    def creds(self, method: str) -> dict[str, str]:
        """A browser page's request: the cookie; for a state change also the CSRF token and
        the same-origin headers a browser adds."""
        headers = {"Cookie": f"{COOKIE}={self.cookie}"}
        if method.upper() not in SAFE:
            headers[sessions.CSRF_HEADER] = self.csrf
            headers["Origin"] = ORIGIN
            headers["Sec-Fetch-Site"] = "same-origin"
        return headers

    def without_csrf(self, method: str) -> dict[str, str]:
        headers = self.creds(method)
        headers.pop(sessions.CSRF_HEADER, None)
        return headers

    @property
    def label(self) -> str:
        return f"{self.kind}:"


@dataclass
class PEnv:
    m: Env
    users: dict[tuple[str, str, str], Browser]  # (kind, role, scope) in tenant a
    b_users: dict[str, Browser]  # role (at tenant scope) in tenant b
    scim: dict[str, str]  # tenant a's SCIM bearer headers
    scim_conn: str

    @property
    def client(self) -> Any:
        return self.m.client

    def user(self, kind: str, role: str, scope: str) -> Browser:
        return self.users[(kind, role, scope)]


def _rule(tw: TenantWorld, group: str, role: str, scope: str) -> dict[str, str]:
    rule = {"group": group, "role": role}
    if scope == "dep0":
        rule |= {"scope_kind": "deployment", "scope_id": tw.deployments[0]}
    elif scope == "agent0":
        rule |= {"scope_kind": "agent", "scope_id": tw.agents[0]}
    return rule


def _binding(tw: TenantWorld, role: str, scope: str) -> dict[str, str]:
    if scope == "tenant":
        return {"role": role, "scope_kind": "tenant", "scope_id": tw.id}
    if scope == "dep0":
        return {"role": role, "scope_kind": "deployment", "scope_id": tw.deployments[0]}
    return {"role": role, "scope_kind": "agent", "scope_id": tw.agents[0]}


def _connection(
    client: Any, owner_token: str, protocol: str, rules: list[dict[str, str]], **policy: Any
) -> str:
    r = client.post(
        "/v1/tenant/sso/connections",
        headers=auth(owner_token),
        json={
            "protocol": protocol,
            "name": f"matrix {protocol}",
            "config": sso_double.config(),
            "role_mappings": rules,
            "allow_owner": True,
            **policy,
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def sso_login(
    client: Any,
    tenant: str,
    conn: str,
    protocol: str,
    subject: str,
    *,
    groups: tuple[str, ...],
    email: str | None = None,
) -> httpx.Response:
    """A browser's whole login: start (303 to the IdP, state cookie), the IdP's answer (the
    double's, signed), back to the ACS or callback with the state cookie."""
    client.cookies.clear()
    r: httpx.Response = client.get(f"/sso/{tenant}/{conn}/login", follow_redirects=False)
    assert r.status_code == 303, r.text
    request_id = parse_qs(urlsplit(r.headers["location"]).query)["request"][0]
    state = r.cookies[STATE]
    client.cookies.clear()
    token = sso_double.answer(
        request_id, subject, groups=groups, email=email, email_verified=email is not None
    )
    headers = {"Accept": "application/json", "Cookie": f"{STATE}={state}"}
    base = f"/sso/{tenant}/{conn}"
    if protocol == "saml":
        r = client.post(
            f"{base}/saml/acs",
            content=str(httpx.QueryParams({"SAMLResponse": token, "RelayState": "matrix"})),
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
    else:
        r = client.get(
            f"{base}/oidc/callback",
            params={"code": token, "state": "s"},
            headers=headers,
            follow_redirects=False,
        )
    client.cookies.clear()
    return r


def session_cookie(r: httpx.Response) -> str:
    assert r.status_code == 303, r.text
    header = next(h for h in r.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}="))
    return header.split(";")[0].split("=", 1)[1]


def whoami(client: Any, cookie: str) -> httpx.Response:
    r: httpx.Response = client.get("/v1/session", headers={"Cookie": f"{COOKIE}={cookie}"})
    client.cookies.clear()
    return r


def sign_in(client: Any, who: Browser) -> Browser:
    """Sign ``who`` in through the /sso routes (again: each login is a new session of the same
    person) and read the session's CSRF token the way a page does (``GET /v1/session``)."""
    r = sso_login(
        client,
        who.tenant,
        who.conn,
        who.protocol,
        who.subject,
        groups=(who.group,),
        email=who.email,
    )
    cookie = session_cookie(r)
    me = whoami(client, cookie)
    assert me.status_code == 200, me.text
    body = me.json()
    return replace(
        who, principal=body["principal_id"], cookie=cookie, csrf=body["session"]["csrf_token"]
    )


def _plan(kind: str, tenant: str, conn: str, protocol: str, role: str, scope: str) -> Browser:
    """Who to sign in (principal, cookie and token are filled in by the login)."""
    email = f"{role.replace('_', '-')}.{scope}@acme.example" if kind == "scim" else None
    return Browser(
        kind=kind,
        role=role,
        scope=scope,
        principal="",
        cookie="",
        csrf="",
        tenant=tenant,
        conn=conn,
        protocol=protocol,
        subject=f"{kind}-{role}-{scope}-subject",
        email=email,
        group=f"{kind}-{role}-{scope}",
    )


def scim_user(client: Any, scim: dict[str, str], tenant: str, user_name: str) -> str:
    r = client.post(
        f"/scim/v2/{tenant}/Users",
        headers=scim,
        json={"schemas": [SCIM_USER], "userName": user_name, "active": True},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def scim_group(
    client: Any, scim: dict[str, str], tenant: str, name: str, members: list[str]
) -> str:
    r = client.post(
        f"/scim/v2/{tenant}/Groups",
        headers=scim,
        json={
            "schemas": [SCIM_GROUP],
            "displayName": name,
            "members": [{"value": m} for m in members],
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def scim_patch(
    client: Any, scim: dict[str, str], path: str, *operations: dict[str, Any]
) -> httpx.Response:
    r: httpx.Response = client.patch(
        path, headers=scim, json={"schemas": [SCIM_PATCH], "Operations": list(operations)}
    )
    client.cookies.clear()
    return r


def join_group(penv: PEnv, uid: str, name: str) -> None:
    """Add SCIM user ``uid`` to the tenant's SCIM group ``name`` (a SCIM PATCH, as Okta does)."""
    a = penv.m.own
    found = penv.client.get(
        f"/scim/v2/{a.id}/Groups", headers=penv.scim, params={"filter": f'displayName eq "{name}"'}
    ).json()["Resources"]
    assert len(found) == 1, found
    r = scim_patch(
        penv.client,
        penv.scim,
        f"/scim/v2/{a.id}/Groups/{found[0]['id']}",
        {"op": "add", "path": "members", "value": [{"value": uid}]},
    )
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def penv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PEnv]:
    with matrix_env(tmp_path_factory) as m:
        client, a, b = m.client, m.own, m.other
        pairs = [(role, scope) for role in ROLES for scope in SCOPES]
        # (1) just-in-time users of an OIDC connection
        jit = _connection(
            client,
            a.owner_token,
            "oidc",
            [_rule(a, f"sso-{role}-{scope}", role, scope) for role, scope in pairs],
        )
        users: dict[tuple[str, str, str], Browser] = {}
        for role, scope in pairs:
            users[("sso", role, scope)] = sign_in(
                client, _plan("sso", a.id, jit, "oidc", role, scope)
            )
        # (2) SCIM-provisioned users, linked by e-mail through a SAML connection
        r = client.post(
            "/v1/tenant/scim-tokens", headers=auth(a.owner_token), json={"label": "idp"}
        )
        assert r.status_code == 201, r.text
        scim = {"Authorization": f"Bearer {r.json()['token']}", "Content-Type": SCIM_JSON}
        linked = _connection(
            client,
            a.owner_token,
            "saml",
            [_rule(a, f"scim-{role}-{scope}", role, scope) for role, scope in pairs],
            jit=False,
            link_scim="email",
        )
        for role, scope in pairs:
            plan = _plan("scim", a.id, linked, "saml", role, scope)
            assert plan.email is not None
            uid = scim_user(client, scim, a.id, plan.email)
            scim_group(client, scim, a.id, plan.group, [uid])
            user = sign_in(client, plan)
            assert user.principal == uid, "the login did not link to the SCIM user"
            users[("scim", role, scope)] = user
        # (3) tenant b's SSO users, one per role at tenant scope
        b_conn = _connection(
            client,
            b.owner_token,
            "oidc",
            [_rule(b, f"b-{role}-tenant", role, "tenant") for role in ROLES],
        )
        b_users = {
            role: sign_in(client, _plan("b", b.id, b_conn, "oidc", role, "tenant"))
            for role in ROLES
        }
        yield PEnv(m=m, users=users, b_users=b_users, scim=scim, scim_conn=linked)


# -- the sample --------------------------------------------------------------------------------


def sample(index: int, kind: str) -> tuple[tuple[str, str], ...]:
    """The (role, scope) pairs operation number ``index`` runs for ``kind``: every role once,
    at a scope rotating with the operation and differing between the kinds."""
    shift = KINDS.index(kind)
    return tuple((role, SCOPES[(index + r + shift) % len(SCOPES)]) for r, role in enumerate(ROLES))


_DECIDED = (Level.TENANT, Level.TENANT_SUB, Level.DEPLOYMENT, Level.AGENT, Level.CALL)


def test_the_sample_covers_every_role_and_scope_for_both_kinds() -> None:
    every = {(role, scope) for role in ROLES for scope in SCOPES}
    for kind in KINDS:
        for level in _DECIDED:
            seen = {p for i, op in enumerate(OPS) if op.level is level for p in sample(i, kind)}
            assert seen == every, f"{kind} at {level}: never sampled {sorted(every - seen)}"
        allowed: dict[tuple[str, str], int] = dict.fromkeys(every, 0)
        denied: dict[tuple[str, str], int] = dict.fromkeys(every, 0)
        for i, op in enumerate(OPS):
            if op.level not in _DECIDED:
                continue
            for role, scope in sample(i, kind):
                for target in TARGETS[op.level]:
                    if target == "other":
                        continue
                    want = expected_status(op, role, scope, target)
                    (allowed if want < 300 else denied)[(role, scope)] += 1
        assert all(denied.values()), f"{kind}: pairs never denied: {denied}"
        for role in ROLES:
            assert any(allowed[(role, s)] for s in SCOPES), f"{kind}: {role} never allowed"
        # every role is decided on every operation, by both kinds
        for i, _op in enumerate(OPS):
            assert {role for role, _ in sample(i, kind)} == set(ROLES)
    for i in range(len(OPS)):
        assert set(sample(i, "sso")).isdisjoint(sample(i, "scim"))


def test_the_exception_tables_name_real_operations() -> None:
    public = {op.key for op in OPS if op.level is Level.PUBLIC}
    assert set(COOKIE_POLICY) == public, "every PUBLIC op needs its cookie policy, and only they"
    unsafe = {op.key for op in OPS if op.method not in SAFE}
    assert set(CSRF_NOT_APPLICABLE) <= unsafe, sorted(set(CSRF_NOT_APPLICABLE) - unsafe)
    assert set(NEEDS_NO_CREDENTIAL) <= set(_BY_KEY), sorted(set(NEEDS_NO_CREDENTIAL) - set(_BY_KEY))
    operator_writes = {op.key for op in OPS if op.level is Level.OPERATOR and op.method not in SAFE}
    assert operator_writes <= set(CSRF_NOT_APPLICABLE)


# -- the logins themselves ---------------------------------------------------------------------


def test_each_browser_user_holds_exactly_the_binding_its_group_maps_to(penv: PEnv) -> None:
    a = penv.m.own
    problems = []
    for (kind, role, scope), user in penv.users.items():
        me = whoami(penv.client, user.cookie).json()
        where = f"{kind}:{role}@{scope}"
        if me["authenticated_by"] != "session" or me["principal_kind"] != "user":
            problems.append(f"{where}: {me['authenticated_by']} {me['principal_kind']}")
        if me["bindings"] != [_binding(a, role, scope)]:
            problems.append(f"{where}: bindings {me['bindings']}")
        if me["session"]["method"] != user.protocol or me["session"]["connection_id"] != user.conn:
            problems.append(f"{where}: session {me['session']}")
    ids = [u.principal for u in penv.users.values()]
    assert len(set(ids)) == len(ids), "two browser users share a principal"
    # JIT users are new principals named sso:<id>; SCIM users are the SCIM principals.
    listing = penv.client.get("/v1/principals", headers=auth(a.owner_token)).json()
    names = {p["id"]: p["name"] for p in listing}
    for (kind, _role, _scope), user in penv.users.items():
        want = f"sso:{user.principal}" if kind == "sso" else f"scim:{user.principal}"
        if names.get(user.principal) != want:
            problems.append(f"{kind}: principal {user.principal} named {names.get(user.principal)}")
    assert not problems, "\n".join(problems)


def test_a_scim_group_alone_grants_no_role(penv: PEnv) -> None:
    """ADR 13 (groups carry no roles) and ADR 14 (the mapping reads what the IdP asserts at
    login): a SCIM user in a mapped SCIM group whose login asserts no group gets no role."""
    a = penv.m.own
    uid = scim_user(penv.client, penv.scim, a.id, "groupless@acme.example")
    join_group(penv, uid, "scim-admin-tenant")
    r = sso_login(
        penv.client,
        a.id,
        penv.scim_conn,
        "saml",
        "groupless",
        groups=(),
        email="groupless@acme.example",
    )
    assert r.status_code == 403, r.text
    assert problem_json(r)["reason"] == "no-role"
    assert not any(h.startswith(f"{COOKIE}=") for h in r.headers.get_list("set-cookie"))


# -- the matrix --------------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "op"), list(enumerate(OPS)), ids=[op.key for op in OPS])
def test_access_matrix_for_browser_users(penv: PEnv, index: int, op: Op) -> None:
    if op.level is Level.PUBLIC:
        problems = _public_op(penv, index, op)
        assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems)
        return
    m, rt = penv.m, penv.m.inst.rt
    own_start, other_start = audit_size(rt, m.own.id), audit_size(rt, m.other.id)
    problems = []
    sent: dict[str, list[Sent]] = {kind: [] for kind in KINDS}
    for kind in KINDS:
        for role, scope in sample(index, kind):
            user = penv.user(kind, role, scope)
            for target in TARGETS[op.level]:
                found, done = run_case(
                    m, op, user.creds, (role, scope, target), user.principal, label=user.label
                )
                problems += found
                sent[kind].append(done)
    for kind in KINDS:
        problems += _check_audit(m, op, sent[kind], own_start, other_start, label=f"{kind}:")
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems)


def _public_op(penv: PEnv, index: int, op: Op) -> list[str]:
    """The matrix's PUBLIC operations with a cookie: :data:`COOKIE_POLICY`."""
    m = penv.m
    want, _why = COOKIE_POLICY[op.key]
    problems = []
    for kind in KINDS:
        for role, scope in sample(index, kind):
            user = penv.user(kind, role, scope)
            caller = sign_in(penv.client, user) if op.key == "POST /v1/session/logout" else user
            where = f"{op.key} | {kind}:{role}@{scope}"
            # A recovery attempt names the caller itself: five failures against one principal
            # lock it (429, ADR 15), which one shared target would hit after five callers.
            ids = replace(m.targets["own0"], principal=user.principal)
            _, resp = _send(m, op, ids, caller.creds)
            if resp.status_code != want:
                problems.append(
                    f"{where}: expected {want}, got {resp.status_code} {resp.text[:160]}"
                )
            if resp.status_code >= 400 and not is_problem(resp):
                problems.append(f"{where}: {resp.status_code} is not problem+json")
            if _foreign_ids_of(m.other) & set(_strings(resp)):
                problems.append(f"{where}: reply holds an id of the other tenant")
            if op.key == "GET /v1/session" and resp.status_code == 200:
                problems += _check_whoami(penv, where, resp, user)
            if op.key == "POST /v1/session/logout":
                problems += _check_logout(penv, where, resp, caller, user)
    return problems


def _check_whoami(penv: PEnv, where: str, resp: httpx.Response, user: Browser) -> list[str]:
    body = resp.json()
    out = []
    if (body["tenant_id"], body["principal_id"]) != (penv.m.own.id, user.principal):
        out.append(f"{where}: who am I says {body['tenant_id']}/{body['principal_id']}")
    if body["bindings"] != [_binding(penv.m.own, user.role, user.scope)]:
        out.append(f"{where}: bindings {body['bindings']}")
    if body["session"]["csrf_token"] != user.csrf:
        out.append(f"{where}: another CSRF token than the login's")
    return out


def _check_logout(
    penv: PEnv, where: str, resp: httpx.Response, ended: Browser, kept: Browser
) -> list[str]:
    out = []
    cleared = [h for h in resp.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}=")]
    if not cleared or "max-age=0" not in cleared[0].lower():
        out.append(f"{where}: logout did not clear the cookie")
    if whoami(penv.client, ended.cookie).status_code != 401:
        out.append(f"{where}: the logged-out session still works")
    if whoami(penv.client, kept.cookie).status_code != 200:
        out.append(f"{where}: logout ended another session of the same user")
    return out


# -- CSRF: a cookie alone changes nothing ------------------------------------------------------

#: Tables a refused request may write: its audit entry (and the log's head).
_AUDIT_TABLES = frozenset(
    {"audit_entries", "audit_heads", "audit_checkpoints", "audit_sink_cursors"}
)


def db_state(env: Env) -> dict[str, str]:
    """A digest of every row of every table but the audit log's."""
    out = {}
    with env.inst.rt.db.system_tx() as s:
        for table in Base.metadata.sorted_tables:
            if table.name in _AUDIT_TABLES:
                continue
            rows = sorted(repr(tuple(row)) for row in s.execute(select(table)))
            out[table.name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return out


def _allowed_caller(penv: PEnv, index: int, op: Op) -> Browser:
    """A browser user the policy lets run ``op`` on own0 (so only CSRF can refuse it): the
    narrowest such binding (agent, then deployment, then tenant scope)."""
    kind = KINDS[index % 2]
    for scope in reversed(SCOPES):
        for role in ROLES:
            if 200 <= expected_status(op, role, scope, "own0") < 300:
                return penv.user(kind, role, scope)
    raise AssertionError(f"{op.key}: no role may run it")


_UNSAFE = [(i, op) for i, op in enumerate(OPS) if op.method not in SAFE]


@pytest.mark.parametrize(("index", "op"), _UNSAFE, ids=[op.key for _, op in _UNSAFE])
def test_a_cookie_without_the_csrf_token_changes_nothing(penv: PEnv, index: int, op: Op) -> None:
    m = penv.m
    if op.key in CSRF_NOT_APPLICABLE:
        want, writes, _why = CSRF_NOT_APPLICABLE[op.key]
        user = penv.user("sso", "owner", "tenant")
        before = db_state(m)
        _, resp = _send(m, op, m.targets["own0"], user.without_csrf)
        assert resp.status_code == want, resp.text
        problem_json(resp)
        after = db_state(m)
        assert {t for t in before if before[t] != after[t]} <= writes
        return
    if op.level is Level.PUBLIC:  # the caller's own session (logout): a second one, ended below
        user = sign_in(penv.client, penv.user(KINDS[index % 2], "qa_reviewer", "agent0"))
        want = COOKIE_POLICY[op.key][0]
    else:
        user = _allowed_caller(penv, index, op)
        want = expected_status(op, user.role, user.scope, "own0")
    ids = _fresh(m, op, m.targets["own0"]) if op.fresh else m.targets["own0"]
    other = sign_in(penv.client, user)  # another session of the same person: its token
    attempts = {
        "no token": user.without_csrf,
        "another session's token": lambda method: {
            **user.creds(method),
            sessions.CSRF_HEADER: other.csrf,
        },
        "right token, another origin": lambda method: {
            **user.creds(method),
            "Origin": "https://evil.example",
        },
    }
    before = db_state(m)
    start = audit_size(m.inst.rt, m.own.id)
    for what, creds in attempts.items():
        rid, resp = _send(m, op, ids, creds)
        assert resp.status_code == 403, f"{what}: {resp.status_code} {resp.text[:200]}"
        assert problem_json(resp)["type"].endswith(":csrf-failed"), what
        assert db_state(m) == before, f"{what}: a refused request changed the database"
        entries = [e for e in audit_entries(m.inst.rt, m.own.id, start) if e["request_id"] == rid]
        assert [(e["action"], e["outcome"], e["actor"]) for e in entries] == [
            ("session.csrf", "denied", user.principal)
        ], what
    # The control: with the token the same caller is allowed (so the refusals were CSRF's).
    _, resp = _send(m, op, ids, user.creds)
    assert 200 <= want < 300
    assert resp.status_code == want, resp.text


# -- tenant b: its paths and its users ---------------------------------------------------------


def test_tenant_b_paths_answer_a_cookie_of_tenant_a_like_nonexistent_ones(penv: PEnv) -> None:
    """Routes with a tenant id in the path, a cookie of tenant a: tenant b's id answers
    exactly what a tenant id of nothing answers (the matrix compares every resource id)."""
    m, client = penv.m, penv.client
    b, nowhere = m.other.id, new_id("ten")
    user = penv.user("sso", "owner", "tenant")
    problems = []
    paths = [
        ("GET", "/scim/v2/{t}/Users"),
        ("GET", "/scim/v2/{t}/Groups"),
        ("GET", "/scim/v2/{t}/ServiceProviderConfig"),
        ("POST", "/scim/v2/{t}/Users"),
        ("GET", "/v1/operator/tenants/{t}"),
        ("GET", "/v1/operator/tenants/{t}/calls"),
        ("GET", f"/sso/{{t}}/{user.conn}/login"),  # tenant a's connection under another tenant
        ("GET", f"/sso/{{t}}/{penv.scim_conn}/saml/metadata"),
    ]
    for method, template in paths:
        answers = []
        for tenant in (b, nowhere):
            resp = client.request(
                method,
                template.format(t=tenant),
                headers={**user.creds(method), "Accept": "application/json"},
                json={"schemas": [SCIM_USER], "userName": "x@acme.example"}
                if method == "POST"
                else None,
                follow_redirects=False,
            )
            client.cookies.clear()
            answers.append(resp)
        there, nothing = answers
        where = f"{method} {template}"
        if there.status_code not in (401, 404):
            problems.append(f"{where}: tenant b answers {there.status_code} {there.text[:160]}")
        if _comparable(there) != _comparable(nothing):
            problems.append(
                f"{where}: tenant b {there.status_code} {there.text[:160]} vs nothing "
                f"{nothing.status_code} {nothing.text[:160]}"
            )
        ctype = there.headers.get("content-type", "")
        if template.startswith("/scim/") and not ctype.startswith(SCIM_JSON):
            problems.append(f"{where}: SCIM answered {ctype}")
    # The cookie names its tenant: pointed at tenant b, or at a tenant of nothing, same answer.
    forged = {
        t: client.get(
            "/v1/tenant", headers={"Cookie": f"{COOKIE}={user.cookie.replace(m.own.id, t)}"}
        )
        for t in (b, nowhere)
    }
    client.cookies.clear()
    if forged[b].status_code != 401 or _comparable(forged[b]) != _comparable(forged[nowhere]):
        problems.append(f"forged cookie: {forged[b].text[:160]} vs {forged[nowhere].text[:160]}")
    assert not problems, "\n".join(problems)


def test_recovery_login_answers_a_real_principal_like_an_id_of_nothing(penv: PEnv) -> None:
    """The public recovery route, anonymous: a principal that exists (a service account, so
    not eligible) and one that exists nowhere get the same answers, attempt for attempt."""
    m, client, a = penv.m, penv.client, penv.m.own
    with m.inst.rt.db.tenant_tx(a.id) as s:
        real = access.create_principal(s, a.id, kind="service", name="recovery-probe").id
    tries = m.inst.rt.settings.session_recovery_max_failures + 1
    answers: dict[str, list[tuple[int, str, Any]]] = {}
    for principal in (real, new_id("prn")):
        answers[principal] = []
        for _ in range(tries):
            r = client.post(
                "/v1/session/recovery",
                json={
                    "tenant_id": a.id,
                    "principal_id": principal,
                    "code": "AAAAA-AAAAA-AAAAA-AAAAA",
                },
            )
            client.cookies.clear()
            answers[principal].append(_comparable(r))
    there, nothing = answers.values()
    assert there == nothing


def test_the_wall_holds_for_tenant_b_sessions(penv: PEnv) -> None:
    """Tenant b's tenant-wide browser users of every role against tenant a's ids: 404."""
    m = penv.m
    ids = m.targets["own0"]
    problems = []
    for op in OPS:
        if op.level not in (Level.DEPLOYMENT, Level.AGENT, Level.CALL):
            continue
        for role, user in penv.b_users.items():
            _, resp = _send(m, op, ids, user.creds)
            if resp.status_code != 404 or not is_problem(resp):
                problems.append(f"{op.key} | b:{role}: {resp.status_code} {resp.text[:120]}")
            if _foreign_ids_of(m.own) & set(_strings(resp)):
                problems.append(f"{op.key} | b:{role}: reply holds an id of tenant a")
    assert not problems, "\n".join(problems)


# -- deactivation ------------------------------------------------------------------------------


def test_a_deactivated_scim_users_cookie_gets_401_on_every_route(penv: PEnv) -> None:
    m, client, a = penv.m, penv.client, penv.m.own
    email = "leaver@acme.example"
    uid = scim_user(client, penv.scim, a.id, email)
    group = "scim-admin-tenant"
    join_group(penv, uid, group)
    plan = replace(
        _plan("scim", a.id, penv.scim_conn, "saml", "admin", "tenant"),
        subject="leaver-subject",
        email=email,
    )
    user = sign_in(client, plan)
    assert user.principal == uid
    # alive: reads and (with the token) writes
    assert _send(m, _BY_KEY["GET /v1/tenant"], m.targets["own0"], user.creds)[1].status_code == 200
    assert (
        _send(m, _BY_KEY["POST /v1/principals"], m.targets["own0"], user.creds)[1].status_code
        == 201
    )
    r = scim_patch(
        client,
        penv.scim,
        f"/scim/v2/{a.id}/Users/{uid}",
        {"op": "replace", "value": {"active": False}},
    )
    assert r.status_code == 200, r.text
    start = audit_size(m.inst.rt, a.id)
    problems = []
    for op in OPS:
        want = NEEDS_NO_CREDENTIAL.get(op.key, (401, ""))[0]
        _, resp = _send(m, op, m.targets["own0"], user.creds)
        if resp.status_code != want:
            problems.append(f"{op.key}: {resp.status_code} {resp.text[:120]}")
        elif want == 401 and not is_problem(resp):
            problems.append(f"{op.key}: 401 is not problem+json")
    acted = [
        e
        for e in audit_entries(m.inst.rt, a.id, start)
        if e["actor"] == uid and e["outcome"] in ("allowed", "success")
    ]
    if acted:
        problems.append(f"the deactivated user still acted: {[e['action'] for e in acted]}")
    with m.inst.rt.db.tenant_tx(a.id) as s:
        reasons = set(
            s.execute(
                select(BrowserSession.end_reason).where(BrowserSession.principal_id == uid)
            ).scalars()
        )
    if reasons != {"principal-deactivated"}:
        problems.append(f"the user's sessions ended with {reasons}")
    again = sso_login(
        client, a.id, penv.scim_conn, "saml", "leaver-subject", groups=(group,), email=email
    )
    if again.status_code != 403 or problem_json(again).get("reason") != "inactive":
        problems.append(
            f"a deactivated user signed in again: {again.status_code} {again.text[:120]}"
        )
    assert not problems, "\n".join(problems)


# -- "SSO required" ----------------------------------------------------------------------------


def test_sso_required_refuses_user_keys_and_leaves_sessions_alone(penv: PEnv) -> None:
    """ADR 15: with "SSO required" an API key of a person is refused (401); a session is not
    affected, so every browser user still gets exactly the matrix's answer."""
    m, client = penv.m, penv.client
    owner = penv.user("sso", "owner", "tenant")

    def set_required(on: bool) -> httpx.Response:
        r: httpx.Response = client.patch(
            "/v1/tenant/session-policy", headers=owner.creds("PATCH"), json={"sso_required": on}
        )
        client.cookies.clear()
        return r

    r = client.post("/v1/tenant/recovery-codes", headers=owner.creds("POST"))
    assert r.status_code == 201, r.text  # an owner holding unused codes: the tenant's way back
    r = set_required(True)
    assert r.status_code == 200, r.text
    try:
        assert r.json()["sso_required"] is True
        problems = []
        for role in ROLES:
            resp = client.get("/v1/tenant", headers=auth(m.own.tokens[(role, "tenant")]))
            if resp.status_code != 401 or not is_problem(resp):
                problems.append(f"{role}'s user key: {resp.status_code} {resp.text[:120]}")
        for index, op in enumerate(OPS):
            if op.method not in SAFE or op.level is Level.PUBLIC:
                continue
            for kind in KINDS:
                for role, scope in sample(index, kind):
                    user = penv.user(kind, role, scope)
                    found, _ = run_case(
                        m, op, user.creds, (role, scope, "own0"), user.principal, label=f"{kind}:"
                    )
                    problems += found
        # and a state change by a session
        admin = penv.user("scim", "admin", "tenant")
        _, resp = _send(m, _BY_KEY["POST /v1/principals"], m.targets["own0"], admin.creds)
        if resp.status_code != 201:
            problems.append(
                f"session write under SSO required: {resp.status_code} {resp.text[:120]}"
            )
        assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems)
    finally:
        assert set_required(False).status_code == 200


def test_a_session_cookie_is_no_credential_for_the_scim_api(penv: PEnv) -> None:
    """SCIM authenticates with its own bearer token only (ADR 13): an owner's cookie, even
    with its CSRF token, is refused with a SCIM error and provisions nothing."""
    m, client, a = penv.m, penv.client, penv.m.own
    owner = penv.user("sso", "owner", "tenant")
    before = db_state(m)
    for method, path in (
        ("GET", f"/scim/v2/{a.id}/Users"),
        ("POST", f"/scim/v2/{a.id}/Users"),
        ("GET", f"/scim/v2/{a.id}/ServiceProviderConfig"),
    ):
        resp = client.request(
            method,
            path,
            headers=owner.creds(method),
            content=json.dumps({"schemas": [SCIM_USER], "userName": "cookie@acme.example"})
            if method == "POST"
            else None,
        )
        client.cookies.clear()
        assert resp.status_code == 401, (path, resp.text)
        assert resp.headers["content-type"].startswith(SCIM_JSON)
    assert db_state(m) == before
