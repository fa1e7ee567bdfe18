"""The audio guard: card audio (tones, captures, spoken spans) is silenced before release,
nothing coverable is released early, memory stays bounded, chunking changes nothing."""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Callable, Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.calls._audio_guard import AudioGuard, Codec, ReleasedAudio
from callvault.calls._dtmf import COLUMN_HZ, KEYPAD, ROW_HZ, Tone, block_size, detect_dtmf
from callvault.errors import InvalidInputError
from callvault.redact import mask_mulaw, mulaw_decode, mulaw_encode

LEVEL = -13.0  # dBFS per tone of a key
WIDTH = {"mulaw": 1, "pcm16": 2}
SILENCE = {"mulaw": b"\xff", "pcm16": b"\x00\x00"}
DIALLED = "4111*#9"

# -- a small signal generator (after tests/unit/calls/test_dtmf.py) --------------------------


def amplitude(dbfs: float) -> float:
    """Peak of a sine at ``dbfs`` (0 dBFS: a full-scale sine)."""
    return 32767 * 10 ** (dbfs / 20)


def freqs(digit: str) -> tuple[float, float]:
    i = KEYPAD.index(digit)
    return ROW_HZ[i // 4], COLUMN_HZ[i % 4]


class Signal:
    """Float samples built piece by piece, then rounded to PCM16 (or μ-law) bytes."""

    def __init__(self, rate: int, seed: int = 0) -> None:
        self.rate = rate
        self.samples: list[float] = []
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test audio, not a secret

    def __len__(self) -> int:
        return len(self.samples)

    def count(self, ms: float) -> int:
        return round(ms * self.rate / 1000)

    def key(self, digit: str, ms: float) -> tuple[int, int]:
        """A key pressed for ``ms``; returns the samples it covers."""
        start = len(self)
        row, col = (self.sine(hz, ms) for hz in freqs(digit))
        self.samples += [a + b for a, b in zip(row, col, strict=True)]
        return start, len(self)

    def sine(self, hz: float, ms: float) -> list[float]:
        """A sine at ``LEVEL`` dBFS with a random phase, ``ms`` long (not appended)."""
        w, p = 2 * math.pi * hz / self.rate, self.rng.uniform(0, 2 * math.pi)
        return [amplitude(LEVEL) * math.sin(w * k + p) for k in range(self.count(ms))]

    def speech(self, ms: float) -> Signal:
        """Voiced-speech-like audio: a harmonic series on a wandering pitch, in syllables."""
        f0 = self.rng.uniform(100, 220)
        harmonics = [(h, 1 / h, self.rng.uniform(0, 2 * math.pi)) for h in range(1, int(3400 / f0))]
        scale = amplitude(-18) / math.sqrt(sum(g * g for _, g, _ in harmonics))
        phase = 0.0
        for k in range(self.count(ms)):
            t = k / self.rate
            phase += 2 * math.pi * f0 * (1 + 0.03 * math.sin(2 * math.pi * 3 * t)) / self.rate
            envelope = 0.6 - 0.4 * math.cos(2 * math.pi * 4 * t)  # about 4 syllables a second
            self.samples.append(
                envelope * scale * sum(g * math.sin(h * phase + p) for h, g, p in harmonics)
            )
        return self

    def noise(self, dbfs: float) -> Signal:
        sd = amplitude(dbfs) / math.sqrt(2)
        self.samples = [v + self.rng.gauss(0, sd) for v in self.samples]
        return self

    def encode(self, codec: Codec) -> bytes:
        pcm = array("h", (max(-32768, min(32767, round(v))) for v in self.samples)).tobytes()
        return mulaw_encode(pcm) if codec == "mulaw" else pcm


def call_audio(codec: Codec, rate: int, seed: int = 0) -> tuple[bytes, list[tuple[int, int]]]:
    """Speech with the keys of ``DIALLED`` pressed in it, in a little noise; the key spans."""
    signal = Signal(rate, seed).speech(300)
    keys = []
    for n, digit in enumerate(DIALLED):
        keys.append(signal.key(digit, 50 + 10 * n))
        signal.speech(150)
    signal.speech(200)
    return signal.noise(-45).encode(codec), keys


# -- the oracle: the whole recording silenced where it must be ----------------------------


def expected(
    data: bytes, codec: Codec, rate: int, spans: Sequence[tuple[int, int]] = ()
) -> tuple[bytes, bytearray]:
    """``data`` with every tone (padded one block) and ``spans`` silenced; the mask."""
    width = WIDTH[codec]
    total = len(data) // width
    pcm = mulaw_decode(data) if codec == "mulaw" else data
    pad = block_size(rate)
    ranges = [(max(0, t.start - pad), t.end + pad) for t in detect_dtmf(pcm, rate)]
    mask = bytearray(total)
    for lo, stop in [*ranges, *spans]:
        hi = min(stop, total)
        if lo < hi:
            mask[lo:hi] = b"\x01" * (hi - lo)
    out = bytearray(data)
    for i in range(total):
        if mask[i]:
            out[i * width : (i + 1) * width] = SILENCE[codec]
    return bytes(out), mask


Action = tuple[int, Callable[[AudioGuard], object]]


def feed_all(
    guard: AudioGuard,
    data: bytes,
    sizes: list[int],
    actions: Sequence[Action] = (),
    *,
    start: int = 0,
) -> list[ReleasedAudio]:
    """Feed ``data`` from sample ``start`` in chunks of ``sizes`` (cycled), running each
    action once the audio reaches its sample; then flush."""
    width = WIDTH[guard.codec]
    total = len(data) // width
    pending = sorted(actions, key=lambda a: a[0])
    out: list[ReleasedAudio] = []
    pos, i = 0, 0
    while pos < total:
        n = min(sizes[i % len(sizes)], total - pos)
        out += guard.feed(data[pos * width : (pos + n) * width], start + pos)
        assert len(out) <= i + 1  # at most one release a chunk
        pos, i = pos + n, i + 1
        while pending and pending[0][0] <= start + pos:
            pending.pop(0)[1](guard)
    for _, action in pending:
        action(guard)
    return out + guard.flush()


def joined(released: list[ReleasedAudio], codec: Codec, start: int = 0) -> bytes:
    """The released audio, checked contiguous from ``start``."""
    pos = start
    for part in released:
        assert part.offset == pos
        pos += len(part.audio) // WIDTH[codec]
    return b"".join(part.audio for part in released)


def frames(rate: int) -> list[int]:
    return [rate // 50]  # 20 ms


# -- tones -------------------------------------------------------------------------------


@pytest.mark.parametrize(("codec", "rate"), [("mulaw", 8000), ("pcm16", 8000), ("pcm16", 16000)])
def test_every_tone_is_silenced_and_all_else_is_byte_identical(codec: Codec, rate: int) -> None:
    data, keys = call_audio(codec, rate, seed=rate)
    guard = AudioGuard(codec=codec, sample_rate=rate)
    released = feed_all(guard, data, frames(rate))
    out = joined(released, codec)

    assert guard.tones == len(DIALLED)
    want, mask = expected(data, codec, rate)
    assert out == want
    width, silence = WIDTH[codec], SILENCE[codec]
    for start, end in keys:  # each whole key, as pressed, is silent
        assert out[start * width : end * width] == silence * (end - start)
    outside = [i for i in range(len(mask)) if not mask[i]]
    assert len(outside) > len(mask) // 2  # the speech is kept...
    assert all(
        out[i * width : (i + 1) * width] == data[i * width : (i + 1) * width] for i in outside
    )
    pcm = mulaw_decode(out) if codec == "mulaw" else out
    assert detect_dtmf(pcm, rate) == []  # ...and no key is left in it
    assert sum(p.silenced_samples for p in released) == mask.count(1)
    assert guard.released == len(data) // width
    assert guard.held_samples == 0
    assert guard.forced_silence_samples == 0


def test_mulaw_silence_is_the_code_redact_masks_with() -> None:
    assert mask_mulaw(b"\x12\x34", 8000, [(0.0, 1.0)], mode="silence") == SILENCE["mulaw"] * 2
    assert mulaw_decode(SILENCE["mulaw"]) == SILENCE["pcm16"]


def test_nothing_a_later_tone_could_cover_is_released_early() -> None:
    data, keys = call_audio("mulaw", 8000, seed=3)
    guard = AudioGuard(codec="mulaw", sample_rate=8000)
    out: list[ReleasedAudio] = []
    for pos in range(0, len(data), 160):
        out += guard.feed(data[pos : pos + 160], pos)
        for k, (start, _end) in enumerate(keys):
            if guard.released > start:  # released into a key: it was found (and silenced)
                assert guard.tones > k
    assert guard.tones == len(DIALLED)


# -- capture -----------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["mulaw", "pcm16"])
def test_a_secure_capture_is_silenced_from_begin_to_end(codec: Codec) -> None:
    data = Signal(8000, seed=5).speech(3000).noise(-45).encode(codec)
    width = WIDTH[codec]
    begin, end = 8000, 16_321
    guard = AudioGuard(codec=codec, sample_rate=8000)
    assert guard.begin_capture(begin) is True
    assert guard.capturing
    released: list[ReleasedAudio] = []
    for pos in range(0, 24_000, 160):
        released += guard.feed(data[pos * width : (pos + 160) * width], pos)
        if guard.capturing:
            assert guard.released <= begin  # nothing from the capture on is let out
        if pos + 160 >= end + 800 and guard.capturing:
            guard.end_capture(end)
            assert not guard.capturing
    released += guard.flush()
    out = joined(released, codec)
    assert out == expected(data, codec, 8000, [(begin, end)])[0]
    assert out[begin * width : end * width] == SILENCE[codec] * (end - begin)
    assert out[: begin * width] == data[: begin * width]
    assert out[end * width :] == data[end * width :]
    assert sum(p.silenced_samples for p in released) == end - begin


def test_a_capture_that_never_ends_is_silenced_to_the_end_of_the_call() -> None:
    data = Signal(8000, seed=6).speech(1000).encode("mulaw")
    guard = AudioGuard(codec="mulaw")
    out = joined(feed_all(guard, data, [160], [(3000, lambda g: g.begin_capture(3000))]), "mulaw")
    assert out == data[:3000] + b"\xff" * 5000
    assert not guard.capturing


def test_a_capture_begun_after_its_audio_was_released_is_too_late() -> None:
    data = Signal(8000, seed=7).speech(1000).encode("mulaw")
    guard = AudioGuard(codec="mulaw")
    released = guard.feed(data[:4000], 0)
    late = guard.released
    assert late > 2000
    assert guard.begin_capture(2000) is False
    released += guard.feed(data[4000:6000], 4000)
    guard.end_capture(5000)
    out = joined(released + guard.feed(data[6000:], 6000) + guard.flush(), "mulaw")
    assert out[:late] == data[:late]  # already gone: the caller records an incident
    assert out[late:5000] == b"\xff" * (5000 - late)  # the rest is still silenced
    assert out[5000:] == data[5000:]


# -- spans found by live redaction -------------------------------------------------------


def test_a_span_silenced_in_time_is_silent_and_returns_true() -> None:
    data = Signal(8000, seed=8).speech(2000).encode("pcm16")
    guard = AudioGuard(codec="pcm16", hold_ms=1000)
    released = guard.feed(data[: 2 * 9000], 0)
    assert guard.released <= 9000 - 8000  # the hold: one second kept back
    assert guard.silence(7000, 8600) is True  # ASR reported it 50 ms after its end
    assert guard.silence(12_000, 12_500) is True  # not even fed yet
    assert guard.silence(100, 100) is True  # empty
    out = joined(released + guard.feed(data[2 * 9000 :], 9000) + guard.flush(), "pcm16")
    assert out == expected(data, "pcm16", 8000, [(7000, 8600), (12_000, 12_500)])[0]
    assert out[2 * 7000 : 2 * 8600] == bytes(2 * 1600)
    assert out[2 * 12_000 : 2 * 12_500] == bytes(1000)


def test_a_span_silenced_too_late_returns_false_and_the_rest_is_still_silenced() -> None:
    data = Signal(8000, seed=9).speech(2000).encode("mulaw")
    guard = AudioGuard(codec="mulaw", hold_ms=100)
    released = guard.feed(data[:8000], 0)
    late = guard.released
    assert 4000 < late < 7900
    assert guard.silence(4000, 7900) is False
    assert guard.silence(late - 1, late) is False
    assert guard.silence(late, late + 10) is True
    out = joined(released + guard.feed(data[8000:], 8000) + guard.flush(), "mulaw")
    assert out[:late] == data[:late]
    assert out[late:7900] == b"\xff" * (7900 - late)
    assert out[7900:] == data[7900:]
    assert guard.silence(0, 1) is False  # after the call ended: released long ago


# -- the memory bound --------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["mulaw", "pcm16"])
def test_an_open_capture_is_forced_out_silenced_and_memory_stays_bounded(codec: Codec) -> None:
    data = Signal(8000, seed=10).speech(3000).encode(codec)
    width = WIDTH[codec]
    guard = AudioGuard(codec=codec, max_hold_ms=200)  # 1600 samples
    guard.begin_capture(4000)
    released: list[ReleasedAudio] = []
    for pos in range(0, 24_000, 160):
        released += guard.feed(data[pos * width : (pos + 160) * width], pos)
        assert guard.held_samples <= 1600
    assert guard.forced_silence_samples == 24_000 - 1600 - 4000
    assert guard.capturing
    released += guard.flush()
    out = joined(released, codec)
    assert out[: 4000 * width] == data[: 4000 * width]
    assert out[4000 * width :] == SILENCE[codec] * 20_000  # fail closed, never card audio
    assert sum(p.silenced_samples for p in released) == 20_000


def test_a_key_held_down_past_the_bound_is_forced_out_silenced() -> None:
    signal = Signal(8000, seed=11).speech(400)
    key = signal.key("5", 3000)
    data = signal.speech(400).encode("mulaw")
    guard = AudioGuard(codec="mulaw", max_hold_ms=500)  # 4000 samples
    released: list[ReleasedAudio] = []
    for pos in range(0, len(data), 160):
        released += guard.feed(data[pos : pos + 160], pos)
        assert guard.held_samples <= 4000
    out = joined(released + guard.flush(), "mulaw")
    assert guard.tones == 1
    assert guard.forced_silence_samples > 0
    assert out == expected(data, "mulaw", 8000)[0]  # nothing outside the padded tone lost
    assert out[key[0] : key[1]] == b"\xff" * (key[1] - key[0])


# -- streaming ---------------------------------------------------------------------------

MIXED, MIXED_KEYS = call_audio("mulaw", 8000, seed=12)
SPAN = (3000, 3800)
CAPTURE = (MIXED_KEYS[2][0] - 400, MIXED_KEYS[4][1] + 300)
MIXED_ACTIONS: list[Action] = [
    (SPAN[1], lambda g: g.silence(*SPAN)),
    (CAPTURE[0], lambda g: g.begin_capture(CAPTURE[0])),
    (CAPTURE[1], lambda g: g.end_capture(CAPTURE[1])),
]
MIXED_WANT, MIXED_MASK = expected(MIXED, "mulaw", 8000, [SPAN, CAPTURE])


def test_the_streaming_fixture_has_its_tones_and_spans() -> None:
    guard = AudioGuard(codec="mulaw", hold_ms=300)
    out = joined(feed_all(guard, MIXED, [160], MIXED_ACTIONS), "mulaw")
    assert guard.tones == len(DIALLED)
    assert out == MIXED_WANT != MIXED


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=30))
def test_any_chunking_gives_the_same_released_audio(sizes: list[int]) -> None:
    guard = AudioGuard(codec="mulaw", hold_ms=300)  # 2400 samples: the actions come in time
    results: list[object] = []

    def recorded(action: Callable[[AudioGuard], object]) -> Callable[[AudioGuard], object]:
        return lambda g: results.append(action(g))

    actions: list[Action] = [(at, recorded(action)) for at, action in MIXED_ACTIONS]
    released = feed_all(guard, MIXED, sizes, actions)
    assert joined(released, "mulaw") == MIXED_WANT
    assert results == [True, True, None]
    assert sum(p.silenced_samples for p in released) == MIXED_MASK.count(1)
    assert guard.tones == len(DIALLED)


