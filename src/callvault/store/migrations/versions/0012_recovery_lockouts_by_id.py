"""Recovery lockouts keyed by (tenant, principal id), for ids that name nobody too.

Migration 0009 keyed ``recovery_lockouts`` by the principal with a foreign
key to ``principals``, so only failures against a real principal could be
counted: five wrong codes locked a real id (429) while an id of nothing got
401 forever, an existence oracle on the public recovery route. The table is
now keyed by ``(tenant_id, principal_id)`` with no foreign key to
``principals``: every well-formed id in an existing tenant is counted and
locked alike (docs/adr/0015, amendment). Rows whose window and lock have both
ended are pruned by the code on every counted failure.

The table is rebuilt (rows kept) on both backends; on PostgreSQL it gets the
same forced row-level security as every tenant table, and the service role's
grants are made after migrating (store/grants.py) as for every table.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TABLE = "recovery_lockouts"
_OLD = "recovery_lockouts_0009"
_COLUMNS = "tenant_id, principal_id, failures, window_started_at, locked_until"


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _wall(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_wall ON {table} "
        "USING (tenant_id = current_setting('callvault.tenant_id', true)) "
        "WITH CHECK (tenant_id = current_setting('callvault.tenant_id', true))"
    )


def _rebuild(*, principal_fk: bool) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.rename_table(_TABLE, _OLD)
    if postgres:
        # The wall would hide every row from this copy (FORCE applies to the owner
        # too), and constraint names travel with the renamed table: free them.
        op.execute(f"ALTER TABLE {_OLD} DISABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {_OLD} NO FORCE ROW LEVEL SECURITY")
        for name in (
            f"pk_{_TABLE}",
            f"fk_{_TABLE}_tenant_id_tenants",
            f"fk_{_TABLE}_principal_id_principals",
        ):
            op.execute(f"ALTER TABLE {_OLD} DROP CONSTRAINT IF EXISTS {name}")
    constraints: list[sa.Constraint] = [
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{_TABLE}_tenant_id_tenants")
        )
    ]
    if principal_fk:
        constraints += [
            sa.ForeignKeyConstraint(
                ["principal_id"],
                ["principals.id"],
                name=op.f(f"fk_{_TABLE}_principal_id_principals"),
            ),
            sa.PrimaryKeyConstraint("principal_id", name=op.f(f"pk_{_TABLE}")),
        ]
    else:
        constraints.append(
            sa.PrimaryKeyConstraint("tenant_id", "principal_id", name=op.f(f"pk_{_TABLE}"))
        )
    op.create_table(
        _TABLE,
        sa.Column("principal_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _when("window_started_at"),
        _when("locked_until", nullable=True),
        *constraints,
    )
    if principal_fk:  # downgrading: only rows that name a principal fit the old table
        if postgres:  # the owner must see every tenant's principals for this one statement
            op.execute("ALTER TABLE principals NO FORCE ROW LEVEL SECURITY")
        op.execute(
            f"INSERT INTO {_TABLE} ({_COLUMNS}) SELECT {_COLUMNS} FROM {_OLD} o "  # noqa: S608 - constants
            "WHERE EXISTS (SELECT 1 FROM principals p WHERE p.id = o.principal_id) "
            f"AND NOT EXISTS (SELECT 1 FROM {_OLD} d WHERE d.principal_id = o.principal_id "
            "AND d.tenant_id < o.tenant_id)"
        )
        if postgres:
            op.execute("ALTER TABLE principals FORCE ROW LEVEL SECURITY")
    else:
        copy = f"INSERT INTO {_TABLE} ({_COLUMNS}) SELECT {_COLUMNS} FROM {_OLD}"  # noqa: S608 - constants
        op.execute(copy)
    op.drop_table(_OLD)
    if postgres:
        _wall(_TABLE)


def upgrade() -> None:
    _rebuild(principal_fk=False)


def downgrade() -> None:
    _rebuild(principal_fk=True)
