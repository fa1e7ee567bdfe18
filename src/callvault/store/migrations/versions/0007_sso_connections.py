"""SSO connections, group→role mappings, login states, SAML replay cache, SSO identities.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: Frozen here, not imported from the models, so this migration means the same thing forever.
_TABLES = ("sso_connections", "sso_login_states", "sso_replay", "sso_identities")


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants")
    )


def _connection_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["connection_id"],
        ["sso_connections.id"],
        name=op.f(f"fk_{table}_connection_id_sso_connections"),
    )


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "sso_connections",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("protocol", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("settings_sealed", sa.LargeBinary(), nullable=False),
        _at("created_at"),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        _at("updated_at"),
        _tenant_fk("sso_connections"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_connections")),
    )
    op.create_index(
        op.f("ix_sso_connections_tenant_id"), "sso_connections", ["tenant_id"], unique=False
    )

    op.create_table(
        "sso_login_states",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("binding_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("pending_sealed", sa.LargeBinary(), nullable=False),
        _at("created_at"),
        _at("expires_at"),
        _at("used_at", nullable=True),
        _connection_fk("sso_login_states"),
        _tenant_fk("sso_login_states"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_login_states")),
        sa.UniqueConstraint("binding_hash", name=op.f("uq_sso_login_states_binding_hash")),
    )
    for column in ("tenant_id", "connection_id", "expires_at"):
        op.create_index(
            op.f(f"ix_sso_login_states_{column}"), "sso_login_states", [column], unique=False
        )

    op.create_table(
        "sso_replay",
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("assertion_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        _at("keep_until"),
        _at("created_at"),
        _connection_fk("sso_replay"),
        _tenant_fk("sso_replay"),
        sa.PrimaryKeyConstraint("connection_id", "assertion_hash", name=op.f("pk_sso_replay")),
    )
    for column in ("tenant_id", "keep_until"):
        op.create_index(op.f(f"ix_sso_replay_{column}"), "sso_replay", [column], unique=False)

    op.create_table(
        "sso_identities",
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("subject_ref", sa.LargeBinary(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("principal_id", sa.String(length=40), nullable=False),
        sa.Column("profile_sealed", sa.LargeBinary(), nullable=True),
        _at("created_at"),
        _at("last_login_at"),
        _connection_fk("sso_identities"),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_sso_identities_principal_id_principals"),
        ),
        _tenant_fk("sso_identities"),
        sa.PrimaryKeyConstraint("connection_id", "subject_ref", name=op.f("pk_sso_identities")),
        sa.UniqueConstraint(
            "connection_id",
            "principal_id",
            name=op.f("uq_sso_identities_connection_id_principal_id"),
        ),
    )
    for column in ("tenant_id", "principal_id"):
        op.create_index(
            op.f(f"ix_sso_identities_{column}"), "sso_identities", [column], unique=False
        )

    # The same wall as every tenant table (migrations 0001-0006): FORCE so the
    # owner is subject to it too; an unset tenant setting sees and writes nothing.
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