def test_a_gap_in_offsets_is_released_as_silence() -> None:
    first, _ = call_audio("pcm16", 8000, seed=13)
    second = Signal(8000, seed=14).speech(300).encode("pcm16")
    gap = 1234
    guard = AudioGuard(codec="pcm16", max_gap_ms=1000)
    released = guard.feed(first, 0)
    released += guard.feed(second, len(first) // 2 + gap)
    out = joined(released + guard.flush(), "pcm16")
    assert out == expected(first + bytes(2 * gap) + second, "pcm16", 8000)[0]
    assert len(out) == len(first) + 2 * gap + len(second)
    assert out[-len(second) :] == second


def test_offsets_start_anywhere_and_release_from_the_first_chunk() -> None:
    data, _ = call_audio("mulaw", 8000, seed=15)
    guard = AudioGuard(codec="mulaw")
    assert guard.silence(0, 100) is True  # before the first chunk: nothing was released there
    released = feed_all(guard, data, [160], start=80_000)
    assert released[0].offset == 80_000
    assert joined(released, "mulaw", start=80_000) == expected(data, "mulaw", 8000)[0]
    assert guard.silence(10, 80_001) is False


def test_flush_releases_all_once_and_then_the_guard_takes_no_more() -> None:
    guard = AudioGuard(codec="mulaw", hold_ms=2000)
    assert guard.flush() == []  # nothing fed
    guard = AudioGuard(codec="mulaw", hold_ms=2000)
    assert guard.feed(b"\x10" * 800, 0) == []  # all held
    assert guard.held_samples == 800
    assert guard.flush() == [ReleasedAudio(0, b"\x10" * 800, 0)]
    assert guard.flush() == []
    with pytest.raises(InvalidInputError):
        guard.feed(b"\x10", 800)
    with pytest.raises(InvalidInputError):
        guard.begin_capture(900)


# -- no digits kept ----------------------------------------------------------------------


def reachable(root: object) -> Iterator[object]:
    """Every object reachable from ``root`` through callvault objects and containers."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif type(obj).__module__.startswith("callvault"):
            for cls in type(obj).__mro__:
                slots = getattr(cls, "__slots__", ())
                stack.extend(getattr(obj, name) for name in slots if hasattr(obj, name))
            stack.extend(getattr(obj, "__dict__", {}).values())


def assert_no_digits(guard: AudioGuard) -> None:
    objects = list(reachable(guard))
    assert any(isinstance(o, AudioGuard) for o in objects)
    assert len(objects) > 20  # the walk went into the guard and its detector
    for obj in objects:
        assert not isinstance(obj, Tone)
        if isinstance(obj, str):
            assert obj not in KEYPAD, obj  # no digit, alone or as a run of the keypad
            assert not any(d in obj for d in ("4111", "*#", "#9")), obj


def test_the_guard_keeps_only_the_count_of_tones_never_their_digits() -> None:
    guard = AudioGuard(codec="mulaw")
    half = len(MIXED) // 2
    guard.feed(MIXED[:half], 0)
    assert guard.tones >= 3
    assert_no_digits(guard)
    guard.feed(MIXED[half:], half)
    guard.flush()
    assert guard.tones == len(DIALLED)
    assert_no_digits(guard)


# -- bad input ---------------------------------------------------------------------------


def message(excinfo: pytest.ExceptionInfo[InvalidInputError]) -> str:
    text = str(excinfo.value)
    assert "\\x" not in text  # no audio bytes in the message
    assert "b'" not in text
    return text


def test_bad_audio_and_offsets_are_refused_with_counts_only() -> None:
    guard = AudioGuard(codec="pcm16")
    with pytest.raises(InvalidInputError) as excinfo:
        guard.feed(b"\x07\x01\x02", 0)
    assert "3 bytes" in message(excinfo)
    for chunk in ("\x00\x00", [0, 0], memoryview(b"\x00\x00"), None):
        with pytest.raises(InvalidInputError) as excinfo:
            guard.feed(chunk, 0)  # type: ignore[arg-type]  # the point of the test
        message(excinfo)
    for offset in (-1, True, 1.5, None):
        with pytest.raises(InvalidInputError) as excinfo:
            guard.feed(b"\x00\x00", offset)  # type: ignore[arg-type]  # same
        message(excinfo)
    assert guard.held_samples == 0  # nothing refused was taken
    guard.feed(bytes(320), 100)
    for offset in (0, 99, 259):  # back before sample 260, the next expected
        with pytest.raises(InvalidInputError) as excinfo:
            guard.feed(b"\x01\x02" * 160, offset)
        assert "260" in message(excinfo)
    guard.feed(bytearray(2), 260)  # bytearray is audio too


def test_a_gap_beyond_the_limit_is_refused() -> None:
    guard = AudioGuard(codec="mulaw", max_gap_ms=1000)
    guard.feed(bytes(160), 0)
    with pytest.raises(InvalidInputError) as excinfo:
        guard.feed(b"\x01", 160 + 8001)
    assert "8001" in message(excinfo)
    guard.feed(b"\x01", 160 + 8000)
    assert guard.held_samples + guard.released == 8161


def test_bad_capture_calls_are_refused() -> None:
    guard = AudioGuard(codec="mulaw")
    with pytest.raises(InvalidInputError):
        guard.end_capture(10)  # without begin
    for at in (-1, True, 2.5):
        with pytest.raises(InvalidInputError):
            guard.begin_capture(at)  # type: ignore[arg-type]  # the point of the test
    assert not guard.capturing
    guard.begin_capture(100)
    with pytest.raises(InvalidInputError) as excinfo:
        guard.begin_capture(200)  # twice
    assert "100" in message(excinfo)
    with pytest.raises(InvalidInputError) as excinfo:
        guard.end_capture(99)  # before its start
    assert "99" in message(excinfo)
    assert guard.capturing
    guard.end_capture(100)
    assert not guard.capturing


def test_bad_spans_are_refused() -> None:
    guard = AudioGuard(codec="mulaw")
    for start, end in ((10, 9), (-1, 5), (0, -1), (1.0, 2), (0, True)):
        with pytest.raises(InvalidInputError) as excinfo:
            guard.silence(start, end)  # type: ignore[arg-type]  # the point of the test
        message(excinfo)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"codec": "alaw"},
        {"codec": "mulaw", "sample_rate": 7999},
        {"codec": "mulaw", "sample_rate": 8000.0},
        {"codec": "mulaw", "hold_ms": -1},
        {"codec": "mulaw", "hold_ms": 1.5},
        {"codec": "mulaw", "hold_ms": 3000, "max_hold_ms": 2000},
        {"codec": "mulaw", "max_hold_ms": 50},
        {"codec": "mulaw", "max_hold_ms": True},
        {"codec": "mulaw", "max_hold_ms": 3_600_000},
        {"codec": "mulaw", "max_gap_ms": -5},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        AudioGuard(**kwargs)  # type: ignore[arg-type]  # the point of the test
