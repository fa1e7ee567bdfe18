"""In-band DTMF detection: Goertzel filters over call audio, validated as ITU-T Q.24 asks.

During secure card capture the caller's keypad tones are silenced before
sealing and stored as a count, never as digits. This module finds them; it is
pure (no I/O), streams (chunks of any length carry state across) and keeps at
most one block of audio.

1. The audio (PCM16 mono; a μ-law path decodes first) is cut into blocks of
   :func:`block_size` samples: 105 at 8 kHz (13.125 ms), scaled with the rate
   (210 at 16 kHz). Blocks are counted from the first sample fed, so any
   chunking of the same audio gives the same blocks and the same tones.
2. Each block is a *hit* for a digit when all of these hold (the numbers are
   the module constants below):

   - **level**: the block's mean power is at least one tone at
     :data:`MIN_TONE_DBM0` (a cheap gate: quieter blocks skip the filters),
     and the strongest row tone and the strongest column tone each reach it
     (the two are then fitted jointly: see :class:`_Bank`);
   - **steady**: the three thirds of the block differ by at most
     :data:`STEADY_DB` in mean power, so a block only partly covered by a tone
     (or a click) is not a hit;
   - **twist**: the row tone exceeds the column tone by at most
     :data:`NORMAL_TWIST_DB` (normal twist) and the column tone exceeds the
     row tone by at most :data:`REVERSE_TWIST_DB` (reverse twist), each plus
     :data:`TWIST_ALLOWANCE_DB` for measurement error;
   - **relative peak**: each of the two is :data:`RELATIVE_PEAK_DB` above
     every other tone of its group;
   - **tone to total**: the two fitted tones explain at least
     :data:`TONE_TO_TOTAL` of the block's energy (speech and noise spread
     theirs; a tone 1.5 % off frequency still fits, and 15 dB of noise
     leaves 0.95);
   - **on frequency**: each tone's filter beats two guard filters
     :data:`GUARD_OFFSET` above and below its frequency, i.e. the component
     lies within about half that (2.5 %) of nominal: accepted at 1.5 %,
     rejected from 3.5 % on.

3. A digit begins after :data:`HITS_TO_BEGIN` consecutive hits and ends after
   :data:`MISSES_TO_END` consecutive blocks that are not its hits (or when
   another digit begins). A hit needs the block about 5/6 covered (the
   steady test), so a tone of 40 ms or more is always reported and one under
   21.9 ms never (Q.24: under 23 ms must not be; in between, about 2 % at 22
   ms, 10 % at 23 ms, 60 % at 30 ms are). An interruption of up to 10 ms
   does not split a digit; a pause of 40 ms or more between two presses of
   the same key gives two tones.

A :class:`Tone` runs from the start of its first hit block to the end of its
last one. The tone itself may begin up to one block earlier and end up to one
block later (blocks only partly covered by it are not hits); callers that
silence it MUST pad by one block on each side: :func:`tone_intervals` does.

Sources: Q.24 figures as summarised in B. L. Evans' real-time DSP course
notes (frequency: operate within 1.5 %, reject from 3.5 %; duration: operate
from 40 ms, reject under 23 ms; interruption up to 10 ms; twist: normal 8 dB,
reverse 4 dB); the 8 dB relative-peak test, the tone-to-total test and the
2-hits/3-misses validation of ETSI ES 201 235-3 as SpanDSP and Asterisk apply
them; the Goertzel recurrence ``s[n] = x[n] + 2 cos(w) s[n-1] - s[n-2]`` and
power ``s1² + s2² - 2 cos(w) s1 s2``.

Errors carry counts and sample indexes only, never audio.
"""

from __future__ import annotations

import functools
import math
import sys
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import mul
from types import ModuleType
from typing import Final, NamedTuple, cast

from callvault.errors import InvalidInputError
from callvault.redact import mulaw_decode

