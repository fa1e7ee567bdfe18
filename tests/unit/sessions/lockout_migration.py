"""Migration 0012 on a database that holds lockouts: shared by the SQLite and PostgreSQL tests.

The lockout table is rebuilt (keyed by tenant and principal id, no foreign key
to principals). What must hold: rows are kept going up; an id that names
nobody can then be counted; going down keeps only the rows the old table can
hold; going up again works. Rows are written and read as the schema owner,
inside the tenant's setting on PostgreSQL (the tables' row-level security is
forced on the owner too).
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, inspect, text

from callvault.store.ids import new_id

_LOCKOUT = (
    "INSERT INTO recovery_lockouts (tenant_id, principal_id, failures, window_started_at, "
    "locked_until) VALUES (:t, :p, :n, :w, NULL)"
)


def _to(engine: Engine, revision: str, *, down: bool = False) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(files("callvault.store") / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def _as(conn: Connection, tenant: str) -> Connection:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT set_config('callvault.tenant_id', :t, true)"), {"t": tenant})
    return conn


def _rows(engine: Engine, tenant: str) -> dict[str, int]:
    with engine.begin() as conn:
        got = _as(conn, tenant).execute(
            text("SELECT principal_id, failures FROM recovery_lockouts WHERE tenant_id = :t"),
            {"t": tenant},
        )
        return {str(p): int(n) for p, n in got}


def check_lockout_migration(owner: Engine, tenant: str, principal: str) -> None:
    """``owner`` is at head with ``tenant`` and its ``principal``; it is left at head."""
    when = datetime(2026, 11, 29, tzinfo=UTC)
    nobody = new_id("prn")
    _to(owner, "0011", down=True)
    with owner.begin() as conn:
        _as(conn, tenant).execute(text(_LOCKOUT), {"t": tenant, "p": principal, "n": 3, "w": when})
    _to(owner, "head")
    assert _rows(owner, tenant) == {principal: 3}
    pk = inspect(owner).get_pk_constraint("recovery_lockouts")["constrained_columns"]
    assert sorted(pk) == ["principal_id", "tenant_id"]
    fks = inspect(owner).get_foreign_keys("recovery_lockouts")
    assert [fk["referred_table"] for fk in fks] == ["tenants"]
    with owner.begin() as conn:
        _as(conn, tenant).execute(text(_LOCKOUT), {"t": tenant, "p": nobody, "n": 1, "w": when})
    assert _rows(owner, tenant) == {principal: 3, nobody: 1}

    _to(owner, "0011", down=True)  # the old table can hold only rows naming a principal
    assert _rows(owner, tenant) == {principal: 3}
    _to(owner, "head")
    assert _rows(owner, tenant) == {principal: 3}
