"""Operator realm (installation-level principals) and break-glass requests.

``operators`` and ``operator_keys`` belong to the installation, not to a
tenant: like ``installation`` they carry no ``tenant_id`` and no row-level
security (a tenantless transaction authenticates operators). No tenant row
points at them except ``break_glass_grants``, which is the tenant's own
record of an operator's request and is walled like every tenant table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: Frozen here, not imported from the models, so this migration means the same thing forever.
_WALLED = ("break_glass_grants",)


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _at("created_at"),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operators")),
        sa.UniqueConstraint("name", name=op.f("uq_operators_name")),
    )
    op.create_table(
        "operator_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("operator_id", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        _at("created_at"),
        _at("expires_at"),
        _at("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operators.id"], name=op.f("fk_operator_keys_operator_id_operators")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_keys")),
    )
    op.create_index(
        op.f("ix_operator_keys_operator_id"), "operator_keys", ["operator_id"], unique=False
    )
    op.create_table(
        "break_glass_grants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("deployment_id", sa.String(length=40), nullable=False),
        sa.Column("operator_id", sa.String(length=40), nullable=False),
        sa.Column("reason_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("ticket_ref", sa.String(length=64), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _at("requested_at"),
        _at("decide_by"),
        _at("decided_at", nullable=True),
        sa.Column("decided_by", sa.String(length=40), nullable=True),
        _at("expires_at", nullable=True),
        _at("ended_at", nullable=True),
        sa.Column("ended_by", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_break_glass_grants_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_break_glass_grants_deployment_id_deployments"),
        ),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["operators.id"],
            name=op.f("fk_break_glass_grants_operator_id_operators"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_break_glass_grants")),
    )
    op.create_index(
        "ix_break_glass_grants_tenant_operator",
        "break_glass_grants",
        ["tenant_id", "operator_id"],
        unique=False,
    )
    op.create_index(
        "ix_break_glass_grants_tenant_status",
        "break_glass_grants",
        ["tenant_id", "status"],
        unique=False,
    )

    # The same wall as every tenant table (migrations 0001-0007): FORCE so the
    # owner is subject to it too; an unset tenant setting sees and writes nothing.
    if op.get_bind().dialect.name == "postgresql":
        for table in _WALLED:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY tenant_wall ON {table} "
                "USING (tenant_id = current_setting('callvault.tenant_id', true)) "
                "WITH CHECK (tenant_id = current_setting('callvault.tenant_id', true))"
            )


def downgrade() -> None:
    op.drop_table("break_glass_grants")
    op.drop_table("operator_keys")
    op.drop_table("operators")
