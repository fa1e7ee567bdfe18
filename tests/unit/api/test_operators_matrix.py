"""The operator isolation matrix: every operator route x operator role x grant state x target.

Expectations are written from the intended policy (issue 7), not from the code:

- every operator role reads metadata (tenant, deployments, agents, calls) of any
  tenant, and every such read is an ``allowed`` entry in *that* tenant's log;
- content is open only to a ``support_engineer`` holding an *approved,
  unexpired* grant, only for calls of the grant's deployment in the grant's
  tenant, and only as the least view (redacted transcript, masked recording);
  a full view is refused to everyone;
- every refusal is 403 problem+json and a ``denied`` entry (actor the
  operator) in the target tenant's log; every content read an ``allowed``
  entry carrying the grant id; nothing lands in a tenant not addressed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from callvault import operators
from callvault.operators import OperatorRole
from callvault.operators._break_glass import request
from callvault.store.models import utcnow
from tests.support.world import CARD, TenantWorld
from tests.unit.api._harness import (
    Installation,
    audit_entries,
    audit_size,
    auth,
    installation,
    is_problem,
)
from tests.unit.operators._support import Op, make_operator

ROLES = tuple(OperatorRole)
STATES = ("none", "pending", "approved", "denied", "revoked", "expired")
TARGETS = ("own0", "own1", "other")  # tenant a dep0 (the grant's), tenant a dep1, tenant b
_CONTENT_MARKS = ("31926819", "twelfth of march", "+44 7700 900123")


@dataclass(frozen=True)
class Route:
    key: str
    path: Callable[[TenantWorld, int], str]
    kind: str  # "metadata", "least" (redacted/masked), "full"
    method: str = "GET"
    body: dict[str, Any] | None = None


def _t(tw: TenantWorld) -> str:
    return f"/v1/operator/tenants/{tw.id}"


ROUTES = (
    Route("tenant", lambda tw, _: _t(tw), "metadata"),
    Route("deployments", lambda tw, _: f"{_t(tw)}/deployments", "metadata"),
    Route("agents", lambda tw, i: f"{_t(tw)}/deployments/{tw.deployments[i]}/agents", "metadata"),
    Route("calls", lambda tw, _: f"{_t(tw)}/calls", "metadata"),
    Route(
        "calls?dep", lambda tw, i: f"{_t(tw)}/calls?deployment_id={tw.deployments[i]}", "metadata"
    ),
    Route("call", lambda tw, i: f"{_t(tw)}/calls/{tw.calls[i]}", "metadata"),
    Route("transcript", lambda tw, i: f"{_t(tw)}/calls/{tw.calls[i]}/transcript", "least"),
    Route(
        "transcript?redacted",
        lambda tw, i: f"{_t(tw)}/calls/{tw.calls[i]}/transcript?view=redacted",
        "least",
    ),
    Route(
        "transcript?full",
        lambda tw, i: f"{_t(tw)}/calls/{tw.calls[i]}/transcript?view=full",
        "full",
    ),
    Route("recording", lambda tw, i: f"{_t(tw)}/calls/{tw.calls[i]}/recording", "least"),
    Route(
        "recording?masked",
        lambda tw, i: f"{_t(tw)}/calls/{tw.calls[i]}/recording?view=masked",
        "least",
    ),
    Route(
        "recording?full", lambda tw, i: f"{_t(tw)}/calls/{tw.calls[i]}/recording?view=full", "full"
    ),
    Route("my-requests", lambda tw, _: f"{_t(tw)}/break-glass", "engineer"),
)


def expected(route: Route, role: OperatorRole, state: str, target: str) -> int:
    if route.kind == "metadata":
        return 200
    if route.kind == "engineer":
        return 200 if role is OperatorRole.SUPPORT_ENGINEER else 403
    if route.kind == "full":
        return 403
    live = state == "approved" and target == "own0"
    return 200 if role is OperatorRole.SUPPORT_ENGINEER and live else 403


@dataclass
class Env:
    inst: Installation
    #: (role, state) -> operator, and its grant id (None for "none")
    ops: dict[tuple[OperatorRole, str], tuple[Op, str | None]]


def _grant(inst: Installation, op: Op, state: str) -> str | None:
    """A grant of ``op`` for tenant a, deployment 0, in ``state`` (written by the domain
    layer directly, so even a ``support_readonly`` can hold one: it must still get nothing)."""
    if state == "none":
        return None
    a = inst.world.a
    past = state == "expired"
    now = utcnow() - (timedelta(hours=5) if past else timedelta(0))
    actor = operators.Actor(op.id, "operator")
    admin = operators.Actor(a.principals[("admin", "tenant")], "tenant")
    with inst.rt.db.tenant_tx(a.id) as s:
        row = request(
            s,
            inst.rt.sealer,
            inst.rt.audit,
            operator_id=op.id,
            tenant_id=a.id,
            deployment_id=a.deployments[0],
            reason="matrix: investigating a support ticket",
            ticket_ref="MX-1",
            duration=timedelta(hours=1),
            now=now,
            actor=actor,
        )
    with inst.rt.db.tenant_tx(a.id) as s:
        if state in ("approved", "revoked", "expired"):
            operators.approve(s, inst.rt.audit, a.id, row.id, duration=None, now=now, actor=admin)
    with inst.rt.db.tenant_tx(a.id) as s:
        if state == "denied":
            operators.deny(s, inst.rt.audit, a.id, row.id, now=now, actor=admin)
        if state == "revoked":
            operators.revoke(s, inst.rt.audit, a.id, row.id, now=now, actor=admin)
    return row.id


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with installation(tmp_path_factory.mktemp("op-matrix") / "data") as inst:
        ops = {}
        for role in ROLES:
            for state in STATES:
                op = make_operator(inst.rt, f"mx-{uuid.uuid4().hex[:10]}", role)
                ops[(role, state)] = (op, _grant(inst, op, state))
        yield Env(inst=inst, ops=ops)


def _target(env: Env, target: str) -> tuple[TenantWorld, TenantWorld, int]:
    a, b = env.inst.world.a, env.inst.world.b
    return {"own0": (a, b, 0), "own1": (a, b, 1), "other": (b, a, 0)}[target]


def _check(
    where: str,
    route: Route,
    resp: Any,
    want: int,
    mine: list[dict[str, Any]],
    operator_id: str,
    grant: str | None,
) -> list[str]:
    """Status, problem shape, no content beyond the least view, the tenant's audit entries."""
    if resp.status_code != want:
        return [f"{where}: expected {want}, got {resp.status_code} {resp.text[:120]}"]
    out = []
    if want >= 400 and not is_problem(resp):
        out.append(f"{where}: {want} is not problem+json")
    least_read = route.kind == "least" and want == 200
    if not least_read and any(m in resp.text for m in _CONTENT_MARKS):
        out.append(f"{where}: content in the reply")
    # The least view (redacted transcript, masked audio) holds none of the world's PII either:
    # the account number, the date of birth, the caller's number, the keyed card.
    if least_read and (
        any(m in resp.text for m in (*_CONTENT_MARKS, CARD))
        or resp.headers.get("x-callvault-view") == "full"
    ):
        out.append(f"{where}: more than the least view")
    if (
        least_read
        and route.key.startswith("transcript")
        and "thank you, I have that" not in resp.text
    ):
        out.append(f"{where}: the least view is not the call's transcript")  # not vacuous
    outcomes = {(e["outcome"], e["actor"]) for e in mine}
    if want == 403 and ("denied", operator_id) not in outcomes:
        out.append(f"{where}: 403 without a denied entry in the tenant's log")
    if want == 200 and ("allowed", operator_id) not in outcomes:
        out.append(f"{where}: 200 without an allowed entry in the tenant's log")
    tags = {e["detail"].get("break_glass") for e in mine if e["outcome"] == "allowed"}
    if least_read and tags != {grant}:
        out.append(f"{where}: content read not tagged with the grant ({tags})")
    return out


