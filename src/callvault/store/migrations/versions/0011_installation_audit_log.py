"""The installation audit log: its reserved tenant id can never hold a credential or content.

The operator realm's own history (operators created, roles changed, keys
issued and revoked, refused operator keys, a mirror of every break-glass
step) is an RFC 9162 log kept in the audit tables under the reserved tenant
id ``installation`` (docs/adr/0017). Its ``tenants`` row is made by the code
on the log's first use (``callvault.operators._installation_log``), so an
installation that never uses the operator realm is unchanged.

This revision makes that id unable to hold anything but its log: triggers
refuse any principal, API key, SCIM token, SSO connection, browser session
or deployment whose ``tenant_id`` is ``installation`` (an insert, or an update
moving a row there), on both backends. Nobody can ever sign in to it or put
content in it; the id also fails ``ID_PATTERN``, so no token, cookie or path
can name it.

The log's own rows live in ``audit_entries``, ``audit_heads``,
``audit_checkpoints`` and ``audit_log_keys`` like every tenant's: the same
row-level security, the same insert-only triggers, the same grants. No table
or column changes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

#: Frozen here, not imported, so this migration means the same thing forever.
_INSTALLATION = "installation"
#: Tables whose rows would let someone sign in to, or put content in, a tenant.
_NO_INSTALLATION_ROWS = (
    "principals",
    "api_keys",
    "scim_tokens",
    "sso_connections",
    "browser_sessions",
    "deployments",
)
_MESSAGE = "the installation audit log holds no principals, credentials or content"
_FUNCTION = "callvault_installation_is_not_a_tenant"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(
            f"CREATE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_MESSAGE}'; END $$"
        )
    for table in _NO_INSTALLATION_ROWS:
        if postgres:
            op.execute(
                f"CREATE TRIGGER {table}_not_installation BEFORE INSERT OR UPDATE ON {table} "
                f"FOR EACH ROW WHEN (NEW.tenant_id = '{_INSTALLATION}') "
                f"EXECUTE FUNCTION {_FUNCTION}()"
            )
            continue
        for event, name in (("INSERT", "insert"), ("UPDATE OF tenant_id", "update")):
            op.execute(
                f"CREATE TRIGGER {table}_not_installation_{name} BEFORE {event} ON {table} "
                f"WHEN NEW.tenant_id = '{_INSTALLATION}' "
                f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
            )


def downgrade() -> None:
    """Drop the triggers. A tenant row the log made stays: its log is write-once history."""
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in _NO_INSTALLATION_ROWS:
        if postgres:
            op.execute(f"DROP TRIGGER {table}_not_installation ON {table}")
        else:
            op.execute(f"DROP TRIGGER {table}_not_installation_insert")
            op.execute(f"DROP TRIGGER {table}_not_installation_update")
    if postgres:
        op.execute(f"DROP FUNCTION {_FUNCTION}()")
