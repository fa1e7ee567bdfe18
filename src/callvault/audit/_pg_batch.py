"""PostgreSQL fast path for the group committer: one pipelined round trip per batch.

Measured on the append path, the cost of a batch was mostly per statement
(SQLAlchemy and driver overhead for BEGIN, setting the tenant, locking and
reading the head, inserting, updating the head, COMMIT, per tenant), not per
entry. So the writer thread:

- talks to psycopg directly on a connection of its own, kept by each writer
  thread between batches (no pool checkout and liveness ping per batch; a
  connection that failed is discarded and the next batch takes a fresh one);
- keeps each tenant's head (size + compact range) in memory after a commit,
  so it need not lock and read it before appending;
- sends, for every tenant of the batch, ``set_config`` (row-level security)
  and one statement that inserts the entries and moves the head *only if it
  is still where the cached state says* (``WHERE size = old``), in psycopg's
  pipeline mode, then COMMIT: the server runs them in order, the client
  waits once.

Optimistic concurrency replaces the lock: if anything else appended to that
tenant's log meanwhile (another process, or a change's in-transaction append),
either the entries' primary key ``(tenant_id, idx)`` collides or the head
update matches no row; the transaction rolls back, the cached heads of the
batch are dropped and re-read, and the batch is tried once more. Nothing is
committed unless the head moved exactly from the state the hashes were
computed on, so indices stay contiguous and the tree consistent. The retry
locks the heads (``SELECT … FOR UPDATE``) before reading them, so it cannot
lose the race again: under contention from other writers the batch still
commits on the second try.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors

from callvault.audit._store import head_state, offsets
from callvault.audit.merkle import CompactRange
from callvault.audit.proofs import append_leaves
from callvault.errors import AuditUnavailableError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.pool import PoolProxiedConnection

    from callvault.audit._writer import Pending

_SET_TENANT = "SELECT set_config('callvault.tenant_id', %s, true)"
_READ_HEAD = "SELECT size, compact FROM audit_heads WHERE tenant_id = %s"
_LOCK_HEAD = _READ_HEAD + " FOR UPDATE"
_CREATE_HEAD = (
    "INSERT INTO audit_heads (tenant_id, size, compact) VALUES (%s, 0, NULL)"
    " ON CONFLICT (tenant_id) DO NOTHING"
)
_APPEND = (
    "WITH o AS (SELECT %(eoff)s::integer[] AS eo, %(hoff)s::integer[] AS ho),"
    " appended AS ("
    " INSERT INTO audit_entries (tenant_id, idx, created_at, entry, hashes)"
    " SELECT %(t)s, %(first)s::bigint + i - 1, %(at)s,"
    " substring(%(entries)s::bytea FROM o.eo[i] + 1 FOR o.eo[i + 1] - o.eo[i]),"
    " substring(%(hashes)s::bytea FROM o.ho[i] + 1 FOR o.ho[i + 1] - o.ho[i])"
    " FROM o, generate_series(1, %(n)s::integer) AS i)"
    " UPDATE audit_heads SET size = %(size)s, compact = %(compact)s"
    " WHERE tenant_id = %(t)s AND size = %(first)s"
    " RETURNING size"
)


class _StaleHeadError(Exception):
    """Another writer appended to a tenant of this batch: re-read and try again."""


class PgBatchWriter:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        #: Heads as of the last commit of each tenant (a tenant has one writer thread).
        self._heads: dict[str, CompactRange] = {}
        self._local = threading.local()
        self._kept: list[PoolProxiedConnection] = []
        self._kept_lock = threading.Lock()

    def _connection(self) -> PoolProxiedConnection:
        raw: PoolProxiedConnection | None = getattr(self._local, "raw", None)
        if raw is None:
            raw = self._engine.raw_connection()
            self._local.raw = raw
            with self._kept_lock:
                self._kept.append(raw)
        return raw

    def _discard(self, raw: PoolProxiedConnection) -> None:
        self._local.raw = None
        with self._kept_lock:
            if raw in self._kept:
                self._kept.remove(raw)
        raw.invalidate()

    def close(self) -> None:
        """Return the writer threads' connections (call after they stopped)."""
        with self._kept_lock:
            kept, self._kept = self._kept, []
        for raw in kept:
            raw.close()

    def commit(self, groups: dict[str, list[Pending]], at: datetime) -> None:
        """Write the batch in one transaction and set each pending's ``first`` index."""
        try:
            self._commit_once(groups, at)
        except _StaleHeadError:
            for tenant_id in groups:
                self._heads.pop(tenant_id, None)
            try:
                self._commit_once(groups, at, lock=True)
            except _StaleHeadError:
                raise AuditUnavailableError("audit log kept moving under the writer") from None

    def _commit_once(
        self, groups: dict[str, list[Pending]], at: datetime, *, lock: bool = False
    ) -> None:
        tenants = sorted(groups)
        raw = self._connection()
        try:
            conn: psycopg.Connection[Any] = raw.driver_connection  # type: ignore[assignment]  # psycopg under the psycopg dialect
            new_heads: dict[str, CompactRange] = {}
            try:
                with conn.transaction():
                    states = self._states(conn, tenants, lock=lock)
                    cursors = []
                    with conn.pipeline():
                        for tenant_id in tenants:
                            state = states[tenant_id]
                            pendings = groups[tenant_id]
                            entries = [e for p in pendings for e in p.entries]
                            new, hashes = append_leaves(
                                state, [h for p in pendings for h in p.leaves]
                            )
                            new_heads[tenant_id] = new
                            conn.execute(_SET_TENANT, (tenant_id,))
                            if state.size == 0:
                                conn.execute(_CREATE_HEAD, (tenant_id,))
                            cursors.append(
                                conn.execute(
                                    _APPEND, _params(tenant_id, state, new, entries, hashes, at)
                                )
                            )
                    if any(cur.fetchone() is None for cur in cursors):
                        raise _StaleHeadError
            except pg_errors.UniqueViolation:
                raise _StaleHeadError from None
        except _StaleHeadError:
            raise  # the transaction rolled back; the connection is fine
        except BaseException:  # the connection may be broken: never reuse it; re-raise
            self._discard(raw)
            raise
        self._heads.update(new_heads)
        for tenant_id in tenants:
            first = states[tenant_id].size
            for p in groups[tenant_id]:
                p.first = first
                first += len(p.entries)

    def _states(
        self, conn: psycopg.Connection[Any], tenants: Sequence[str], *, lock: bool
    ) -> dict[str, CompactRange]:
        states: dict[str, CompactRange] = {}
        for tenant_id in tenants:  # in id order, so lockers never deadlock
            cached = None if lock else self._heads.get(tenant_id)
            if cached is not None:
                states[tenant_id] = cached
                continue
            conn.execute(_SET_TENANT, (tenant_id,))
            if lock:
                conn.execute(_CREATE_HEAD, (tenant_id,))
            row = conn.execute(_LOCK_HEAD if lock else _READ_HEAD, (tenant_id,)).fetchone()
            states[tenant_id] = CompactRange() if row is None else head_state(int(row[0]), row[1])
        return states


def _params(
    tenant_id: str,
    state: CompactRange,
    new: CompactRange,
    entries: list[bytes],
    hashes: list[bytes],
    at: datetime,
) -> dict[str, Any]:
    return {
        "t": tenant_id,
        "first": state.size,
        "at": at,
        "n": len(entries),
        "entries": b"".join(entries),
        "eoff": offsets(entries),
        "hashes": b"".join(hashes),
        "hoff": offsets(hashes),
        "size": new.size,
        "compact": new.to_bytes(),
    }
