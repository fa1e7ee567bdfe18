"""What the service's PostgreSQL role may do, granted by the schema owner after migrating.

The service never owns its tables (an owner can always re-grant itself
anything), and on the write-once tables it may only read and insert: no
UPDATE, DELETE or TRUNCATE on the audit entries, checkpoints and log keys.
Triggers refuse those too, as a second wall. The head row (size and compact
range) is updated by every append; altering it can only make later appends
fail or later checkpoints inconsistent with published ones, which verifiers
detect.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from callvault.store.models import Base

#: Tables the service may read and insert into, nothing else.
WRITE_ONCE: tuple[str, ...] = ("audit_entries", "audit_checkpoints", "audit_log_keys")
_FORBIDDEN = ("UPDATE", "DELETE", "TRUNCATE")


def _quote(conn: Connection, name: str) -> str:
    return str(conn.execute(text("SELECT quote_ident(:n)"), {"n": name}).scalar_one())


def grant_service_role(conn: Connection, role: str) -> None:
    """Grant ``role`` what the service needs on every table, revoking anything beyond it."""
    who = _quote(conn, role)
    conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {who}"))
    for table in [*Base.metadata.tables, "alembic_version"]:
        name = _quote(conn, table)
        conn.execute(text(f"REVOKE ALL ON {name} FROM {who}"))
        if table == "alembic_version":
            privileges = "SELECT"
        elif table in WRITE_ONCE:
            privileges = "SELECT, INSERT"
        else:
            privileges = "SELECT, INSERT, UPDATE, DELETE"
        conn.execute(text(f"GRANT {privileges} ON {name} TO {who}"))


def check_service_role(conn: Connection) -> list[str]:
    """What the connected role could do to the write-once tables that it must not."""
    bad: list[str] = []
    for table in WRITE_ONCE:
        owner = conn.execute(
            text("SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = :t"),
            {"t": table},
        ).scalar_one_or_none()
        if owner is None:
            continue  # not migrated yet: checked again once it is
        if owner == conn.execute(text("SELECT current_user")).scalar_one():
            bad.append(f"owns {table}")
            continue
        for privilege in _FORBIDDEN:
            held = conn.execute(
                text("SELECT has_table_privilege(current_user, :t, :p)"),
                {"t": f"public.{table}", "p": privilege},
            ).scalar_one()
            if held:
                bad.append(f"{privilege} on {table}")
    return bad
