"""Recording playback: a WAV view of a sealed recording, by byte range, full or masked.

A recording is stored as sealed 8 kHz μ-law; players get 16-bit PCM WAV
(what every browser plays), so the WAV is ``44 + 2 * samples`` bytes and
WAV byte ``w >= 44`` is half of sample ``(w - 44) // 2``. A ``Range`` request
decrypts only the sealed segments that hold the samples it touches
(:class:`~callvault.crypto.stream.RangeReader`).

The masked view (roles without ``recording:read``) is computed, never
stored, and fails closed:

- every span the redaction engine finds in a transcript segment is beeped
  over its words' times (padding as :func:`callvault.redact.mask_intervals`);
  a segment whose words do not spell out its text (no usable word timings)
  is beeped whole when it holds any finding;
- audio that no transcript segment accounts for is silenced: what the
  transcript cannot vouch for, a reviewer does not hear.

The silences come from the segments' times alone (plain metadata). The beeps
need each segment's text and words, so a ranged read works them out with a
:class:`MaskPlanner`, which opens only the segments near the samples read
(the same bytes as the plan of the whole transcript: see its docstring).

Pure apart from the reader and the segment opener handed in; nothing here
logs or raises with content.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from callvault.crypto.stream import RangeReader
from callvault.errors import RangeNotSatisfiableError
from callvault.redact import AudioMasker, Redactor, mask_intervals, mulaw_decode
from callvault.redact import Word as RedactWord

WAV_HEADER_BYTES = 44
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: A word whose card number was tokenized at ingest (``calls/_card_text.py``).
CARD_WORD = "[CARD]"
#: A tokenized or withheld card in stored text.
CARD_MARK = re.compile(r"\[CARD(?:_NUMBER| tok_[A-Za-z0-9]+ ending \d{4})?\]")
#: Padding around a tokenized card word, seconds (as mask_intervals pads findings).
PAD_S = 0.2
#: How far (ms) a word's times may lie outside its segment's span for :class:`MaskPlanner`
#: to place the segment by its span; a segment read with words further out makes the
#: planner read every segment.
WORD_SLACK_MS = 1000
#: How far (ms) outside its span a segment's beeps can reach when its words are within
#: the slack: the slack, the padding either side (PAD_S here, mask_intervals' 0.2 s
#: default) and a margin (reaching further only reads more segments, never changes bytes).
REACH_MS = WORD_SLACK_MS + 500

Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # exclusive

    def content_range(self, total: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{total}"


@dataclass(frozen=True, slots=True)
class TimedSegment:
    """What masking needs of one transcript segment (text stays in memory, never out)."""

    start_ms: int
    end_ms: int
    text: str
    words: tuple[tuple[str, int, int], ...]  # (text, start_ms, end_ms)


def wav_size(samples: int) -> int:
    return WAV_HEADER_BYTES + 2 * samples


def wav_header(samples: int, sample_rate: int) -> bytes:
    """RIFF/WAVE header for mono 16-bit PCM of ``samples`` samples."""
    data = 2 * samples
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, 2 * sample_rate, 2, 16)
        + b"data"
        + struct.pack("<I", data)
    )


def parse_range(header: str | None, total: int) -> ByteRange | None:
    """One ``bytes=`` range of ``total`` bytes (None: the whole).

    Several ranges are not served (the whole is, as RFC 9110 allows a server
    to ignore ``Range``); a syntactically bad one likewise; an unsatisfiable
    one raises :class:`RangeNotSatisfiableError`.
    """
    if header is None:
        return None
    m = _RANGE.match(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # the last N bytes
        n = int(last)
        if n == 0:
            raise RangeNotSatisfiableError("empty suffix range", total=total)
        return ByteRange(max(0, total - n), total)
    start = int(first)
    if start >= total:
        raise RangeNotSatisfiableError("range starts past the end of the recording", total=total)
    end = total if not last else min(total, int(last) + 1)
    if end <= start:
        return None  # last < first: syntactically invalid, ignored
    return ByteRange(start, end)


def segment_beeps(seg: TimedSegment, redactor: Redactor) -> list[Interval]:
    """The intervals (seconds) to beep for one transcript segment in the masked view."""
    beep: list[Interval] = []
    # Words whose card number was tokenized at ingest keep their times: beep them.
    carded = [(s / 1000, e / 1000) for t, s, e in seg.words if t == CARD_WORD]
    beep += [(a - PAD_S, b + PAD_S) for a, b in carded]
    findings = redactor.find(seg.text)
    words = [RedactWord(t, s / 1000, e / 1000) for t, s, e in seg.words]
    whole = (seg.start_ms / 1000, seg.end_ms / 1000)
    if findings:
        if " ".join(w.text for w in words) == seg.text:
            beep += mask_intervals(findings, words)
        else:  # the words cannot place what was found: the whole segment
            beep.append(whole)
    elif not carded and CARD_MARK.search(seg.text):
        beep.append(whole)  # a tokenized card with no word to place it
    return beep


def silence_plan(spans: Iterable[tuple[int, int]], duration_ms: int) -> list[Interval]:
    """The intervals (seconds) no segment span ``(start_ms, end_ms)`` covers: silenced."""
    silence: list[Interval] = []
    at = 0
    for start, end in sorted(spans):
        if start > at:
            silence.append((at / 1000, start / 1000))
        at = max(at, end)
    if at < duration_ms:
        silence.append((at / 1000, duration_ms / 1000))
    return silence


def mask_plan(
    segments: Sequence[TimedSegment], duration_ms: int, redactor: Redactor
) -> tuple[list[Interval], list[Interval]]:
    """(intervals to beep, intervals to silence), in seconds, for the masked view."""
    beep = [b for seg in segments for b in segment_beeps(seg, redactor)]
    return beep, silence_plan(((s.start_ms, s.end_ms) for s in segments), duration_ms)


class MaskPlanner:
    """The beeps of the masked view, worked out from the segments a read needs.

    The bytes of beeped samples depend on the whole merged interval they lie
    in (the tone's phase and its fades run over it), and a segment's beeps
    can merge with its neighbours'. For samples ``[first, stop)``
    (:meth:`beeps_for`):

    1. The window is ``[first, stop)``.
    2. Read (open, find, place) every unread segment whose span widened by
       :data:`REACH_MS` touches the window.
    3. Widen the window to every merged beep interval, of the segments read
       so far, that touches ``[first, stop)``.
    4. Repeat from (2) until a round reads nothing.

    A segment's beeps lie inside its span widened by :data:`REACH_MS` when its
    words lie inside its span widened by :data:`WORD_SLACK_MS` (the API and
    live ingest write words inside their segment). Then every segment whose
    beeps merge into an interval touching ``[first, stop)`` is read, and the
    beeps give those samples the bytes the plan of the whole transcript
    (:func:`mask_plan`) gives. Words further out are seen only in a segment
    that is read: it makes the planner read every segment (the whole plan,
    as before); a segment never read, far from every sample asked for, is
    not checked, so its words cannot beep inside the range.

    ``open_segment(i)`` MUST return segment ``i`` of ``spans`` (the caller
    checked the grant); a segment is opened once, and its text dropped once
    its beeps are known. One planner serves one request: never share it.
    """

    def __init__(
        self,
        spans: Sequence[tuple[int, int]],
        open_segment: Callable[[int], TimedSegment],
        redactor: Redactor,
        sample_rate: int,
    ) -> None:
        # A span given backwards still places its segment (by the hull of its ends).
        self._spans = [(min(a, b), max(a, b)) for a, b in spans]
        self._open = open_segment
        self._redactor = redactor
        self._rate = sample_rate
        self._unread = list(range(len(self._spans)))
        self._beep: list[Interval] = []
        self._ranges: list[tuple[int, int]] = []
        #: How many segments have been opened (a count, for tests and benches).
        self.opened = 0

    @property
    def beep(self) -> list[Interval]:
        """The beep intervals (seconds) of the segments read so far."""
        return list(self._beep)

    def beeps_for(self, first: int, stop: int) -> list[Interval]:
        """Beep intervals that mask samples ``[first, stop)`` exactly (see the class)."""
        lo, hi = first, stop
        while self._unread:
            lo_ms = lo * 1000 // self._rate - REACH_MS
            hi_ms = -(-hi * 1000 // self._rate) + REACH_MS
            near = [i for i in self._unread if self._touches(i, lo_ms, hi_ms)]
            if not near:
                break
            self._read(near)
            for a, b in self._ranges:
                if a <= stop and first <= b:
                    lo, hi = min(lo, a), max(hi, b)
        return self.beep

    def read_all(self) -> None:
        """Read every segment not read yet (the whole plan, as :func:`mask_plan`)."""
        self._read(list(self._unread))

    def _touches(self, i: int, lo_ms: int, hi_ms: int) -> bool:
        start, end = self._spans[i]
        return start <= hi_ms and lo_ms <= end

    def _read(self, indexes: list[int]) -> None:
        todo = list(indexes)
        while todo:
            i = todo.pop(0)
            seg = self._open(i)
            self.opened += 1
            start, end = self._spans[i]
            lo, hi = start - WORD_SLACK_MS, end + WORD_SLACK_MS
            stray = any(not lo <= t <= hi for _, s, e in seg.words for t in (s, e))
            self._beep += segment_beeps(seg, self._redactor)
            del seg  # the text is not needed any more
            self._unread.remove(i)
            if stray:  # words its span cannot place: read every segment, as the whole plan
                todo = list(self._unread)
        self._ranges = AudioMasker(self._rate, self._beep, encoding="pcm16", mode="beep").ranges


def wav_samples(rng: ByteRange) -> tuple[int, int] | None:
    """The samples ``[first, stop)`` whose WAV bytes ``rng`` touches (None: header only)."""
    if rng.end <= WAV_HEADER_BYTES:
        return None
    data_start = max(rng.start, WAV_HEADER_BYTES) - WAV_HEADER_BYTES
    data_end = rng.end - WAV_HEADER_BYTES
    return data_start // 2, (data_end + 1) // 2


def wav_range(
    reader: RangeReader,
    sample_rate: int,
    samples: int,
    rng: ByteRange,
    *,
    beep: Sequence[Interval] = (),
    silence: Sequence[Interval] = (),
    planner: MaskPlanner | None = None,
) -> Iterator[bytes]:
    """The bytes ``rng`` of the WAV view, decrypting only the segments touched.

    The beeps are ``beep``, or, with a ``planner``, its beeps for each piece
    read; a piece whose beeps cannot be placed (a segment that does not open)
    ends the stream with the error before that piece is yielded.
    """
    header = wav_header(samples, sample_rate)
    if rng.start < WAV_HEADER_BYTES:
        yield header[rng.start : min(rng.end, WAV_HEADER_BYTES)]
    touched = wav_samples(rng)
    if touched is None:
        return
    first, stop = touched
    data_start = max(rng.start, WAV_HEADER_BYTES) - WAV_HEADER_BYTES
    data_end = rng.end - WAV_HEADER_BYTES
    beeper = AudioMasker(sample_rate, beep, encoding="pcm16", mode="beep") if beep else None
    muter = AudioMasker(sample_rate, silence, encoding="pcm16", mode="silence") if silence else None
    planned = 0  # how many planner intervals ``beeper`` holds
    sample = first
    skip = data_start - 2 * first  # 0 or 1: a range may start inside a sample
    remaining = data_end - data_start
    for piece in reader.iter_range(first, stop):
        if planner is not None:
            intervals = planner.beeps_for(sample, sample + len(piece))
            if len(intervals) != planned:  # the planner only ever adds intervals
                beeper = AudioMasker(sample_rate, intervals, encoding="pcm16", mode="beep")
                planned = len(intervals)
        pcm = mulaw_decode(bytes(piece))
        if muter is not None:
            pcm = muter.mask(pcm, sample)
        if beeper is not None:
            pcm = beeper.mask(pcm, sample)
        sample += len(piece)
        out = pcm[skip : skip + remaining]
        skip = 0
        remaining -= len(out)
        if out:
            yield out
        if remaining <= 0:
            return
