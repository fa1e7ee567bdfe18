"""Migration 0012 (recovery lockouts by tenant and principal id) on SQLite, with rows."""

from __future__ import annotations

from pathlib import Path

from callvault.bootstrap import create_tenant_with_owner
from callvault.config import load_settings
from callvault.runtime import Runtime
from tests.unit.sessions.lockout_migration import check_lockout_migration


def test_the_lockout_table_is_rebuilt_with_its_rows_both_ways(tmp_path: Path) -> None:
    rt = Runtime.open(load_settings({}, data_dir=tmp_path / "data"), create_key=True)
    try:
        init = create_tenant_with_owner(rt, tenant_name="acme", owner_name="acme-owner")
        check_lockout_migration(rt.db.engine, init.tenant_id, init.principal_id)
    finally:
        rt.close()
