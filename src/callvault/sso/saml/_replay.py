"""An in-memory replay cache, for tests and single-process deployments.

The login core's database guard is the one for production (it is atomic
across processes); this one is atomic within one process only.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

DEFAULT_MAX_ENTRIES: Final = 100_000


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MemoryReplayGuard:
    """:class:`~callvault.sso.ReplayGuard` in a dict guarded by a lock.

    1. Entries whose ``not_on_or_after`` has passed (by ``clock``) are pruned
       before each use: the adapter's time checks refuse those assertions anyway.
    2. A known (connection, assertion id) is a replay: False.
    3. When full, it fails closed (False) rather than forget an id early.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = _utcnow,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self._clock = clock
        self._max = max_entries
        self._seen: dict[tuple[str, str], datetime] = {}
        self._expiries: list[tuple[datetime, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def first_use(self, connection_id: str, assertion_id: str, not_on_or_after: datetime) -> bool:
        """True the first time ``assertion_id`` is seen for ``connection_id``."""
        key = (connection_id, assertion_id)
        with self._lock:
            # (1):
            now = self._clock()
            while self._expiries and self._expiries[0][0] <= now:
                until, stale = heapq.heappop(self._expiries)
                if self._seen.get(stale) == until:
                    del self._seen[stale]
            # (2):
            if key in self._seen:
                return False
            # (3):
            if len(self._seen) >= self._max:
                return False
            self._seen[key] = not_on_or_after
            heapq.heappush(self._expiries, (not_on_or_after, key))
            return True

    def entries(self) -> int:
        """How many ids are remembered (no ``__len__``: an empty guard must not be falsy)."""
        with self._lock:
            return len(self._seen)
