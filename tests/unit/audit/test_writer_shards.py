"""ShardedCommitter: tenants keep one writer each, writers run side by side."""

from __future__ import annotations

import threading
import time

import pytest

from callvault.audit._writer import Pending, ShardedCommitter
from callvault.errors import AuditUnavailableError


class _Log:
    """A commit function keeping per-tenant indices, recording which thread wrote what."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.size: dict[str, int] = {}
        self.threads: dict[str, set[str]] = {}
        self.active = 0
        self.most_active = 0
        self.delay_s = delay_s
        self._lock = threading.Lock()

    def commit(self, groups: dict[str, list[Pending]]) -> None:
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            time.sleep(self.delay_s)
            for tenant, pendings in groups.items():
                self.threads.setdefault(tenant, set()).add(threading.current_thread().name)
                for p in pendings:
                    p.first = self.size.get(tenant, 0)
                    self.size[tenant] = p.first + len(p.entries)
        finally:
            with self._lock:
                self.active -= 1


def _pending(tenant: str) -> Pending:
    return Pending(tenant, [b"e"], [b"h" * 32])


def test_tenants_are_spread_round_robin_and_stay_put() -> None:
    sc = ShardedCommitter(_Log().commit, shards=3, max_batch=8, max_wait_s=0)
    try:
        assert [sc.shard_of(t) for t in ("a", "b", "c", "d")] == [0, 1, 2, 0]
        assert [sc.shard_of(t) for t in ("d", "c", "b", "a")] == [0, 2, 1, 0]
    finally:
        sc.stop()


def test_each_tenants_indices_are_contiguous_and_in_caller_order() -> None:
    log = _Log(delay_s=0.002)
    sc = ShardedCommitter(log.commit, shards=2, max_batch=64, max_wait_s=0.001)
    tenants = ["t0", "t1", "t2", "t3"]
    got: dict[int, list[int]] = {n: [] for n in range(16)}

    def work(n: int) -> None:
        for _ in range(25):
            got[n].append(sc.submit(_pending(tenants[n % 4]), 10))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sc.stop()
    for i, tenant in enumerate(tenants):
        indices = sorted(x for n in range(i, 16, 4) for x in got[n])
        assert indices == list(range(100)), tenant
        assert len(log.threads[tenant]) == 1  # one writer per tenant
    for n in range(16):
        assert got[n] == sorted(got[n])  # a caller's appends keep their order
    # Two shards: their transactions overlapped at some point.
    assert log.most_active == 2


def test_a_failing_shard_does_not_fail_the_other() -> None:
    log = _Log()

    def commit(groups: dict[str, list[Pending]]) -> None:
        if "bad" in groups:
            raise RuntimeError("disk full")
        log.commit(groups)

    sc = ShardedCommitter(commit, shards=2, max_batch=8, max_wait_s=0)
    try:
        assert sc.shard_of("bad") != sc.shard_of("good")
        with pytest.raises(AuditUnavailableError):
            sc.submit(_pending("bad"), 5)
        assert sc.submit(_pending("good"), 5) == 0
    finally:
        sc.stop()


def test_at_least_one_shard() -> None:
    with pytest.raises(ValueError, match="shard"):
        ShardedCommitter(_Log().commit, shards=0, max_batch=8, max_wait_s=0)