@pytest.mark.parametrize("route", ROUTES, ids=[r.key for r in ROUTES])
def test_operator_matrix(env: Env, route: Route) -> None:
    rt, client = env.inst.rt, env.inst.client
    problems: list[str] = []
    for (role, state), (op, grant) in env.ops.items():
        for target in TARGETS:
            tw, bystander, index = _target(env, target)
            where = f"{route.key} | {role.value}/{state} -> {target}"
            start, other_start = audit_size(rt, tw.id), audit_size(rt, bystander.id)
            rid = f"omx-{uuid.uuid4().hex}"
            resp = client.request(
                route.method,
                route.path(tw, index),
                headers={**auth(op.token), "X-Request-ID": rid},
                json=route.body,
            )
            want = expected(route, role, state, target)
            mine = [e for e in audit_entries(rt, tw.id, start) if e.get("request_id") == rid]
            problems += _check(where, route, resp, want, mine, op.id, grant)
            if audit_size(rt, bystander.id) != other_start:
                problems.append(f"{where}: an entry in the tenant not addressed")
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_requesting_break_glass_is_for_engineers_only(env: Env, role: OperatorRole) -> None:
    op, _ = env.ops[(role, "none")]
    a = env.inst.world.a
    resp = env.inst.client.post(
        f"/v1/operator/tenants/{a.id}/break-glass",
        headers=auth(op.token),
        json={
            "deployment_id": a.deployments[1],
            "reason": "matrix: investigating a support ticket",
            "ticket_ref": "MX-2",
            "duration_minutes": 5,
        },
    )
    assert resp.status_code == (201 if role is OperatorRole.SUPPORT_ENGINEER else 403), resp.text
