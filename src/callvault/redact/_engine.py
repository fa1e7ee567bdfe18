"""The redactor: find entities in a text and replace them.

The work happens in :mod:`callvault.redact._core` (pipeline and overlap
rule documented there). When ``scripts/build-redact-fast`` has compiled
the engine's modules with mypyc into the environment and the build's
source hash matches the modules here, that build runs instead of the
interpreted one: same code, about twice as fast. A stale build (sources
edited since) is ignored, so what runs is always what is in the tree.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from types import ModuleType
from typing import Protocol

from callvault.errors import PayloadTooLargeError
from callvault.redact import _core
from callvault.redact._fast import compiled_core
from callvault.redact._numbers import number_runs
from callvault.redact._tokens import Tokens
from callvault.redact._types import Finding

#: Default bound on one input text (characters); larger input is refused. A transcript
#: segment or a log line is far shorter; work is linear, so the bound caps time per call.
DEFAULT_MAX_CHARS = 65_536

#: The core in use: the compiled build when present and current, else the interpreted one.
CORE: ModuleType = compiled_core() or _core


class NerBackend(Protocol):
    """An optional named-entity model (for PERSON and addresses beyond the rules)."""

    def find(self, text: str) -> list[Finding]: ...


class Redactor:
    """Finds PII/PHI entities in text; stateless after construction, so thread-safe."""

    def __init__(
        self, *, max_chars: int = DEFAULT_MAX_CHARS, ner: NerBackend | None = None
    ) -> None:
        self.max_chars = max_chars
        self.ner = ner

    def _check(self, text: str) -> None:
        if len(text) > self.max_chars:
            raise PayloadTooLargeError(
                f"text of {len(text)} characters exceeds the redaction limit of {self.max_chars}"
            )

    def find(self, text: str) -> list[Finding]:
        """Entities in ``text``, sorted by start, never overlapping."""
        self._check(text)
        cands: list[tuple[int, int, str, float]] = CORE.find_candidates(text)
        if self.ner is not None:
            cands.extend((f.start, f.end, f.entity, f.score) for f in self.ner.find(text))
        found: list[Finding] = CORE.resolve(cands)
        return found

    def open_tail(self, text: str) -> int:
        """Where the part of ``text`` that more text could still turn into a finding begins.

        ``len(text)`` when nothing is pending. A stream holds back
        ``text[open_tail(text):]`` (within its window) until the next segment
        arrives: a number run, a spelled letter sequence, an e-mail address
        or a date still being said at the end may be the first half of an
        entity split across segments.
        """
        self._check(text)
        tail: int = CORE.open_tail(text)
        return tail

    def pending_entity(self, text: str, offset: int) -> str | None:
        """The entity a keyword just before ``offset`` announces ("my NHS number is ..."), if any.

        A stream that must release a value before it is complete labels the part it
        withholds with this, rather than a bare ``[REDACTED]``.
        """
        self._check(text)
        entity: str | None = CORE.pending_entity(text, offset)
        return entity

    def redact(self, text: str, pseudonyms: Pseudonyms | None = None) -> str:
        """``text`` with every finding replaced by ``[ENTITY]`` (or a pseudonym)."""
        return apply(text, self.find(text), pseudonyms)


class Pseudonyms:
    """Stable per-call pseudonyms: the same value gets the same ``[ENTITY_n]``.

    Keeps only an HMAC of each normalised value under a random per-instance
    key (never the value), for the life of one call or one stream.
    """

    def __init__(self) -> None:
        self._key = os.urandom(32)
        self._seen: dict[tuple[str, bytes], int] = {}
        self._count: dict[str, int] = {}

    def label(self, entity: str, value: str) -> str:
        norm = _canonical(entity, value)
        key = (entity, hmac.digest(self._key, norm.encode(), hashlib.sha256))
        n = self._seen.get(key)
        if n is None:
            n = self._count.get(entity, 0) + 1
            self._count[entity] = n
            self._seen[key] = n
        return f"[{entity}_{n}]"


_NUMERIC_ENTITIES = frozenset(
    {"CARD_NUMBER", "CARD_CVV", "CARD_EXPIRY", "US_SSN", "NHS_NUMBER", "UK_SORT_CODE",
     "BANK_ACCOUNT", "PHONE_NUMBER"}
)  # fmt: skip


def spoken_digits(value: str) -> str:
    """The digits ``value`` says, written or spoken ("four one one one" -> "4111")."""
    return "".join(run.digits for run in number_runs(Tokens(value)))


def _canonical(entity: str, value: str) -> str:
    """The value as digits for numeric entities (so "four one one one ..." and "4111 ..." are one
    card), else its lower-cased letters and digits."""
    if entity in _NUMERIC_ENTITIES:
        digits = "".join(run.digits for run in number_runs(Tokens(value)))
        if digits:
            return digits
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
