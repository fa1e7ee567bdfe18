"""The masked view by range: a MaskPlanner opens only the segments a range needs, and the
bytes are those the plan of the whole transcript gives."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from callvault.calls._playback import (
    CARD_WORD,
    REACH_MS,
    WAV_HEADER_BYTES,
    ByteRange,
    MaskPlanner,
    TimedSegment,
    mask_plan,
    segment_beeps,
    silence_plan,
    wav_range,
)
from callvault.crypto import SealContext
from callvault.crypto.stream import RangeReader, StreamHeader, seal_stream
from callvault.redact import Redactor

RATE = 8000
REDACTOR = Redactor()
PII = (
    "my NHS number is 943 476 5919",
    "my date of birth is the twelfth of march nineteen eighty four",
    "my account number is 31926819 please",
    "you can reach me on 07700 900123",
    "it is nine four three four seven six five nine one nine",
)
PLAIN = (
    "thank you I have that",
    "one moment please while I check",
    "is there anything else I can help with",
    "yes that is right",
)
CARD_TEXT = "the card is [CARD tok_Ab12Cd34 ending 4242] thanks"


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - reproducible test data, not a secret


def _words(text: str, start_ms: int, rng: random.Random) -> list[tuple[str, int, int]]:
    out = []
    at = start_ms
    for w in text.split():
        length = rng.randint(150, 350)
        out.append((w, at, at + length))
        at += length + rng.randint(0, 80)
    return out


def _segment(rng: random.Random, start_ms: int) -> TimedSegment:
    """One segment of a random shape: words spelling the text, punctuated text, no words,
    or a tokenized card (``[CARD]`` words, or only the mark in the text)."""
    shape = rng.choice(("spelled", "spelled", "spelled", "punctuated", "no_words", "card"))
    if shape == "card":  # as calls/_card_text.py stores it: the token in the text
        words = _words("the card is", start_ms, rng)
        at = words[-1][2] + 50
        for _ in range(rng.choice((0, 4))):  # 0: the mark only, no word places it
            words.append((CARD_WORD, at, at + 300))
            at += 320
        words += _words("thanks", at, rng)
        return TimedSegment(start_ms, words[-1][2] + 100, CARD_TEXT, tuple(words))
    text = rng.choice(PII if rng.random() < 0.5 else PLAIN)
    words = _words(text, start_ms, rng)
    end = words[-1][2] + rng.randint(0, 200)
    if shape == "punctuated":
        return TimedSegment(start_ms, end, text.capitalize() + ".", tuple(words))
    if shape == "no_words":
        return TimedSegment(start_ms, end, text, ())
    return TimedSegment(start_ms, end, text, tuple(words))


def _transcript(rng: random.Random, seconds: int) -> list[TimedSegment]:
    """Turns with pauses (some overlapping, some touching), and a few holds, over ``seconds``."""
    out: list[TimedSegment] = []
    at = rng.randint(0, 2000)
    while True:
        seg = _segment(rng, at)
        if seg.end_ms > seconds * 1000 - 500:
            return out
        out.append(seg)
        gap = rng.choice((-300, 0, 0, 150, 400, 900, 2500)) if rng.random() > 0.05 else 12_000
        at = max(0, seg.end_ms + gap)


def _reader(samples: int, rng: random.Random, segment_size: int = 4096) -> RangeReader:
    key = rng.randbytes(32)
    ctx = SealContext(
        tenant_id="ten_test",
        purpose="recording",
        object_id="call_t/recording",
        deployment_id="dep_t",
    )
    header = StreamHeader.for_context(ctx, key_ref="test", segment_size=segment_size)
    sealed = bytes(seal_stream(key, header, rng.randbytes(samples)))
    return RangeReader(key, lambda at, n: sealed[at : at + n], len(sealed), ctx)


def _spans(segments: list[TimedSegment]) -> list[tuple[int, int]]:
    return [(s.start_ms, s.end_ms) for s in segments]


def _whole_plan(
    reader: RangeReader, segments: list[TimedSegment], duration_ms: int, rng: ByteRange
) -> bytes:
    """What the masked view served before the planner: the plan of every segment."""
    beep, silence = mask_plan(segments, duration_ms, REDACTOR)
    samples = duration_ms * RATE // 1000
    return b"".join(wav_range(reader, RATE, samples, rng, beep=beep, silence=silence))


def _planned(
    reader: RangeReader,
    segments: list[TimedSegment],
    duration_ms: int,
    rng: ByteRange,
    opener: Callable[[int], TimedSegment] | None = None,
) -> tuple[bytes, list[int]]:
    opened: list[int] = []

    def open_segment(i: int) -> TimedSegment:
        opened.append(i)
        return opener(i) if opener is not None else segments[i]

    planner = MaskPlanner(_spans(segments), open_segment, REDACTOR, RATE)
    silence = silence_plan(_spans(segments), duration_ms)
    samples = duration_ms * RATE // 1000
    out = b"".join(wav_range(reader, RATE, samples, rng, silence=silence, planner=planner))
    assert planner.opened == len(opened)
    return out, opened


def _ranges(rng: random.Random, total: int, n: int) -> list[ByteRange]:
    out = [
        ByteRange(0, total),
        ByteRange(0, 10),
        ByteRange(0, WAV_HEADER_BYTES + 3),
        ByteRange(total - 1, total),
    ]
    for _ in range(n):
        start = rng.randrange(0, total - 1)
        length = rng.choice((1, 2, 333, 4096, 65536, 160_000))
        out.append(ByteRange(start, min(total, start + length)))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_ranged_masked_bytes_equal_the_plan_of_the_whole_transcript(seed: int) -> None:
    rng = _rng(seed)
    seconds = 150
    segments = _transcript(rng, seconds)
    duration_ms = seconds * 1000
    reader = _reader(duration_ms * RATE // 1000, rng)
    beep, _ = mask_plan(segments, duration_ms, REDACTOR)
    assert len(beep) >= 5  # the transcript holds findings and card words to beep
    total = WAV_HEADER_BYTES + 2 * duration_ms * RATE // 1000
    for rng_bytes in _ranges(rng, total, 25):
        got, opened = _planned(reader, segments, duration_ms, rng_bytes)
        assert got == _whole_plan(reader, segments, duration_ms, rng_bytes), rng_bytes
        assert len(opened) == len(set(opened))  # each segment opened once at most


def test_a_range_opens_only_the_segments_near_it() -> None:
    rng = _rng(11)
    seconds = 20 * 60
    segments = _transcript(rng, seconds)
    assert len(segments) > 200
    duration_ms = seconds * 1000
    reader = _reader(duration_ms * RATE // 1000, rng, segment_size=65536)
    middle = WAV_HEADER_BYTES + 2 * (duration_ms // 2) * RATE // 1000
    one_second = ByteRange(middle, middle + 2 * RATE)
    got, opened = _planned(reader, segments, duration_ms, one_second)
    assert got == _whole_plan(reader, segments, duration_ms, one_second)
    assert 0 < len(opened) <= 8
    lo_ms, hi_ms = duration_ms // 2 - REACH_MS - 5000, duration_ms // 2 + 1000 + REACH_MS + 5000
    assert all(lo_ms <= segments[i].end_ms and segments[i].start_ms <= hi_ms for i in opened)


def test_a_whole_read_opens_every_segment_once() -> None:
    rng = _rng(5)
    segments = _transcript(rng, 90)
    reader = _reader(90 * RATE, rng)
    whole = ByteRange(0, WAV_HEADER_BYTES + 2 * 90 * RATE)
    got, opened = _planned(reader, segments, 90_000, whole)
    assert got == _whole_plan(reader, segments, 90_000, whole)
    assert sorted(opened) == list(range(len(segments)))


def test_beeps_merged_across_segments_are_followed_to_both_ends() -> None:
    # Eleven touching segments whose words cannot place their findings: each is beeped
    # whole, and the beeps merge into one 33 s tone whose phase runs from its first
    # sample. The chain starts at 8.001 s, which lands one sample before 8.001 * 8000
    # (float rounding), so a one-second range at the chain's far end, 31 s (far more
    # than REACH_MS) later, has the tone's phase only when the planner followed the
    # merged beep back to where it began.
    rng = _rng(3)
    starts = [8001, *range(11_000, 41_000, 3000)]
    ends = [*starts[1:], 41_000]
    chain = [
        TimedSegment(a, b, PII[0].capitalize() + ".", tuple(_words(PII[0], a, rng)))
        for a, b in zip(starts, ends, strict=True)
    ]
    segments = [
        TimedSegment(2000, 3000, "hello", (("hello", 2000, 3000),)),
        *chain,
        TimedSegment(45_000, 46_000, "bye", (("bye", 45_000, 46_000),)),
    ]
    duration_ms = 50_000
    reader = _reader(duration_ms * RATE // 1000, rng)
    at = WAV_HEADER_BYTES + 2 * 39_000 * RATE // 1000
    tail = ByteRange(at, at + 2 * RATE)
    got, opened = _planned(reader, segments, duration_ms, tail)
    assert got == _whole_plan(reader, segments, duration_ms, tail)
    assert set(range(1, 12)) <= set(opened)  # the whole chain, back to its first segment
    assert 0 not in opened  # but not beyond it


def test_words_far_outside_their_segment_make_the_planner_read_every_segment() -> None:
    rng = _rng(8)
    segments = _transcript(rng, 120)
    # A segment near the range places one of its words 30 s after its own end.
    i = next(n for n, s in enumerate(segments) if s.start_ms > 60_000 and s.words)
    seg = segments[i]
    stray = (*seg.words[:-1], (seg.words[-1][0], seg.end_ms + 30_000, seg.end_ms + 30_400))
    segments[i] = TimedSegment(seg.start_ms, seg.end_ms, seg.text, stray)
    reader = _reader(120 * RATE, rng)
    at = WAV_HEADER_BYTES + 2 * seg.start_ms * RATE // 1000
    near = ByteRange(at, at + 2 * RATE)
    got, opened = _planned(reader, segments, 120_000, near)
    assert got == _whole_plan(reader, segments, 120_000, near)
    assert sorted(opened) == list(range(len(segments)))


def test_a_segments_beeps_stay_within_its_reach() -> None:
    # What lets the planner leave far segments unread: with words up to the slack
    # outside the span, no beep of the segment lies further than REACH_MS from it.
    rng = _rng(2)
    for _ in range(200):
        seg = _segment(rng, 60_000)
        slack_ms = 1000
        words = tuple(
            (w, s - slack_ms if k == 0 else s, e + slack_ms if k == len(seg.words) - 1 else e)
            for k, (w, s, e) in enumerate(seg.words)
        )
        for a, b in segment_beeps(
            TimedSegment(seg.start_ms, seg.end_ms, seg.text, words), REDACTOR
        ):
            assert seg.start_ms - REACH_MS < a * 1000
            assert b * 1000 < seg.end_ms + REACH_MS


def test_an_opening_failure_stops_the_read_before_the_audio_it_would_mask() -> None:
    rng = _rng(4)
    segments = _transcript(rng, 60)
    reader = _reader(60 * RATE, rng)

    class OpenError(Exception):
        pass

    def failing(i: int) -> TimedSegment:
        if segments[i].start_ms > 30_000:
            raise OpenError
        return segments[i]

    planner = MaskPlanner(_spans(segments), failing, REDACTOR, RATE)
    silence = silence_plan(_spans(segments), 60_000)
    pieces = wav_range(
        reader,
        RATE,
        60 * RATE,
        ByteRange(0, WAV_HEADER_BYTES + 2 * 60 * RATE),
        silence=silence,
        planner=planner,
    )
    served: list[bytes] = []

    def drain() -> None:
        served.extend(pieces)

    with pytest.raises(OpenError):
        drain()
    # Nothing was served past the audio whose segments could be opened.
    assert 0 < len(b"".join(served)) < WAV_HEADER_BYTES + 2 * 31 * RATE
