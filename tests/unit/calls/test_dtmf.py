"""In-band DTMF detection: every key found once, Q.24 limits held, speech and noise ignored."""

from __future__ import annotations

import itertools
import math
import os
import random
from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callvault.calls import _dtmf
from callvault.calls._dtmf import (
    COLUMN_HZ,
    KEYPAD,
    ROW_HZ,
    DtmfDetector,
    Tone,
    block_size,
    detect_dtmf,
    detect_dtmf_mulaw,
    tone_intervals,
)
from callvault.errors import InvalidInputError
from callvault.redact import mask_pcm16, mulaw_encode
from callvault.redact._fast import DTMF_BUILD

RATES = (8000, 16000)
LEVEL = -13.0  # dBFS per tone: the pair is about -10 dBFS


@pytest.fixture(autouse=True, params=["interpreted", "compiled"])
def bank(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on the interpreted filters and on the mypyc build of them."""
    if request.param == "compiled":
        compiled = DTMF_BUILD.load("_dtmf")
        if compiled is None:
            if os.environ.get("CV_TEST_REQUIRE_FAST") == "1":
                pytest.fail(
                    "compiled DTMF detector missing or stale: run scripts/build-redact-fast"
                )
            pytest.skip("compiled DTMF detector not built (scripts/build-redact-fast)")
        monkeypatch.setattr(_dtmf, "_BANK", compiled._bank)
    else:
        monkeypatch.setattr(_dtmf, "_BANK", _dtmf._bank)
    return str(request.param)


# -- a small signal generator ----------------------------------------------------------


def amplitude(dbfs: float) -> float:
    """Peak of a sine at ``dbfs`` (0 dBFS: a full-scale sine)."""
    return 32767 * 10 ** (dbfs / 20)


def freqs(digit: str) -> tuple[float, float]:
    i = KEYPAD.index(digit)
    return ROW_HZ[i // 4], COLUMN_HZ[i % 4]


class Signal:
    """Float samples built piece by piece, then rounded to PCM16 bytes."""

    def __init__(self, rate: int, seed: int = 0) -> None:
        self.rate = rate
        self.samples: list[float] = []
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test audio, not a secret

    def __len__(self) -> int:
        return len(self.samples)

    def count(self, ms: float) -> int:
        return round(ms * self.rate / 1000)

    def silence(self, ms: float) -> Signal:
        self.samples += [0.0] * self.count(ms)
        return self

    def sines(self, ms: float, *parts: tuple[float, float]) -> Signal:
        """Sum of sines ``(hz, dbfs)``, each with a random phase, for ``ms``."""
        waves = [
            (2 * math.pi * hz / self.rate, amplitude(db), self.rng.uniform(0, 2 * math.pi))
            for hz, db in parts
        ]
        self.samples += [
            sum(a * math.sin(w * k + p) for w, a, p in waves) for k in range(self.count(ms))
        ]
        return self

    def key(
        self,
        digit: str,
        ms: float,
        *,
        row_db: float = LEVEL,
        col_db: float = LEVEL,
        row_off: float = 0.0,
        col_off: float = 0.0,
    ) -> Signal:
        row, col = freqs(digit)
        return self.sines(ms, (row * (1 + row_off), row_db), (col * (1 + col_off), col_db))

    def noise(self, dbfs: float) -> Signal:
        """Add white Gaussian noise with the power of a sine at ``dbfs``."""
        sd = amplitude(dbfs) / math.sqrt(2)
        self.samples = [v + self.rng.gauss(0, sd) for v in self.samples]
        return self

    def pcm(self) -> bytes:
        return array("h", (max(-32768, min(32767, round(v))) for v in self.samples)).tobytes()


def feed_in_chunks(pcm: bytes, rate: int, sizes: list[int]) -> list[Tone]:
    """Feed ``pcm`` in chunks of ``sizes`` samples (cycled), then flush."""
    detector = DtmfDetector(rate)
    tones: list[Tone] = []
    pos, i, total = 0, 0, len(pcm) // 2
    while pos < total:
        n = min(sizes[i % len(sizes)], total - pos)
        tones += detector.feed(pcm[2 * pos : 2 * (pos + n)], pos)
        pos, i = pos + n, i + 1
    return tones + detector.flush()


def digits(tones: list[Tone]) -> str:
    return "".join(t.digit for t in tones)


def assert_near(tone: Tone, start: int, end: int, rate: int) -> None:
    """The tone's bounds are the true ones to within one block."""
    n = block_size(rate)
    assert abs(tone.start - start) <= n
    assert abs(tone.end - end) <= n


# -- every key ---------------------------------------------------------------------------


@pytest.mark.parametrize("rate", RATES)
def test_every_key_is_detected_once_however_the_audio_is_chunked(rate: int) -> None:
    signal = Signal(rate, seed=rate).silence(30)
    bounds = []
    for n, digit in enumerate(KEYPAD):
        start = len(signal)
        signal.key(digit, 60 + 40 * (n % 2))  # 60 ms and 100 ms
        bounds.append((start, len(signal)))
        signal.silence(60)
    pcm = signal.pcm()

    whole = detect_dtmf(pcm, rate)
    assert digits(whole) == KEYPAD
    for tone, (start, end) in zip(whole, bounds, strict=True):
        assert_near(tone, start, end, rate)
    assert feed_in_chunks(pcm, rate, [rate // 50]) == whole  # 20 ms frames
    assert feed_in_chunks(pcm, rate, [37]) == whole
    assert feed_in_chunks(pcm, rate, [1, 333, 7, 160, 2]) == whole


@pytest.mark.parametrize("rate", RATES)
def test_a_card_number_prefix_comes_back_in_order_with_its_timing(rate: int) -> None:
    signal = Signal(rate, seed=1).silence(50)
    bounds = []
    for digit in "4111":
        start = len(signal)
        signal.key(digit, 70).silence(50)
        bounds.append((start, start + signal.count(70)))
    tones = detect_dtmf(signal.pcm(), rate)
    assert digits(tones) == "4111"
    for tone, (start, end) in zip(tones, bounds, strict=True):
        assert_near(tone, start, end, rate)
    assert all(a.end <= b.start for a, b in itertools.pairwise(tones))


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("lead_ms", [0, 3, 6.5, 9, 11])
def test_a_tone_shorter_than_q24_operate_time_is_not_reported(rate: int, lead_ms: float) -> None:
    # 20 ms is under Q.24's 23 ms non-operate time; the lead shifts it across block edges.
    signal = Signal(rate, seed=int(lead_ms * 10)).silence(lead_ms).key("5", 20).silence(60)
    assert detect_dtmf(signal.pcm(), rate) == []


@pytest.mark.parametrize("rate", RATES)
def test_a_40_ms_tone_is_reported(rate: int) -> None:
    for lead in (0, 2, 5, 8, 12):
        signal = Signal(rate, seed=lead).silence(lead).key("9", 40).silence(60)
        assert digits(detect_dtmf(signal.pcm(), rate)) == "9"


@pytest.mark.parametrize("rate", RATES)
def test_a_key_held_for_400_ms_is_one_tone(rate: int) -> None:
    signal = Signal(rate, seed=2).silence(20).key("#", 400).silence(80)
    tones = detect_dtmf(signal.pcm(), rate)
    assert digits(tones) == "#"
    assert_near(tones[0], signal.count(20), signal.count(420), rate)


def test_a_10_ms_break_does_not_split_a_tone_and_a_40_ms_pause_does() -> None:
    rate = 8000
    broken = Signal(rate, seed=3).key("7", 60).silence(10).key("7", 60).silence(60)
    assert digits(detect_dtmf(broken.pcm(), rate)) == "7"
    paused = Signal(rate, seed=3).key("7", 60).silence(40).key("7", 60).silence(60)
    assert digits(detect_dtmf(paused.pcm(), rate)) == "77"


def test_a_key_followed_by_another_without_a_pause_gives_both() -> None:
    signal = Signal(8000, seed=4).key("1", 80).key("2", 80).silence(60)
    assert digits(detect_dtmf(signal.pcm(), 8000)) == "12"


# -- Q.24 limits -------------------------------------------------------------------------


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(
    ("row_db", "col_db", "found"),
    [
        (LEVEL, LEVEL - 10, False),  # column 10 dB under the row: beyond normal twist
        (LEVEL - 10, LEVEL, False),  # row 10 dB under the column: beyond reverse twist
        (LEVEL, LEVEL - 8, True),  # normal twist of 8 dB: Q.24 accepts
        (LEVEL - 4, LEVEL, True),  # reverse twist of 4 dB: Q.24 accepts
    ],
)
def test_twist_limits(rate: int, row_db: float, col_db: float, found: bool) -> None:
    for digit in "1590D":
        signal = Signal(rate, seed=ord(digit)).silence(20)
        signal.key(digit, 80, row_db=row_db, col_db=col_db).silence(60)
        assert digits(detect_dtmf(signal.pcm(), rate)) == (digit if found else "")


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(
    ("row_off", "col_off", "found"),
    [
        (0.015, 0.015, True),
        (-0.015, -0.015, True),
        (0.015, -0.015, True),
        (0.04, 0.0, False),
        (-0.04, 0.0, False),
        (0.0, 0.04, False),
        (0.0, -0.04, False),
        (0.04, 0.04, False),
        (-0.04, -0.04, False),
    ],
)
def test_frequency_tolerance(rate: int, row_off: float, col_off: float, found: bool) -> None:
    for digit in KEYPAD:
        signal = Signal(rate, seed=ord(digit)).silence(20)
        signal.key(digit, 80, row_off=row_off, col_off=col_off).silence(60)
        assert digits(detect_dtmf(signal.pcm(), rate)) == (digit if found else ""), digit


@pytest.mark.parametrize("rate", RATES)
def test_keys_are_found_in_noise_at_15_db_snr(rate: int) -> None:
    signal = Signal(rate, seed=15).silence(40)
    for digit in KEYPAD:
        signal.key(digit, 70).silence(60)
    signal.noise(LEVEL + 3 - 15)  # the pair's power is LEVEL + 3 dB
    assert digits(detect_dtmf(signal.pcm(), rate)) == KEYPAD


@pytest.mark.parametrize("rate", RATES)
def test_a_quiet_key_at_minus_36_dbm0_is_found_and_a_quieter_one_is_not(rate: int) -> None:
    # -36 dBm0 is -39.17 dBFS in G.711 terms.
    quiet = Signal(rate, seed=5).silence(20).key("3", 80, row_db=-38.5, col_db=-38.5)
    assert digits(detect_dtmf(quiet.silence(60).pcm(), rate)) == "3"
    quieter = Signal(rate, seed=5).silence(20).key("3", 80, row_db=-45, col_db=-45)
    assert detect_dtmf(quieter.silence(60).pcm(), rate) == []


# -- what is not DTMF ------------------------------------------------------------------


@pytest.mark.parametrize("rate", RATES)
def test_silence_and_white_noise_give_nothing(rate: int) -> None:
    assert detect_dtmf(bytes(2 * rate), rate) == []
    for dbfs in (-50, -30, -15, -5):
        noise = Signal(rate, seed=-dbfs).silence(1000).noise(dbfs)
        assert detect_dtmf(noise.pcm(), rate) == [], dbfs


@pytest.mark.parametrize("rate", RATES)
def test_one_dtmf_frequency_alone_is_not_a_key(rate: int) -> None:
    for hz in ROW_HZ + COLUMN_HZ:
        signal = Signal(rate, seed=hz).sines(300, (hz, -6))
        assert detect_dtmf(signal.pcm(), rate) == [], hz


@pytest.mark.parametrize("rate", RATES)
def test_the_mask_beep_is_not_a_key(rate: int) -> None:
    beep = mask_pcm16(bytes(2 * rate), rate, [(0.1, 0.9)], mode="beep")
    assert beep != bytes(2 * rate)
    assert detect_dtmf(beep, rate) == []


#: Formants (Hz) of some English vowels (Peterson and Barney's averages for men).
VOWELS = {
    "i": (270.0, 2290.0, 3010.0),
    "a": (730.0, 1090.0, 2440.0),
    "u": (300.0, 870.0, 2240.0),
    "ae": (660.0, 1720.0, 2410.0),
    "er": (490.0, 1350.0, 1690.0),
}


def vowel(rate: int, f0: float, formants: tuple[float, ...], ms: float) -> bytes:
    """A harmonic series on ``f0`` up to 3.4 kHz, shaped by ``formants``, with 1 % vibrato."""
    rng = random.Random(int(f0))  # noqa: S311 - reproducible test audio, not a secret
    harmonics = []
    for h in range(1, int(3400 / f0) + 1):
        if formants:  # resonances about 40 Hz + 5 % wide, on a source falling 3 dB an octave
            gain = sum(
                1 / math.sqrt(1 + ((h * f0 - f) / (40 + 0.05 * f)) ** 2) for f in formants
            ) / math.sqrt(h)
        else:
            gain = 1 / h
        harmonics.append((h, gain, rng.uniform(0, 2 * math.pi)))
    scale = amplitude(-12) / math.sqrt(sum(g * g for _, g, _ in harmonics))
    samples, phase = [], 0.0
    for k in range(round(ms * rate / 1000)):
        phase += 2 * math.pi * f0 * (1 + 0.01 * math.sin(2 * math.pi * 5 * k / rate)) / rate
        samples.append(scale * sum(g * math.sin(h * phase + p) for h, g, p in harmonics))
    return array("h", (round(v) for v in samples)).tobytes()


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("f0", [100.0, 150.0, 175.0, 233.0])
def test_a_voiced_vowel_is_not_a_key(rate: int, f0: float) -> None:
    # A vowel with two lone harmonics on a key's two frequencies would be a DTMF pair
    # to any Q.24 receiver (talk-off); these are ordinary vowels and a plain 1/h series.
    assert detect_dtmf(vowel(rate, f0, (), 400), rate) == []
    for name, formants in VOWELS.items():
        assert detect_dtmf(vowel(rate, f0, formants, 300), rate) == [], name


# -- μ-law, masking --------------------------------------------------------------------


def test_mulaw_audio_is_detected_after_decoding() -> None:
    signal = Signal(8000, seed=6).silence(20)
    for digit in "0123456789*#":
        signal.key(digit, 70).silence(60)
    mulaw = mulaw_encode(signal.pcm())
    assert digits(detect_dtmf_mulaw(mulaw, 8000)) == "0123456789*#"
    detector = DtmfDetector(8000)
    tones = []
    for pos in range(0, len(mulaw), 160):  # 20 ms Twilio frames
        tones += detector.feed_mulaw(mulaw[pos : pos + 160], pos)
    assert digits(tones + detector.flush()) == "0123456789*#"


@pytest.mark.parametrize("rate", RATES)
def test_silencing_the_padded_intervals_removes_every_tone(rate: int) -> None:
    signal = Signal(rate, seed=7).silence(30)
    for n, digit in enumerate("4111*#9"):
        signal.key(digit, 45 + 20 * n).silence(50)
    signal.sines(200, (300, -20), (2000, -25))  # something else that must stay
    pcm = signal.pcm()
    tones = detect_dtmf(pcm, rate)
    assert digits(tones) == "4111*#9"
    intervals = tone_intervals(tones, rate)
    masked = mask_pcm16(pcm, rate, intervals, mode="silence")
    assert detect_dtmf(masked, rate) == []
    assert masked[-2 * signal.count(150) :] == pcm[-2 * signal.count(150) :]
    # The padding is one block each side, in seconds.
    n = block_size(rate)
    assert intervals[0] == ((tones[0].start - n) / rate, (tones[0].end + n) / rate)
    assert tone_intervals(tones, rate, pad_blocks=0)[0] == (
        tones[0].start / rate,
        tones[0].end / rate,
    )


def test_tone_intervals_merge_and_clip_at_zero() -> None:
    tones = [Tone("1", 10, 300), Tone("1", 350, 600)]
    assert tone_intervals(tones, 8000) == [(0.0, 705 / 8000)]
    assert tone_intervals([], 8000) == []


# -- streaming ---------------------------------------------------------------------------


def _mixed_signal() -> bytes:
    signal = Signal(8000, seed=8).silence(15)
    for digit in "4*1#":
        signal.key(digit, 55).silence(45)
    return signal.noise(-35).pcm()


MIXED = _mixed_signal()
MIXED_TONES = detect_dtmf(MIXED, 8000)


def test_the_streaming_fixture_has_its_tones() -> None:
    assert digits(MIXED_TONES) == "4*1#"


# The bank fixture only chooses the filters: the same for every example.
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=30))
def test_any_chunking_gives_the_same_tones(sizes: list[int]) -> None:
    assert feed_in_chunks(MIXED, 8000, sizes) == MIXED_TONES


def test_a_gap_in_offsets_counts_as_silence() -> None:
    rate = 8000
    pcm = Signal(rate, seed=9).key("6", 80).silence(100).key("6", 80).silence(30).pcm()
    gap = len(pcm) // 2 + 1234
    late = Signal(rate, seed=10).key("B", 80).silence(60).pcm()
    whole = detect_dtmf(pcm + bytes(2 * 1234) + late, rate)
    detector = DtmfDetector(rate)
    tones = detector.feed(pcm, 0) + detector.feed(late, gap) + detector.flush()
    assert tones == whole
    assert digits(tones) == "66B"


def test_offsets_start_anywhere_and_tones_are_in_call_samples() -> None:
    pcm = Signal(8000, seed=11).silence(20).key("8", 80).silence(60).pcm()
    detector = DtmfDetector(8000)
    shifted = detector.feed(pcm, 80_000) + detector.flush()
    (tone,) = detect_dtmf(pcm, 8000)
    assert shifted == [Tone("8", tone.start + 80_000, tone.end + 80_000)]


def test_settled_never_passes_a_tone_reported_later() -> None:
    detector = DtmfDetector(8000)
    n = detector.block_size
    marks: list[int] = []
    found: list[tuple[Tone, int]] = []  # each tone with how many marks came before it
    for pos in range(0, len(MIXED) // 2, 160):
        found += [(tone, len(marks)) for tone in detector.feed(MIXED[2 * pos : 2 * pos + 320], pos)]
        marks.append(detector.settled)
    found += [(tone, len(marks)) for tone in detector.flush()]
    assert marks == sorted(marks)
    assert digits([t for t, _ in found]) == "4*1#"
    for tone, before in found:
        assert all(mark <= max(0, tone.start - n) for mark in marks[:before])
    assert detector.settled == len(MIXED) // 2


# -- bad input ---------------------------------------------------------------------------


def _message(excinfo: pytest.ExceptionInfo[InvalidInputError]) -> str:
    text = str(excinfo.value)
    assert "\\x" not in text  # no audio bytes in the message
    assert "b'" not in text
    return text


def test_bad_audio_and_offsets_are_refused_with_counts_only() -> None:
    detector = DtmfDetector(8000)
    with pytest.raises(InvalidInputError) as excinfo:
        detector.feed(b"\x07\x01\x02", 0)
    assert "3 bytes" in _message(excinfo)
    for offset in (-1, True, 1.5):
        with pytest.raises(InvalidInputError) as excinfo:
            detector.feed(b"\x00\x00", offset)  # type: ignore[arg-type]  # the point of the test
        _message(excinfo)
    with pytest.raises(InvalidInputError):
        detector.feed("\x00\x00", 0)  # type: ignore[arg-type]  # text is not audio
    assert detector.feed(bytes(320), 100) == []
    for offset in (99, 100, 259):  # back before sample 260, the next expected
        with pytest.raises(InvalidInputError) as excinfo:
            detector.feed(bytes(320), offset)
        assert "260" in _message(excinfo)
    assert detector.flush() == []
    assert detector.flush() == []
    with pytest.raises(InvalidInputError):
        detector.feed(bytes(2), 500)


@pytest.mark.parametrize("rate", [0, -8000, 7999, 48001, 8000.0, True, "8000"])
def test_bad_sample_rates_are_refused(rate: object) -> None:
    for call in (
        lambda: DtmfDetector(rate),  # type: ignore[arg-type]  # the point of the test
        lambda: detect_dtmf(bytes(2), rate),  # type: ignore[arg-type]  # same
        lambda: block_size(rate),  # type: ignore[arg-type]  # same
        lambda: tone_intervals([], rate),  # type: ignore[arg-type]  # same
    ):
        with pytest.raises(InvalidInputError):
            call()


def test_bad_tones_and_padding_are_refused() -> None:
    for digit, start, end in (("E", 0, 1), ("11", 0, 1), ("1", -1, 1), ("1", 5, 5), ("1", 0, 1.0)):
        with pytest.raises(InvalidInputError):
            Tone(digit, start, end)  # type: ignore[arg-type]  # the point of the test
    for pad in (-1, 0.5, True):
        with pytest.raises(InvalidInputError):
            tone_intervals([Tone("1", 0, 1)], 8000, pad_blocks=pad)  # type: ignore[arg-type]  # same
    with pytest.raises(InvalidInputError):
        detect_dtmf_mulaw("abc", 8000)  # type: ignore[arg-type]  # text is not audio


def test_block_size_scales_with_the_rate() -> None:
    assert block_size(8000) == 105
    assert block_size(16000) == 210
    assert DtmfDetector(16000).block_size == 210
