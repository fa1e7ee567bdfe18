"""Browser sessions, tenant session policies and owner recovery codes; walled per tenant.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: Frozen here, not imported from the models, so this migration means the same thing forever.
_TABLES = ("browser_sessions", "tenant_session_policies", "recovery_codes", "recovery_lockouts")


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants")
    )


def _principal_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["principal_id"], ["principals.id"], name=op.f(f"fk_{table}_principal_id_principals")
    )


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "browser_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("principal_id", sa.String(length=40), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("csrf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("connection_id", sa.String(length=40), nullable=True),
        _when("created_at"),
        _when("last_seen_at"),
        _when("expires_at"),
        sa.Column("idle_timeout_seconds", sa.Integer(), nullable=False),
        _when("ended_at", nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column("ended_by", sa.String(length=40), nullable=True),
        _principal_fk("browser_sessions"),
        _tenant_fk("browser_sessions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_browser_sessions")),
    )
    op.create_index(
        "ix_browser_sessions_tenant_principal",
        "browser_sessions",
        ["tenant_id", "principal_id"],
        unique=False,
    )

    op.create_table(
        "tenant_session_policies",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("absolute_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("idle_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("recovery_session_seconds", sa.Integer(), nullable=False),
        sa.Column("sso_required", sa.Boolean(), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=False),
        _when("updated_at"),
        _tenant_fk("tenant_session_policies"),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenant_session_policies")),
    )

    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("principal_id", sa.String(length=40), nullable=False),
        sa.Column("set_id", sa.String(length=40), nullable=False),
        sa.Column("kdf", sa.String(length=64), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=16), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        _when("created_at"),
        _when("used_at", nullable=True),
        _when("revoked_at", nullable=True),
        _principal_fk("recovery_codes"),
        _tenant_fk("recovery_codes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index(
        "ix_recovery_codes_tenant_principal",
        "recovery_codes",
        ["tenant_id", "principal_id"],
        unique=False,
    )

    op.create_table(
        "recovery_lockouts",
        sa.Column("principal_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _when("window_started_at"),
        _when("locked_until", nullable=True),
        _principal_fk("recovery_lockouts"),
        _tenant_fk("recovery_lockouts"),
        sa.PrimaryKeyConstraint("principal_id", name=op.f("pk_recovery_lockouts")),
    )

    # The same wall as every tenant table (migrations 0001-0006): FORCE so the
    # owner is subject to it too; an unset tenant setting sees and writes nothing.
    # The service role's privileges are granted after migrating (store/grants.py:
    # SELECT, INSERT, UPDATE, DELETE on every table not write-once).
    if op.get_bind().dialect.name == "postgresql":
        for table in _TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY tenant_wall ON {table} "
                "USING (tenant_id = current_setting('callvault.tenant_id', true)) "
                "WITH CHECK (tenant_id = current_setting('callvault.tenant_id', true))"
            )


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
