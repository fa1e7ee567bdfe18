"""Unwrapped data keys, in memory only: a bounded LRU with a time-to-live.

A key is served from the cache for at most ``ttl_seconds`` after it was
unwrapped; then the provider is asked again (so a disabled or destroyed KEK
takes effect within the TTL). Entries are dropped on expiry, on eviction
(least recently used first) and by :meth:`forget` (shredding).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class DataKeyCache:
    def __init__(
        self, *, max_keys: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_keys < 0 or ttl_seconds < 0:
            raise ValueError("cache bounds must not be negative")
        self._max = max_keys
        self._ttl = ttl_seconds
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key_id: str, load: Callable[[], bytes]) -> bytes:
        """The key for ``key_id``, from the cache or from ``load()`` (which unwraps it)."""
        now = self._clock()
        with self._lock:
            item = self._items.get(key_id)
            if item is not None and item[0] > now:
                self._items.move_to_end(key_id)
                self.hits += 1
                return item[1]
            self._items.pop(key_id, None)
            self.misses += 1
        key = load()
        if self._max and self._ttl:
            with self._lock:
                self._items[key_id] = (now + self._ttl, key)
                self._items.move_to_end(key_id)
                while len(self._items) > self._max:
                    self._items.popitem(last=False)
        return key

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._items.pop(key_id, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
