"""The redaction engine's value types: entities, findings, words and segments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# The entity labels, exactly as the API, CLI and audit details spell them.
CARD_NUMBER: Final = "CARD_NUMBER"
CARD_CVV: Final = "CARD_CVV"
CARD_EXPIRY: Final = "CARD_EXPIRY"
US_SSN: Final = "US_SSN"
UK_NINO: Final = "UK_NINO"
NHS_NUMBER: Final = "NHS_NUMBER"
UK_SORT_CODE: Final = "UK_SORT_CODE"
BANK_ACCOUNT: Final = "BANK_ACCOUNT"
IBAN: Final = "IBAN"
DATE_OF_BIRTH: Final = "DATE_OF_BIRTH"
PHONE_NUMBER: Final = "PHONE_NUMBER"
EMAIL_ADDRESS: Final = "EMAIL_ADDRESS"
POSTCODE: Final = "POSTCODE"
STREET_ADDRESS: Final = "STREET_ADDRESS"
PERSON: Final = "PERSON"

ENTITIES: Final = (
    CARD_NUMBER,
    CARD_CVV,
    CARD_EXPIRY,
    US_SSN,
    UK_NINO,
    NHS_NUMBER,
    UK_SORT_CODE,
    BANK_ACCOUNT,
    IBAN,
    DATE_OF_BIRTH,
    PHONE_NUMBER,
    EMAIL_ADDRESS,
    POSTCODE,
    STREET_ADDRESS,
    PERSON,
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One entity found in a text: ``text[start:end]`` is the span (character offsets)."""

    start: int
    end: int
    entity: str
    score: float


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word with its timing in seconds from the start of the call."""

    text: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Segment:
    """A transcript segment: the words of one ASR result, final or interim.

    The segment's text is its words joined by single spaces, so word ``i``
    occupies a known character range of that text (see :func:`word_spans`).
    An interim segment is a hypothesis that a later segment with the same
    ``id`` replaces; a final one is never revised.
    """

    id: str
    words: tuple[Word, ...]
    final: bool = True

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def word_spans(words: tuple[Word, ...] | list[Word]) -> list[tuple[int, int]]:
    """Character ranges of each word in ``" ".join(w.text for w in words)``."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for w in words:
        spans.append((pos, pos + len(w.text)))
        pos += len(w.text) + 1
    return spans
