"""The SSO tables: migration 0007 builds what the models declare; no plain identity data."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from callvault.runtime import Runtime
from callvault.store.models import TENANT_TABLES, Base

SSO_TABLES = ("sso_connections", "sso_login_states", "sso_replay", "sso_identities")


def test_migration_matches_the_models(rt: Runtime) -> None:
    with rt.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        columns = {t: {c["name"] for c in inspect(conn).get_columns(t)} for t in SSO_TABLES}
    assert [d for d in diff if "sso" in repr(d)] == []
    every = set().union(*columns.values())
    # Subjects, e-mails, groups, secrets and assertion ids exist only as HMACs, hashes or sealed.
    assert not {"subject", "email", "groups", "config", "client_secret", "assertion_id"} & every
    assert "binding" not in columns["sso_login_states"]


def test_the_tables_are_walled_per_tenant() -> None:
    assert set(SSO_TABLES) <= set(TENANT_TABLES)
