"""Audio masking: intervals from findings and word timings; PCM16 and μ-law masked to the sample."""

from __future__ import annotations

import itertools
import math
import random
import struct
import warnings
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.errors import InvalidInputError
from callvault.redact import Finding, Segment, Word, word_spans
from callvault.redact._audio import (
    AudioMasker,
    Encoding,
    Mode,
    mask_intervals,
    mask_intervals_for_segments,
    mask_mulaw,
    mask_pcm16,
    mulaw_decode,
    mulaw_encode,
    sample_ranges,
)

PEAK = 32767 * 10 ** (-12 / 20)  # the beep's level: -12 dBFS


def words_at(*timings: tuple[str, float, float]) -> list[Word]:
    return [Word(text, start, end) for text, start, end in timings]


def finding_over(words: list[Word], first: int, last: int) -> Finding:
    """A finding over words ``first`` to ``last`` (inclusive), by their character spans."""
    spans = word_spans(words)
    return Finding(spans[first][0], spans[last][1], "CARD_NUMBER", 0.9)


def noise(n_bytes: int, seed: int = 1) -> bytes:
    """Random audio without zero samples, so any change shows."""
    out = array("h", random.Random(seed).randbytes(n_bytes))  # noqa: S311 - reproducible test audio, not a secret
    for i, v in enumerate(out):
        if v == 0:
            out[i] = 1
    return out.tobytes()


def same(got: list[tuple[float, float]], want: list[tuple[float, float]]) -> bool:
    """Interval lists equal to within float noise."""
    return len(got) == len(want) and all(
        math.isclose(a, c, abs_tol=1e-9) and math.isclose(b, d, abs_tol=1e-9)
        for (a, b), (c, d) in zip(got, want, strict=True)
    )


def pcm(data: bytes) -> array[int]:
    return array("h", data)


def goertzel(samples: list[float] | array[int], rate: int, freq: float) -> float:
    """Power of ``samples`` at ``freq`` Hz (a one-bin DFT)."""
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


# -- intervals -------------------------------------------------------------------------

CALL = words_at(
    ("my", 0.5, 0.7),
    ("card", 0.8, 1.1),
    ("is", 1.2, 1.3),
    ("four", 2.0, 2.3),
    ("one", 2.4, 2.6),
    ("one", 2.7, 3.0),
    ("thanks", 5.0, 5.4),
)


def test_no_findings_no_intervals() -> None:
    assert mask_intervals([], CALL) == []
    assert mask_intervals([], []) == []


def test_one_word_is_padded_200_ms_each_side() -> None:
    ((lo, hi),) = mask_intervals([finding_over(CALL, 3, 3)], CALL)
    assert (lo, hi) == pytest.approx((1.8, 2.5))


def test_a_finding_over_several_words_covers_them_all() -> None:
    ((lo, hi),) = mask_intervals([finding_over(CALL, 3, 5)], CALL)
    assert (lo, hi) == pytest.approx((1.8, 3.2))


def test_any_character_overlap_selects_the_word() -> None:
    spans = word_spans(CALL)
    inside = Finding(spans[4][0] + 1, spans[4][0] + 2, "X", 1.0)  # the "n" of "one"
    assert same(mask_intervals([inside], CALL), [(2.2, 2.8)])
    space = Finding(spans[3][1], spans[4][0], "X", 1.0)  # only the space between two words
    assert mask_intervals([space], CALL) == []
    empty = Finding(spans[3][0] + 1, spans[3][0] + 1, "X", 1.0)
    assert mask_intervals([empty], CALL) == []


def test_gaps_under_600_ms_merge() -> None:
    words = words_at(("a", 1.0, 1.5), ("b", 2.4, 2.6))  # padded: ends 1.7, starts 2.2: 0.5 apart
    both = [finding_over(words, 0, 0), finding_over(words, 1, 1)]
    assert same(mask_intervals(both, words), [(0.8, 2.8)])


