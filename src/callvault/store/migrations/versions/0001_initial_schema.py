"""initial schema, with row-level security on PostgreSQL

Revision ID: 0001
Revises:
Create Date: 2026-11-27 15:11:02.433387
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("initialised_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
    )

    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_version_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "audit_entries",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_audit_entries_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "idx", name=op.f("pk_audit_entries")),
    )
    op.create_table(
        "audit_heads",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_audit_heads_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_audit_heads")),
    )
    op.create_table(
        "config_versions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("actor_id", sa.String(length=40), nullable=False),
        sa.Column("op", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_config_versions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_versions")),
        sa.UniqueConstraint(
            "subject_kind",
            "subject_id",
            "seq",
            name=op.f("uq_config_versions_subject_kind_subject_id_seq"),
        ),
    )
    with op.batch_alter_table("config_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_config_versions_subject_id"), ["subject_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_config_versions_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "deployments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("recording_retention_days", sa.Integer(), nullable=False),
        sa.Column("transcript_retention_days", sa.Integer(), nullable=False),
        sa.Column("key_provider", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_version_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_deployments_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_deployments_tenant_id_name")),
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deployments_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "principals",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_principals_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_principals")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_principals_tenant_id_name")),
    )
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_principals_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "agents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("deployment_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_version_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment_id"], ["deployments.id"], name=op.f("fk_agents_deployment_id_deployments")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_agents_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("deployment_id", "name", name=op.f("uq_agents_deployment_id_name")),
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agents_deployment_id"), ["deployment_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_agents_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("principal_id", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["principal_id"], ["principals.id"], name=op.f("fk_api_keys_principal_id_principals")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_api_keys_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_keys_principal_id"), ["principal_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_api_keys_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "role_bindings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("principal_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_role_bindings_principal_id_principals"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_role_bindings_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_bindings")),
        sa.UniqueConstraint(
            "principal_id",
            "role",
            "scope_kind",
            "scope_id",
            name=op.f("uq_role_bindings_principal_id_role_scope_kind_scope_id"),
        ),
    )
    with op.batch_alter_table("role_bindings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_role_bindings_principal_id"), ["principal_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_role_bindings_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "calls",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("deployment_id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("caller_number_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("segment_count", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_calls_agent_id_agents")),
        sa.ForeignKeyConstraint(
            ["deployment_id"], ["deployments.id"], name=op.f("fk_calls_deployment_id_deployments")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_calls_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_deployment_id"), ["deployment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "call_events",
        sa.Column("call_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("detail_sealed", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_events_call_id_calls")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_call_events_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("call_id", "seq", name=op.f("pk_call_events")),
    )
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_events_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "recordings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("call_id", sa.String(length=40), nullable=False),
        sa.Column("object_ref", sa.String(length=400), nullable=False),
        sa.Column("codec", sa.String(length=16), nullable=False),
        sa.Column("sample_rate_hz", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_recordings_call_id_calls")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_recordings_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
    )
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recordings_call_id"), ["call_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_recordings_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "transcript_segments",
        sa.Column("call_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("speaker", sa.String(length=16), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("is_final", sa.Boolean(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_transcript_segments_call_id_calls")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_transcript_segments_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("call_id", "seq", name=op.f("pk_transcript_segments")),
    )
    with op.batch_alter_table("transcript_segments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_transcript_segments_tenant_id"), ["tenant_id"], unique=False
        )

    _enable_row_level_security()
    _make_audit_entries_insert_only()


#: Tenant-owned tables (all but ``tenants``); frozen here, not imported from
#: the models, so this migration means the same thing forever.
_TENANT_TABLES = (
    "deployments",
    "agents",
    "config_versions",
    "principals",
    "role_bindings",
    "api_keys",
    "calls",
    "recordings",
    "transcript_segments",
    "call_events",
    "audit_heads",
    "audit_entries",
)


def _make_audit_entries_insert_only() -> None:
    """Audit entries are written once: UPDATE and DELETE are refused by the database itself."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION callvault_audit_insert_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit entries are insert-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_entries_insert_only BEFORE UPDATE OR DELETE ON audit_entries "
            "FOR EACH ROW EXECUTE FUNCTION callvault_audit_insert_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries "
            "FOR EACH STATEMENT EXECUTE FUNCTION callvault_audit_insert_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_entries_no_{verb.lower()} BEFORE {verb} ON audit_entries "
                "BEGIN SELECT RAISE(ABORT, 'audit entries are insert-only'); END"
            )


def _enable_row_level_security() -> None:
    """Second wall on PostgreSQL: rows are visible only to their tenant's transactions.

    FORCE makes the policies apply to the table owner too; only a superuser or
    a BYPASSRLS role would pass, and callvault refuses to start as either.
    ``current_setting(..., true)`` is NULL when unset, so a transaction that
    never set a tenant sees nothing and can insert nothing.
    """
    if op.get_bind().dialect.name != "postgresql":
        return
    walls = [("tenants", "id")] + [(t, "tenant_id") for t in _TENANT_TABLES]
    for table, column in walls:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_wall ON {table} "
            f"USING ({column} = current_setting('callvault.tenant_id', true)) "
            f"WITH CHECK ({column} = current_setting('callvault.tenant_id', true))"
        )


def downgrade() -> None:

    with op.batch_alter_table("transcript_segments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transcript_segments_tenant_id"))

    op.drop_table("transcript_segments")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recordings_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_recordings_call_id"))

    op.drop_table("recordings")
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_events_tenant_id"))

    op.drop_table("call_events")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_calls_deployment_id"))
        batch_op.drop_index(batch_op.f("ix_calls_agent_id"))

    op.drop_table("calls")
    with op.batch_alter_table("role_bindings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_role_bindings_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_role_bindings_principal_id"))

    op.drop_table("role_bindings")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_api_keys_principal_id"))

    op.drop_table("api_keys")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agents_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_agents_deployment_id"))

    op.drop_table("agents")
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_principals_tenant_id"))

    op.drop_table("principals")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployments_tenant_id"))

    op.drop_table("deployments")
    with op.batch_alter_table("config_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_config_versions_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_config_versions_subject_id"))

    op.drop_table("config_versions")
    op.drop_table("audit_heads")
    op.drop_table("audit_entries")
    op.drop_table("tenants")
