"""Card audio located through the live transcript, while that audio is still held.

The agent's recogniser sends transcript segments (interim hypotheses and
finals, with word timings) alongside the audio. The audio guard holds the
last ``CALLVAULT_INGEST_HOLD_MS`` of audio unsealed for exactly this: a card
number (or a card security code) said aloud is found in the text and its
words' time range is silenced before that audio is sealed. Pure: no I/O,
nothing logged, no text kept beyond the redaction stream's left context.

Rules:

- Every segment goes through a :class:`~callvault.redact.RedactionStream`
  (so a number split across two finals is still one finding). Each released
  segment's ``CARD_NUMBER`` and ``CARD_CVV`` findings give an interval: the
  words they overlap, padded by :data:`PAD` seconds each side. Interim
  previews count too: they come earlier than the final.
- A card *beginning*: when a keyword announces a card number or security code
  ("my card number is four one ...") and the number is still being said
  (the text's open tail), a secure capture opens at the first word of that
  tail (less :data:`PAD`): everything from there is silenced until the
  capture ends, so a recogniser that is late with the rest cannot let the
  digits through. It ends at the end of the first final that settles after
  it (no open tail), plus :data:`PAD`, or :data:`CAPTURE_MAX_S` of call time
  after it opened.
- Undecided digits a final is forced out with (the stream's ``withheld``
  spans) are silenced too: they may be part of a card.

A silencing that arrives after its audio was sealed is *too late*; the
ingest path reports that (an incident), it is not decided here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from callvault.redact import (
    RedactionStream,
    Redactor,
    Released,
    Segment,
    Word,
    spoken_digits,
    word_spans,
)
from callvault.redact._types import CARD_CVV, CARD_NUMBER

#: Entities whose audio is never stored.
SILENCED: Final = frozenset({CARD_NUMBER, CARD_CVV})
#: Seconds added each side of a silenced word (recogniser timings are approximate).
PAD: Final = 0.25
#: Longest a capture opened from the transcript stays open without a settling final.
CAPTURE_MAX_S: Final = 20.0
#: Characters of the previous final read before a segment to find an announcing keyword.
_LEFT: Final = 200


@dataclass(frozen=True, slots=True)
class TextActions:
    """What the audio path must do for the text just pushed (seconds of call time)."""

    silence: tuple[tuple[float, float], ...] = ()
    begin_capture: float | None = None
    end_capture: float | None = None
    #: Final segments released by the redaction stream (for the agent side and storage).
    released: tuple[Released, ...] = ()


class LiveCardText:
    """One call's transcript, read for card audio as it arrives (one per call, one task)."""

    def __init__(self, redactor: Redactor, *, max_hold_seconds: float = 1.5) -> None:
        self._redactor = redactor
        self._stream = RedactionStream(redactor, max_hold_seconds=max_hold_seconds)
        self._left = ""
        self._capture_from: float | None = None

    @property
    def capturing(self) -> bool:
        return self._capture_from is not None

    def push(self, segment: Segment) -> TextActions:
        """Take one segment (interim or final); return what to silence or capture."""
        released = self._stream.push(segment)
        joined, base = self._joined(segment)
        # At once, from this segment as it stands: a card already complete in it is
        # silenced now, not when the stream settles the text (its audio may be sealed by then).
        now = _word_intervals(
            segment.words,
            [
                (f.start - base, f.end - base)
                for f in (self._redactor.find(joined) if joined else ())
                if f.entity in SILENCED and f.end > base
            ],
        )
        silence = now + _intervals(released)
        begin = end = None
        announced = self._announced(segment, joined, base)
        if announced is not None and self._capture_from is None:
            self._capture_from = begin = max(0.0, announced - PAD)
        elif self._capture_from is not None and announced is None:
            settled = [hi for _lo, hi in _intervals([r for r in released if r.final])]
            if settled:
                end = max(settled)
            elif segment.final and segment.words and segment.words[-1].end >= self._capture_from:
                end = segment.words[-1].end + PAD
            if end is not None:
                end = max(end, self._capture_from)
                self._capture_from = None
        if segment.final and segment.text:
            self._left = (self._left + " " + segment.text)[-_LEFT:]
        return TextActions(
            silence=silence,
            begin_capture=begin,
            end_capture=end,
            released=tuple(r for r in released if r.final),
        )

    def advance(self, now: float) -> TextActions:
        """Call time moved to ``now`` seconds (audio arrived with no text)."""
        released = self._stream.advance(now)
        end = None
        if self._capture_from is not None and now - self._capture_from > CAPTURE_MAX_S:
            end = now
            self._capture_from = None
        return TextActions(
            silence=_intervals(released),
            end_capture=end,
            released=tuple(r for r in released if r.final),
        )

    def flush(self) -> TextActions:
        """End of call: what the stream still held."""
        released = self._stream.flush()
        return TextActions(silence=_intervals(released), released=tuple(released))

    def _joined(self, segment: Segment) -> tuple[str, int]:
        """The previous finals' end and ``segment``'s text; where the segment's text begins."""
        text = segment.text
        if not text:
            return "", 0
        joined = f"{self._left} {text}" if self._left else text
        return joined, len(joined) - len(text)

    def _announced(self, segment: Segment, joined: str, base: int) -> float | None:
        """Start time of a card number still being said at the end of ``segment``, if any."""
        if not joined or not segment.words:
            return None
        tail = self._redactor.open_tail(joined)
        if tail >= len(joined) or self._redactor.pending_entity(joined, tail) not in SILENCED:
            return None
        if not spoken_digits(joined[tail:]):
            return None
        at = max(0, tail - base)
        for (_start, end), word in zip(word_spans(segment.words), segment.words, strict=True):
            if end > at:
                return word.start
        return segment.words[-1].start


def _word_intervals(
    words: tuple[Word, ...], ranges: list[tuple[int, int]]
) -> tuple[tuple[float, float], ...]:
    """Padded time intervals of the words overlapping character ``ranges`` of their text."""
    if not ranges:
        return ()
    return tuple(
        (max(0.0, word.start - PAD), word.end + PAD)
        for (start, end), word in zip(word_spans(words), words, strict=True)
        if any(start < b and a < end for a, b in ranges)
    )


def _intervals(released: list[Released]) -> tuple[tuple[float, float], ...]:
    """Intervals of the released segments' card findings, and of digits a final was forced
    out with undecided (they may be part of a card)."""
    out: list[tuple[float, float]] = []
    for r in released:
        ranges = [(f.start, f.end) for f in r.findings if f.entity in SILENCED]
        if r.final:
            text = " ".join(w.text for w in r.words)
            ranges += [(a, b) for a, b in r.withheld if spoken_digits(text[a:b])]
        out.extend(_word_intervals(r.words, ranges))
    return tuple(out)