@pytest.mark.parametrize("start", [2.5, 2.6])  # padded gap exactly 600 ms, and 700 ms
def test_gaps_of_600_ms_or_more_do_not_merge(start: float) -> None:
    words = words_at(("a", 1.0, 1.5), ("b", start, 3.0))
    both = [finding_over(words, 0, 0), finding_over(words, 1, 1)]
    assert same(mask_intervals(both, words), [(0.8, 1.7), (start - 0.2, 3.2)])


def test_overlapping_and_unsorted_findings() -> None:
    findings = [finding_over(CALL, 5, 5), finding_over(CALL, 0, 1), finding_over(CALL, 3, 4)]
    out = mask_intervals(findings, CALL)
    # "my card" [0.3, 1.3] and "four one one" [1.8, 3.2] are 0.5 s apart: one interval.
    assert same(out, [(0.3, 3.2)])


def test_clipped_at_zero_and_at_the_duration() -> None:
    words = words_at(("four", 0.05, 0.3), ("one", 9.5, 9.9), ("late", 12.0, 12.5))
    findings = [finding_over(words, 0, 0), finding_over(words, 1, 1), finding_over(words, 2, 2)]
    assert same(mask_intervals(findings, words, duration=10.0), [(0.0, 0.5), (9.3, 10.0)])
    # Without a duration only the start is clipped.
    assert same(mask_intervals(findings, words)[-1:], [(11.8, 12.7)])


def test_custom_padding_and_merge_gap() -> None:
    findings = [finding_over(CALL, 0, 0), finding_over(CALL, 3, 3)]
    assert same(
        mask_intervals(findings, CALL, padding=0.0, merge_gap=0.0), [(0.5, 0.7), (2.0, 2.3)]
    )
    assert same(mask_intervals(findings, CALL, padding=0.25, merge_gap=2.0), [(0.25, 2.55)])


def test_segments_each_with_their_own_findings() -> None:
    first = Segment("s1", tuple(CALL[:3]))
    second = Segment("s2", tuple(CALL[3:]))
    items = [
        (first, [finding_over(list(first.words), 1, 1)]),
        (second, [finding_over(list(second.words), 0, 2)]),
        (Segment("s3", (Word("nothing", 6.0, 6.5),)), []),
    ]
    # "card" [0.6, 1.3] and "four one one" [1.8, 3.2], 0.5 s apart, merge across segments.
    assert same(mask_intervals_for_segments(items), [(0.6, 3.2)])
    assert same(mask_intervals_for_segments(items, merge_gap=0.4), [(0.6, 1.3), (1.8, 3.2)])
    assert mask_intervals_for_segments([]) == []


@given(
    gaps=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=30),
    picks=st.lists(st.integers(0, 29), max_size=10),
    padding=st.floats(0.0, 0.5),
    merge_gap=st.floats(0.0, 1.0),
)
def test_intervals_cover_every_hit_word_sorted_and_apart(
    gaps: list[float], picks: list[int], padding: float, merge_gap: float
) -> None:
    t = 0.0
    words = []
    for i, gap in enumerate(gaps):
        words.append(Word(f"w{i}", t + gap, t + gap + 0.3))
        t += gap + 0.3
    hit = sorted({p for p in picks if p < len(words)})
    out = mask_intervals(
        [finding_over(words, i, i) for i in hit], words, padding=padding, merge_gap=merge_gap
    )
    for i in hit:
        w = words[i]
        assert any(lo <= max(0, w.start - padding) and w.end + padding <= hi for lo, hi in out)
    for (_, hi), (lo, _) in itertools.pairwise(out):
        assert lo - hi >= merge_gap - 1e-6
    assert all(0 <= lo <= hi for lo, hi in out)
    assert (out == []) == (hit == [])


