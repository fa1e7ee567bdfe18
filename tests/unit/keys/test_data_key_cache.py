"""The in-memory data key cache: bounded, expiring, forgettable."""

from __future__ import annotations

from callvault.keys._cache import DataKeyCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_hit_within_ttl_then_reload_after_expiry() -> None:
    clock, loads = Clock(), []
    cache = DataKeyCache(max_keys=10, ttl_seconds=5, clock=clock)

    def load() -> bytes:
        loads.append(1)
        return b"k" * 32

    cache.get("a", load)
    cache.get("a", load)
    assert len(loads) == 1
    clock.now = 5.1
    cache.get("a", load)
    assert len(loads) == 2


def test_least_recently_used_is_evicted_at_the_bound() -> None:
    cache = DataKeyCache(max_keys=2, ttl_seconds=60, clock=Clock())
    for k in "abc":
        cache.get(k, lambda: b"x" * 32)
    assert len(cache) == 2
    misses = cache.misses
    cache.get("a", lambda: b"x" * 32)
    assert cache.misses == misses + 1


def test_forget_drops_a_shredded_key() -> None:
    cache = DataKeyCache(max_keys=2, ttl_seconds=60, clock=Clock())
    cache.get("a", lambda: b"x" * 32)
    cache.forget("a")
    assert len(cache) == 0


def test_zero_ttl_disables_caching() -> None:
    loads = []
    cache = DataKeyCache(max_keys=10, ttl_seconds=0, clock=Clock())
    for _ in range(3):
        cache.get("a", lambda: loads.append(1) or b"x" * 32)
    assert len(loads) == 3
