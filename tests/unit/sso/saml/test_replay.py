"""The in-memory replay guard: first use wins, ids are kept until they expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callvault.sso.saml import MemoryReplayGuard

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_second_use_of_an_assertion_id_is_a_replay() -> None:
    guard = MemoryReplayGuard(clock=_Clock())
    assert guard.first_use("c1", "_a1", T0 + timedelta(minutes=5)) is True
    assert guard.first_use("c1", "_a1", T0 + timedelta(minutes=5)) is False


def test_ids_are_per_connection() -> None:
    guard = MemoryReplayGuard(clock=_Clock())
    assert guard.first_use("c1", "_a1", T0 + timedelta(minutes=5)) is True
    assert guard.first_use("c2", "_a1", T0 + timedelta(minutes=5)) is True


def test_id_is_remembered_until_not_on_or_after_then_forgotten() -> None:
    clock = _Clock()
    guard = MemoryReplayGuard(clock=clock)
    guard.first_use("c1", "_a1", T0 + timedelta(minutes=5))
    clock.now = T0 + timedelta(minutes=4, seconds=59)
    assert guard.first_use("c1", "_a1", T0 + timedelta(minutes=5)) is False
    clock.now = T0 + timedelta(minutes=5)
    assert guard.first_use("c2", "_other", T0 + timedelta(minutes=10)) is True
    assert guard.entries() == 1


def test_full_guard_fails_closed() -> None:
    guard = MemoryReplayGuard(clock=_Clock(), max_entries=2)
    assert guard.first_use("c1", "_a1", T0 + timedelta(minutes=5)) is True
    assert guard.first_use("c1", "_a2", T0 + timedelta(minutes=5)) is True
    assert guard.first_use("c1", "_a3", T0 + timedelta(minutes=5)) is False


def test_empty_guard_is_not_falsy() -> None:
    # Callers write `guard or default`; an empty guard must not be replaced silently.
    assert bool(MemoryReplayGuard())