@pytest.mark.parametrize(
    ("words", "findings", "kwargs"),
    [
        (words_at(("a", math.nan, 1.0)), [], {}),
        (words_at(("a", 0.0, math.inf)), [], {}),
        (words_at(("a", 2.0, 1.0)), [], {}),
        (CALL, [Finding(5, 2, "X", 1.0)], {}),
        (CALL, [Finding(-1, 2, "X", 1.0)], {}),
        (CALL, [], {"padding": -0.1}),
        (CALL, [], {"padding": math.nan}),
        (CALL, [], {"merge_gap": math.inf}),
        (CALL, [], {"duration": -1.0}),
        (CALL, [], {"duration": math.nan}),
    ],
)
def test_bad_interval_input_is_refused(
    words: list[Word], findings: list[Finding], kwargs: dict[str, float]
) -> None:
    with pytest.raises(InvalidInputError):
        mask_intervals(findings, words, **kwargs)


def test_interval_errors_name_indexes_not_text() -> None:
    words = words_at(("secret", 0.0, 1.0), ("fourtytwo", 3.0, 2.0))
    with pytest.raises(InvalidInputError) as exc:
        mask_intervals([], words)
    assert "word 1" in exc.value.message
    assert "fourtytwo" not in exc.value.message
    assert "secret" not in exc.value.message


# -- sample ranges ---------------------------------------------------------------------


def test_sample_ranges_cover_every_sample_whose_period_overlaps() -> None:
    assert sample_ranges([(0.5, 1.0)], 8000) == [(4000, 8000)]
    # 0.00010 s is 0.8 of a sample at 8 kHz: samples 0 (whose period holds it) up to 1.
    assert sample_ranges([(0.0001, 0.00026)], 8000) == [(0, 3)]
    assert sample_ranges([(-1.0, 0.25)], 16000) == [(0, 4000)]
    assert sample_ranges([(-2.0, -1.0), (1.0, 1.0)], 8000) == []


def test_sample_ranges_sort_and_merge() -> None:
    assert sample_ranges([(2.0, 3.0), (0.0, 1.0), (0.5, 1.5), (3.0, 4.0)], 100) == [
        (0, 150),
        (200, 400),
    ]


# -- μ-law -----------------------------------------------------------------------------


def test_mulaw_known_answers() -> None:
    samples = [0, 1, 3, -1, -4, 32767, -32768, 32124, -32124, 100, -100, 8000]
    want = bytes([0xFF, 0xFF, 0xFF, 0x7E, 0x7E, 0x80, 0x00, 0x80, 0x00, 0xF2, 0x72, 0xA0])
    assert mulaw_encode(struct.pack(f"<{len(samples)}h", *samples)) == want
    decoded = struct.unpack("<6h", mulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00, 0xF2, 0x72])))
    assert decoded == (0, 0, 32124, -32124, 104, -104)


def test_mulaw_decode_then_encode_is_the_identity_but_for_negative_zero() -> None:
    codes = bytes(c for c in range(256) if c != 0x7F)
    assert mulaw_encode(mulaw_decode(codes)) == codes
    assert mulaw_encode(mulaw_decode(b"\x7f")) == b"\xff"


def test_mulaw_matches_audioop_where_available() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop", reason="audioop is gone (Python 3.13+)")
    every = struct.pack("<65536h", *range(-32768, 32768))
    assert mulaw_encode(every) == audioop.lin2ulaw(every, 2)
    assert mulaw_decode(bytes(range(256))) == audioop.ulaw2lin(bytes(range(256)), 2)


def test_mulaw_encode_refuses_half_a_sample() -> None:
    with pytest.raises(InvalidInputError):
        mulaw_encode(b"\x01\x02\x03")


