"""The session tables: migration 0009 builds what the models declare; no secret in clear."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from callvault.runtime import Runtime
from callvault.store.models import TENANT_TABLES, Base

TABLES = ("browser_sessions", "tenant_session_policies", "recovery_codes", "recovery_lockouts")


def test_migration_matches_the_models(rt: Runtime) -> None:
    with rt.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        columns = {t: {c["name"] for c in inspect(conn).get_columns(t)} for t in TABLES}
    assert [d for d in diff if any(t in repr(d) for t in TABLES)] == []
    every = set().union(*columns.values())
    assert not {"secret", "cookie", "csrf_token", "code", "token"} & every
    assert {"secret_hash", "csrf_hash"} <= columns["browser_sessions"]


def test_the_tables_are_walled_per_tenant() -> None:
    assert set(TABLES) <= set(TENANT_TABLES)
