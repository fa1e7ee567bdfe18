"""The security code holder: one use, then zeros; never shown, stored, copied or pickled."""

from __future__ import annotations

import copy
import pickle
import time

import pytest

from callvault.errors import InvalidInputError
from callvault.payments import CvvUnavailableError, EphemeralCvv

CODE = "7391"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _zeroed(buf: bytearray, n: int) -> bool:
    return len(buf) == n and buf == bytearray(n)


def test_code_is_lent_once_and_zeroed_when_the_block_ends() -> None:
    cvv = EphemeralCvv(bytearray(CODE, "ascii"))
    assert cvv.available
    with cvv.consume() as code:
        assert code == bytearray(CODE, "ascii")
        lent = code
    assert _zeroed(lent, len(CODE))
    assert cvv.state == "used"
    assert not cvv.available
    with pytest.raises(CvvUnavailableError), cvv.consume():
        pass


def test_code_is_zeroed_when_the_hand_off_raises() -> None:
    cvv = EphemeralCvv(CODE)
    lent: list[bytearray] = []

    def hand_off() -> None:
        with cvv.consume() as code:
            lent.append(code)
            raise RuntimeError("processor down")

    with pytest.raises(RuntimeError):
        hand_off()
    assert _zeroed(lent[0], len(CODE))
    with pytest.raises(CvvUnavailableError), cvv.consume():
        pass


def test_the_callers_buffer_is_zeroed_on_capture() -> None:
    captured = bytearray(CODE, "ascii")
    cvv = EphemeralCvv(captured)
    assert _zeroed(captured, len(CODE))
    with cvv.consume() as code:
        assert code == bytearray(CODE, "ascii")


def test_code_expires_at_its_deadline_and_is_zeroed() -> None:
    clock = Clock()
    cvv = EphemeralCvv(CODE, ttl_seconds=30, clock=clock)
    clock.now += 29.9
    assert cvv.available
    clock.now += 0.2
    assert not cvv.available
    assert cvv.state == "expired"
    assert _zeroed(cvv._buf, len(CODE))
    with pytest.raises(CvvUnavailableError), cvv.consume():
        pass


def test_timer_wipes_an_abandoned_code_without_anyone_asking() -> None:
    cvv = EphemeralCvv(CODE, ttl_seconds=0.05)
    buf = cvv._buf
    deadline = time.monotonic() + 5
    while buf != bytearray(len(CODE)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _zeroed(buf, len(CODE))
    assert cvv._state == "expired"


def test_wipe_zeroes_at_once() -> None:
    cvv = EphemeralCvv(CODE)
    buf = cvv._buf
    cvv.wipe()
    assert _zeroed(buf, len(CODE))
    assert cvv.state == "wiped"
    with pytest.raises(CvvUnavailableError), cvv.consume():
        pass


def test_code_never_shows_and_cannot_be_copied_or_pickled() -> None:
    cvv = EphemeralCvv(CODE)
    for shown in (repr(cvv), str(cvv), f"{cvv}", f"{cvv!r}", repr([cvv]), repr({"cvv": cvv})):
        assert CODE not in shown
        assert "redacted" in shown
    for attempt in (
        lambda: pickle.dumps(cvv),
        lambda: copy.copy(cvv),
        lambda: copy.deepcopy(cvv),
    ):
        with pytest.raises(TypeError) as info:
            attempt()
        assert CODE not in str(info.value)
    assert cvv.available  # refusing a copy does not spend the code


def test_unavailable_error_says_nothing_of_the_code() -> None:
    cvv = EphemeralCvv(CODE)
    cvv.wipe()
    with pytest.raises(CvvUnavailableError) as info, cvv.consume():
        pass
    assert CODE not in str(info.value)
    assert info.value.field == "cvv"


@pytest.mark.parametrize(
    "given",
    ["12", "12345", "12a", "١٢٣", bytearray(b"98765"), bytearray(b"9 8 7")],
    ids=["short", "long", "letter", "non-ascii", "long-buffer", "spaces"],
)
def test_malformed_codes_are_refused_with_counts_only(given: str | bytearray) -> None:
    text = given if isinstance(given, str) else given.decode()
    with pytest.raises(InvalidInputError) as info:
        EphemeralCvv(given)
    assert info.value.field == "cvv"
    assert text not in str(info.value)
    if isinstance(given, bytearray):
        assert _zeroed(given, len(given))  # refused, and still wiped


def test_lifetime_must_be_positive() -> None:
    with pytest.raises(InvalidInputError):
        EphemeralCvv(CODE, ttl_seconds=0)
