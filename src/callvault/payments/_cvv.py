"""A card's security code (CVV/CVC) held in memory for one authorization, then wiped.

PCI DSS forbids keeping the security code after authorization, even sealed,
so it never reaches the database, a log or an exception. :class:`EphemeralCvv`:

1. On construction, copies the digits into a private ``bytearray`` and zeroes
   a ``bytearray`` the caller passed (a ``str`` cannot be wiped by Python: a
   capture path SHOULD hand over a ``bytearray``).
2. :meth:`~EphemeralCvv.consume` lends the buffer once, inside a ``with``
   block, before the deadline; the buffer is zeroed when the block ends,
   whatever ends it. A second use, a use after the deadline, or after
   :meth:`~EphemeralCvv.wipe`, raises :class:`CvvUnavailableError`.
3. At the deadline a timer zeroes it even if nobody asks again; so does
   garbage collection. It refuses pickling and copying, and its ``repr`` and
   ``str`` show its state only.

Python may have copied the digits elsewhere before they got here (the
``str`` they were parsed from, a socket buffer); what this wipes is the copy
callvault keeps.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final, Literal, NoReturn

from callvault.errors import ConflictError, InvalidInputError

#: How long a captured CVV may wait for its authorization, seconds.
DEFAULT_TTL_SECONDS: Final = 120.0
MIN_CVV_DIGITS: Final = 3
MAX_CVV_DIGITS: Final = 4

State = Literal["ready", "in-use", "used", "expired", "wiped"]


class CvvUnavailableError(ConflictError):
    """The CVV was already used, has expired or was wiped: ask the caller again."""

    code = "cvv-unavailable"

    def __init__(self) -> None:
        super().__init__("the card security code was already used, expired or wiped", field="cvv")


def _zero(buf: bytearray) -> None:
    buf[:] = bytes(len(buf))  # same length: overwritten in place, not reallocated


def _expire(ref: weakref.ReferenceType[EphemeralCvv]) -> None:
    holder = ref()
    if holder is not None:
        holder._finish("expired")


class EphemeralCvv:
    """A security code usable once, for at most ``ttl_seconds`` (see the module docstring)."""

    __slots__ = ("__weakref__", "_buf", "_clock", "_deadline", "_lock", "_state", "_timer")

    def __init__(
        self,
        digits: bytearray | str,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # (1):
        if isinstance(digits, bytearray):
            buf = bytearray(digits)
            _zero(digits)
        elif isinstance(digits, str) and digits.isascii():
            buf = bytearray(digits, "ascii")
        else:
            raise InvalidInputError("card security code must be ASCII digits", field="cvv")
        if not (MIN_CVV_DIGITS <= len(buf) <= MAX_CVV_DIGITS and buf.isdigit()):
            n = len(buf)
            _zero(buf)
            raise InvalidInputError(
                f"card security code has {n} characters; "
                f"{MIN_CVV_DIGITS} or {MAX_CVV_DIGITS} digits expected",
                field="cvv",
            )
        if not ttl_seconds > 0:
            _zero(buf)
            raise InvalidInputError("CVV lifetime must be positive", field="ttl_seconds")
        self._buf = buf
        self._clock = clock
        self._deadline = clock() + ttl_seconds
        self._lock = threading.Lock()
        self._state: State = "ready"
        # (3):
        self._timer: threading.Timer | None = threading.Timer(
            ttl_seconds, _expire, args=(weakref.ref(self),)
        )
        self._timer.daemon = True
        self._timer.start()

    @property
    def state(self) -> State:
        with self._lock:
            if self._state == "ready" and self._clock() >= self._deadline:
                self._finish_locked("expired")
            return self._state

    @property
    def available(self) -> bool:
        """Whether :meth:`consume` would lend the code now."""
        return self.state == "ready"

    @contextmanager
    def consume(self) -> Iterator[bytearray]:
        """Lend the digits (ASCII) once; they are zeroed when the ``with`` block ends."""
        # (2):
        with self._lock:
            if self._state == "ready" and self._clock() >= self._deadline:
                self._finish_locked("expired")
            if self._state != "ready":
                raise CvvUnavailableError
            self._state = "in-use"
            self._cancel_timer()
        try:
            yield self._buf
        finally:
            self._finish("used")

    def wipe(self) -> None:
        """Zero the code now; it can no longer be used."""
        self._finish("wiped")

    def _finish(self, state: State) -> None:
        with self._lock:
            self._finish_locked(state)

    def _finish_locked(self, state: State) -> None:
        _zero(self._buf)
        self._cancel_timer()
        if self._state in ("ready", "in-use"):
            self._state = state

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __del__(self) -> None:
        buf = getattr(self, "_buf", None)
        if buf is not None:
            _zero(buf)

    def __repr__(self) -> str:
        return f"EphemeralCvv(<redacted>, state={self._state})"

    __str__ = __repr__

    def _refuse(self, *_args: object) -> NoReturn:
        raise TypeError("a card security code cannot be pickled or copied")

    __reduce__ = __reduce_ex__ = __copy__ = __deepcopy__ = __getstate__ = _refuse
