"""Helpers for the operator tests: operators with keys, a movable clock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from callvault import operators
from callvault.operators import _clock
from callvault.runtime import Runtime
from callvault.store.models import utcnow


@dataclass(frozen=True)
class Op:
    id: str
    key_id: str
    token: str
    role: operators.OperatorRole


def make_operator(rt: Runtime, name: str, role: operators.OperatorRole) -> Op:
    with rt.db.system_tx() as s:
        row = operators.create_operator(s, name=name, role=role, created_by="test")
        key = operators.issue_operator_key(s, row.id, label="t", ttl=timedelta(days=1))
    return Op(id=row.id, key_id=key.id, token=key.token, role=role)


class Clock:
    """Replaces the break-glass clock: real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@contextmanager
def moved_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    clock = Clock()
    monkeypatch.setattr(_clock, "now", clock.now)
    yield clock


def fill_break_glass_table(rt: Runtime, tenant_id: str) -> str:
    """A pending break-glass request in ``tenant_id`` (its first deployment) by a new
    operator, through the domain code, for tests of the tenant wall. Returns its id."""
    import uuid  # noqa: PLC0415

    from callvault import tenancy  # noqa: PLC0415
    from callvault.operators._break_glass import request  # noqa: PLC0415

    op = make_operator(rt, f"wall-{uuid.uuid4().hex[:10]}", operators.OperatorRole.SUPPORT_ENGINEER)
    with rt.db.tenant_tx(tenant_id) as s:
        deployment = tenancy.list_deployments(s, tenant_id)[0]
        row = request(
            s,
            rt.sealer,
            rt.audit,
            operator_id=op.id,
            tenant_id=tenant_id,
            deployment_id=deployment.id,
            reason="row-level security test request",
            ticket_ref="RLS-1",
            duration=timedelta(minutes=30),
            now=utcnow(),
            actor=operators.Actor(op.id, "operator"),
        )
        return row.id
