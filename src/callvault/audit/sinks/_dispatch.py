"""Moving each tenant's log to its sinks, behind the cursors, off the request path.

The request path only appends to the log; nothing here is ever called from it.
A :class:`SinkDispatcher` runs in its own thread (:meth:`~SinkDispatcher.start`,
:meth:`~SinkDispatcher.stop`) or one pass at a time (:meth:`~SinkDispatcher.run_once`).
For every (tenant, sink) target that is due, a worker drains the backlog:

1. Read the cursor (created at 0) and the log's origin.
2. Read up to ``batch_size`` entries from the cursor on; their indices MUST
   run on from the cursor without a hole (a hole stops the sink with a
   failure: an entry is never skipped).
3. Deliver the batch; the transport returns only once the sink took all of it.
4. Only then advance the cursor past the batch (a crash between 3 and 4
   re-sends the batch: at-least-once, receivers dedupe by (origin, index)).
5. Repeat up to ``max_batches`` times, then yield to the other targets; a
   target with more to send is due again at once.

On any failure the cursor stays where it is, the failure is counted (class
name only) and the target waits ``Backoff.delay(failures)`` before its next
try: exponential from ``base_seconds``, capped at ``cap_seconds``, with
"equal jitter" (a uniform draw from the upper half of the window, so sinks
that failed together spread out but none retries at once). Backoff state is
in memory; a restart retries every sink immediately.

Each target is drained by at most one worker at a time, and targets run on a
pool of ``workers`` threads without the loop waiting for them: a dead sink,
whose tries take up to its transport timeout, holds one worker and delays no
other target. Several dispatchers over one database only cause duplicates
(cursors never move back); run one per deployment.

Storage is injected (``read``, ``origin``, ``size``) so the dispatcher does
not depend on how the log is stored, and ``targets`` is called on every pass so
that added, removed or disabled sinks take effect without a restart.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from callvault.audit.sinks._cursor import SinkCursors
from callvault.audit.sinks._record import Record
from callvault.audit.sinks._transport import SinkError, Transport

log = logging.getLogger(__name__)

ReadFn = Callable[[str, int, int], list[tuple[int, bytes]]]
OriginFn = Callable[[str], str]
SizeFn = Callable[[str], int]
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class SinkTarget:
    """One enabled sink of one tenant, with its ready transport."""

    tenant_id: str
    sink_id: str
    transport: Transport

    @property
    def key(self) -> Key:
        return (self.tenant_id, self.sink_id)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with equal jitter (see the module docstring)."""

    base_seconds: float = 1.0
    cap_seconds: float = 300.0

    def __post_init__(self) -> None:
        if not 0 < self.base_seconds <= self.cap_seconds:
            raise ValueError("backoff needs 0 < base_seconds <= cap_seconds")

    def delay(self, failures: int, unit: float) -> float:
        """Seconds to wait after ``failures`` consecutive failures; ``unit`` is in [0, 1)."""
        window = min(self.cap_seconds, self.base_seconds * 2.0 ** min(max(failures, 1) - 1, 60))
        return window / 2 + min(max(unit, 0.0), 1.0) * window / 2


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What one drain of one target did."""

    delivered: int
    #: The failure's class (a :class:`SinkError`'s own ``error_class``), or None.
    error: str | None = None
    #: Stopped after ``max_batches`` with entries left.
    more: bool = False


@dataclass(slots=True)
class _State:
    failures: int = 0
    due: float = 0.0
    busy: bool = False


class LogGapError(Exception):
    """The log read returned indices that do not run on from the cursor."""


class SinkDispatcher:
    """Delivers every target's backlog in batches (see the module docstring)."""

    def __init__(
        self,
        *,
        cursors: SinkCursors,
        targets: Callable[[], Iterable[SinkTarget]],
        read: ReadFn,
        origin: OriginFn,
        size: SizeFn,
        batch_size: int = 100,
        max_batches: int = 10,
        backoff: Backoff | None = None,
        poll_seconds: float = 1.0,
        workers: int = 4,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if not (0 < batch_size <= 10_000 and max_batches > 0 and 0 < workers <= 64):
            raise ValueError("batch_size, max_batches and workers must be positive and bounded")
        if not poll_seconds > 0:
            raise ValueError("poll_seconds must be positive")
        self._cursors = cursors
        self._targets = targets
        self._read = read
        self._origin = origin
        self._size = size
        self._batch_size = batch_size
        self._max_batches = max_batches
        self._backoff = backoff or Backoff()
        self._poll = poll_seconds
        self._workers = workers
        self._clock = clock
        self._jitter = jitter
        self._lock = threading.Lock()
        self._states: dict[Key, _State] = {}
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    # -- running ------------------------------------------------------------------

    def run_once(self) -> dict[Key, DrainResult]:
        """Drain every due, idle target once (concurrently) and wait; for tests and tools."""
        due = self._claim_due()
        if not due:
            return {}
        with ThreadPoolExecutor(self._workers, thread_name_prefix="cv-sink-once") as pool:
            futures = {t.key: pool.submit(self._run, t) for t in due}
        return {key: f.result() for key, f in futures.items()}

    def start(self) -> None:
        """Run passes in a background thread until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError("dispatcher already started")
        self._stopping.clear()
        with self._lock:  # batches cancelled by an earlier stop() never finished
            for state in self._states.values():
                state.busy = False
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="cv-sink")
        self._thread = threading.Thread(target=self._loop, name="cv-sink-dispatch", daemon=True)
        self._thread.start()

    def stop(self, timeout_seconds: float = 30.0) -> None:
        """Stop after the batches in flight (each bounded by its transport's timeout)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_seconds)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _loop(self) -> None:
        pool = self._pool
        assert pool is not None  # noqa: S101 - set by start() before the thread runs
        while not self._stopping.is_set():
            self._wake.clear()
            for target in self._claim_due():
                future: Future[DrainResult] = pool.submit(self._run, target)
                future.add_done_callback(self._after)
            self._wake.wait(self._poll)

    def _after(self, future: Future[DrainResult]) -> None:
        if not future.cancelled() and future.exception() is None and future.result().more:
            self._wake.set()

    # -- state --------------------------------------------------------------------

    def _claim_due(self) -> list[SinkTarget]:
        try:
            targets = {t.key: t for t in self._targets()}
        except Exception as exc:  # noqa: BLE001 - a failing target listing is logged and retried next pass
            log.warning("audit sink targets unavailable", extra={"error_type": type(exc).__name__})
            return []
        now = self._clock()
        claimed = []
        with self._lock:
            for key in self._states.keys() - targets.keys():
                if not self._states[key].busy:
                    del self._states[key]
            for key, target in targets.items():
                state = self._states.setdefault(key, _State())
                if not state.busy and state.due <= now:
                    state.busy = True
                    claimed.append(target)
        return claimed

    def _run(self, target: SinkTarget) -> DrainResult:
        result = self._drain(target)
        with self._lock:
            state = self._states.setdefault(target.key, _State())
            state.busy = False
            if result.error is None:
                state.failures, state.due = 0, 0.0
            else:
                state.failures += 1
                state.due = self._clock() + self._backoff.delay(state.failures, self._jitter())
            failures, wait = state.failures, state.due - self._clock()
        if result.error is not None:
            log.warning(
                "audit sink delivery failed",
                extra={
                    "tenant_id": target.tenant_id,
                    "sink_id": target.sink_id,
                    "error_type": result.error,
                    "failures": failures,
                    "retry_in_s": round(wait, 3),
                    "delivered": result.delivered,
                },
            )
            try:
                self._cursors.record_failure(target.tenant_id, target.sink_id, result.error)
            except Exception as exc:  # noqa: BLE001 - the count is informative; losing it must not stop the dispatcher
                log.warning(
                    "audit sink failure not recorded", extra={"error_type": type(exc).__name__}
                )
        return result

    # -- one target ---------------------------------------------------------------

    def _drain(self, target: SinkTarget) -> DrainResult:
        tenant, sink = target.key
        delivered = 0
        try:
            # (1):
            position = self._cursors.get(tenant, sink).next_index
            origin = self._origin(tenant)
            for _ in range(self._max_batches):
                if self._stopping.is_set():
                    return DrainResult(delivered, more=True)
                # (2):
                rows = self._read(tenant, position, self._batch_size)
                if not rows:
                    return DrainResult(delivered)
                records = _records(origin, position, rows)
                # (3):
                target.transport.deliver(records)
                # (4):
                position = self._cursors.advance(tenant, sink, position + len(records)).next_index
                delivered += len(records)
                if len(rows) < self._batch_size:
                    return DrainResult(delivered)
            # (5):
            return DrainResult(delivered, more=True)
        except SinkError as exc:
            return DrainResult(delivered, error=exc.error_class)
        except Exception as exc:  # noqa: BLE001 - storage failures back the target off like sink failures
            return DrainResult(delivered, error=type(exc).__name__)

    # -- observing ----------------------------------------------------------------

    def backlog(self) -> dict[Key, int]:
        """Entries not yet acknowledged, per (tenant, sink): log size minus cursor."""
        result: dict[Key, int] = {}
        sizes: dict[str, int] = {}
        for target in self._targets():
            tenant, sink = target.key
            if tenant not in sizes:
                sizes[tenant] = self._size(tenant)
            result[target.key] = max(0, sizes[tenant] - self._cursors.get(tenant, sink).next_index)
        return result

    def failures(self) -> dict[Key, int]:
        """Consecutive failures per target, as this process has seen them."""
        with self._lock:
            return {key: s.failures for key, s in self._states.items() if s.failures}


def _records(origin: str, start: int, rows: list[tuple[int, bytes]]) -> list[Record]:
    if any(index != expected for expected, (index, _) in enumerate(rows, start=start)):
        raise LogGapError
    return [Record(origin, index, entry) for index, entry in rows]
