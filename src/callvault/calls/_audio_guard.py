"""The guard every inbound audio chunk passes before it is sealed: card audio is never stored.

PCI DSS asks recordings to "pause and resume" around card data. This module
does it on the live stream: pure (no I/O, nothing logged), streaming (chunks
of any length), bounded in memory. One :class:`AudioGuard` per call:

1. :meth:`AudioGuard.feed` appends the chunk to the held audio (a gap in the
   offsets is filled with silence) and runs it through a
   :class:`~callvault.calls._dtmf.DtmfDetector`. Every tone the detector
   reports is silenced over :func:`~callvault.calls._dtmf.tone_intervals`
   (the tone padded by one detection block each side), wherever it is, in a
   secure capture or not. The guard counts tones (:attr:`~AudioGuard.tones`)
   and keeps no digit: the :class:`~callvault.calls._dtmf.Tone` values are
   dropped as soon as their intervals are known.
2. :meth:`AudioGuard.silence` silences a span found by other means (a card
   number spoken, located by live redaction through word timings), and
   :meth:`AudioGuard.begin_capture` / :meth:`AudioGuard.end_capture` silence
   everything between them. Known spans are written over the held audio at
   once (and over later audio as it arrives), so tone audio does not linger
   in memory once found.
3. Audio is released (returned, for the caller to seal) only up to the
   least of: the detector's ``settled`` mark (no tone reported later, padded,
   can reach before it), the live edge less ``hold_ms`` (time for
   transcript-based :meth:`~AudioGuard.silence` calls to arrive despite ASR
   lag), and the start of an open capture. Nothing a later tone or capture
   could cover is ever released.
4. Fail closed on memory: when more than ``max_hold_ms`` would be held (a
   capture that never ends, a key held down, a detector that does not
   settle), the audio older than that bound is released *silenced*, all of
   it, and counted in :attr:`~AudioGuard.forced_silence_samples`. Losing
   audio is acceptable; storing card audio is not.
5. :meth:`AudioGuard.flush` (the call ended) reports the last tone, silences
   an open capture to the end of the audio, and releases everything.

The released audio, concatenated, is contiguous from the first chunk's first
sample and as long as all audio fed plus gaps; any chunking of the same audio
(with the same spans silenced in time) gives the same bytes. Silence is the
μ-law code ``0xFF`` (decodes to 0, as ``callvault.redact.mask_mulaw(...,
mode="silence")`` writes) or PCM16 zero samples.

A span whose samples were partly released already is *too late*:
:meth:`~AudioGuard.silence` and :meth:`~AudioGuard.begin_capture` return
False for it (the caller MUST record an incident) and still silence the part
not yet released.

Cost per 20 ms frame of 8 kHz μ-law on one core of a shared machine: the
guard's own work (buffering, silencing, releasing; no per-sample Python
loop) is about 4 µs; the rest is the DTMF detector's. With the detector's
mypyc build (``scripts/build-redact-fast``) that is about 5 µs for near
silence, 8 µs for speech-level audio and 35 µs while a key sounds;
interpreted, about 15, 60 and 250 µs. At 50 frames a second, 200 calls all
in speech thus need about 0.1 core for detection compiled, 0.6 interpreted.

Errors carry counts and sample numbers only, never audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from callvault.calls._dtmf import DtmfDetector, tone_intervals
from callvault.errors import InvalidInputError

Codec = Literal["mulaw", "pcm16"]

#: Least ``max_hold_ms``: above the detector's own lag (about five blocks, 66 ms).
MIN_MAX_HOLD_MS = 100
#: Most ``max_hold_ms`` accepted (memory: 60 s of 48 kHz PCM16 is 5.8 MB per call).
MAX_MAX_HOLD_MS = 60_000
#: Default largest forward jump of ``offset`` (filled with silence), ms.
DEFAULT_MAX_GAP_MS = 60_000

_WIDTH = {"mulaw": 1, "pcm16": 2}
#: One byte of silence: μ-law 0xFF decodes to 0 (``redact.MULAW_SILENCE``); PCM16 0 is 00 00.
_SILENCE_BYTE = {"mulaw": b"\xff", "pcm16": b"\x00"}


@dataclass(frozen=True, slots=True)
class ReleasedAudio:
    """Audio the guard let out: ``audio`` (the guard's codec) starts at sample ``offset``.

    ``silenced_samples`` counts the samples of it the guard silenced (tones,
    spans, captures, the memory bound); a gap's filler counts only where one
    of those covers it.
    """

    offset: int
    audio: bytes
    silenced_samples: int


class AudioGuard:
    """Silences DTMF tones, card-capture spans and given spans in one call's audio.

    ``feed(chunk, offset)`` takes the sample number of the chunk's first
    sample; offsets MUST NOT go back, and a jump forward (at most
    ``max_gap_ms``) is filled with silence. Each call returns what can be
    released now (at most one :class:`ReleasedAudio`, contiguous with the
    previous one); :meth:`flush` at the end of the call returns the rest.
    """

    __slots__ = (
        "_buf",
        "_capture",
        "_codec",
        "_detector",
        "_edge",
        "_flushed",
        "_forced",
        "_hold",
        "_max_gap",
        "_max_hold",
        "_origin",
        "_ranges",
        "_rate",
        "_released",
        "_silence",
        "_tones",
        "_width",
    )

    def __init__(
        self,
        *,
        codec: Codec,
        sample_rate: int = 8000,
        hold_ms: int = 0,
        max_hold_ms: int = 10_000,
        max_gap_ms: int = DEFAULT_MAX_GAP_MS,
    ) -> None:
        if codec not in _WIDTH:
            raise InvalidInputError("codec must be 'mulaw' or 'pcm16'", field="codec")
        self._detector = DtmfDetector(sample_rate)  # checks the rate
        for name, value in (("hold_ms", hold_ms), ("max_gap_ms", max_gap_ms)):
            if not _is_index(value):
                raise InvalidInputError(f"{name} must be an integer >= 0", field=name)
        if not (_is_index(max_hold_ms) and MIN_MAX_HOLD_MS <= max_hold_ms <= MAX_MAX_HOLD_MS):
            raise InvalidInputError(
                f"max_hold_ms must be an integer from {MIN_MAX_HOLD_MS} to {MAX_MAX_HOLD_MS}",
                field="max_hold_ms",
            )
        if hold_ms > max_hold_ms:
            raise InvalidInputError(
                f"hold_ms {hold_ms} exceeds max_hold_ms {max_hold_ms}", field="hold_ms"
            )
        self._codec: Codec = codec
        self._rate = sample_rate
        self._width = _WIDTH[codec]
        self._silence = _SILENCE_BYTE[codec]
        self._hold = hold_ms * sample_rate // 1000
        self._max_hold = max_hold_ms * sample_rate // 1000
        self._max_gap = max_gap_ms * sample_rate // 1000
        self._buf = bytearray()  # held audio: samples [_released, _edge)
        self._origin: int | None = None  # first sample of the first chunk
        self._released = 0  # audio before this sample was released
        self._edge = 0  # the sample after the last one fed (the live edge)
        self._ranges: list[tuple[int, int]] = []  # spans to silence, sorted, disjoint
        self._capture: int | None = None  # start of the open capture
        self._tones = 0
        self._forced = 0
        self._flushed = False

    # -- state ---------------------------------------------------------------------------

    @property
    def codec(self) -> Codec:
        return self._codec

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def capturing(self) -> bool:
        """A secure capture has begun and not ended."""
        return self._capture is not None

    @property
    def capture_start(self) -> int | None:
        """Sample the open capture silences from (None when no capture is open)."""
        return self._capture

    @property
    def tones(self) -> int:
        """DTMF tones found so far (their digits are never kept)."""
        return self._tones

    @property
    def released(self) -> int:
        """Audio before this sample number has been released."""
        return self._released

    @property
    def held_samples(self) -> int:
        """Samples fed (or gap) and not yet released."""
        return self._edge - self._released

    @property
    def forced_silence_samples(self) -> int:
        """Samples released silenced because they were held longer than ``max_hold_ms``."""
        return self._forced

    # -- audio ---------------------------------------------------------------------------

    def feed(self, chunk: bytes | bytearray, offset: int) -> list[ReleasedAudio]:
        """Take ``chunk`` (the guard's codec) starting at sample ``offset``; return what is
        released now."""
        if not isinstance(chunk, bytes | bytearray):
            raise InvalidInputError("audio must be bytes", field="chunk")
        width = self._width
        if len(chunk) % width:
            raise InvalidInputError(
                f"audio of {len(chunk)} bytes is not a whole number of {width}-byte samples",
                field="chunk",
            )
        if not _is_index(offset):
            raise InvalidInputError("offset must be an integer >= 0", field="offset")
        if self._flushed:
            raise InvalidInputError("the guard was flushed: the call has ended", field="offset")
        edge = self._edge
        if self._origin is None:
            self._origin = self._released = edge = offset
        elif offset < edge:
            raise InvalidInputError(
                f"offset {offset} goes back before sample {edge}, already fed", field="offset"
            )
        elif offset - edge > self._max_gap:
            raise InvalidInputError(
                f"offset {offset} skips {offset - edge} samples after sample {edge},"
                f" more than {self._max_gap}",
                field="offset",
            )
        # (1) Hold the audio (a gap as silence), with the spans already known silenced.
        buf = self._buf
        if offset > edge:
            buf += self._silence * ((offset - edge) * width)
        buf += chunk
        self._edge = new_edge = offset + len(chunk) // width
        if self._ranges and self._ranges[-1][1] > edge:
            for lo, hi in self._ranges:
                self._blank(max(lo, edge), hi)
        # (2) Tones: silence each, keep the count only.
        detector = self._detector
        data = bytes(chunk)  # the same object when it is bytes already
        found = detector.feed(data, offset) if width == 2 else detector.feed_mulaw(data, offset)
        if found:
            self._tones += len(found)
            self._add_seconds(tone_intervals(found, self._rate))
            del found
        # (3) Release what nothing later can cover; (4) force out what exceeds the bound.
        target = min(detector.settled, new_edge - self._hold)
        if self._capture is not None:
            target = min(target, self._capture)
        return self._release(target, new_edge - self._max_hold)

    def flush(self) -> list[ReleasedAudio]:
        """The call ended: silence the last tone and an open capture (to the end of the
        audio), release everything. The guard takes no more audio."""
        if self._flushed:
            return []
        self._flushed = True
        found = self._detector.flush()
        if found:
            self._tones += len(found)
            self._add_seconds(tone_intervals(found, self._rate))
            del found
        if self._capture is not None:
            self._add(self._capture, self._edge)
            self._capture = None
        out = self._release(self._edge, self._edge)
        self._ranges = []
        return out

    # -- spans ---------------------------------------------------------------------------

    def silence(self, start: int, end: int) -> bool:
        """Silence samples ``[start, end)``. False if part of it was released already (too
        late: the caller MUST record an incident); the rest is silenced all the same."""
        if not (_is_index(start) and _is_index(end)):
            raise InvalidInputError("start and end must be integers >= 0", field="start")
        if end < start:
            raise InvalidInputError(f"span ends at {end}, before its start {start}", field="end")
        in_time = not self._too_late(start, end)
        if not self._flushed:
            self._add(start, end)
        return in_time

    def begin_capture(self, at: int) -> bool:
        """Secure card capture starts at sample ``at``: all audio from there to
        :meth:`end_capture` (or the end of the call) is silenced. False if audio from
        ``at`` on was released already (too late: the caller MUST record an incident)."""
        self._check_capture_call(at, "begin_capture")
        if self._capture is not None:
            raise InvalidInputError(
                f"a capture is already open from sample {self._capture}", field="at"
            )
        self._capture = at
        return not self._too_late(at, max(at + 1, self._edge))

    def end_capture(self, at: int) -> None:
        """Secure card capture ends at sample ``at`` (exclusive)."""
        self._check_capture_call(at, "end_capture")
        start = self._capture
        if start is None:
            raise InvalidInputError("end_capture without begin_capture", field="at")
        if at < start:
            raise InvalidInputError(
                f"capture would end at sample {at}, before its start {start}", field="at"
            )
        self._add(start, at)
        self._capture = None

    # -- internals -----------------------------------------------------------------------

    def _check_capture_call(self, at: int, name: str) -> None:
        if not _is_index(at):
            raise InvalidInputError(f"{name}: at must be an integer >= 0", field="at")
        if self._flushed:
            raise InvalidInputError(f"{name} after the call ended", field="at")

    def _too_late(self, start: int, end: int) -> bool:
        """Some of ``[start, end)`` was released (audio before the first chunk never is)."""
        origin = self._origin
        return origin is not None and max(start, origin) < min(end, self._released)

    def _add_seconds(self, intervals: list[tuple[float, float]]) -> None:
        # tone_intervals gives whole samples / rate: round() restores them exactly.
        rate = self._rate
        for first, stop in intervals:
            self._add(round(first * rate), round(stop * rate))

    def _add(self, lo: int, hi: int) -> None:
        """Silence ``[lo, hi)``: now over held audio, later over audio still to come."""
        lo = max(lo, self._released)
        if lo >= hi:
            return
        self._blank(lo, hi)
        merged: list[tuple[int, int]] = []
        for first, stop in sorted([*self._ranges, (lo, hi)]):
            if merged and first <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
            else:
                merged.append((first, stop))
        self._ranges = merged

    def _blank(self, lo: int, hi: int) -> None:
        """Write silence over the held samples of ``[lo, hi)``."""
        lo, hi = max(lo, self._released), min(hi, self._edge)
        if lo < hi:
            width = self._width
            a = (lo - self._released) * width
            self._buf[a : a + (hi - lo) * width] = self._silence * ((hi - lo) * width)

    def _release(self, target: int, force_to: int) -> list[ReleasedAudio]:
        """Release ``[released, target)`` as it is and ``[target, force_to)`` all silenced."""
        start = self._released
        keep = max(start, min(target, self._edge))
        end = max(keep, force_to)
        if end <= start:
            return []
        width = self._width
        silenced = _overlap(self._ranges, start, keep) if self._ranges else 0
        if end > keep:  # (4): fail closed
            a = (keep - start) * width
            self._buf[a : (end - start) * width] = self._silence * ((end - keep) * width)
            self._forced += end - keep
            silenced += end - keep
        n = (end - start) * width
        audio = bytes(self._buf[:n])
        del self._buf[:n]  # cheap: bytearray drops a prefix without moving the rest
        self._released = end
        if self._ranges and self._ranges[0][1] <= end:
            self._ranges = [r for r in self._ranges if r[1] > end]
        return [ReleasedAudio(start, audio, silenced)]


def _overlap(ranges: list[tuple[int, int]], lo: int, hi: int) -> int:
    """Samples of ``[lo, hi)`` inside ``ranges``."""
    total = 0
    for first, stop in ranges:
        if first >= hi:
            break
        total += max(0, min(stop, hi) - max(first, lo))
    return total


def _is_index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