# -- PCM16 masking ---------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_silence_replaces_exactly_the_masked_samples(rate: int) -> None:
    data = noise(2 * rate * 2)
    intervals = [(0.1, 0.35), (1.2, 1.2004), (1.9, 5.0)]
    ranges = sample_ranges(intervals, rate)
    out, before = pcm(mask_pcm16(data, rate, intervals, mode="silence")), pcm(data)
    masked = {i for a, b in ranges for i in range(a, b)}
    for i, (x, y) in enumerate(zip(before, out, strict=True)):
        assert y == (0 if i in masked else x), i


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 48000])
def test_beep_replaces_exactly_the_masked_samples(rate: int) -> None:
    data = noise(2 * rate)
    intervals = [(0.1, 0.35), (0.6, 0.6005)]
    (a, b), (c, d) = sample_ranges(intervals, rate)
    out, before = pcm(mask_pcm16(data, rate, intervals)), pcm(data)
    assert out[:a] == before[:a]
    assert out[b:c] == before[b:c]
    assert out[d:] == before[d:]
    assert out[a:b] == pcm(mask_pcm16(bytes(2 * (b - a)), rate, [(0, (b - a) / rate)]))
    fade = round(0.01 * rate)
    for k in range(fade, b - a - fade):  # between the fades: the full-level sine
        want = PEAK * math.sin(2 * math.pi * 1000 * k / rate)
        assert abs(out[a + k] - want) <= 1, k


def test_beep_fades_in_and_out_over_10_ms() -> None:
    rate = 16000
    beep = pcm(mask_pcm16(bytes(2 * rate), rate, [(0.0, 0.5)]))[:8000]
    peaks = [max(abs(v) for v in beep[i : i + 16]) for i in range(0, 8000, 16)]  # per 1 ms
    assert peaks[0] < 0.05 * PEAK
    assert all(p < q for p, q in itertools.pairwise(peaks[:10]))  # rising
    assert all(abs(p - PEAK) <= 1 for p in peaks[10:-10])
    assert all(p > q for p, q in itertools.pairwise(peaks[-10:]))  # falling
    assert peaks[-1] < 0.05 * PEAK
    assert abs(beep[0]) < 10
    assert abs(beep[-1]) < 0.05 * PEAK


@pytest.mark.parametrize("rate", [8000, 22050])
@pytest.mark.parametrize("seconds", [0.004, 0.015, 0.02, 0.0371, 0.25])
def test_the_beep_is_a_raised_cosine_faded_sine(rate: int, seconds: float) -> None:
    ((a, b),) = sample_ranges([(0.1, 0.1 + seconds)], rate)
    out = pcm(mask_pcm16(bytes(2 * rate), rate, [(0.1, 0.1 + seconds)]))
    n, fade = b - a, round(0.01 * rate)

    def ramp(j: int) -> float:
        return 0.5 - 0.5 * math.cos(math.pi * (j + 0.5) / fade) if j < fade else 1.0

    for k in range(n):
        gain = min(ramp(k), ramp(n - 1 - k))
        want = PEAK * math.sin(2 * math.pi * 1000 * k / rate) * gain
        assert abs(out[a + k] - want) <= 1, k


