"""The SCIM tables: migration 0006 builds what the models declare, walled per tenant."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from callvault.runtime import Runtime
from callvault.store.models import TENANT_TABLES, Base

SCIM_TABLES = ("scim_tokens", "scim_users", "scim_groups", "scim_group_members")


def test_migration_matches_the_models(rt: Runtime) -> None:
    with rt.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        columns = {t: {c["name"] for c in inspect(conn).get_columns(t)} for t in SCIM_TABLES}
        uniques = inspect(conn).get_unique_constraints("scim_users")
    assert [d for d in diff if "scim" in repr(d)] == []
    # No plain identity data: refs (HMACs) and sealed profiles only.
    assert not {"user_name", "email", "display_name", "external_id"} & columns["scim_users"]
    assert not {"display_name", "external_id"} & columns["scim_groups"]
    assert "secret" not in columns["scim_tokens"]
    assert [u["column_names"] for u in uniques] == [["tenant_id", "user_name_ref"]]


def test_the_tables_are_walled_per_tenant() -> None:
    # tests/integration/test_postgres_rls.py checks every table listed here has its policy.
    assert set(SCIM_TABLES) <= set(TENANT_TABLES)
