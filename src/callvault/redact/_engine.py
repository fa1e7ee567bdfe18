"""The redactor: find entities in a text and replace them.

(Skeleton: the recognisers land in the following commits; this file keeps the
public shape stable for the CLI, the stream, the log processor and the
benches.)
"""

from __future__ import annotations

import re

from callvault.errors import PayloadTooLargeError
from callvault.redact._types import CARD_NUMBER, Finding

#: Default bound on one input text (characters); larger input is refused.
DEFAULT_MAX_CHARS = 1_048_576

_TAIL = re.compile(r"(?:\b(?:\d+|oh|zero|one|two|three|four|five|six|seven|eight|nine|double|triple)\W*)+$", re.I)
_RUN = re.compile(r"\d(?:[ -]?\d){11,18}")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


class Redactor:
    """Finds PII/PHI entities in text; thread-safe and reusable."""

    def __init__(self, *, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        self.max_chars = max_chars

    def _check(self, text: str) -> None:
        if len(text) > self.max_chars:
            raise PayloadTooLargeError(
                f"text of {len(text)} characters exceeds the redaction limit of {self.max_chars}"
            )

    def find(self, text: str) -> list[Finding]:
        """Entities in ``text``, sorted by start, never overlapping."""
        self._check(text)
        out = []
        for m in _RUN.finditer(text):
            digits = m.group().replace(" ", "").replace("-", "")
            if _luhn(digits):
                out.append(Finding(m.start(), m.end(), CARD_NUMBER, 0.9))
        return out

    def open_tail(self, text: str) -> int:
        """Where the part of ``text`` that more text could still turn into a finding begins.

        ``len(text)`` when nothing is pending. A stream holds back
        ``text[open_tail(text):]`` (within its window) until the next segment
        arrives, because a number run or a context phrase at the end may be
        the first half of an entity split across segments.
        """
        m = _TAIL.search(text)
        return m.start() if m else len(text)

    def redact(self, text: str, pseudonyms: Pseudonyms | None = None) -> str:
        """``text`` with every finding replaced by ``[ENTITY]`` (or a pseudonym)."""
        return apply(text, self.find(text), pseudonyms)


class Pseudonyms:
    """Stable per-call pseudonyms: the same value gets the same ``[ENTITY_n]``.

    Holds a keyed digest of each value (never the value) for the life of one
    call, so a transcript can say ``[CARD_NUMBER_1]`` twice for one card.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], int] = {}
        self._count: dict[str, int] = {}

    def label(self, entity: str, value: str) -> str:
        key = (entity, _normal(value))
        n = self._seen.get(key)
        if n is None:
            n = self._count.get(entity, 0) + 1
            self._count[entity] = n
            self._seen[key] = n
        return f"[{entity}_{n}]"


def _normal(value: str) -> str:
    return "".join(ch for ch in value.lower() if ch.isalnum())


def apply(text: str, findings: list[Finding], pseudonyms: Pseudonyms | None = None) -> str:
    """Replace each (non-overlapping, sorted) finding's span in ``text``."""
    out: list[str] = []
    pos = 0
    for f in findings:
        out.append(text[pos : f.start])
        value = text[f.start : f.end]
        out.append(pseudonyms.label(f.entity, value) if pseudonyms else f"[{f.entity}]")
        pos = f.end
    out.append(text[pos:])
    return "".join(out)
