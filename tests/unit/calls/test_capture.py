"""DtmfCapture: keypad digits collected into one hand-over, never kept."""

from __future__ import annotations

from callvault.calls._capture import IDLE_SAMPLES, LOOKBACK, MAX_DIGITS, DtmfCapture

PAN = "4111111111111111"


def _key_all(cap: DtmfCapture, digits: str, start: int = 20_000, step: int = 1440) -> list[str]:
    kinds = []
    for i, d in enumerate(digits):
        kinds += [e.kind for e in cap.key(d, start + i * step)]
    return kinds


def test_hash_ends_the_capture_and_the_digits_are_handed_out_once() -> None:
    cap = DtmfCapture()
    kinds = _key_all(cap, PAN + "#")
    assert kinds == ["begin", "end"]
    assert cap.start == 20_000 - LOOKBACK
    assert not cap.capturing
    digits = cap.finish()
    assert digits == bytearray(PAN.encode())
    assert cap.finish() is None  # once
    assert cap._buf == bytearray()


def test_the_longest_card_number_ends_the_capture_by_itself() -> None:
    cap = DtmfCapture()
    kinds = _key_all(cap, "4" * MAX_DIGITS)
    assert kinds == ["begin", "end"]
    assert cap.finish() == bytearray(b"4" * MAX_DIGITS)


def test_an_idle_capture_ends_after_the_quiet_period() -> None:
    cap = DtmfCapture()
    _key_all(cap, PAN)
    last = 20_000 + 15 * 1440
    assert cap.tick(last + IDLE_SAMPLES - 1) == []
    assert [e.kind for e in cap.tick(last + IDLE_SAMPLES)] == ["end"]
    assert cap.finish() == bytearray(PAN.encode())


def test_star_clears_and_short_entries_are_discarded_without_handing_out() -> None:
    cap = DtmfCapture()
    _key_all(cap, "1234*")
    assert cap.capturing
    assert [e.kind for e in cap.key("#", 90_000)] == ["discarded"]
    assert cap.finish() is None
    assert cap.discarded == 1
    # Menu choices ("press 1") are discarded the same way.
    assert _key_all(cap, "1#", start=200_000) == ["begin", "discarded"]
    assert cap.finish() is None


def test_keys_other_than_digits_do_not_open_a_capture() -> None:
    cap = DtmfCapture()
    assert cap.key("#", 100) == []
    assert cap.key("*", 200) == []
    assert cap.key("A", 300) == []
    assert not cap.capturing


def test_the_call_ending_ends_an_open_capture() -> None:
    cap = DtmfCapture()
    _key_all(cap, PAN)
    assert [e.kind for e in cap.close(50_000)] == ["end"]
    assert cap.finish() == bytearray(PAN.encode())
    assert cap.close(60_000) == []
