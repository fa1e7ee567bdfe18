"""LiveCardText: card audio located from the live transcript, while the audio is held."""

from __future__ import annotations

import pytest

from callvault.calls._live_text import CAPTURE_MAX_S, PAD, LiveCardText
from callvault.redact import Redactor, Segment, Word

STEP = 0.4


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


def _seg(sid: str, text: str, t0: float, *, final: bool = True) -> Segment:
    words = tuple(Word(w, t0 + i * STEP, t0 + i * STEP + 0.3) for i, w in enumerate(text.split()))
    return Segment(sid, words, final)


def _covered(intervals: tuple[tuple[float, float], ...], a: float, b: float) -> bool:
    """Whether the union of ``intervals`` covers [a, b]."""
    at = a
    for lo, hi in sorted(intervals):
        if lo <= at < hi:
            at = hi
    return at >= b


def _touches(intervals: tuple[tuple[float, float], ...], a: float, b: float) -> bool:
    return any(lo < b and a < hi for lo, hi in intervals)


def test_a_complete_card_is_silenced_at_once_even_while_the_text_is_held(
    redactor: Redactor,
) -> None:
    lt = LiveCardText(redactor)
    # Words: it(1.0) is(1.4) 4111(1.8) 1111(2.2) 1111(2.6) 1111(3.0) and(3.4) my(3.8) ...
    out = lt.push(_seg("1", "it is 4111 1111 1111 1111 and my birthday is 4 May 1970", 1.0))
    assert out.released == ()  # the date at the end keeps the text held
    assert _covered(out.silence, 1.8, 3.3)
    assert not _touches(out.silence, 3.4 + PAD, 6.0)  # the birthday is masked later, not erased
    assert out.begin_capture is None


@pytest.mark.parametrize(
    "text",
    ["my date of birth is the fourth of", "call me back on oh seven seven", "my account is 3192"],
)
def test_other_numbers_being_said_are_neither_silenced_nor_captured(
    redactor: Redactor, text: str
) -> None:
    lt = LiveCardText(redactor)
    out = lt.push(_seg("1", text, 0.5, final=False))
    assert out.silence == ()
    assert out.begin_capture is None
    assert not lt.capturing


def test_an_announced_card_opens_a_capture_that_ends_with_the_card(redactor: Redactor) -> None:
    lt = LiveCardText(redactor)
    interim = lt.push(_seg("1", "my card number is four one one one", 1.0, final=False))
    first_digit = 1.0 + 4 * STEP
    assert interim.begin_capture == pytest.approx(first_digit - PAD)
    assert lt.capturing
    digits = " ".join(["four"] + ["one"] * 15)
    final = lt.push(_seg("1", f"my card number is {digits}", 1.0))
    last_digit_end = 1.0 + 19 * STEP + 0.3
    assert _covered(final.silence, first_digit, last_digit_end)
    after = lt.push(_seg("2", "thank you", 10.0))
    assert after.end_capture == pytest.approx(last_digit_end + PAD)
    assert not lt.capturing
    assert [r.text for r in after.released] == ["my card number is [CARD_NUMBER]", "thank you"]


def test_a_capture_with_no_settling_final_ends_after_its_bound(redactor: Redactor) -> None:
    lt = LiveCardText(redactor)
    lt.push(_seg("1", "my card number is four one", 1.0, final=False))
    assert lt.capturing
    assert lt.advance(5.0).end_capture is None
    ended = lt.advance(1.0 + CAPTURE_MAX_S + 5)
    assert ended.end_capture == pytest.approx(1.0 + CAPTURE_MAX_S + 5)
    assert not lt.capturing


def test_a_security_code_is_silenced(redactor: Redactor) -> None:
    lt = LiveCardText(redactor)
    out = lt.push(_seg("1", "and the security code on the back is 737 thanks", 2.0))
    code_at = 2.0 + 8 * STEP
    assert _covered(out.silence + lt.flush().silence, code_at, code_at + 0.3)