#: The low (row) and high (column) group frequencies, Hz (ITU-T Q.23).
ROW_HZ = (697, 770, 852, 941)
COLUMN_HZ = (1209, 1336, 1477, 1633)
#: The keypad, row by row: digit of row ``r`` and column ``c`` is ``KEYPAD[4 * r + c]``.
KEYPAD = "123A456B789C*0#D"

#: Sample rates accepted, Hz.
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000
#: Samples per block at 8 kHz (13.125 ms); other rates scale it.
BLOCK_AT_8K = 105

#: Weakest tone detected, per tone, dBm0 (26 dB below a -10 dBm0 sender).
MIN_TONE_DBM0 = -36.0
#: dBm0 of a full-scale sine in G.711 μ-law: dBFS = dBm0 - this.
FULL_SCALE_DBM0 = 3.17
#: Largest power difference between the thirds of a block, dB.
STEADY_DB = 3.0
#: Row tone above column tone (normal twist) and the reverse, dB, accepted by Q.24.
NORMAL_TWIST_DB = 8.0
REVERSE_TWIST_DB = 4.0
#: Added to the twist limits before rejecting: the filters' own error, dB.
TWIST_ALLOWANCE_DB = 1.0
#: Each tone above every other tone of its group, dB.
RELATIVE_PEAK_DB = 8.0
#: Least share of the block's energy the fitted pair of tones explains (-0.46 dB).
TONE_TO_TOTAL = 0.9
#: Guard filters at this fraction above and below each tone's frequency.
GUARD_OFFSET = 0.05
#: Consecutive hit blocks that begin a digit, and missed blocks that end it.
HITS_TO_BEGIN = 2
MISSES_TO_END = 3

_BIG_ENDIAN = sys.byteorder == "big"
_PREFILTER = 0.5  # least share of the energy in the two filters before fitting
_NONE = -1  # no digit


@dataclass(frozen=True, slots=True)
class Tone:
    """One DTMF digit heard from sample ``start`` to ``end`` (exclusive), at block precision."""

    digit: str
    start: int
    end: int

    def __post_init__(self) -> None:
        if not (isinstance(self.digit, str) and len(self.digit) == 1 and self.digit in KEYPAD):
            raise InvalidInputError("digit must be one of 0-9, *, #, A-D", field="digit")
        if not (_is_index(self.start) and _is_index(self.end) and self.start < self.end):
            raise InvalidInputError("tone must run from sample >= 0 to a later one", field="end")


def block_size(sample_rate: int) -> int:
    """Samples per detection block at ``sample_rate``: 105 at 8 kHz, 210 at 16 kHz."""
    _check_rate(sample_rate)
    return round(BLOCK_AT_8K * sample_rate / MIN_SAMPLE_RATE)


def tone_intervals(
    tones: Iterable[Tone], sample_rate: int, pad_blocks: int = 1
) -> list[tuple[float, float]]:
    """The times (seconds, sorted, merged) to silence for ``tones``, padded by whole blocks.

    One block each side (the default) covers the parts of a tone its hit
    blocks leave out; feed the result to ``callvault.redact.mask_pcm16`` or
    ``mask_mulaw`` with ``mode="silence"``.
    """
    if not _is_index(pad_blocks):
        raise InvalidInputError("pad_blocks must be an integer >= 0", field="pad_blocks")
    pad = pad_blocks * block_size(sample_rate)
    ranges = sorted((max(0, t.start - pad), t.end + pad) for t in tones)
    merged: list[tuple[int, int]] = []
    for first, stop in ranges:
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((first, stop))
    return [(first / sample_rate, stop / sample_rate) for first, stop in merged]


def detect_dtmf(pcm: bytes, sample_rate: int = 8000) -> list[Tone]:
    """The tones in a whole recording of little-endian signed 16-bit mono samples."""
    detector = DtmfDetector(sample_rate)
    return detector.feed(pcm, 0) + detector.flush()


def detect_dtmf_mulaw(data: bytes, sample_rate: int = 8000) -> list[Tone]:
    """The tones in a whole recording of G.711 μ-law bytes."""
    detector = DtmfDetector(sample_rate)
    return detector.feed_mulaw(data, 0) + detector.flush()


