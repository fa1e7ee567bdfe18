"""On PostgreSQL too, audit entries are insert-only for the service's own role."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from callvault.runtime import Runtime
from tests.support.world import World

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET entry = '\\x7b7d'::bytea WHERE idx = 0",
        "DELETE FROM audit_entries WHERE idx = 0",
        "TRUNCATE audit_entries",
    ],
)
def test_service_role_cannot_edit_delete_or_truncate_audit_entries(
    pg_rt: Runtime, pg_world: World, statement: str
) -> None:
    tenant = pg_world.a.id
    with pg_rt.db.tenant_tx(tenant) as s:
        before = pg_rt.audit.read(s, tenant, start=0, limit=1000)
    with pytest.raises(DatabaseError, match="insert-only"), pg_rt.db.tenant_tx(tenant) as s:
        s.execute(text(statement))
    with pg_rt.db.tenant_tx(tenant) as s:
        assert pg_rt.audit.read(s, tenant, start=0, limit=1000) == before
