"""Group commit: concurrent appends share one transaction, each caller waits for its commit.

One writer thread takes the first waiting append, then gathers more for at
most ``max_wait`` seconds or until ``max_batch`` entries, and writes them all
in one transaction (each tenant's entries under its head lock, tenants in id
order so two writers never deadlock). Every caller is released only after
that transaction committed: an append that returns is durable. While one
batch commits the next one fills, so throughput grows with concurrency rather
than with the number of commits the database can do.

Failure is per batch, then per tenant: if the batch's transaction fails, each
tenant's share is retried alone once, so one tenant's problem does not fail
another's appends. A caller that is not released within its timeout gets
:class:`AuditUnavailableError` (503) and its action does not run; if its entry
was already in a committing batch it may still be logged (an allowed action
that did not happen), never the other way round.

The writer has its own database connections (``Database`` built with a pool
of its own), so requests holding pooled connections can never starve it.

:class:`ShardedCommitter` spreads tenants over several such committers (one
writer thread and transaction each; a tenant always goes to the same one, so
its appends keep their order and its indices stay contiguous). On PostgreSQL
their transactions run side by side and share WAL flushes: with callers that
each wait for their own commit, one committer's throughput is bounded by
callers / (commit latency + gather wait), not by CPU.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from callvault.errors import AuditUnavailableError

log = logging.getLogger(__name__)


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False, slots=True)
class Pending:
    tenant_id: str
    entries: Sequence[bytes]
    leaves: Sequence[bytes]
    #: Held until the writer is done with this append (a bare lock is the cheapest
    #: one-shot signal between threads; an Event costs a Condition and two locks).
    _done: threading.Lock = field(default_factory=_held_lock)
    first: int = -1
    failed: bool = False
    #: Set by a caller that gave up waiting; the writer then skips it if it has not begun.
    abandoned: bool = False

    def finish(self) -> None:
        self._done.release()

    def wait(self, timeout_s: float) -> bool:
        return self._done.acquire(timeout=timeout_s)


#: Writes the batch (one tenant's pendings per key) in one transaction and sets
#: ``first`` on each; raises on any failure (nothing committed).
CommitFn = Callable[[dict[str, list[Pending]]], None]


class GroupCommitter:
    def __init__(self, commit: CommitFn, *, max_batch: int, max_wait_s: float) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._max_wait = max_wait_s
        self._queue: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def submit(self, pending: Pending, timeout_s: float) -> int:
        """Queue ``pending`` and wait for its commit; return the index of its first entry."""
        self._ensure_started()
        self._queue.put(pending)
        if not pending.wait(timeout_s):
            pending.abandoned = True
            # The writer may have finished it in the meantime: look once more.
            if not pending.wait(0):
                raise AuditUnavailableError("audit log did not commit in time")
        if pending.failed:
            raise AuditUnavailableError("audit log is not writable")
        return pending.first

    def stop(self, timeout_s: float = 10.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping = True
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout_s)

    # -- the writer thread ---------------------------------------------------

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._stopping:
                raise AuditUnavailableError("audit log is shutting down")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="callvault-audit-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._drain_after_stop()
                return
            batch = self._gather(first)
            if batch:
                self._write(batch)

    def _gather(self, first: Pending) -> list[Pending]:
        batch = [first]
        count = len(first.entries)
        deadline = time.monotonic() + self._max_wait
        while count < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if item is None:  # stop requested: finish this batch, then exit
                self._queue.put(None)
                break
            batch.append(item)
            count += len(item.entries)
        return [p for p in batch if not p.abandoned]

    def _write(self, batch: list[Pending]) -> None:
        groups: dict[str, list[Pending]] = {}
        for p in batch:
            groups.setdefault(p.tenant_id, []).append(p)
        try:
            self._commit(groups)
        except Exception as exc:  # noqa: BLE001 - any failure of the batch: retry each tenant alone
            if len(groups) == 1:
                self._fail(batch, exc)
                return
            for tenant_id, pendings in groups.items():
                try:
                    self._commit({tenant_id: pendings})
                except Exception as exc2:  # noqa: BLE001 - this tenant's share fails; others go on
                    self._fail(pendings, exc2)
                else:
                    self._release(pendings)
            return
        self._release(batch)

    @staticmethod
    def _release(pendings: list[Pending]) -> None:
        for p in pendings:
            p.finish()

    @staticmethod
    def _fail(pendings: list[Pending], exc: Exception) -> None:
        log.error(
            "audit group commit failed",
            extra={
                "entries": sum(len(p.entries) for p in pendings),
                "error_type": type(exc).__name__,
            },
        )
        for p in pendings:
            p.failed = True
            p.finish()

    def _drain_after_stop(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item.failed = True
                item.finish()


class ShardedCommitter:
    """Tenants spread over ``shards`` independent group committers.

    A tenant is given a shard the first time it appends (round robin) and keeps
    it for the life of the process.
    """

    def __init__(self, commit: CommitFn, *, shards: int, max_batch: int, max_wait_s: float) -> None:
        if shards < 1:
            raise ValueError("at least one shard")
        self._shards = [
            GroupCommitter(commit, max_batch=max_batch, max_wait_s=max_wait_s)
            for _ in range(shards)
        ]
        self._assigned: dict[str, int] = {}
        self._lock = threading.Lock()

    def shard_of(self, tenant_id: str) -> int:
        shard = self._assigned.get(tenant_id)
        if shard is None:
            with self._lock:
                next_shard = len(self._assigned) % len(self._shards)
                shard = self._assigned.setdefault(tenant_id, next_shard)
        return shard

    def submit(self, pending: Pending, timeout_s: float) -> int:
        """Queue ``pending`` on its tenant's committer and wait for its commit."""
        return self._shards[self.shard_of(pending.tenant_id)].submit(pending, timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        for shard in self._shards:
            shard.stop(timeout_s)
