"""Break-glass bookkeeping: sealed reasons, input checks, expiry recorded exactly once."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta

import pytest

from callvault import operators
from callvault.errors import ConflictError, InvalidInputError, NotFoundError
from callvault.operators import OperatorRole, Status, _break_glass
from callvault.operators._break_glass import request
from callvault.runtime import Runtime
from callvault.store.models import BreakGlassGrant, utcnow
from tests.support.world import World
from tests.unit.api._harness import audit_entries, audit_size
from tests.unit.operators._support import make_operator

REASON = "customer 07700 900123 reports a garbled transcript"


def _ask(rt: Runtime, world: World, **over: object) -> BreakGlassGrant:
    op = make_operator(rt, f"eng-{uuid.uuid4().hex[:8]}", OperatorRole.SUPPORT_ENGINEER)
    args: dict[str, object] = {
        "operator_id": op.id,
        "tenant_id": world.a.id,
        "deployment_id": world.a.deployments[0],
        "reason": REASON,
        "ticket_ref": "INC-7",
        "duration": timedelta(minutes=30),
        "now": utcnow(),
        "actor": operators.Actor(op.id, "operator"),
        **over,
    }
    with rt.db.tenant_tx(world.a.id) as s:
        return request(s, rt.sealer, rt.audit, **args)  # type: ignore[arg-type]


def test_the_reason_is_sealed_and_only_a_tenant_reader_opens_it(rt: Runtime, world: World) -> None:
    row = _ask(rt, world)
    assert REASON.encode() not in row.reason_sealed
    assert b"07700" not in row.reason_sealed
    with rt.db.tenant_tx(world.a.id) as s:
        seen = operators.tenant_request(s, rt.sealer, world.a.id, row.id)
        assert seen.reason == REASON
        assert operators.view(row, utcnow()).reason is None


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"reason": "too short"}, "reason"),
        ({"reason": "x" * 2001}, "reason"),
        ({"reason": "line one\x00 with a NUL in it"}, "reason"),
        ({"ticket_ref": ""}, "ticket_ref"),
        ({"ticket_ref": "INC 7"}, "ticket_ref"),
        ({"ticket_ref": "x" * 65}, "ticket_ref"),
        ({"duration": timedelta(hours=4, seconds=1)}, "duration_minutes"),
        ({"duration": timedelta(seconds=30)}, "duration_minutes"),
        ({"duration": timedelta(minutes=10, seconds=30)}, "duration_minutes"),
    ],
)
def test_bad_input_names_the_field_never_the_value(
    rt: Runtime, world: World, over: dict[str, object], field: str
) -> None:
    start = audit_size(rt, world.a.id)
    with pytest.raises(InvalidInputError) as caught:
        _ask(rt, world, **over)
    assert caught.value.field == field
    for value in over.values():
        if isinstance(value, str) and value:
            assert value not in caught.value.message
    assert audit_size(rt, world.a.id) == start


def test_another_tenants_deployment_is_not_found(rt: Runtime, world: World) -> None:
    with pytest.raises(NotFoundError):
        _ask(rt, world, deployment_id=world.b.deployments[0])


def test_expiry_is_recorded_and_audited_exactly_once(rt: Runtime, world: World) -> None:
    row = _ask(rt, world)
    lapsing = _ask(rt, world)
    admin = operators.Actor(world.a.principals[("admin", "tenant")], "tenant")
    now = utcnow()
    with rt.db.tenant_tx(world.a.id) as s:
        operators.approve(s, rt.audit, world.a.id, row.id, duration=None, now=now, actor=admin)
    with rt.db.tenant_tx(world.a.id) as s:
        found = operators.find_active(s, world.a.id, row.operator_id, row.deployment_id, now)
        assert found is not None
        assert found.expires_at == now + timedelta(minutes=30)
    later = now + timedelta(hours=25)
    start = audit_size(rt, world.a.id)
    for _ in range(2):
        with rt.db.tenant_tx(world.a.id) as s:
            operators.expire_due(s, rt.audit, world.a.id, later)
    entries = [
        e for e in audit_entries(rt, world.a.id, start) if e["action"] == "break_glass.expire"
    ]
    assert sorted((e["resource"]["id"], e["detail"]["was"]) for e in entries) == sorted(
        [(row.id, "approved"), (lapsing.id, "pending")]
    )
    with rt.db.tenant_tx(world.a.id) as s:
        assert (
            operators.find_active(s, world.a.id, row.operator_id, row.deployment_id, later) is None
        )
        statuses = {
            v.id: v.status for v in operators.tenant_requests(s, rt.sealer, rt.audit, world.a.id)
        }
    assert statuses[row.id] is Status.EXPIRED
    assert statuses[lapsing.id] is Status.EXPIRED


def test_access_ends_at_expiry_even_if_nothing_recorded_it(rt: Runtime, world: World) -> None:
    row = _ask(rt, world)
    admin = operators.Actor(world.a.principals[("admin", "tenant")], "tenant")
    now = utcnow()
    with rt.db.tenant_tx(world.a.id) as s:
        operators.approve(
            s, rt.audit, world.a.id, row.id, duration=timedelta(minutes=5), now=now, actor=admin
        )
    with rt.db.tenant_tx(world.a.id) as s:
        args = (s, world.a.id, row.operator_id, row.deployment_id)
        assert operators.find_active(*args, now + timedelta(minutes=4, seconds=59)) is not None
        assert operators.find_active(*args, now + timedelta(minutes=5)) is None


def test_a_revocation_racing_an_approval_is_never_overwritten(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reviewer's interleaving on SQLite: a revoke committed between the approval's read
    and its write. With the row's write lock taken before the read, the revoke waits for
    the approval and then ends it: the last word is the revocation, in both the row and
    the audit order."""
    row = _ask(rt, world)
    admin = operators.Actor(world.a.principals[("admin", "tenant")], "tenant")
    now = utcnow()
    real_status_at = _break_glass.status_at
    racer: list[threading.Thread] = []
    outcome: list[str] = []

    def revoke_now() -> None:
        try:
            with rt.db.tenant_tx(world.a.id) as s:
                operators.revoke(s, rt.audit, world.a.id, row.id, now=now, actor=admin)
            outcome.append("revoked")
        except ConflictError:
            outcome.append("conflict")

    def status_at_with_a_racer(grant: BreakGlassGrant, when: datetime) -> Status:
        if not racer:  # the approval has read the row: a revoke comes in now
            racer.append(threading.Thread(target=revoke_now))
            racer[0].start()
            racer[0].join(timeout=0.5)  # done at once without the lock; blocked with it
        return real_status_at(grant, when)

    monkeypatch.setattr(_break_glass, "status_at", status_at_with_a_racer)
    start = audit_size(rt, world.a.id)
    with rt.db.tenant_tx(world.a.id) as s:
        operators.approve(s, rt.audit, world.a.id, row.id, duration=None, now=now, actor=admin)
    racer[0].join(timeout=30)
    assert outcome == ["revoked"]
    with rt.db.tenant_tx(world.a.id) as s:
        assert s.get(BreakGlassGrant, row.id).status == Status.REVOKED.value  # type: ignore[union-attr]
    steps = [
        e["action"]
        for e in audit_entries(rt, world.a.id, start)
        if e["action"].startswith("break_glass.")
    ]
    assert steps == ["break_glass.approve", "break_glass.revoke"]
