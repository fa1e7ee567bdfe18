"""Audit entries are written once: the database refuses to change or remove them."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from callvault.audit import AuditEvent, Outcome
from callvault.runtime import Runtime
from tests.support.world import World


def _first_entry(rt: Runtime, tenant: str) -> bytes:
    with rt.db.tenant_tx(tenant) as s:
        return rt.audit.read(s, tenant, start=0, limit=1)[0][1]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET entry = x'7b7d' WHERE idx = 0",
        "DELETE FROM audit_entries WHERE idx = 0",
        "DELETE FROM audit_entries",
    ],
)
def test_audit_entries_cannot_be_edited_or_deleted(
    rt: Runtime, world: World, statement: str
) -> None:
    before = _first_entry(rt, world.a.id)
    with pytest.raises(DatabaseError, match="insert-only"), rt.db.tenant_tx(world.a.id) as s:
        s.execute(text(statement))
    assert _first_entry(rt, world.a.id) == before


def test_appends_get_contiguous_indices(rt: Runtime, world: World) -> None:
    event = AuditEvent("test", Outcome.SUCCESS, "prn_x", "tenant", world.a.id)
    with rt.db.tenant_tx(world.a.id) as s:
        size = len(rt.audit.read(s, world.a.id, start=0, limit=100_000))
    assert rt.audit.append(world.a.id, event, event, event) == [size, size + 1, size + 2]
