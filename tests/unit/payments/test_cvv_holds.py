"""CvvHolds: a keyed security code waits in memory for its card's hand-off, once."""

from __future__ import annotations

from callvault.payments import EphemeralCvv
from callvault.payments._cvv_holds import CvvHolds


def test_a_held_code_is_taken_once_by_its_own_tenant_and_token() -> None:
    holds = CvvHolds()
    cvv = EphemeralCvv(bytearray(b"737"))
    holds.hold("ten_a", "tok_1", cvv)
    assert holds.take("ten_b", "tok_1") is None  # another tenant's token id never matches
    assert holds.take("ten_a", "tok_2") is None
    taken = holds.take("ten_a", "tok_1")
    assert taken is cvv
    with taken.consume() as digits:
        assert bytes(digits) == b"737"
    assert holds.take("ten_a", "tok_1") is None
    assert len(holds) == 0


def test_holding_again_wipes_the_previous_code_and_the_oldest_beyond_the_bound() -> None:
    holds = CvvHolds(max_held=2)
    first = EphemeralCvv("111")
    holds.hold("t", "tok_1", first)
    replaced = EphemeralCvv("222")
    holds.hold("t", "tok_1", replaced)
    assert not first.available
    holds.hold("t", "tok_2", EphemeralCvv("333"))
    holds.hold("t", "tok_3", EphemeralCvv("444"))
    assert not replaced.available  # the oldest, evicted and wiped
    assert holds.take("t", "tok_1") is None
    assert len(holds) == 2


def test_an_expired_code_is_not_handed_out() -> None:
    now = [0.0]
    holds = CvvHolds()
    cvv = EphemeralCvv("9999", ttl_seconds=1.0, clock=lambda: now[0])
    holds.hold("t", "tok", cvv)
    now[0] = 5.0
    assert holds.take("t", "tok") is None
