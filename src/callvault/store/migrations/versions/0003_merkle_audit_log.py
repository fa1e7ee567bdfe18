"""Merkle audit log: subtree hashes per entry, compact range, checkpoints, log keys, sinks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_NEW = (
    "audit_checkpoints",
    "audit_log_keys",
    "audit_sinks",
    "audit_sink_cursors",
)
_INSERT_ONLY = ("audit_checkpoints",)


def upgrade() -> None:
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("compact", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hashes", sa.LargeBinary(), nullable=True))
    op.create_table(
        "audit_checkpoints",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_audit_checkpoints_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "size", name=op.f("pk_audit_checkpoints")),
    )
    op.create_table(
        "audit_log_keys",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("verifier_key", sa.String(length=400), nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_audit_log_keys_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_audit_log_keys")),
    )
    op.create_table(
        "audit_sinks",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("config", sa.LargeBinary(), nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_audit_sinks_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_audit_sinks")),
    )
    op.create_table(
        "audit_sink_cursors",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("sink_id", sa.String(length=40), nullable=False),
        sa.Column("next_index", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=120), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_audit_sink_cursors_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "sink_id", name=op.f("pk_audit_sink_cursors")),
    )
    dialect = op.get_bind().dialect.name
    for table in _INSERT_ONLY:
        if dialect == "postgresql":
            op.execute(
                f"CREATE TRIGGER {table}_insert_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION callvault_audit_insert_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION callvault_audit_insert_only()"
            )
        else:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'audit entries are insert-only'); END"
                )
    if dialect == "postgresql":
        for table in _NEW:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY tenant_wall ON {table} "
                "USING (tenant_id = current_setting('callvault.tenant_id', true)) "
                "WITH CHECK (tenant_id = current_setting('callvault.tenant_id', true))"
            )

    if dialect == "postgresql":
        # Background jobs (SIEM delivery) must learn which tenants exist; this
        # policy lets a read-only "directory" transaction list tenants and
        # nothing else (Database.directory_tx). Other tables stay walled.
        op.execute(
            "CREATE POLICY directory_read ON tenants FOR SELECT "
            "USING (current_setting('callvault.scope', true) = 'directory')"
        )
    _backfill_merkle_state(dialect)


def _backfill_merkle_state(dialect: str) -> None:
    """Give logs written before this revision their subtree hashes and compact range.

    This is the one time entries are updated: the insert-only triggers are
    lifted inside this migration's transaction (DDL is transactional on both
    backends) and put back before it commits. On PostgreSQL the owner is also
    subject to the (forced) tenant policies, lifted and restored the same way.
    """
    from callvault.audit.merkle import CompactRange, leaf_hash  # noqa: PLC0415 - only here
    from callvault.audit.proofs import append_leaves  # noqa: PLC0415 - only here

    conn = op.get_bind()
    walled = ("audit_heads", "audit_entries")
    if dialect == "postgresql":
        op.execute("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_insert_only")
        for table in walled:
            op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    else:
        op.execute("DROP TRIGGER audit_entries_no_update")
    heads = conn.execute(sa.text("SELECT tenant_id, size FROM audit_heads WHERE size > 0")).all()
    for tenant_id, size in heads:
        state = CompactRange()
        done = 0
        while done < size:
            rows = conn.execute(
                sa.text(
                    "SELECT idx, entry FROM audit_entries WHERE tenant_id = :t AND idx >= :i"
                    " ORDER BY idx LIMIT 5000"
                ),
                {"t": tenant_id, "i": done},
            ).all()
            if not rows or any(int(idx) != done + n for n, (idx, _e) in enumerate(rows)):
                raise RuntimeError(f"audit log of tenant {tenant_id} is not contiguous")
            state, hashes = append_leaves(state, [leaf_hash(bytes(e)) for _i, e in rows])
            conn.execute(
                sa.text("UPDATE audit_entries SET hashes = :h WHERE tenant_id = :t AND idx = :i"),
                [{"t": tenant_id, "i": done + n, "h": h} for n, h in enumerate(hashes)],
            )
            done += len(rows)
        conn.execute(
            sa.text("UPDATE audit_heads SET compact = :c WHERE tenant_id = :t"),
            {"c": state.to_bytes(), "t": tenant_id},
        )
    if dialect == "postgresql":
        for table in walled:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_insert_only")
    else:
        op.execute(
            "CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
            "BEGIN SELECT RAISE(ABORT, 'audit entries are insert-only'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP POLICY directory_read ON tenants")
    op.drop_table("audit_sink_cursors")
    op.drop_table("audit_sinks")
    op.drop_table("audit_log_keys")
    op.drop_table("audit_checkpoints")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_column("hashes")
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.drop_column("compact")
