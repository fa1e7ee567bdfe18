"""Payments vault: card tokens (the PAN sealed under the vault's own keys), walled per tenant.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: Frozen here, not imported from the models, so this migration means the same thing forever.
_TABLES = ("payment_tokens",)


def upgrade() -> None:
    op.create_table(
        "payment_tokens",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("deployment_id", sa.String(length=40), nullable=False),
        sa.Column("call_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("digits", sa.Integer(), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("brand", sa.String(length=16), nullable=False),
        sa.Column("luhn_valid", sa.Boolean(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(length=32), nullable=False),
        sa.Column("pan_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_payment_tokens_call_id_calls")
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_payment_tokens_deployment_id_deployments"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_payment_tokens_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_tokens")),
        sa.UniqueConstraint(
            "tenant_id",
            "call_id",
            "fingerprint",
            name=op.f("uq_payment_tokens_tenant_id_call_id_fingerprint"),
        ),
    )
    with op.batch_alter_table("payment_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_tokens_call_id"), ["call_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_payment_tokens_deployment_id"), ["deployment_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_payment_tokens_tenant_id"), ["tenant_id"], unique=False
        )

    # The same wall as every tenant table (migrations 0001-0003): FORCE so the
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
    with op.batch_alter_table("payment_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_tokens_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_payment_tokens_deployment_id"))
        batch_op.drop_index(batch_op.f("ix_payment_tokens_call_id"))
    op.drop_table("payment_tokens")
