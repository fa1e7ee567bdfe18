"""Appending to a tenant's audit log, committed before the caller goes on.

Fail closed: any failure to write (database error, lock timeout, an entry over
the size limit) raises :class:`AuditUnavailableError`; callers MUST NOT
perform the guarded action after that (the API answers 503).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from callvault.audit._entry import AuditEvent, entry_bytes
from callvault.errors import AuditUnavailableError
from callvault.store import Database
from callvault.store.models import AuditEntry, AuditHead, utcnow

log = logging.getLogger(__name__)


class AuditLog:
    """Per-tenant append-only log with contiguous indices."""

    def __init__(self, db: Database, *, max_entry_bytes: int) -> None:
        self._db = db
        self._max = max_entry_bytes

    def append(self, tenant_id: str, *events: AuditEvent) -> list[int]:
        """Append ``events`` in their own transaction and commit; return their indices."""
        try:
            with self._db.tenant_tx(tenant_id) as session:
                return self.append_in(session, tenant_id, *events)
        except AuditUnavailableError:
            raise
        except SQLAlchemyError as exc:
            log.error(
                "audit append failed",
                extra={"tenant_id": tenant_id, "error_type": type(exc).__name__},
            )
            raise AuditUnavailableError("audit log is not writable") from None

    def append_in(self, session: Session, tenant_id: str, *events: AuditEvent) -> list[int]:
        """Append in the caller's transaction: entries commit with the change or not at all."""
        now = utcnow()
        entries = [entry_bytes(tenant_id, ev, now) for ev in events]
        if any(len(e) > self._max for e in entries):
            raise AuditUnavailableError("audit entry exceeds the configured size limit")
        # Create the head row if this is the tenant's first entry, without
        # racing: concurrent first appends all reach the locked read below.
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            insert(AuditHead)
            .values(tenant_id=tenant_id, size=0)
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )
        head = session.execute(
            select(AuditHead).where(AuditHead.tenant_id == tenant_id).with_for_update()
        ).scalar_one()
        first = head.size
        for offset, entry in enumerate(entries):
            session.add(
                AuditEntry(tenant_id=tenant_id, idx=first + offset, created_at=now, entry=entry)
            )
        head.size = first + len(entries)
        session.flush()
        return list(range(first, first + len(entries)))

    def read(
        self, session: Session, tenant_id: str, *, start: int, limit: int
    ) -> list[tuple[int, bytes]]:
        """Entries ``start`` .. ``start + limit - 1`` as (index, canonical JSON)."""
        rows = session.execute(
            select(AuditEntry.idx, AuditEntry.entry)
            .where(AuditEntry.tenant_id == tenant_id, AuditEntry.idx >= start)
            .order_by(AuditEntry.idx)
            .limit(limit)
        ).all()
        return [(int(i), bytes(e)) for i, e in rows]

    def check(self) -> None:
        """Raise unless the log's tables answer."""
        try:
            with self._db.system_tx() as session:
                session.execute(select(AuditHead.size).limit(1)).all()
        except SQLAlchemyError:
            raise AuditUnavailableError("audit log is not readable") from None
