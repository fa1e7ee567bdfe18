"""Twilio auth tokens: one per deployment, sealed under the deployment's keys, walled per tenant.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: Frozen here, not imported from the models, so this migration means the same thing forever.
_TABLES = ("twilio_auth_tokens",)


def upgrade() -> None:
    op.create_table(
        "twilio_auth_tokens",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("deployment_id", sa.String(length=40), nullable=False),
        sa.Column("token_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("configured_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_twilio_auth_tokens_deployment_id_deployments"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_twilio_auth_tokens_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "deployment_id", name=op.f("pk_twilio_auth_tokens")),
    )

    # The same wall as every tenant table (migrations 0001-0004): FORCE so the
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
    op.drop_table("twilio_auth_tokens")
