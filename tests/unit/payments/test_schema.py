"""The ``payment_tokens`` table: migration 0004 builds what the model declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from callvault.runtime import Runtime
from callvault.store.models import TENANT_TABLES, Base


def test_migration_matches_the_model(rt: Runtime) -> None:
    with rt.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        columns = {c["name"] for c in inspect(conn).get_columns("payment_tokens")}
        uniques = inspect(conn).get_unique_constraints("payment_tokens")
        foreign = {fk["referred_table"] for fk in inspect(conn).get_foreign_keys("payment_tokens")}
    assert [d for d in diff if "payment_tokens" in repr(d)] == []
    assert "pan_sealed" in columns
    assert not {"pan", "cvv", "pan_hash", "bin"} & columns
    assert [u["column_names"] for u in uniques] == [["tenant_id", "call_id", "fingerprint"]]
    assert foreign == {"tenants", "deployments", "calls"}


def test_the_table_is_walled_per_tenant() -> None:
    # PostgreSQL row-level security is created for every table listed here
    # (tests/integration/test_postgres_rls.py checks the policies exist).
    assert "payment_tokens" in TENANT_TABLES
