"""Durable delivery positions: one ``audit_sink_cursors`` row per (tenant, sink).

``next_index`` is the first entry the sink has not acknowledged; everything
below it was taken. It only moves forward (:meth:`SinkCursors.advance` is a
conditional UPDATE), so two dispatchers racing over one sink, or a stale
advance after a newer one, can only cause duplicate deliveries, never a gap.
Failures keep a count and the error's class name, never a message.

Each call is its own short transaction in :meth:`Database.tenant_tx`, so on
PostgreSQL row-level security confines it to the tenant.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callvault.store import Database
from callvault.store.db import insert_for
from callvault.store.models import AuditSinkCursor, utcnow

_ERROR_CLASS_CHARS = 120


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where one sink stands in its tenant's log."""

    tenant_id: str
    sink_id: str
    next_index: int
    failures: int
    last_error: str | None


class SinkCursors:
    """Reads and moves cursors; each method commits on its own."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, tenant_id: str, sink_id: str) -> Cursor:
        """The sink's cursor, created at index 0 if it has none yet."""
        with self._db.tenant_tx(tenant_id) as session:
            return self._get(session, tenant_id, sink_id)

    def advance(self, tenant_id: str, sink_id: str, to: int) -> Cursor:
        """Move the cursor forward to ``to`` and clear its failures; never backward."""
        if type(to) is not int or to < 0:
            raise ValueError("cursor position must be a non-negative integer")
        with self._db.tenant_tx(tenant_id) as session:
            self._get(session, tenant_id, sink_id)
            session.execute(
                update(AuditSinkCursor)
                .where(
                    AuditSinkCursor.tenant_id == tenant_id,
                    AuditSinkCursor.sink_id == sink_id,
                    AuditSinkCursor.next_index < to,
                )
                .values(next_index=to, failures=0, last_error=None, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return self._get(session, tenant_id, sink_id)

    def record_failure(self, tenant_id: str, sink_id: str, error_class: str) -> Cursor:
        """Count one failed delivery; keep only the error's class name."""
        with self._db.tenant_tx(tenant_id) as session:
            self._get(session, tenant_id, sink_id)
            session.execute(
                update(AuditSinkCursor)
                .where(AuditSinkCursor.tenant_id == tenant_id, AuditSinkCursor.sink_id == sink_id)
                .values(
                    failures=AuditSinkCursor.failures + 1,
                    last_error=error_class[:_ERROR_CLASS_CHARS],
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            return self._get(session, tenant_id, sink_id)

    @staticmethod
    def _get(session: Session, tenant_id: str, sink_id: str) -> Cursor:
        query = select(
            AuditSinkCursor.next_index, AuditSinkCursor.failures, AuditSinkCursor.last_error
        ).where(AuditSinkCursor.tenant_id == tenant_id, AuditSinkCursor.sink_id == sink_id)
        row = session.execute(query).one_or_none()
        if row is None:
            # Insert-if-absent, so concurrent first reads do not collide.
            insert = insert_for(session)
            session.execute(
                insert(AuditSinkCursor)
                .values(
                    tenant_id=tenant_id,
                    sink_id=sink_id,
                    next_index=0,
                    failures=0,
                    updated_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=["tenant_id", "sink_id"])
            )
            row = session.execute(query).one()
        return Cursor(tenant_id, sink_id, int(row[0]), int(row[1]), row[2])
