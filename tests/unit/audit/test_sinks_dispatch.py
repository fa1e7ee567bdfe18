"""Cursors and the dispatcher: at-least-once, cursor after acknowledgement, backoff, isolation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from callvault.audit import AuditEvent, Outcome
from callvault.audit.sinks import (
    Backoff,
    Record,
    SinkCursors,
    SinkDispatcher,
    SinkError,
    SinkTarget,
    Transport,
)
from callvault.bootstrap import create_tenant_with_owner
from callvault.runtime import Runtime


class Memory(Transport):
    """Keeps what it was given; fails while ``down`` is set; ``gate`` can hold a batch."""

    kind = "memory"

    def __init__(self, sink_id: str) -> None:
        super().__init__(sink_id)
        self.batches: list[list[Record]] = []
        self.down: Exception | None = None
        self.gate: threading.Event | None = None

    def _deliver(self, records: Sequence[Record]) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        if self.down is not None:
            raise self.down
        self.batches.append(list(records))

    @property
    def records(self) -> list[Record]:
        return [r for batch in self.batches for r in batch]


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    rt: Runtime
    tenants: list[str]
    clock: Clock = field(default_factory=Clock)

    def read(self, tenant: str, start: int, limit: int) -> list[tuple[int, bytes]]:
        with self.rt.db.tenant_tx(tenant) as s:
            return self.rt.audit.read(s, tenant, start=start, limit=limit)

    def size(self, tenant: str) -> int:
        return len(self.read(tenant, 0, 1_000_000))

    def append(self, tenant: str, n: int) -> None:
        event = AuditEvent("sink.test", Outcome.SUCCESS, "prn_x", "call", "call_1")
        self.rt.audit.append(tenant, *([event] * n))

    def dispatcher(
        self,
        targets: Callable[[], Sequence[SinkTarget]] | Sequence[SinkTarget],
        *,
        read: Callable[[str, int, int], list[tuple[int, bytes]]] | None = None,
        **options: object,
    ) -> SinkDispatcher:
        listed = targets if callable(targets) else (lambda: targets)
        settings: dict[str, object] = {
            "batch_size": 4,
            "max_batches": 100,
            "backoff": Backoff(base_seconds=2, cap_seconds=16),
            "clock": self.clock,
            "jitter": lambda: 1.0,
        } | options
        return SinkDispatcher(
            cursors=SinkCursors(self.rt.db),
            targets=listed,
            read=read or self.read,
            origin=lambda t: f"cv.test/audit/{t}",
            size=self.size,
            **settings,  # type: ignore[arg-type]
        )


@pytest.fixture
def setup(rt: Runtime) -> Setup:
    tenants = [
        create_tenant_with_owner(rt, tenant_name=n, owner_name=f"{n}-owner").tenant_id
        for n in ("acme", "globex")
    ]
    return Setup(rt, tenants)


# -- cursors --------------------------------------------------------------------------


def test_cursor_starts_at_zero_and_only_moves_forward(rt: Runtime, setup: Setup) -> None:
    cursors, tenant = SinkCursors(rt.db), setup.tenants[0]
    assert cursors.get(tenant, "snk_1").next_index == 0
    assert cursors.advance(tenant, "snk_1", 10).next_index == 10
    assert cursors.advance(tenant, "snk_1", 4).next_index == 10
    with pytest.raises(ValueError, match="non-negative"):
        cursors.advance(tenant, "snk_1", -1)
    assert cursors.get(setup.tenants[1], "snk_1").next_index == 0  # per tenant


def test_failures_are_counted_by_class_and_cleared_by_progress(rt: Runtime, setup: Setup) -> None:
    cursors, tenant = SinkCursors(rt.db), setup.tenants[0]
    cursors.record_failure(tenant, "snk_1", "ConnectError")
    cursor = cursors.record_failure(tenant, "snk_1", "HTTPStatusError")
    assert (cursor.next_index, cursor.failures, cursor.last_error) == (0, 2, "HTTPStatusError")
    cursor = cursors.advance(tenant, "snk_1", 3)
    assert (cursor.next_index, cursor.failures, cursor.last_error) == (3, 0, None)


# -- delivery -------------------------------------------------------------------------


def test_every_entry_is_delivered_in_bounded_batches_with_its_position(setup: Setup) -> None:
    tenant = setup.tenants[0]
    setup.append(tenant, 9)
    sink = Memory("snk_1")
    result = setup.dispatcher([SinkTarget(tenant, "snk_1", sink)]).run_once()[(tenant, "snk_1")]
    entries = setup.read(tenant, 0, 1000)
    assert result.delivered == len(entries)
    assert all(len(batch) <= 4 for batch in sink.batches)
    assert [(r.origin, r.index, r.entry) for r in sink.records] == [
        (f"cv.test/audit/{tenant}", i, e) for i, e in entries
    ]
    assert SinkCursors(setup.rt.db).get(tenant, "snk_1").next_index == len(entries)


def test_max_batches_yields_and_reports_more(setup: Setup) -> None:
    tenant = setup.tenants[0]
    setup.append(tenant, 20)
    sink = Memory("snk_1")
    dispatcher = setup.dispatcher([SinkTarget(tenant, "snk_1", sink)], max_batches=2)
    result = dispatcher.run_once()[(tenant, "snk_1")]
    assert (result.delivered, result.more) == (8, True)
    while dispatcher.run_once()[(tenant, "snk_1")].more:
        pass
    assert [r.index for r in sink.records] == list(range(setup.size(tenant)))


def test_a_failed_batch_leaves_the_cursor_and_is_sent_again(setup: Setup) -> None:
    tenant = setup.tenants[0]
    sink = Memory("snk_1")
    sink.down = SinkError("snk_1", "memory", "ConnectError")
    dispatcher = setup.dispatcher([SinkTarget(tenant, "snk_1", sink)])
    assert dispatcher.run_once()[(tenant, "snk_1")].error == "ConnectError"
    cursor = SinkCursors(setup.rt.db).get(tenant, "snk_1")
    assert (cursor.next_index, cursor.failures, cursor.last_error) == (0, 1, "ConnectError")
    assert dispatcher.backlog() == {(tenant, "snk_1"): setup.size(tenant)}
    sink.down = None
    setup.clock.now += 2
    assert dispatcher.run_once()[(tenant, "snk_1")].error is None
    assert [r.index for r in sink.records] == list(range(setup.size(tenant)))
    assert dispatcher.backlog() == {(tenant, "snk_1"): 0}


def test_an_unexpected_transport_error_is_reported_by_class_only(setup: Setup) -> None:
    tenant = setup.tenants[0]
    sink = Memory("snk_1")
    sink.down = ValueError("entry content that must not leak")
    with pytest.raises(SinkError) as info:
        sink.deliver([Record("o", 0, b"{}")])
    assert str(info.value) == "audit sink snk_1 (memory): delivery failed (ValueError)"
    assert info.value.__cause__ is None
    result = setup.dispatcher([SinkTarget(tenant, "snk_1", sink)]).run_once()
    assert result[(tenant, "snk_1")].error == "ValueError"


def test_partial_progress_is_kept_when_a_later_batch_fails(setup: Setup) -> None:
    tenant = setup.tenants[0]
    setup.append(tenant, 10)

    class FailThird(Memory):
        def _deliver(self, records: Sequence[Record]) -> None:
            if len(self.batches) == 2:
                raise ConnectionResetError
            super()._deliver(records)

    sink = FailThird("snk_1")
    result = setup.dispatcher([SinkTarget(tenant, "snk_1", sink)]).run_once()[(tenant, "snk_1")]
    assert (result.delivered, result.error) == (8, "ConnectionResetError")
    assert SinkCursors(setup.rt.db).get(tenant, "snk_1").next_index == 8


def test_a_hole_in_the_log_read_stops_the_sink_instead_of_skipping(setup: Setup) -> None:
    tenant = setup.tenants[0]
    setup.append(tenant, 6)

    def holey(t: str, start: int, limit: int) -> list[tuple[int, bytes]]:
        rows = setup.read(t, start, limit + 1)
        return [row for row in rows if row[0] != 2][:limit]

    sink = Memory("snk_1")
    result = setup.dispatcher([SinkTarget(tenant, "snk_1", sink)], read=holey).run_once()
    assert result[(tenant, "snk_1")].error == "LogGapError"
    assert sink.records == []  # the batch with the hole is not sent at all
    assert SinkCursors(setup.rt.db).get(tenant, "snk_1").next_index == 0


def test_storage_failures_back_off_like_sink_failures(setup: Setup) -> None:
    tenant = setup.tenants[0]

    def broken(_t: str, _s: int, _l: int) -> list[tuple[int, bytes]]:
        raise OSError("disk")

    dispatcher = setup.dispatcher([SinkTarget(tenant, "snk_1", Memory("snk_1"))], read=broken)
    assert dispatcher.run_once()[(tenant, "snk_1")].error == "OSError"
    assert dispatcher.run_once() == {}


def test_a_failing_target_listing_is_survived(setup: Setup) -> None:
    def listing() -> list[SinkTarget]:
        raise RuntimeError("database down")

    assert setup.dispatcher(listing).run_once() == {}


# -- backoff --------------------------------------------------------------------------


def test_backoff_doubles_to_its_cap_with_jitter_in_the_upper_half() -> None:
    backoff = Backoff(base_seconds=1, cap_seconds=30)
    assert [backoff.delay(n, 1.0) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert [backoff.delay(n, 0.0) for n in range(1, 4)] == [0.5, 1, 2]
    assert backoff.delay(10_000, 0.5) == 22.5
    with pytest.raises(ValueError, match="base_seconds"):
        Backoff(base_seconds=0)
    with pytest.raises(ValueError, match="base_seconds"):
        Backoff(base_seconds=5, cap_seconds=1)


def test_a_failing_sink_waits_longer_after_each_failure(setup: Setup) -> None:
    tenant = setup.tenants[0]
    sink = Memory("snk_1")
    sink.down = ConnectionRefusedError()
    dispatcher = setup.dispatcher([SinkTarget(tenant, "snk_1", sink)])
    assert dispatcher.run_once()[(tenant, "snk_1")].error == "ConnectionRefusedError"
    waits = []
    for _ in range(4):
        start = setup.clock.now
        while not dispatcher.run_once():  # each pass that runs is the next failed try
            setup.clock.now += 0.5
        waits.append(setup.clock.now - start)
    assert waits == [2, 4, 8, 16]  # base 2 s, doubling, capped at 16 s (jitter at its top)
    assert dispatcher.failures() == {(tenant, "snk_1"): 5}
    assert SinkCursors(setup.rt.db).get(tenant, "snk_1").failures == 5


def test_one_dead_sink_does_not_hold_up_the_others(setup: Setup) -> None:
    a, b = setup.tenants
    dead, alive = Memory("snk_dead"), Memory("snk_alive")
    dead.down = ConnectionRefusedError()
    results = setup.dispatcher(
        [SinkTarget(a, "snk_dead", dead), SinkTarget(b, "snk_alive", alive)]
    ).run_once()
    assert results[(a, "snk_dead")].error == "ConnectionRefusedError"
    assert results[(b, "snk_alive")].delivered == setup.size(b)


def test_background_thread_delivers_while_a_hung_sink_holds_a_worker(setup: Setup) -> None:
    a, b = setup.tenants
    hung, alive = Memory("snk_hung"), Memory("snk_alive")
    hung.gate = threading.Event()
    dispatcher = setup.dispatcher(
        [SinkTarget(a, "snk_hung", hung), SinkTarget(b, "snk_alive", alive)],
        poll_seconds=0.01,
        clock=time.monotonic,
    )
    dispatcher.start()
    try:
        deadline = time.monotonic() + 10
        while len(alive.records) < setup.size(b) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [r.index for r in alive.records] == list(range(setup.size(b)))
        assert hung.records == []
        setup.append(b, 3)  # new entries keep flowing to the healthy sink
        while len(alive.records) < setup.size(b) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(alive.records) == setup.size(b)
        hung.gate.set()
        while len(hung.records) < setup.size(a) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [r.index for r in hung.records] == list(range(setup.size(a)))
    finally:
        hung.gate.set()
        dispatcher.stop()
    assert dispatcher.backlog() == {(a, "snk_hung"): 0, (b, "snk_alive"): 0}
    dispatcher.start()
    try:
        with pytest.raises(RuntimeError, match="started"):
            dispatcher.start()
    finally:
        dispatcher.stop()


def test_targets_are_reread_every_pass(setup: Setup) -> None:
    a, b = setup.tenants
    current = [SinkTarget(a, "snk_1", Memory("snk_1"))]
    dispatcher = setup.dispatcher(lambda: list(current))
    assert set(dispatcher.run_once()) == {(a, "snk_1")}
    current[:] = [SinkTarget(b, "snk_2", Memory("snk_2"))]
    assert set(dispatcher.run_once()) == {(b, "snk_2")}
    assert set(dispatcher.backlog()) == {(b, "snk_2")}
