"""Tenant-first composite indexes in place of single-column ``tenant_id`` indexes.

Lookups filter by tenant (the domain layer's wall) and by a selective column
(a principal, a call, a deployment). With one index per column, SQLite's
planner, having no statistics, took the tenant's index and scanned every row
of the tenant: reading a principal's role bindings cost 12 ms per request for
a tenant of 10,000 SCIM users (bench/authz.py --users 10000) against 0.25 ms
at 300, and a transcript read scanned every segment of the tenant. Each index
here starts with ``tenant_id``, so it also serves tenant-wide listings, and
continues with the lookup column (and, for calls, the listing order).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: (table, new index, columns). Frozen here, not read from the models.
_NEW = (
    ("role_bindings", "ix_role_bindings_tenant_principal", ["tenant_id", "principal_id"]),
    ("api_keys", "ix_api_keys_tenant_principal", ["tenant_id", "principal_id"]),
    ("calls", "ix_calls_tenant_started", ["tenant_id", "started_at"]),
    ("calls", "ix_calls_tenant_deployment_started", ["tenant_id", "deployment_id", "started_at"]),
    ("calls", "ix_calls_tenant_agent_started", ["tenant_id", "agent_id", "started_at"]),
    ("recordings", "ix_recordings_tenant_call", ["tenant_id", "call_id"]),
    ("transcript_segments", "ix_transcript_segments_tenant_call", ["tenant_id", "call_id", "seq"]),
    ("call_events", "ix_call_events_tenant_call", ["tenant_id", "call_id", "seq"]),
    ("agents", "ix_agents_tenant_deployment", ["tenant_id", "deployment_id"]),
    ("config_versions", "ix_config_versions_tenant_subject", ["tenant_id", "subject_id"]),
    (
        "scim_group_members",
        "ix_scim_group_members_tenant_principal",
        ["tenant_id", "principal_id"],
    ),
)
_TABLES = sorted({table for table, _, _ in _NEW})


def upgrade() -> None:
    for table, name, columns in _NEW:
        op.create_index(name, table, columns)
    for table in _TABLES:
        op.drop_index(f"ix_{table}_tenant_id", table_name=table)


def downgrade() -> None:
    for table in _TABLES:
        op.create_index(f"ix_{table}_tenant_id", table, ["tenant_id"])
    for table, name, _ in _NEW:
        op.drop_index(name, table_name=table)
