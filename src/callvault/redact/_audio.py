"""Audio masking: from findings and word timings to masked PCM or G.711 μ-law audio.

Two steps, both pure (no I/O):

1. :func:`mask_intervals` turns the findings in a transcript, and the timings
   of its words, into time intervals to mask: every word whose characters
   overlap a finding, padded (200 ms each side by default), clipped to the
   recording and merged when less than ``merge_gap`` (600 ms) apart.
2. :func:`mask_pcm16` / :func:`mask_mulaw` replace every sample inside those
   intervals, and none outside, with a 1 kHz beep faded in and out over 10 ms
   (for a human reviewer: the gap is audible) or with silence (for machines).

Sample ``i`` of a recording sampled at ``rate`` Hz covers the time
``[i / rate, (i + 1) / rate)``; it is masked when that period overlaps an
interval, so samples ``floor(start * rate)`` up to ``ceil(end * rate)``
(exclusive): see :func:`sample_ranges`. Rounding thus only ever masks more,
never less.

The masking functions also mask a chunk of a longer recording (``offset``:
the chunk's first sample number), with the same result as masking the whole
buffer and slicing, so ingest can mask 20 ms frames as they arrive;
:class:`AudioMasker` keeps the intervals, converted once, for that.
Error messages carry counts and indexes only, never audio or text.
"""

from __future__ import annotations

import bisect
import functools
import math
import sys
from array import array
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, TypeVar

from callvault.errors import InvalidInputError
from callvault.redact._types import Finding, Segment, Word, word_spans

#: Seconds of padding added before and after each masked word.
DEFAULT_PADDING = 0.2
#: Masked intervals closer than this (seconds) are merged into one.
DEFAULT_MERGE_GAP = 0.6
#: The beep: frequency (Hz), peak level (dBFS) and the length of each fade (seconds).
BEEP_HZ = 1000
BEEP_DBFS = -12.0
FADE_SECONDS = 0.01
#: Highest sample rate accepted (Hz): bounds the beep table to one second of samples.
MAX_SAMPLE_RATE = 384_000

Mode = Literal["beep", "silence"]
Encoding = Literal["pcm16", "mulaw"]
FadeDirection = Literal["in", "out"]

#: μ-law code of a zero sample.
MULAW_SILENCE = 0xFF

# Gaps this close to ``merge_gap`` count as equal to it (float noise, 1 ns).
_EPS = 1e-9
_BIG_ENDIAN = sys.byteorder == "big"


# -- intervals -------------------------------------------------------------------------


def mask_intervals(
    findings: Sequence[Finding],
    words: Sequence[Word],
    *,
    padding: float = DEFAULT_PADDING,
    merge_gap: float = DEFAULT_MERGE_GAP,
    duration: float | None = None,
) -> list[tuple[float, float]]:
    """The time intervals (seconds, sorted, disjoint) to mask for ``findings``.

    ``findings`` are character ranges of ``" ".join(w.text for w in words)``
    (see :func:`~callvault.redact.word_spans`). Each word that overlaps a
    finding gives ``[start - padding, end + padding]``, clipped to
    ``[0, duration]``; intervals whose gap is less than ``merge_gap`` merge.
    """
    _check_params(padding, merge_gap, duration)
    return _pad_merge(_hit_words(findings, words, 0), padding, merge_gap, duration)


def mask_intervals_for_segments(
    items: Iterable[tuple[Segment, Sequence[Finding]]],
    *,
    padding: float = DEFAULT_PADDING,
    merge_gap: float = DEFAULT_MERGE_GAP,
    duration: float | None = None,
) -> list[tuple[float, float]]:
    """:func:`mask_intervals` over several segments, each with findings in its own text."""
    _check_params(padding, merge_gap, duration)
    hits: list[tuple[float, float]] = []
    for n, (segment, findings) in enumerate(items):
        hits.extend(_hit_words(findings, segment.words, n))
    return _pad_merge(hits, padding, merge_gap, duration)


