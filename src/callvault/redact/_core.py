"""The engine's core: candidates, the stream's open tail, the overlap rule.

Pure functions over ``str`` with no I/O and no state, written so mypyc can
compile them (``scripts/build-redact-fast``); :mod:`callvault.redact._engine`
uses the compiled build when its recorded source hash matches these files.

Pipeline for one text: tokens with offsets (``_tokens``) → keyword context
in one Aho-Corasick pass (``_context``) → number runs from digits and
spoken words (``_numbers``) → candidates from runs (``_numeric``) and from
words and letters (``_textual``) → overlap resolution → findings.

Overlap rule: candidates are taken in order of score (highest first), then
length (longest first), then entity order in :data:`ENTITIES`; a candidate
that overlaps one already taken is dropped. Findings come back sorted by
start offset and never overlap.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right

from callvault.redact import _context as ctxk
from callvault.redact._context import Context
from callvault.redact._lexicon import (
    DIGIT_WORDS,
    HOMOPHONES,
    IBAN_LENGTHS,
    MONTHS,
    ORDINAL_SUFFIXES,
    ORDINALS,
    PHONETIC,
    TEENS,
    TENS,
)
from callvault.redact._numbers import number_runs
from callvault.redact._numeric import THRESHOLD, run_candidates
from callvault.redact._textual import text_candidates
from callvault.redact._tokens import Tokens
from callvault.redact._types import ENTITIES, Finding

_ORDER = {e: i for i, e in enumerate(ENTITIES)}
_PENDING_WORDS = frozenset(
    {"at", "dot", "underscore", "dash", "hyphen", "of", "the", "plus", "double", "triple"}
    | set(MONTHS) | set(ORDINALS) | set(HOMOPHONES) | set(ORDINAL_SUFFIXES)
)  # fmt: skip
# Keyword categories that announce one entity, for values released before they are complete.
_ANNOUNCED: dict[str, str] = {
    ctxk.CARD: "CARD_NUMBER", ctxk.CVV: "CARD_CVV", ctxk.EXPIRY: "CARD_EXPIRY",
    ctxk.SSN: "US_SSN", ctxk.NINO: "UK_NINO", ctxk.NHS: "NHS_NUMBER",
    ctxk.SORT: "UK_SORT_CODE", ctxk.ACCOUNT: "BANK_ACCOUNT", ctxk.IBAN: "IBAN",
    ctxk.DOB: "DATE_OF_BIRTH", ctxk.PHONE: "PHONE_NUMBER", ctxk.EMAIL: "EMAIL_ADDRESS",
    ctxk.POSTCODE: "POSTCODE",
}  # fmt: skip
_EMAIL_CUES = frozenset({"email", "e-mail", "mail", "emails"})
_DIGIT = re.compile(r"\d")
_NUMBER_CUES = frozenset(DIGIT_WORDS) | frozenset(TEENS) | frozenset(TENS) | {"double", "triple"}
_NUMBERISH = frozenset(DIGIT_WORDS) | frozenset(TEENS) | frozenset(TENS) | {"hundred", "thousand"}


def find_candidates(text: str) -> list[tuple[int, int, str, float]]:
    """Scored candidates in ``text`` (before the overlap rule)."""
    tokens = Tokens(text)
    if not tokens.raw:
        return []
    ctx = Context(tokens)
    cands: list[tuple[int, int, str, float]] = []
    if _DIGIT.search(text) or not _NUMBER_CUES.isdisjoint(tokens.low):
        for run in number_runs(tokens):
            cands.extend(run_candidates(tokens, ctx, run))
    cands.extend(text_candidates(tokens, ctx))
    return cands


def open_tail(text: str) -> int:
    """Where the part of ``text`` that more text could still turn into a finding begins.

    ``len(text)`` when nothing is pending. A stream holds back
    ``text[open_tail(text):]`` (within its window) until the next segment
    arrives: a number run, a spelled letter sequence, an e-mail address
    or a date still being said at the end may be the first half of an
    entity split across segments.
    """
    tokens = Tokens(text)
    n = len(tokens)
    if n == 0:
        return len(text)
    low = tokens.low
    k = n - 1
    # Walk back over tokens that could be part of a value still being said.
    start = n
    while k >= 0 and n - k <= 40:
        w = low[k]
        if (
            w.isdigit()
            or w in _NUMBERISH
            or w in _PENDING_WORDS
            or (len(w) <= 4 and w.isalpha() and tokens.raw[k].isupper())
            or (k == n - 1 and len(w) == 2 and w.upper() in IBAN_LENGTHS)
            or (len(w) == 1 and w.isalpha())
            or w in PHONETIC
            or w in ("-", "/", ".", ",", "(", "+", "'", "@", "_")
            or (w.isalnum() and _before_connector(low, k))
        ):
            start = k
            k -= 1
            continue
        break
    # After "email ...", trailing words may be the local part of an address still coming.
    if any(w in _EMAIL_CUES for w in low[max(0, n - 10) : start]):
        j = start - 1
        while j >= 0 and start - j <= 6 and low[j].isalnum() and low[j] not in _EMAIL_CUES:
            if low[j] in ("is", "me", "to", "it's", "its", "address"):
                break
            j -= 1
        start = j + 1
    # An account code still being read ("gb46 midl 1602 ..."): back to its country code.
    for j in range(max(0, n - 14), min(start, n - 1)):
        if (
            low[j].upper() in IBAN_LENGTHS
            and low[j + 1].isdigit()
            # "GB82", "gb46", "pl 13": a code, then exactly its two check digits
            and (tokens.raw[j].isupper() or not tokens.gap(j + 1) or len(low[j + 1]) == 2)
            and all(low[m].isalnum() and len(low[m]) <= 4 for m in range(j, start))
        ):
            start = j
            break
    if start == n:
        return len(text)
    # A trailing word that only joins ("the", "of") with nothing numeric after it is settled.
    if all(low[j] in ("the", "of", ".", "-", ",") for j in range(start, n)):
        return len(text)
    return tokens.starts[start]


def pending_entity(text: str, offset: int) -> str | None:
    """The entity a keyword just before ``offset`` announces ("my NHS number is ..."), if any.

    A stream that must release a value before it is complete labels the part it
    withholds with this, rather than a bare ``[REDACTED]``.
    """
    tokens = Tokens(text)
    first = bisect_left(tokens.starts, offset)
    if first >= len(tokens):
        return None
    ctx = Context(tokens)
    category = ctx.nearest(first, _ANNOUNCED.keys(), 12) if ctx else None
    if category:
        return _ANNOUNCED[category]
    # No keyword, but the shape says it: a country code and check digits ("g b eight five").
    low = tokens.low
    two = len(low[first]) == 2
    code = (low[first] if two else "".join(low[first : first + 2])).upper()
    nxt = first + (1 if two else 2)
    numeric = nxt < len(low) and (low[nxt].isdigit() or low[nxt] in _NUMBERISH)
    return "IBAN" if code in IBAN_LENGTHS and numeric else None


_JOINERS = frozenset({"dot", "at", "underscore", "dash", "hyphen", ".", "@", "_", "-"})


def _before_connector(low: list[str], k: int) -> bool:
    """Token ``k`` is joined to a neighbour by an e-mail connector ("john dot smith")."""
    return (k + 1 < len(low) and low[k + 1] in _JOINERS) or (k > 0 and low[k - 1] in _JOINERS)


def resolve(cands: list[tuple[int, int, str, float]]) -> list[Finding]:
    """Apply the overlap rule (module docstring) to scored candidates."""
    cands = [c for c in cands if c[3] >= THRESHOLD and c[1] > c[0]]
    if not cands:
        return []
    cands.sort(key=lambda c: (-c[3], c[0] - c[1], _ORDER.get(c[2], 99)))
    # Taken spans stay sorted and disjoint, so one neighbour on each side decides overlap.
    starts: list[int] = []
    taken: list[tuple[int, int, str, float]] = []
    for c in cands:
        k = bisect_right(starts, c[0])
        if k > 0 and taken[k - 1][1] > c[0]:
            continue
        if k < len(taken) and taken[k][0] < c[1]:
            continue
        starts.insert(k, c[0])
        taken.insert(k, c)
    return [Finding(s, e, ent, round(score, 2)) for s, e, ent, score in taken]
