"""The interim, over-broad mask: digits, spoken numbers and e-mail addresses."""

from __future__ import annotations

import re

_NUMBER_WORDS = (  # noqa: SIM905 - one readable string beats 63 quoted words
    "zero oh nought o one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fourty fifty "
    "sixty seventy eighty ninety hundred thousand million double triple first second third "
    "fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth thirtieth won to too for "
    "ate"
).split()
# Homophones ("to", "for", ...) are masked only next to another number token.
_HOMOPHONES = frozenset({"won", "to", "too", "for", "ate", "o"})
_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*|\d+|\S", re.UNICODE)
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
_DIGIT = re.compile(r"\d")
_NUMERIC = frozenset(_NUMBER_WORDS) - _HOMOPHONES


def _is_number_token(tok: str) -> bool:
    low = tok.lower()
    return low in _NUMERIC or all(p in _NUMERIC for p in low.split("-")) or bool(_DIGIT.search(tok))


def mask_numbers(text: str) -> str:
    """Replace numeric content with ``#`` and e-mail addresses with ``[EMAIL]``."""
    text = _EMAIL.sub("[EMAIL]", text)
    tokens = list(_WORD.finditer(text))
    numeric = [_is_number_token(m.group()) for m in tokens]
    out: list[str] = []
    pos = 0
    for i, m in enumerate(tokens):
        tok = m.group()
        low = tok.lower()
        mask = numeric[i]
        if not mask and low in _HOMOPHONES:
            prev_num = i > 0 and numeric[i - 1]
            next_num = i + 1 < len(tokens) and numeric[i + 1]
            mask = prev_num or next_num
        out.append(text[pos : m.start()])
        out.append(
            _DIGIT.sub("#", tok) if tok.isdigit() or _DIGIT.search(tok) else ("#" if mask else tok)
        )
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)