def _check_params(padding: float, merge_gap: float, duration: float | None) -> None:
    for name, value in (("padding", padding), ("merge_gap", merge_gap), ("duration", duration)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise InvalidInputError(f"{name} must be a finite number >= 0", field=name)


def _hit_words(
    findings: Sequence[Finding], words: Sequence[Word], segment: int
) -> list[tuple[float, float]]:
    """The ``(start, end)`` timings of the words that overlap a finding."""
    for i, w in enumerate(words):
        if not (math.isfinite(w.start) and math.isfinite(w.end)) or w.end < w.start:
            raise InvalidInputError(
                f"word {i} of segment {segment} has a non-finite or reversed timing",
                field="words",
            )
    spans = word_spans(list(words))
    starts = [s for s, _ in spans]
    hit: set[int] = set()
    for j, f in enumerate(findings):
        if f.end < f.start or f.start < 0:
            raise InvalidInputError(
                f"finding {j} of segment {segment} has a reversed or negative span",
                field="findings",
            )
        if f.end == f.start:
            continue  # an empty range overlaps no word
        # Words starting before the finding's end, back to the first ending after its start.
        i = bisect.bisect_left(starts, f.end) - 1
        while i >= 0 and spans[i][1] > f.start:
            if spans[i][0] < f.end:
                hit.add(i)
            i -= 1
    return [(words[i].start, words[i].end) for i in sorted(hit)]


def _pad_merge(
    hits: list[tuple[float, float]], padding: float, merge_gap: float, duration: float | None
) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for start, end in sorted(hits):
        lo = max(0.0, start - padding)
        hi = end + padding
        if duration is not None:
            hi = min(hi, duration)
        if duration is not None and lo >= duration:
            continue  # wholly past the end of the recording
        gap = lo - out[-1][1] if out else math.inf
        if gap < 0 or gap < merge_gap - _EPS:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def sample_ranges(
    intervals: Iterable[tuple[float, float]], sample_rate: int
) -> list[tuple[int, int]]:
    """The sample ranges ``[first, stop)`` that ``intervals`` (seconds) cover; sorted, disjoint.

    Sample ``i`` is masked when ``[i / rate, (i + 1) / rate)`` overlaps an
    interval: ``floor(start * rate) <= i < ceil(end * rate)``. Negative times
    clip to 0; overlapping or touching ranges merge.
    """
    _check_rate(sample_rate)
    raw: list[tuple[int, int]] = []
    for n, interval in enumerate(intervals):
        start, end = interval
        if not (math.isfinite(start) and math.isfinite(end)):
            raise InvalidInputError(f"interval {n} is not finite", field="intervals")
        if end < start:
            raise InvalidInputError(f"interval {n} ends before it starts", field="intervals")
        first = max(0, math.floor(start * sample_rate))
        stop = max(0, math.ceil(end * sample_rate))
        if stop > first:
            raw.append((first, stop))
    return _merge_ranges(raw)


def _check_rate(sample_rate: int) -> None:
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, int)
        or not 0 < sample_rate <= MAX_SAMPLE_RATE
    ):
        raise InvalidInputError(
            f"sample rate must be an integer from 1 to {MAX_SAMPLE_RATE} Hz", field="sample_rate"
        )


# -- G.711 μ-law -----------------------------------------------------------------------


def _lin2ulaw(sample: int) -> int:
    """G.711 μ-law code of a signed 16-bit sample (as ITU-T G.191 and ``audioop``)."""
    val = sample >> 2  # 14-bit
    if val < 0:
        val, mask = -val, 0x7F
    else:
        mask = 0xFF
    val = min(val, 8159) + 33
    seg = max(0, val.bit_length() - 6)  # 0x3F -> 0, 0x7F -> 1, ..., 0x1FFF -> 7
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((val >> (seg + 1)) & 0xF)) ^ mask


def _ulaw2lin(code: int) -> int:
    u = ~code & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return 0x84 - t if u & 0x80 else t - 0x84


@functools.cache
def _encode_table() -> bytes:
    """μ-law code of every 16-bit sample, indexed by the sample as unsigned."""
    return bytes(_lin2ulaw(u - 0x10000 if u & 0x8000 else u) for u in range(0x10000))


_DECODE = [_ulaw2lin(c) for c in range(256)]
_DECODE_LO = bytes(v & 0xFF for v in _DECODE)
_DECODE_HI = bytes((v >> 8) & 0xFF for v in _DECODE)


def mulaw_encode(data: bytes) -> bytes:
    """G.711 μ-law bytes of little-endian signed 16-bit samples."""
    samples = _pcm_array(data, 1, "H")
    return bytes(map(_encode_table().__getitem__, samples))


def mulaw_decode(data: bytes) -> bytes:
    """Little-endian signed 16-bit samples of G.711 μ-law bytes."""
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(_DECODE_LO)
    out[1::2] = data.translate(_DECODE_HI)
    return bytes(out)


# -- the beep --------------------------------------------------------------------------


