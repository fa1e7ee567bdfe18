"""Each tenant's audit log: append (group commit or in the caller's transaction), read, prove.

Fail closed: any failure to write (database error, lock or commit timeout, an
entry over the size limit) raises :class:`AuditUnavailableError`; callers
MUST NOT perform the guarded action after that (the API answers 503).

Two ways in:

- :meth:`AuditLog.append` for events that must be committed *before* an
  action (a content read, a secret revealed, a denial): group-committed by
  :class:`~callvault.audit._writer.GroupCommitter`, returns once durable.
- :meth:`AuditLog.append_in` for changes: the entry is written in the
  change's own transaction, so both commit or neither does. It takes the
  tenant's head lock until that transaction ends, so call it last.

Checkpoints (:meth:`AuditLog.checkpoint`) are C2SP signed notes over the head,
made on demand and, for logs that grew, every
``CALLVAULT_AUDIT_CHECKPOINT_INTERVAL_SECONDS`` by a background thread. As the
head only ever grows by appending leaves, every checkpoint is consistent with
every earlier one; the tests check it with consistency proofs under load.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from callvault.audit import _store, proofs
from callvault.audit._entry import AuditEvent, entry_bytes
from callvault.audit._keys import LogKeys, TenantLogKey
from callvault.audit._writer import Pending, ShardedCommitter
from callvault.audit.checkpoint import Checkpoint
from callvault.audit.merkle import leaf_hash
from callvault.audit.note import sign
from callvault.config import Settings
from callvault.crypto import Sealer
from callvault.errors import AuditUnavailableError, ProofError
from callvault.store import Database
from callvault.store.models import utcnow

if TYPE_CHECKING:
    from callvault.audit._pg_batch import PgBatchWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: bytes


class AuditLog:
    """Per-tenant RFC 9162 logs with contiguous indices and signed checkpoints."""

    def __init__(self, db: Database, sealer: Sealer, settings: Settings) -> None:
        self._db = db
        self._max = settings.audit_max_entry_bytes
        self._timeout = settings.audit_append_timeout_ms / 1000
        # SQLite has one writer at a time anyway: one committer there.
        shards = 1 if db.is_sqlite else settings.audit_writers
        # The writers' own connections (one each, one spare): requests holding
        # pooled ones never starve them.
        self._writer_db = Database(settings, pool_size=shards + 1)
        self.keys = LogKeys(db, sealer, settings.audit_origin_prefix)
        self._committer = ShardedCommitter(
            self._commit,
            shards=shards,
            max_batch=settings.audit_batch_max,
            max_wait_s=settings.audit_batch_wait_ms / 1000,
        )
        self._pg_batch: PgBatchWriter | None = None
        if not self._writer_db.is_sqlite:
            from callvault.audit._pg_batch import PgBatchWriter  # noqa: PLC0415 - PostgreSQL only

            self._pg_batch = PgBatchWriter(self._writer_db.engine)
        self._interval = settings.audit_checkpoint_interval_seconds
        self._grown: set[str] = set()
        self._grown_lock = threading.Lock()
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None

    # -- appending -----------------------------------------------------------

    def _encode(self, tenant_id: str, events: tuple[AuditEvent, ...]) -> list[bytes]:
        now = utcnow()
        entries = [entry_bytes(tenant_id, ev, now) for ev in events]
        if any(len(e) > self._max for e in entries):
            raise AuditUnavailableError("audit entry exceeds the configured size limit")
        return entries

    def append(self, tenant_id: str, *events: AuditEvent) -> list[int]:
        """Append ``events`` and return their indices once they are committed."""
        entries = self._encode(tenant_id, events)
        pending = Pending(tenant_id, entries, [leaf_hash(e) for e in entries])
        first = self._committer.submit(pending, self._timeout)
        return list(range(first, first + len(entries)))

    def append_in(self, session: Session, tenant_id: str, *events: AuditEvent) -> list[int]:
        """Append in the caller's transaction: entries commit with the change or not at all."""
        entries = self._encode(tenant_id, events)
        try:
            state = _store.lock_head(session, tenant_id)
            _store.append_locked(
                session, tenant_id, state, entries, [leaf_hash(e) for e in entries], utcnow()
            )
        except SQLAlchemyError:
            raise AuditUnavailableError("audit log is not writable") from None
        self._mark_grown(tenant_id)
        return list(range(state.size, state.size + len(entries)))

    def _commit(self, groups: dict[str, list[Pending]]) -> None:
        """One transaction for the whole batch (called on the writer thread)."""
        at = utcnow()
        if self._pg_batch is not None:
            self._pg_batch.commit(groups, at)
            self._mark_grown(*groups)
            return
        tenants = sorted(groups)
        session = self._writer_db.begin_tenant(tenants[0])
        with self._writer_db.finish(session):
            for tenant_id in tenants:
                self._writer_db.set_tenant(session, tenant_id)
                state = _store.lock_head(session, tenant_id)
                pendings = groups[tenant_id]
                entries = [e for p in pendings for e in p.entries]
                leaves = [h for p in pendings for h in p.leaves]
                _store.append_locked(session, tenant_id, state, entries, leaves, at)
                first = state.size
                for p in pendings:
                    p.first = first
                    first += len(p.entries)
        self._mark_grown(*tenants)

    def _mark_grown(self, *tenant_ids: str) -> None:
        with self._grown_lock:
            self._grown.update(tenant_ids)

    # -- reading -------------------------------------------------------------

    def read(
        self, session: Session, tenant_id: str, *, start: int, limit: int
    ) -> list[tuple[int, bytes]]:
        """Entries ``start`` .. ``start + limit - 1`` as (index, canonical JSON)."""
        return _store.entries(session, tenant_id, start, limit)

    def size(self, session: Session, tenant_id: str) -> int:
        return _store.head(session, tenant_id).size

    def inclusion_proof(
        self, session: Session, tenant_id: str, index: int, size: int
    ) -> list[bytes]:
        """PATH(index, D[size]) for a size the log has reached; :class:`ProofError` otherwise."""
        self._check_size(session, tenant_id, size)
        spans = proofs.inclusion_spans(index, size)
        return proofs.assemble(spans, _store.nodes(session, tenant_id, proofs.needed(spans)))

    def consistency_proof(
        self, session: Session, tenant_id: str, size1: int, size2: int
    ) -> list[bytes]:
        """PROOF(size1, D[size2]) for sizes the log has reached; :class:`ProofError` otherwise."""
        self._check_size(session, tenant_id, size2)
        spans = proofs.consistency_spans(size1, size2)
        return proofs.assemble(spans, _store.nodes(session, tenant_id, proofs.needed(spans)))

    def _check_size(self, session: Session, tenant_id: str, size: int) -> None:
        if size > _store.head_size(session, tenant_id):
            raise ProofError("the log has not reached that size")

    # -- checkpoints ---------------------------------------------------------

    def log_key(self, tenant_id: str) -> TenantLogKey:
        return self.keys.get(tenant_id)

    def checkpoint(self, tenant_id: str) -> SignedCheckpoint:
        """Sign (and keep) a checkpoint over the current head; reuse one at the same size."""
        key = self.keys.get(tenant_id)
        try:
            with self._db.tenant_tx(tenant_id) as session:
                state = _store.head(session, tenant_id)
                existing = _store.checkpoint_at(session, tenant_id, state.size)
                cp = Checkpoint(key.origin, state.size, state.root())
                if existing is not None:
                    return SignedCheckpoint(cp, bytes(existing))
                note = sign(cp.encode(), key.signer)
                _store.store_checkpoint(
                    session, tenant_id, state.size, cp.root_hash, note, utcnow()
                )
        except SQLAlchemyError:
            raise AuditUnavailableError("audit checkpoint could not be stored") from None
        return SignedCheckpoint(cp, note)

    def latest_checkpoint(self, tenant_id: str) -> bytes:
        """The newest signed checkpoint; one is made if the log has none yet."""
        with self._db.tenant_tx(tenant_id) as session:
            latest = _store.latest_checkpoint(session, tenant_id)
        if latest is not None:
            return latest[1]
        return self.checkpoint(tenant_id).note

    def checkpoint_grown(self) -> int:
        """Checkpoint every log that grew since the last round; return how many were signed."""
        with self._grown_lock:
            grown, self._grown = self._grown, set()
        done = 0
        for tenant_id in sorted(grown):
            try:
                self.checkpoint(tenant_id)
                done += 1
            except Exception as exc:  # noqa: BLE001 - one tenant's failure must not stop the others
                self._mark_grown(tenant_id)
                log.error(
                    "scheduled audit checkpoint failed",
                    extra={"tenant_id": tenant_id, "error_type": type(exc).__name__},
                )
        return done

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Start the checkpoint schedule (the writer starts with the first append)."""
        if self._interval <= 0 or self._scheduler is not None:
            return
        self._stop.clear()
        self._scheduler = threading.Thread(
            target=self._schedule, name="callvault-audit-checkpoints", daemon=True
        )
        self._scheduler.start()

    def _schedule(self) -> None:
        while not self._stop.wait(self._interval):
            self.checkpoint_grown()

    def close(self) -> None:
        self._stop.set()
        if self._scheduler is not None:
            self._scheduler.join(10)
            self._scheduler = None
        self._committer.stop()
        self.checkpoint_grown()
        if self._pg_batch is not None:
            self._pg_batch.close()
        self._writer_db.dispose()

    def check(self) -> None:
        """Raise unless the log's tables answer."""
        try:
            with self._db.system_tx() as session:
                _store.head(session, "")
        except (SQLAlchemyError, AuditUnavailableError):
            raise AuditUnavailableError("audit log is not readable") from None
