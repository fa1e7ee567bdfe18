"""SCIM provisioning: per-tenant tokens, provisioned users, groups, memberships; walled per tenant.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: Frozen here, not imported from the models, so this migration means the same thing forever.
_TABLES = ("scim_tokens", "scim_users", "scim_groups", "scim_group_members")


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants")
    )


def upgrade() -> None:
    op.create_table(
        "scim_tokens",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        _tenant_fk("scim_tokens"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_tokens")),
    )
    op.create_index(op.f("ix_scim_tokens_tenant_id"), "scim_tokens", ["tenant_id"], unique=False)

    op.create_table(
        "scim_users",
        sa.Column("principal_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("user_name_ref", sa.LargeBinary(length=32), nullable=True),
        sa.Column("external_id_ref", sa.LargeBinary(length=32), nullable=True),
        sa.Column("profile_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["principal_id"], ["principals.id"], name=op.f("fk_scim_users_principal_id_principals")
        ),
        _tenant_fk("scim_users"),
        sa.PrimaryKeyConstraint("principal_id", name=op.f("pk_scim_users")),
        sa.UniqueConstraint(
            "tenant_id", "user_name_ref", name=op.f("uq_scim_users_tenant_id_user_name_ref")
        ),
    )
    op.create_index(op.f("ix_scim_users_tenant_id"), "scim_users", ["tenant_id"], unique=False)
    op.create_index(
        op.f("ix_scim_users_external_id_ref"), "scim_users", ["external_id_ref"], unique=False
    )

    op.create_table(
        "scim_groups",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("display_name_ref", sa.LargeBinary(length=32), nullable=False),
        sa.Column("external_id_ref", sa.LargeBinary(length=32), nullable=True),
        sa.Column("profile_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk("scim_groups"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_groups")),
    )
    op.create_index(op.f("ix_scim_groups_tenant_id"), "scim_groups", ["tenant_id"], unique=False)
    op.create_index(
        op.f("ix_scim_groups_display_name_ref"), "scim_groups", ["display_name_ref"], unique=False
    )
    op.create_index(
        op.f("ix_scim_groups_external_id_ref"), "scim_groups", ["external_id_ref"], unique=False
    )

    op.create_table(
        "scim_group_members",
        sa.Column("group_id", sa.String(length=40), nullable=False),
        sa.Column("principal_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["scim_groups.id"],
            name=op.f("fk_scim_group_members_group_id_scim_groups"),
        ),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["scim_users.principal_id"],
            name=op.f("fk_scim_group_members_principal_id_scim_users"),
        ),
        _tenant_fk("scim_group_members"),
        sa.PrimaryKeyConstraint("group_id", "principal_id", name=op.f("pk_scim_group_members")),
    )
    op.create_index(
        op.f("ix_scim_group_members_principal_id"),
        "scim_group_members",
        ["principal_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_scim_group_members_tenant_id"), "scim_group_members", ["tenant_id"], unique=False
    )

    # The same wall as every tenant table (migrations 0001-0005): FORCE so the
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