class _Beep:
    """One sample rate's beep: a whole number of sine periods, and the fade gains."""

    def __init__(self, sample_rate: int) -> None:
        period = sample_rate // math.gcd(sample_rate, BEEP_HZ)  # samples holding whole cycles
        amplitude = 32767 * 10 ** (BEEP_DBFS / 20)
        step = 2 * math.pi * BEEP_HZ / sample_rate
        self.wave = [amplitude * math.sin(step * k) for k in range(period)]
        self.pcm = array("h", (round(v) for v in self.wave))
        self.fade = max(1, round(FADE_SECONDS * sample_rate))
        # Raised cosine from near 0 up to near 1.
        self.ramp = [
            0.5 - 0.5 * math.cos(math.pi * (k + 0.5) / self.fade) for k in range(self.fade)
        ]

    @functools.cached_property
    def mulaw(self) -> bytearray:
        return bytearray(map(_mulaw_code, self.pcm))

    def gain(self, k: int, n: int) -> float:
        """Gain of sample ``k`` of an ``n``-sample beep."""
        tail = n - 1 - k
        g = 1.0
        if k < self.fade:
            g = self.ramp[k]
        if tail < self.fade:
            g = min(g, self.ramp[tail])
        return g


_T = TypeVar("_T", "array[int]", bytearray)


