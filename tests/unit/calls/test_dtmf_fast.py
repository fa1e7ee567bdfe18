"""The mypyc build of the DTMF filters: bit-for-bit the interpreted ones, used only when current."""

from __future__ import annotations

import math
import os
import random
from array import array
from pathlib import Path
from types import ModuleType

import pytest

from callvault.calls import _dtmf
from callvault.calls._dtmf import COLUMN_HZ, KEYPAD, ROW_HZ, DtmfDetector, block_size
from callvault.redact import mulaw_decode, mulaw_encode
from callvault.redact._fast import DTMF_BUILD, FastBuild


def _compiled() -> ModuleType:
    module = DTMF_BUILD.load("_dtmf")
    if module is None:
        if os.environ.get("CV_TEST_REQUIRE_FAST") == "1":
            pytest.fail("compiled DTMF detector missing or stale: run scripts/build-redact-fast")
        pytest.skip("compiled DTMF detector not built (scripts/build-redact-fast)")
    return module


# -- blocks of every kind the detector meets -----------------------------------------------


def _clip(values: list[float]) -> list[float]:
    return [float(max(-32768, min(32767, round(v)))) for v in values]


def _key(rng: random.Random, count: int, rate: int, *, near_limits: bool) -> list[float]:
    """``count`` samples of one key: on or off frequency, twisted, noisy, maybe cut short."""
    digit = rng.randrange(16)
    row, col = ROW_HZ[digit // 4], COLUMN_HZ[digit % 4]
    if near_limits:  # around the frequency, twist and level limits, often beyond them
        row *= 1 + rng.uniform(-0.045, 0.045)
        col *= 1 + rng.uniform(-0.045, 0.045)
        level = 32767 * 10 ** (rng.uniform(-48, -3) / 20)
        twist = 10 ** (rng.uniform(-11, 11) / 20)
        noise = level * 10 ** (rng.uniform(-40, 0) / 20)
        cover = rng.choice((count, count, rng.randrange(1, count)))
    else:  # well inside them: hits
        row *= 1 + rng.uniform(-0.01, 0.01)
        col *= 1 + rng.uniform(-0.01, 0.01)
        level = 32767 * 10 ** (rng.uniform(-30, -6) / 20)
        twist = 10 ** (rng.uniform(-3, 3) / 20)
        noise = level * 10 ** (rng.uniform(-40, -20) / 20)
        cover = count
    pr, pc = rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)
    out = []
    for n in range(count):
        v = rng.gauss(0, noise)
        if n < cover:
            v += level * math.sin(2 * math.pi * row * n / rate + pr)
            v += level * twist * math.sin(2 * math.pi * col * n / rate + pc)
        out.append(v)
    return _clip(out)


def _speech_block(rng: random.Random, size: int, rate: int) -> list[float]:
    """A voiced hum: harmonics of a random pitch, some landing near key frequencies."""
    f0 = rng.uniform(80, 400)
    parts = [(h * f0, 3000 / h * rng.uniform(0.2, 1.5), rng.uniform(0, 6.3)) for h in range(1, 9)]
    noise = rng.uniform(0, 800)
    return _clip(
        [
            sum(a * math.sin(2 * math.pi * f * n / rate + p) for f, a, p in parts)
            + rng.gauss(0, noise)
            for n in range(size)
        ]
    )


def _noise_block(rng: random.Random, size: int) -> list[float]:
    kind = rng.randrange(4)
    if kind == 0:  # white, at any level up to clipping
        return _clip([rng.gauss(0, 10 ** rng.uniform(0, 4.7)) for _ in range(size)])
    if kind == 1:  # full-scale extremes
        return [float(rng.choice((-32768, 32767, 0))) for _ in range(size)]
    if kind == 2:  # near silence
        return [float(rng.randint(-3, 3)) for _ in range(size)]
    return [float(rng.randint(-32768, 32767)) for _ in range(size)]  # uniform


