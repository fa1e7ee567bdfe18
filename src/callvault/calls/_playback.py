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

Pure apart from the reader handed in; nothing here logs or raises with content.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator, Sequence
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


def mask_plan(
    segments: Sequence[TimedSegment], duration_ms: int, redactor: Redactor
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(intervals to beep, intervals to silence), in seconds, for the masked view."""
    beep: list[tuple[float, float]] = []
    covered: list[tuple[int, int]] = []
    for seg in segments:
        covered.append((seg.start_ms, seg.end_ms))
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
    silence: list[tuple[float, float]] = []
    at = 0
    for start, end in sorted(covered):
        if start > at:
            silence.append((at / 1000, start / 1000))
        at = max(at, end)
    if at < duration_ms:
        silence.append((at / 1000, duration_ms / 1000))
    return beep, silence


def wav_range(
    reader: RangeReader,
    sample_rate: int,
    samples: int,
    rng: ByteRange,
    *,
    beep: Sequence[tuple[float, float]] = (),
    silence: Sequence[tuple[float, float]] = (),
) -> Iterator[bytes]:
    """The bytes ``rng`` of the WAV view, decrypting only the segments touched."""
    header = wav_header(samples, sample_rate)
    if rng.start < WAV_HEADER_BYTES:
        yield header[rng.start : min(rng.end, WAV_HEADER_BYTES)]
    if rng.end <= WAV_HEADER_BYTES:
        return
    data_start = max(rng.start, WAV_HEADER_BYTES) - WAV_HEADER_BYTES
    data_end = rng.end - WAV_HEADER_BYTES
    first, stop = data_start // 2, (data_end + 1) // 2
    beeper = AudioMasker(sample_rate, beep, encoding="pcm16", mode="beep") if beep else None
    muter = AudioMasker(sample_rate, silence, encoding="pcm16", mode="silence") if silence else None
    sample = first
    skip = data_start - 2 * first  # 0 or 1: a range may start inside a sample
    remaining = data_end - data_start
    for piece in reader.iter_range(first, stop):
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