class DtmfDetector:
    """Finds DTMF tones in one call's audio, chunk by chunk.

    ``feed(chunk, offset)`` takes the chunk's first sample number in the call;
    offsets MUST not go back (a chunk overlapping audio already fed is
    refused) and a jump forward counts the skipped samples as silence. Tones
    come back once they have ended (up to :data:`MISSES_TO_END` blocks after
    their end); :meth:`flush` at the end of the call returns the last one.

    The state (the partial block, the digit being validated) lives here; the
    per-sample work (decoding, the level gate, the filters, the fit) is a
    :class:`_Bank`'s, taken from the mypyc build of this module
    (``scripts/build-redact-fast``) when it is installed and current, else
    from this module, interpreted. Both give the same tones.

    Cost per 20 ms at 8 kHz on one core (measured on a shared machine):
    compiled, about 5 µs for near silence (the level gate), 8 µs for
    speech-level audio (the eight filters), 35 µs while a key sounds (the
    fit and guards too); interpreted, about 15, 60 and 250 µs. About 1.7
    times that at 16 kHz.
    """

    def __init__(self, sample_rate: int = 8000) -> None:
        _check_rate(sample_rate)  # here: the compiled bank would refuse a non-int otherwise
        self._bank = _BANK(sample_rate)
        self.sample_rate = sample_rate
        self._size = self._bank.size
        self._next: int | None = None  # sample number the next chunk should start at
        self._pos = 0  # sample number of self._buf[0]
        self._buf: list[float] = []  # the block being filled (fewer than a block)
        self._flushed = False
        self._digit = _NONE  # the digit being heard
        self._start = self._end = self._misses = 0
        self._cand = _NONE  # a digit hit but not yet confirmed
        self._cand_start = self._cand_hits = 0

    @property
    def block_size(self) -> int:
        """Samples per block (the precision of a tone's ``start`` and ``end``)."""
        return self._size

    @property
    def settled(self) -> int:
        """Samples before this number will not fall inside a tone reported later.

        This holds even with each later tone padded by one block, so a
        streaming caller MAY release (seal) audio up to here and MUST hold
        the rest until a later call moves it on.
        """
        if self._next is None:
            return 0
        if self._flushed:
            return self._next
        first = self._pos
        if self._cand != _NONE:
            first = min(first, self._cand_start)
        if self._digit != _NONE:
            first = min(first, self._start)
        return max(0, first - self._size)

    def feed(self, pcm: bytes, offset: int) -> list[Tone]:
        """The tones that ended in or before ``pcm`` (little-endian 16-bit mono samples)."""
        if not isinstance(pcm, bytes | bytearray):
            raise InvalidInputError("audio must be bytes", field="pcm")
        if len(pcm) % 2:
            raise InvalidInputError(
                f"audio of {len(pcm)} bytes is not a whole number of 16-bit samples", field="pcm"
            )
        self._check_offset(offset)
        out = self._move_to(offset, len(pcm) // 2)
        self._steps(self._bank.take_pcm16(self._buf, bytes(pcm)), out)
        return out

    def feed_mulaw(self, data: bytes, offset: int) -> list[Tone]:
        """:meth:`feed` for G.711 μ-law bytes (one byte a sample)."""
        if not isinstance(data, bytes | bytearray):
            raise InvalidInputError("audio must be bytes", field="data")
        self._check_offset(offset)
        out = self._move_to(offset, len(data))
        self._steps(self._bank.take_mulaw(self._buf, bytes(data)), out)
        return out

    def flush(self) -> list[Tone]:
        """The call ended: the tone still sounding, if any. The detector takes no more audio."""
        if self._flushed:
            return []
        out: list[Tone] = []
        count = len(self._buf)
        if count:
            block = self._buf + [0.0] * (self._size - count)
            self._step(self._bank.classify(block), self._pos, self._pos + count, out)
        if self._digit != _NONE:
            self._emit(out)
        self._buf = []
        self._cand = _NONE
        self._flushed = True
        return out

    # -- blocks --------------------------------------------------------------------

    def _check_offset(self, offset: int) -> None:
        if not _is_index(offset):
            raise InvalidInputError("offset must be an integer >= 0", field="offset")
        if self._flushed:
            raise InvalidInputError("the detector was flushed: start a new one", field="offset")
        if self._next is not None and offset < self._next:
            raise InvalidInputError(
                f"offset {offset} goes back before sample {self._next}, already fed",
                field="offset",
            )

    def _move_to(self, offset: int, count: int) -> list[Tone]:
        """Take ``count`` samples from ``offset`` on: a gap before them is silence."""
        out: list[Tone] = []
        if self._next is None:
            self._next = self._pos = offset
        elif offset > self._next:
            self._skip(offset - self._next, out)
        self._next = offset + count
        return out

    def _steps(self, hits: list[int], out: list[Tone]) -> None:
        """Advance the digit validation by the blocks just classified (``hits``, in order)."""
        size = self._size
        for hit in hits:
            # A miss with no digit heard or hit before changes nothing: skip the step.
            if hit != _NONE or self._digit != _NONE or self._cand != _NONE:
                self._step(hit, self._pos, self._pos + size, out)
            self._pos += size

    def _skip(self, count: int, out: list[Tone]) -> None:
        """``count`` samples of silence, without building more than one block of it."""
        if self._buf:
            fill = min(count, self._size - len(self._buf))
            self._steps(self._bank.take(self._buf, [0.0] * fill), out)
            count -= fill
            if self._buf:  # the block is still not full: the gap ended inside it
                return
        blocks, rest = divmod(count, self._size)
        # A silent block is a miss; after MISSES_TO_END of them more change nothing.
        for k in range(min(blocks, MISSES_TO_END)):
            start = self._pos + k * self._size
            self._step(_NONE, start, start + self._size, out)
        self._pos += blocks * self._size
        self._buf = [0.0] * rest

    def _step(self, hit: int, start: int, end: int, out: list[Tone]) -> None:
        """Advance the digit validation by one block ``[start, end)`` classified ``hit``."""
        if self._digit != _NONE and hit == self._digit:
            self._end, self._misses, self._cand = end, 0, _NONE
            return
        if self._digit != _NONE:
            self._misses += 1
            if self._misses >= MISSES_TO_END:
                self._emit(out)
        if hit == _NONE:
            self._cand = _NONE
            return
        if hit == self._cand:
            self._cand_hits += 1
        else:
            self._cand, self._cand_start, self._cand_hits = hit, start, 1
        if self._cand_hits >= HITS_TO_BEGIN:
            if self._digit != _NONE:  # another digit took over without a pause
                self._emit(out)
            self._digit, self._start, self._end, self._misses = hit, self._cand_start, end, 0
            self._cand = _NONE

    def _emit(self, out: list[Tone]) -> None:
        out.append(Tone(KEYPAD[self._digit], self._start, self._end))
        self._digit = _NONE


class _Bank:
    """One sample rate's block size, filter constants and thresholds, computed once.

    A block goes through the eight Goertzel filters in one pass. A filter's
    final states ``s1 = s[N-1]``, ``s2 = s[N-2]`` give the block's projections
    on ``cos(wn)`` and ``sin(wn)``: ``C = s1 cos((N-1)w) - s2 cos(Nw)``,
    ``S = s1 sin((N-1)w) - s2 sin(Nw)`` (``C² + S²`` is the Goertzel power).

    The strongest row and column tones are then fitted jointly by least
    squares, each as ``cos``, ``sin``, ``t cos`` and ``t sin`` at its nominal
    frequency (``t`` is time from the block's middle): the ``t`` terms absorb
    a frequency error within tolerance, and fitting the pair together takes
    out each tone's leakage into the other's filter (a 105-sample block leaks
    -21 dB three bins away: enough to skew an 8 dB twist by 2 dB). Twist, level
    and tone-to-total use the fitted tones; relative peak and the guards use
    what the other filters hear once the fit is taken out.
    """

    def __init__(self, sample_rate: int) -> None:
        size = round(BLOCK_AT_8K * sample_rate / MIN_SAMPLE_RATE)
        self.size = size
        self.thirds = (0, size // 3, 2 * size // 3, size)
        omegas = [2 * math.pi * f / sample_rate for f in ROW_HZ + COLUMN_HZ]
        self.coefs = tuple(2 * math.cos(w) for w in omegas)
        # cos((N-1)w), cos(Nw), sin((N-1)w), sin(Nw) of each frequency in turn, flat.
        self.flat_turns: list[float] = [v for w in omegas for v in _turns(w, size)]
        # Four basis signals per frequency k, at 4k .. 4k+3: cos, sin, t cos, t sin.
        basis = [signal for w in omegas for signal in _basis(w, size)]
        self.ramps = [basis[4 * k + 2 : 4 * k + 4] for k in range(8)]
        self.gram: list[list[float]] = [[sum(map(mul, u, v)) for v in basis] for u in basis]
        self.inverses = {
            (r, c): _inverse([[self.gram[i][j] for j in _quads(r, c)] for i in _quads(r, c)])
            for r in range(4)
            for c in range(4, 8)
        }
        # Per frequency, its two guards: coefficient, turns, and (cos, sin) against the basis.
        self.guards = tuple(
            tuple(
                _Guard(
                    2 * math.cos(g),
                    _turns(g, size),
                    [[sum(map(mul, u, v)) for v in basis] for u in _basis(g, size)[:2]],
                )
                for g in (w * (1 - GUARD_OFFSET), w * (1 + GUARD_OFFSET))
            )
            for w in omegas
        )
        self.scale = 2 / (size * size)  # C² + S² of a sine of amplitude a → a² / 2, its power
        self.share = 2 / size / _PREFILTER  # C² + S² → energy (a² N / 2), over the least share
        amplitude = 32767 * 10 ** ((MIN_TONE_DBM0 - FULL_SCALE_DBM0) / 20)
        self.min_power = amplitude * amplitude / 2
        self.gate = size * self.min_power  # sum of squares of one weakest tone
        self.normal_twist = _ratio(NORMAL_TWIST_DB + TWIST_ALLOWANCE_DB)
        self.reverse_twist = _ratio(REVERSE_TWIST_DB + TWIST_ALLOWANCE_DB)
        self.peak = _ratio(RELATIVE_PEAK_DB)
        self.steady = _ratio(STEADY_DB)

    def take(self, buf: list[float], samples: list[float]) -> list[int]:
        """Append ``samples`` to ``buf``, classify its whole blocks and remove them.

        Returns each block's hit (:meth:`classify`) in order; ``buf`` keeps
        the rest (less than a block).
        """
        buf += samples
        return self._blocks(buf)

    def take_mulaw(self, buf: list[float], data: bytes) -> list[int]:
        """:meth:`take` for G.711 μ-law bytes (``callvault.redact``'s decoding)."""
        table = _MULAW  # its own float objects, shared: nothing is made per sample
        cast("list[object]", buf).extend([table[b] for b in data])
        return self._blocks(buf)

    def take_pcm16(self, buf: list[float], pcm: bytes) -> list[int]:
        """:meth:`take` for little-endian signed 16-bit samples."""
        samples = array("h", pcm)
        if _BIG_ENDIAN:
            samples.byteswap()
        buf += [float(v) for v in samples]
        return self._blocks(buf)

    def _blocks(self, buf: list[float]) -> list[int]:
        size, i, hits = self.size, 0, []
        while len(buf) - i >= size:
            hits.append(self.classify(buf[i : i + size]))
            i += size
        if i:
            del buf[:i]
        return hits

    def classify(self, block: list[float]) -> int:
        """The digit (index into :data:`KEYPAD`) that ``block`` is a hit for, or ``_NONE``.

        ``block`` holds PCM16 values as floats: the sums of squares below are
        exact (whole numbers under 2**53), as they were over integers.
        """
        a, b, c, d = self.thirds
        s0, s1, s2 = _energy(block[a:b]), _energy(block[b:c]), _energy(block[c:d])
        total = s0 + s1 + s2
        if total < self.gate:
            return _NONE
        m0, m1, m2 = s0 / (b - a), s1 / (c - b), s2 / (d - c)
        if min(m0, m1, m2) * self.steady < max(m0, m1, m2):
            return _NONE
        proj = self._projections(block)
        powers = [proj[2 * k] * proj[2 * k] + proj[2 * k + 1] * proj[2 * k + 1] for k in range(8)]
        row = _strongest(powers, 0)
        col = _strongest(powers, 4)
        # Cheap first look: the pair's share of the energy as the two filters alone see it
        # is 0.7 at worst for a key (1.5 % off frequency, 4 dB twist, 15 dB of noise);
        # speech and noise mostly stop here, before the fit.
        if (powers[row] + powers[col]) * self.share < total:
            return _NONE
        fit = _Fit(self, block, proj, row, col)
        if not (
            self._valid(fit, total)
            and fit.beats_guards(_project4(block, self.guards[row] + self.guards[col]))
        ):
            return _NONE
        return 4 * row + col - 4

    def _valid(self, fit: _Fit, total: float) -> bool:
        """Level, twist, relative peak and tone-to-total."""
        pr, pc = fit.power(slice(0, 4)), fit.power(slice(4, 8))
        rest = [fit.heard(k) for k in range(8) if k not in (fit.row, fit.col)]
        return (
            min(pr, pc) >= self.min_power
            and pr <= pc * self.normal_twist
            and pc <= pr * self.reverse_twist
            and all(p * self.peak <= pr for p in rest[:3])
            and all(p * self.peak <= pc for p in rest[3:])
            and fit.explained >= TONE_TO_TOTAL * total
        )

    def _projections(self, x: list[float]) -> list[float]:
        """``C_k, S_k`` of the block for the eight frequencies: eight Goertzel filters, one pass."""
        c0, c1, c2, c3, c4, c5, c6, c7 = self.coefs
        a1 = a2 = b1 = b2 = d1 = d2 = e1 = e2 = 0.0
        f1 = f2 = g1 = g2 = h1 = h2 = k1 = k2 = 0.0
        # Unrolled on purpose: one loop with the state in locals is the fast form in CPython
        # (and native arithmetic on C doubles under mypyc).
        for v in x:
            a1, a2 = v + c0 * a1 - a2, a1
            b1, b2 = v + c1 * b1 - b2, b1
            d1, d2 = v + c2 * d1 - d2, d1
            e1, e2 = v + c3 * e1 - e2, e1
            f1, f2 = v + c4 * f1 - f2, f1
            g1, g2 = v + c5 * g1 - g2, g1
            h1, h2 = v + c6 * h1 - h2, h1
            k1, k2 = v + c7 * k1 - k2, k1
        t = self.flat_turns
        return [
            a1 * t[0] - a2 * t[1],
            a1 * t[2] - a2 * t[3],
            b1 * t[4] - b2 * t[5],
            b1 * t[6] - b2 * t[7],
            d1 * t[8] - d2 * t[9],
            d1 * t[10] - d2 * t[11],
            e1 * t[12] - e2 * t[13],
            e1 * t[14] - e2 * t[15],
            f1 * t[16] - f2 * t[17],
            f1 * t[18] - f2 * t[19],
            g1 * t[20] - g2 * t[21],
            g1 * t[22] - g2 * t[23],
            h1 * t[24] - h2 * t[25],
            h1 * t[26] - h2 * t[27],
            k1 * t[28] - k2 * t[29],
            k1 * t[30] - k2 * t[31],
        ]


class _Fit:
    """The least-squares fit of one row and one column tone to a block."""

    def __init__(self, bank: _Bank, x: list[float], proj: list[float], row: int, col: int) -> None:
        self.bank = bank
        self.proj = proj
        self.row = row
        self.col = col
        self.index = _quads(row, col)
        sub: list[float] = []
        for k in (row, col):
            t_cos, t_sin = bank.ramps[k]
            sub += (proj[2 * k], proj[2 * k + 1], _dot(x, t_cos), _dot(x, t_sin))
        self.coef: list[float] = [_dot(line, sub) for line in bank.inverses[row, col]]
        self.explained: float = _dot(self.coef, sub)  # energy of the fitted pair

    def power(self, part: slice) -> float:
        """Mean power of the row (``0:4``) or column (``4:8``) tone as fitted."""
        index, coef, gram = self.index[part], self.coef[part], self.bank.gram
        energy = 0.0
        for a in range(len(index)):
            ci, line = coef[a], gram[index[a]]
            for b in range(len(index)):
                energy += ci * coef[b] * line[index[b]]
        return energy / self.bank.size

    def heard(self, k: int, part: slice = slice(0, 8)) -> float:
        """Power filter ``k`` hears once the fitted tones (or just ``part``) are taken out."""
        gram = self.bank.gram
        return self._power(
            self.proj[2 * k], self.proj[2 * k + 1], gram[4 * k], gram[4 * k + 1], part
        )

    def beats_guards(self, heard: list[tuple[float, float]]) -> bool:
        """Each tone, the other fitted tone taken out, is stronger than both its guards.

        ``heard``: ``C, S`` of the row's guards (below, above) then the column's.
        """
        guards = self.bank.guards
        for k, other, pair in ((self.row, slice(4, 8), 0), (self.col, slice(0, 4), 2)):
            power = self.heard(k, other)
            for guard, (cos_g, sin_g) in zip(guards[k], heard[pair : pair + 2], strict=True):
                if self._power(cos_g, sin_g, guard.gram[0], guard.gram[1], other) > power:
                    return False
        return True

    def _power(
        self, cos_k: float, sin_k: float, g_cos: list[float], g_sin: list[float], part: slice
    ) -> float:
        index, coef = self.index[part], self.coef[part]
        leak_cos = leak_sin = 0.0  # what the fitted tones put into this filter
        for a in range(len(index)):
            leak_cos += g_cos[index[a]] * coef[a]
            leak_sin += g_sin[index[a]] * coef[a]
        cos_k -= leak_cos
        sin_k -= leak_sin
        return (cos_k * cos_k + sin_k * sin_k) * self.bank.scale


def _dot(a: list[float], b: list[float]) -> float:
    """``sum(map(mul, a, b))`` of two lists of one length, as a loop mypyc makes native."""
    total = 0.0
    for u, v in zip(a, b):  # noqa: B905 - one length by construction; mypyc compiles a plain zip
        total += u * v
    return total


def _energy(part: list[float]) -> float:
    """Sum of squares (exact for PCM16 values: every partial sum is a whole number < 2**53)."""
    total = 0.0
    for v in part:
        total += v * v
    return total


def _strongest(powers: list[float], first: int) -> int:
    """Index of the largest of ``powers[first : first + 4]`` (the first of equals)."""
    best = first
    for k in range(first + 1, first + 4):
        if powers[k] > powers[best]:
            best = k
    return best


def _quads(row: int, col: int) -> tuple[int, ...]:
    """Indexes of the basis signals of a row and a column frequency."""
    return (*range(4 * row, 4 * row + 4), *range(4 * col, 4 * col + 4))


def _inverse(matrix: list[list[float]]) -> list[list[float]]:
    """Inverse of a small well-conditioned square matrix (Gauss-Jordan, partial pivoting)."""
    n = len(matrix)
    rows = [[*line, *(float(i == j) for j in range(n))] for i, line in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda i: abs(rows[i][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        head = rows[col][col]
        rows[col] = [v / head for v in rows[col]]
        for i in range(n):
            if i != col:
                factor = rows[i][col]
                rows[i] = [v - factor * w for v, w in zip(rows[i], rows[col], strict=True)]
    return [line[n:] for line in rows]


class _Guard(NamedTuple):
    coef: float
    turns: tuple[float, float, float, float]
    gram: list[list[float]]  # [cos, sin] x the 16 basis signals


def _project4(x: list[float], guards: tuple[_Guard, ...]) -> list[tuple[float, float]]:
    """``C, S`` of ``x`` at four guard frequencies: four Goertzel filters in one pass."""
    c0, c1, c2, c3 = (g.coef for g in guards)
    a1 = a2 = b1 = b2 = d1 = d2 = e1 = e2 = 0.0
    for v in x:  # unrolled, as in _Bank._projections
        a1, a2 = v + c0 * a1 - a2, a1
        b1, b2 = v + c1 * b1 - b2, b1
        d1, d2 = v + c2 * d1 - d2, d1
        e1, e2 = v + c3 * e1 - e2, e1
    out = []
    for (s1, s2), guard in zip(((a1, a2), (b1, b2), (d1, d2), (e1, e2)), guards, strict=True):
        cos_a, cos_b, sin_a, sin_b = guard.turns
        out.append((s1 * cos_a - s2 * cos_b, s1 * sin_a - s2 * sin_b))
    return out


def _turns(omega: float, size: int) -> tuple[float, float, float, float]:
    """``cos((N-1)w), cos(Nw), sin((N-1)w), sin(Nw)``: Goertzel states to ``C, S``."""
    return (
        math.cos((size - 1) * omega),
        math.cos(size * omega),
        math.sin((size - 1) * omega),
        math.sin(size * omega),
    )


def _basis(omega: float, size: int) -> list[list[float]]:
    """``cos(wn)``, ``sin(wn)``, ``t cos(wn)``, ``t sin(wn)``; ``t`` in blocks from the middle."""
    mid = (size - 1) / 2
    ts = [(n - mid) / size for n in range(size)]
    cos = [math.cos(omega * n) for n in range(size)]
    sin = [math.sin(omega * n) for n in range(size)]
    return [cos, sin, list(map(mul, ts, cos)), list(map(mul, ts, sin))]


def _ratio(db: float) -> float:
    return float(10 ** (db / 10))


def _bank(sample_rate: int) -> _Bank:
    _check_rate(sample_rate)  # before the cache: it would hash a bad value, or take True for 1
    return _cached_bank(sample_rate)


@functools.lru_cache(maxsize=8)
def _cached_bank(sample_rate: int) -> _Bank:
    return _Bank(sample_rate)


def _check_rate(sample_rate: int) -> None:
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, int)
        or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE
    ):
        raise InvalidInputError(
            f"sample rate must be an integer from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz",
            field="sample_rate",
        )


def _is_index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _mulaw_table() -> list[float]:
    values = array("h", mulaw_decode(bytes(range(256))))
    if _BIG_ENDIAN:
        values.byteswap()
    return [float(v) for v in values]


#: The PCM16 value of each μ-law byte, as a float. Typed ``object`` so that compiled code
#: hands on these objects rather than boxing new ones.
_MULAW: Final[list[object]] = list(_mulaw_table())


def _load_compiled() -> ModuleType | None:
    """This module as the mypyc build compiled it, when installed and built from this source."""
    from callvault.redact._fast import DTMF_BUILD  # noqa: PLC0415 - only the interpreted copy looks

    return DTMF_BUILD.load("_dtmf")


#: Gives every new :class:`DtmfDetector` its :class:`_Bank`: the compiled module's when its
#: build is current, else this module's (the tests run both).
_BANK: Callable[[int], _Bank] = _bank
if __name__ == "callvault.calls._dtmf":  # the interpreted copy, not the compiled one
    _COMPILED = _load_compiled()
    if _COMPILED is not None:
        _BANK = cast("Callable[[int], _Bank]", _COMPILED._bank)