def _tile(table: _T, k0: int, count: int) -> _T:
    """``count`` samples of ``table`` repeated, starting at its sample ``k0 % len(table)``."""
    period = len(table)
    phase = k0 % period
    rotated = table[phase:] + table[:phase]
    return (rotated * (count // period + 1))[:count]


@functools.lru_cache(maxsize=16)
def _beep(sample_rate: int) -> _Beep:
    return _Beep(sample_rate)


# -- masking ---------------------------------------------------------------------------


def mask_pcm16(
    data: bytes,
    sample_rate: int,
    intervals: Iterable[tuple[float, float]],
    *,
    mode: Mode = "beep",
    channels: int = 1,
    offset: int = 0,
) -> bytes:
    """``data`` (little-endian signed 16-bit, interleaved) with ``intervals`` masked.

    ``offset`` is the sample number (per channel) of the first sample in
    ``data`` when it is a chunk of a longer recording.
    """
    return AudioMasker(sample_rate, intervals, encoding="pcm16", mode=mode, channels=channels).mask(
        data, offset
    )


def mask_mulaw(
    data: bytes,
    sample_rate: int,
    intervals: Iterable[tuple[float, float]],
    *,
    mode: Mode = "beep",
    channels: int = 1,
    offset: int = 0,
) -> bytes:
    """``data`` (G.711 μ-law, interleaved) with ``intervals`` masked; silence is ``0xFF``."""
    return AudioMasker(sample_rate, intervals, encoding="mulaw", mode=mode, channels=channels).mask(
        data, offset
    )


class AudioMasker:
    """Masks chunks of one recording as they arrive, for intervals known so far.

    ``mask(chunk, offset)`` gives the same bytes as masking the whole
    recording and slicing out the chunk; :meth:`add` adds intervals learnt
    later (a chunk already masked is not revisited: mask it again if kept).
    """

    def __init__(
        self,
        sample_rate: int,
        intervals: Iterable[tuple[float, float]] = (),
        *,
        encoding: Encoding = "pcm16",
        mode: Mode = "beep",
        channels: int = 1,
    ) -> None:
        _check_rate(sample_rate)
        if encoding not in ("pcm16", "mulaw"):
            raise InvalidInputError("encoding must be 'pcm16' or 'mulaw'", field="encoding")
        if mode not in ("beep", "silence"):
            raise InvalidInputError("mode must be 'beep' or 'silence'", field="mode")
        if isinstance(channels, bool) or not isinstance(channels, int) or not 1 <= channels <= 64:
            raise InvalidInputError("channels must be an integer from 1 to 64", field="channels")
        self.sample_rate = sample_rate
        self.encoding: Encoding = encoding
        self.mode: Mode = mode
        self.channels = channels
        self._ranges = sample_ranges(intervals, sample_rate)

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """The sample ranges masked (see :func:`sample_ranges`)."""
        return list(self._ranges)

    def add(self, intervals: Iterable[tuple[float, float]]) -> None:
        """Mask ``intervals`` too, in chunks masked from now on."""
        new = sample_ranges(intervals, self.sample_rate)
        self._ranges = _merge_ranges(self._ranges + new)

    def mask(self, data: bytes, offset: int = 0) -> bytes:
        """``data`` masked; ``offset`` is the sample number of its first sample."""
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInputError("offset must be an integer >= 0", field="offset")
        width = 2 if self.encoding == "pcm16" else 1
        frame = width * self.channels
        if len(data) % frame:
            raise InvalidInputError(
                f"audio of {len(data)} bytes is not a whole number of {frame}-byte frames",
                field="data",
            )
        count = len(data) // frame
        end = offset + count
        ranges = self._ranges
        i = bisect.bisect_right(ranges, (offset, math.inf)) - 1
        i = max(i, 0)
        if self.encoding == "pcm16":
            out: bytearray | array[int] = _pcm_array(data, self.channels, "h")
        else:
            out = bytearray(data)
        touched = False
        for first, stop in ranges[i:]:
            if first >= end:
                break
            lo, hi = max(first, offset), min(stop, end)
            if lo >= hi:
                continue
            touched = True
            self._fill(out, lo - offset, hi - offset, lo - first, stop - first)
        if not touched:
            return bytes(data)
        if isinstance(out, array):
            if _BIG_ENDIAN:
                out.byteswap()
            return out.tobytes()
        return bytes(out)

    def _fill(self, out: bytearray | array[int], a: int, b: int, k0: int, n: int) -> None:
        """Mask samples ``a:b`` of ``out``: samples ``k0:`` of an ``n``-sample mask."""
        ch = self.channels
        count = b - a
        if isinstance(out, array):
            pcm = (
                array("h", bytes(2 * count))
                if self.mode == "silence"
                else _beep_chunk(
                    self.sample_rate, k0, count, n, _beep(self.sample_rate).pcm, _fade_pcm, _same
                )
            )
            for c in range(ch):
                out[a * ch + c : b * ch : ch] = pcm
        else:
            codes = (
                bytearray([MULAW_SILENCE]) * count
                if self.mode == "silence"
                else _beep_chunk(
                    self.sample_rate,
                    k0,
                    count,
                    n,
                    _beep(self.sample_rate).mulaw,
                    _fade_mulaw,
                    _mulaw_code,
                )
            )
            for c in range(ch):
                out[a * ch + c : b * ch : ch] = codes


def _beep_chunk(
    sample_rate: int,
    k0: int,
    count: int,
    n: int,
    table: _T,
    fade: Callable[[int, int, FadeDirection], _T],
    encode: Callable[[int], int],
) -> _T:
    """Samples ``k0 : k0 + count`` of an ``n``-sample beep, encoded as ``table`` (one period)."""
    beep = _beep(sample_rate)
    length, period = beep.fade, len(beep.wave)
    values = _tile(table, k0, count)
    if n >= 2 * length:  # both fades whole: copy them from the cache
        edges = (
            (0, fade(sample_rate, 0, "in")),
            (n - length, fade(sample_rate, (n - length) % period, "out")),
        )
        for start, edge in edges:
            lo, hi = max(k0, start), min(k0 + count, start + length)
            if lo < hi:
                values[lo - k0 : hi - k0] = edge[lo - start : hi - start]
    else:  # shorter than its two fades: every sample is faded
        for k in range(k0, k0 + count):
            values[k - k0] = encode(round(beep.wave[k % period] * beep.gain(k, n)))
    return values


@functools.lru_cache(maxsize=256)
def _fade_pcm(sample_rate: int, phase: int, direction: FadeDirection) -> array[int]:
    """One whole fade of the beep, starting at sample ``phase`` of the sine."""
    beep = _beep(sample_rate)
    length, period = beep.fade, len(beep.wave)
    gains = beep.ramp if direction == "in" else beep.ramp[::-1]
    return array("h", (round(beep.wave[(phase + j) % period] * gains[j]) for j in range(length)))


@functools.lru_cache(maxsize=256)
def _fade_mulaw(sample_rate: int, phase: int, direction: FadeDirection) -> bytearray:
    return bytearray(map(_mulaw_code, _fade_pcm(sample_rate, phase, direction)))


def _mulaw_code(sample: int) -> int:
    return _encode_table()[sample & 0xFFFF]


def _same(sample: int) -> int:
    return sample


def _merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for first, stop in sorted(ranges):
        if out and first <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], stop))
        else:
            out.append((first, stop))
    return out


def _pcm_array(data: bytes, channels: int, typecode: Literal["h", "H"]) -> array[int]:
    if len(data) % (2 * channels):
        raise InvalidInputError(
            f"audio of {len(data)} bytes is not a whole number of {2 * channels}-byte frames",
            field="data",
        )
    samples = array(typecode, data)
    if _BIG_ENDIAN:
        samples.byteswap()
    return samples
