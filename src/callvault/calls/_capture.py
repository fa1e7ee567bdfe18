"""Secure card capture from keypad digits: collect, end, hand over; never keep.

Pure and per call. The carrier reports each key press (Twilio's ``dtmf``
message) with the sample offset the audio had reached when it arrived. The
first digit opens a capture (the ingest path then silences audio from a
little before it, ``LOOKBACK`` samples, so the tones and any spoken digits
around them are not stored); the capture ends on ``#``, on
:data:`MAX_DIGITS` digits, or when :data:`IDLE_SAMPLES` of audio pass with
no digit. :meth:`DtmfCapture.finish` then hands the digits out once, in a
``bytearray`` the caller zeroes after tokenizing; the capture keeps no copy.

``*`` clears what was keyed so far (the caller starts again); other keys
(A-D) are ignored. A capture that ends with fewer than :data:`MIN_DIGITS`
digits is not a card number: it is discarded (counted, never handed out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

RATE: Final = 8000
#: Card numbers are 12 to 19 digits (ISO/IEC 7812).
MIN_DIGITS: Final = 12
MAX_DIGITS: Final = 19
#: A capture with no new digit for this long (of call audio) has ended.
IDLE_SAMPLES: Final = 5 * RATE
#: Audio silenced before the first digit's report: the tone itself and its lead-in.
LOOKBACK: Final = RATE


@dataclass(frozen=True, slots=True)
class CaptureEvent:
    """What happened, for the call: never digits."""

    kind: str  # "begin" | "end" | "discarded"
    at: int  # sample offset
    digits: int = 0


class DtmfCapture:
    """Keyed digits of one capture at a time: a card number by default; ``min_digits`` and
    ``max_digits`` 3 and 4 capture a card security code."""

    __slots__ = ("_buf", "_discarded", "_last", "_max", "_min", "_open", "_start")

    def __init__(self, *, min_digits: int = MIN_DIGITS, max_digits: int = MAX_DIGITS) -> None:
        self._min = min_digits
        self._max = max_digits
        self._buf = bytearray()
        self._open = False
        self._start = 0
        self._last = 0
        self._discarded = 0

    @property
    def capturing(self) -> bool:
        return self._open

    @property
    def start(self) -> int:
        """Sample offset the open capture silences from."""
        return self._start

    @property
    def discarded(self) -> int:
        return self._discarded

    def key(self, digit: str, at: int) -> list[CaptureEvent]:
        """A key press reported at sample ``at``."""
        out: list[CaptureEvent] = []
        if not self._open:
            if not digit.isdigit():
                return out
            self._open = True
            self._start = max(0, at - LOOKBACK)
            out.append(CaptureEvent("begin", self._start))
        self._last = at
        if digit == "#":
            out.append(self._end(at))
        elif digit == "*":
            self._wipe()
        elif digit.isdigit():
            self._buf += digit.encode("ascii")
            if len(self._buf) >= self._max:
                out.append(self._end(at))
        return out

    def tick(self, at: int) -> list[CaptureEvent]:
        """Audio has reached sample ``at``: end an idle capture."""
        if self._open and at - self._last >= IDLE_SAMPLES:
            return [self._end(at)]
        return []

    def finish(self) -> bytearray | None:
        """The digits of the capture that just ended, once (the caller MUST zero them)."""
        if self._open or not self._buf:
            return None
        out, self._buf = self._buf, bytearray()
        return out

    def close(self, at: int) -> list[CaptureEvent]:
        """The call ended: end an open capture."""
        return [self._end(at)] if self._open else []

    def _end(self, at: int) -> CaptureEvent:
        self._open = False
        n = len(self._buf)
        if n < self._min:
            self._wipe()
            self._discarded += 1
            return CaptureEvent("discarded", at, n)
        return CaptureEvent("end", at, n)

    def _wipe(self) -> None:
        self._buf[:] = bytes(len(self._buf))
        self._buf = bytearray()