def test_a_mask_shorter_than_both_fades_still_fades() -> None:
    beep = pcm(mask_pcm16(bytes(2 * 8000), 8000, [(0.0, 0.005)]))[:40]
    assert max(abs(v) for v in beep) < PEAK
    assert abs(beep[0]) < 0.05 * PEAK
    assert abs(beep[-1]) < 0.05 * PEAK


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100])
def test_the_beep_is_1_khz_at_minus_12_dbfs(rate: int) -> None:
    beep = pcm(mask_pcm16(bytes(2 * rate), rate, [(0.0, 1.0)]))
    middle = beep[rate // 10 : rate // 10 * 9]  # between the fades
    at = {f: goertzel(middle, rate, f) for f in (500, 900, 1000, 1100, 2000)}
    assert all(at[1000] > 1000 * p for f, p in at.items() if f != 1000)
    rms = math.sqrt(sum(v * v for v in middle) / len(middle))
    assert 20 * math.log10(rms * math.sqrt(2) / 32767) == pytest.approx(-12.0, abs=0.05)
    # Sign changes: two per cycle.
    changes = sum(1 for x, y in itertools.pairwise(middle) if (x < 0) != (y < 0))
    assert abs(changes - 2 * 1000 * len(middle) / rate) <= 2


def test_stereo_masks_both_channels_alike() -> None:
    rate = 8000
    data = noise(2 * 2 * rate)
    out, before = pcm(mask_pcm16(data, rate, [(0.25, 0.5)], channels=2)), pcm(data)
    mono = pcm(mask_pcm16(bytes(2 * rate), rate, [(0.25, 0.5)]))
    assert out[0::2][2000:4000] == out[1::2][2000:4000] == mono[2000:4000]
    assert out[:4000] == before[:4000]
    assert out[8000:] == before[8000:]


def test_nothing_to_mask_returns_the_input() -> None:
    data = noise(1600)
    assert mask_pcm16(data, 8000, []) == data
    assert mask_pcm16(data, 8000, [(5.0, 6.0)]) == data
    assert mask_mulaw(data, 8000, [(0.5, 0.6)]) == data
    assert mask_pcm16(b"", 8000, [(0.0, 1.0)]) == b""


# -- μ-law masking ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["beep", "silence"])
def test_mulaw_masks_exactly_the_masked_samples(mode: Mode) -> None:
    rate = 8000
    data = noise(rate * 3, seed=2)
    intervals = [(0.2, 0.7), (2.5, 2.50001)]
    out = mask_mulaw(data, rate, intervals, mode=mode)
    want_pcm = mask_pcm16(bytes(2 * len(data)), rate, intervals, mode="beep")
    ranges = sample_ranges(intervals, rate)
    masked = {i for a, b in ranges for i in range(a, b)}
    for i, (x, y) in enumerate(zip(data, out, strict=True)):
        if i not in masked:
            assert y == x, i
        elif mode == "silence":
            assert y == 0xFF, i
        else:  # the μ-law code of the PCM16 beep
            assert y == mulaw_encode(want_pcm[2 * i : 2 * i + 2])[0], i


def test_mulaw_beep_decodes_to_1_khz() -> None:
    beep = pcm(mulaw_decode(mask_mulaw(bytes([0xFF]) * 8000, 8000, [(0.0, 1.0)])))[800:7200]
    at = {f: goertzel(beep, 8000, f) for f in (500, 1000, 1500, 2000, 3000)}
    assert all(at[1000] > 1000 * p for f, p in at.items() if f != 1000)


# -- chunks ----------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    chunk=st.integers(1, 700),
    encoding=st.sampled_from(["pcm16", "mulaw"]),
    mode=st.sampled_from(["beep", "silence"]),
)
def test_chunks_mask_as_the_whole_buffer_does(chunk: int, encoding: Encoding, mode: Mode) -> None:
    rate = 8000
    intervals = [(0.1, 0.13), (0.3, 0.7), (0.8, 0.805), (0.9, 2.0)]  # one shorter than its fades
    whole_fn = mask_pcm16 if encoding == "pcm16" else mask_mulaw
    width = 2 if encoding == "pcm16" else 1
    data = noise(width * rate, seed=3)
    whole = whole_fn(data, rate, intervals, mode=mode)
    masker = AudioMasker(rate, intervals, encoding=encoding, mode=mode)
    step = chunk * width
    parts = [masker.mask(data[i : i + step], i // width) for i in range(0, len(data), step)]
    assert b"".join(parts) == whole


def test_the_masker_takes_intervals_learnt_later() -> None:
    masker = AudioMasker(8000, [(0.0, 0.1)], mode="silence")
    frame = noise(320)
    assert masker.mask(frame, 1600) == frame
    masker.add([(0.19, 0.25), (0.05, 0.12)])
    assert masker.ranges == [(0, 960), (1520, 2000)]
    assert pcm(masker.mask(frame, 1600)) == array("h", [0] * 160)
    assert masker.mask(frame, 2000) == frame


# -- properties ------------------------------------------------------------------------

interval = st.tuples(st.floats(-0.1, 0.6), st.floats(0.0, 0.3)).map(lambda t: (t[0], t[0] + t[1]))


@settings(max_examples=60, deadline=None)
@given(
    rate=st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000]),
    intervals=st.lists(interval, max_size=5),
    mode=st.sampled_from(["beep", "silence"]),
    channels=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_samples_outside_the_intervals_never_change(
    rate: int, intervals: list[tuple[float, float]], mode: Mode, channels: int, seed: int
) -> None:
    n = rate // 2  # half a second
    data = noise(2 * n * channels, seed)
    out = pcm(mask_pcm16(data, rate, intervals, mode=mode, channels=channels))
    before = pcm(data)
    masked = {i for a, b in sample_ranges(intervals, rate) for i in range(a, min(b, n))}
    for i in range(n):
        frame = out[i * channels : (i + 1) * channels]
        if i in masked:
            assert all(abs(v) <= PEAK + 1 for v in frame)
            assert mode == "beep" or frame == array("h", [0] * channels)
            assert len(set(frame)) == 1
        else:
            assert frame == before[i * channels : (i + 1) * channels]
    # Masking is idempotent.
    again = mask_pcm16(out.tobytes(), rate, intervals, mode=mode, channels=channels)
    assert again == out.tobytes()


@settings(max_examples=60, deadline=None)
@given(intervals=st.lists(interval, max_size=5), seed=st.integers(0, 2**16))
def test_mulaw_outside_the_intervals_never_changes(
    intervals: list[tuple[float, float]], seed: int
) -> None:
    data = noise(4000, seed)
    out = mask_mulaw(data, 8000, intervals)
    masked = {i for a, b in sample_ranges(intervals, 8000) for i in range(a, b)}
    assert all(out[i] == data[i] for i in range(len(data)) if i not in masked)


# -- bad input -------------------------------------------------------------------------

SECRET = bytes(range(1, 200)) + b"\x01"  # 200 bytes of "audio" that must not be echoed


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: mask_pcm16(SECRET[:199], 8000, []), "data"),
        (lambda: mask_pcm16(SECRET, 8000, [], channels=3), "data"),
        (lambda: mask_pcm16(SECRET, 0, []), "sample_rate"),
        (lambda: mask_pcm16(SECRET, -8000, []), "sample_rate"),
        (lambda: mask_pcm16(SECRET, 8000.0, []), "sample_rate"),  # type: ignore[arg-type]
        (lambda: mask_pcm16(SECRET, sample_rate=True, intervals=[]), "sample_rate"),
        (lambda: mask_pcm16(SECRET, 10**7, []), "sample_rate"),
        (lambda: mask_pcm16(SECRET, 8000, [(0.5, 0.4)]), "intervals"),
        (lambda: mask_pcm16(SECRET, 8000, [(math.nan, 0.4)]), "intervals"),
        (lambda: mask_pcm16(SECRET, 8000, [(0.0, math.inf)]), "intervals"),
        (lambda: mask_pcm16(SECRET, 8000, [], channels=0), "channels"),
        (lambda: mask_pcm16(SECRET, 8000, [], mode="bleep"), "mode"),  # type: ignore[arg-type]
        (lambda: mask_pcm16(SECRET, 8000, [], offset=-1), "offset"),
        (lambda: mask_mulaw(SECRET, 0, []), "sample_rate"),
        (lambda: mask_mulaw(SECRET, 8000, [(1.0, 0.0)]), "intervals"),
        (lambda: mask_mulaw(SECRET[:199], 8000, [], channels=2), "data"),
        (lambda: AudioMasker(8000, encoding="alaw"), "encoding"),  # type: ignore[arg-type]
        (lambda: AudioMasker(8000).mask(SECRET, 1.5), "offset"),  # type: ignore[arg-type]
    ],
)
def test_bad_audio_input_is_refused_without_echoing_it(call: object, field: str) -> None:
    assert callable(call)
    with pytest.raises(InvalidInputError) as exc:
        call()
    assert exc.value.field == field
    message = exc.value.message
    assert len(message) < 120
    assert repr(SECRET[:4])[2:-1] not in message
    assert "\\x" not in message


def test_odd_length_message_gives_the_count() -> None:
    with pytest.raises(InvalidInputError, match="199 bytes"):
        mask_pcm16(SECRET[:199], 8000, [])
