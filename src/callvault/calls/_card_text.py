"""Card numbers in transcript text: tokenized before the text is sealed.

A transcript segment that says a card number (written or spoken) is stored
with the number replaced by its token's display, ``[CARD tok_… ending 4242]``;
the words that said it keep their timings with the text ``[CARD]``. The number
itself goes to the tokenization vault (the caller's ``tokenize``), which is
the only place it is kept. A value the engine calls a card number but that
has fewer than 12 or more than 19 digits is replaced by ``[CARD_NUMBER]`` and
not tokenized. A card security code is replaced by ``[CARD_CVV]`` and kept
nowhere: sensitive authentication data is never stored after authorization,
not even encrypted or tokenized.

Pure apart from ``tokenize``; nothing here logs or raises with content.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Final

from sqlalchemy.orm import Session

from callvault.calls._playback import CARD_WORD
from callvault.calls._store import Segment, Word, append_segments
from callvault.crypto import Sealer
from callvault.payments import TokenVault
from callvault.redact import Redactor, spoken_digits
from callvault.store.models import Call

CARD_ENTITY: Final = "CARD_NUMBER"
CVV_ENTITY: Final = "CARD_CVV"
WORD_LABEL: Final = CARD_WORD


def protect_cards(
    segments: Sequence[Segment], redactor: Redactor, tokenize: Callable[[str], str]
) -> tuple[list[Segment], int]:
    """``segments`` with every card number tokenized; and how many were found."""
    out: list[Segment] = []
    found = 0
    for seg in segments:
        cards = [f for f in redactor.find(seg.text) if f.entity in (CARD_ENTITY, CVV_ENTITY)]
        if not cards:
            out.append(seg)
            continue
        found += sum(1 for f in cards if f.entity == CARD_ENTITY)
        text = seg.text
        spans = []
        for f in sorted(cards, key=lambda c: c.start, reverse=True):
            if f.entity == CVV_ENTITY:  # never stored, not even tokenized (PCI DSS 3.3.1.2)
                display = f"[{CVV_ENTITY}]"
            else:
                digits = spoken_digits(text[f.start : f.end])
                display = tokenize(digits) if 12 <= len(digits) <= 19 else f"[{CARD_ENTITY}]"
            text = text[: f.start] + display + text[f.end :]
            spans.append((f.start, f.end))
        out.append(replace(seg, text=text, words=_mask_words(seg, spans)))
    return out, found


def _mask_words(seg: Segment, spans: list[tuple[int, int]]) -> tuple[Word, ...]:
    """Words overlapping a card span (in the original text) get ``[CARD]``."""
    if " ".join(w.text for w in seg.words) != seg.text:
        # The words do not spell the text: any word made of digits or number words
        # could be part of the card; label every word that holds a digit.
        return tuple(replace(w, text=WORD_LABEL) if spoken_digits(w.text) else w for w in seg.words)
    out = []
    at = 0
    for w in seg.words:
        start, end = at, at + len(w.text)
        at = end + 1
        hit = any(start < b and a < end for a, b in spans)
        out.append(replace(w, text=WORD_LABEL) if hit else w)
    return tuple(out)


def append_protected(
    session: Session,
    sealer: Sealer,
    vault: TokenVault,
    call: Call,
    segments: Sequence[Segment],
    redactor: Redactor,
    *,
    actor: str,
    request_id: str | None,
) -> list[int]:
    """Tokenize the card numbers of ``segments`` (same transaction), then append them."""

    def tokenize(digits: str) -> str:
        token = vault.tokenize(
            session,
            call.tenant_id,
            call.deployment_id,
            call.id,
            digits,
            source="speech",
            actor=actor,
            request_id=request_id,
        )
        return token.display

    protected, _found = protect_cards(segments, redactor, tokenize)
    return append_segments(session, sealer, call, protected)


def append_protected_texts(
    session: Session,
    sealer: Sealer,
    vault: TokenVault,
    call: Call,
    segments: Sequence[Segment],
    redactor: Redactor,
    *,
    actor: str,
    request_id: str | None,
) -> list[tuple[int, str]]:
    """:func:`append_protected`, also returning each stored text (card numbers as tokens)."""
    texts: list[str] = []

    def tokenize(digits: str) -> str:
        return vault.tokenize(
            session,
            call.tenant_id,
            call.deployment_id,
            call.id,
            digits,
            source="speech",
            actor=actor,
            request_id=request_id,
        ).display

    protected, _found = protect_cards(segments, redactor, tokenize)
    texts = [seg.text for seg in protected]
    return list(zip(append_segments(session, sealer, call, protected), texts, strict=True))