def _blocks(rate: int, count: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test audio, not a secret
    size = block_size(rate)
    makers = (
        lambda: _key(rng, size, rate, near_limits=False),
        lambda: _key(rng, size, rate, near_limits=True),
        lambda: _speech_block(rng, size, rate),
        lambda: _noise_block(rng, size),
    )
    return [makers[k % 4]() for k in range(count)]


# -- the same answers ----------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 11025])
def test_compiled_and_interpreted_filters_agree_bit_for_bit(rate: int) -> None:
    compiled = _compiled()
    fast, pure = compiled._bank(rate), _dtmf._bank(rate)
    hits = 0
    for block in _blocks(rate, 2000, seed=rate):
        got = fast.classify(block)
        assert got == pure.classify(block)
        hits += got != _dtmf._NONE
        # The filters' outputs, not just the verdict: the same doubles to the last bit.
        assert fast._projections(block) == pure._projections(block)
        a, b, c, d = pure.thirds
        for lo, hi in ((a, b), (b, c), (c, d)):
            assert compiled._energy(block[lo:hi]) == _dtmf._energy(block[lo:hi])
    assert hits > 300  # the comparison covered blocks the full test accepts, not only rejections


def test_compiled_and_interpreted_decoding_agree() -> None:
    compiled = _compiled()
    # At 48 kHz a block is 630 samples: what these inputs decode to stays in the buffer.
    fast, pure = compiled._bank(48000), _dtmf._bank(48000)
    every_byte = bytes(range(256))
    decoded: list[list[float]] = [[], []]
    assert fast.take_mulaw(decoded[0], every_byte) == pure.take_mulaw(decoded[1], every_byte) == []
    assert decoded[0] == decoded[1] == [float(v) for v in array("h", mulaw_decode(every_byte))]
    pcm = array("h", range(-32768, 32768, 131)).tobytes()
    decoded = [[1.0], [1.0]]
    assert fast.take_pcm16(decoded[0], pcm) == pure.take_pcm16(decoded[1], pcm) == []
    assert decoded[0] == decoded[1] == [1.0, *(float(v) for v in range(-32768, 32768, 131))]


def test_the_compiled_and_interpreted_detectors_report_the_same_tones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compiled = _compiled()
    rng = random.Random(99)  # noqa: S311 - reproducible test audio, not a secret
    pcm = array("h")
    for _ in range(40):  # keys of every length and level between bursts of noise and hum
        for v in _speech_block(rng, 105, 8000) * rng.randrange(1, 6):
            pcm.append(int(v))
        key = _key(rng, rng.randrange(100, 1200), 8000, near_limits=rng.random() < 0.5)
        pcm.extend(int(v) for v in key)
    audio = mulaw_encode(pcm.tobytes())

    def run() -> list[object]:
        detector = DtmfDetector(8000)
        found: list[object] = []
        for pos in range(0, len(audio), 160):
            found += detector.feed_mulaw(audio[pos : pos + 160], pos)
            found.append(detector.settled)
        return found + list(detector.flush())

    monkeypatch.setattr(_dtmf, "_BANK", _dtmf._bank)
    interpreted = run()
    monkeypatch.setattr(_dtmf, "_BANK", compiled._bank)
    assert run() == interpreted
    assert sum(isinstance(t, _dtmf.Tone) for t in interpreted) >= 10


# -- used only when current ----------------------------------------------------------------


def test_new_detectors_use_the_compiled_filters_when_the_build_is_current() -> None:
    compiled = _compiled()
    assert _dtmf._BANK is compiled._bank
    bank = DtmfDetector(8000)._bank
    assert type(bank).__module__ == f"{DTMF_BUILD.package}._dtmf"
    assert KEYPAD == compiled.KEYPAD


def test_a_stale_build_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    _compiled()
    monkeypatch.setattr(FastBuild, "source_hash", lambda _self: "0" * 64)
    assert DTMF_BUILD.load("_dtmf") is None


def test_the_pure_switch_forces_the_interpreted_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CV_DTMF_PURE", "1")
    assert DTMF_BUILD.load("_dtmf") is None


def test_the_source_hash_covers_the_detector_source() -> None:
    assert DTMF_BUILD.source_dir == Path(_dtmf.__file__).parent
    assert DTMF_BUILD.modules == ("_dtmf",)
    assert len(DTMF_BUILD.source_hash()) == 64
    other = FastBuild("x", "callvault.calls", ("_audio_guard",), "X")
    assert other.source_hash() != DTMF_BUILD.source_hash()
