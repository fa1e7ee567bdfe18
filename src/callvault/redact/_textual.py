"""Entities made of words and letters: e-mail, IBAN, NINO, postcode, address, person, dates.

Every pattern here is linear: regular expressions have bounded repeats and
only run when a cheap gate (an "@", a country code, a keyword) says they
might match; token walks look a bounded number of tokens ahead or back.
"""

from __future__ import annotations

import re
from typing import Final

from callvault.redact import _context as ctxk
from callvault.redact._checks import iban_ok, nino_prefix_ok
from callvault.redact._context import Context
from callvault.redact._dates import month_dates
from callvault.redact._lexicon import (
    DIGIT_WORDS,
    IBAN_LENGTHS,
    PHONETIC,
    STOP_WORDS,
    STREET_SUFFIXES,
    TEENS,
    TENS,
    TITLES,
    TLDS,
)
from callvault.redact._tokens import Tokens
from callvault.redact._types import (
    DATE_OF_BIRTH,
    EMAIL_ADDRESS,
    IBAN,
    PERSON,
    POSTCODE,
    STREET_ADDRESS,
    UK_NINO,
)

Candidate = tuple[int, int, str, float]

_EMAIL: Final = re.compile(
    r"(?<![\w.+-])[\w.%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,6}(?![\w-])"
)
_POSTCODE_AREAS: Final = frozenset(
    """
    AB AL B BA BB BD BH BL BN BR BS BT CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH DL DN DT
    DY E EC EH EN EX FK FY G GL GU GY HA HD HG HP HR HS HU HX IG IM IP IV JE KA KT KW KY L
    LA LD LE LL LN LS LU M ME MK ML N NE NG NN NP NR NW OL OX PA PE PH PL PO PR RG RH RM S
    SA SE SG SK SL SM SN SO SP SR SS ST SW SY TA TD TF TN TQ TR TS TW UB W WA WC WD WF WN WR
    WS WV YO ZE
    """.split()  # noqa: SIM905 - a word list reads best as one string
)
_POSTCODE: Final = re.compile(
    r"(?<![A-Za-z0-9])([A-Za-z]{1,2})(\d[A-Za-z\d]?) ?(\d[A-Za-z]{2})(?![A-Za-z0-9])"
)
_POSTCODE_FULL: Final = re.compile(r"([A-Z]{1,2})\d[A-Z\d]?\d[ABD-HJLNP-UW-Z]{2}")
_CONNECTORS: Final = {
    ".": ".", "dot": ".", "period": ".", "point": ".", "_": "_", "underscore": "_",
    "-": "-", "dash": "-", "hyphen": "-", "minus": "-",
}  # fmt: skip
_AT: Final = frozenset({"at", "@"})
_LOCAL_STOP: Final = STOP_WORDS | {"email", "e", "mail", "address", ":", "is", "me", "it"}
_STRONG_NAME: Final = frozenset(
    {("my", "name", "is"), ("name", "is"), ("name's",), ("full", "name"), ("surname",),
     ("first", "name"), ("last", "name"), ("called",), ("name",)}
)  # fmt: skip
_NAME_BY_FIRST: Final = {
    first: sorted((p for p in _STRONG_NAME if p[0] == first), key=len, reverse=True)
    for first in {p[0] for p in _STRONG_NAME}
}
_NAME_END: Final = frozenset({"speaking", "here", "calling", "from", "ringing", "phoning"})


def _letters(tokens: Tokens, i: int) -> str | None:
    """The letter(s) token ``i`` spells: a single letter, a phonetic word, or an upper-case run."""
    raw = tokens.raw[i]
    if len(raw) == 1:
        return raw.upper() if raw.isalpha() and raw.isascii() else None
    low = tokens.low[i]
    if low in PHONETIC:
        return PHONETIC[low].upper()
    if raw.isalpha() and raw.isascii() and len(raw) <= 4 and raw.isupper():
        return raw
    return None


def _digits(tokens: Tokens, i: int) -> tuple[str, int] | None:
    """Digits token ``i`` (and a following token for "double x") reads as: (digits, next)."""
    low = tokens.low[i]
    if low.isdigit():
        return low, i + 1
    if low in DIGIT_WORDS:
        return str(DIGIT_WORDS[low]), i + 1
    if low in ("double", "triple") and i + 1 < len(tokens):
        nxt = tokens.low[i + 1]
        d = (
            nxt
            if nxt.isdigit() and len(nxt) == 1
            else (str(DIGIT_WORDS[nxt]) if nxt in DIGIT_WORDS else None)
        )
        if d is not None:
            return d * (2 if low == "double" else 3), i + 2
    if low in TEENS:
        return str(TEENS[low]), i + 1
    if low in TENS:
        nxt = tokens.low[i + 1] if i + 1 < len(tokens) else ""
        if nxt in DIGIT_WORDS and DIGIT_WORDS[nxt] > 0:
            return str(TENS[low] + DIGIT_WORDS[nxt]), i + 2
        return str(TENS[low]), i + 1
    return None


def _alnum_run(tokens: Tokens, i: int, limit: int) -> list[tuple[str, int]]:
    """Characters from token ``i`` on, as (chars, token index after) per step, up to ``limit``."""
    out: list[tuple[str, int]] = []
    total = 0
    n = len(tokens)
    k = i
    while k < n and total < limit:
        low = tokens.low[k]
        if low in ("-", "um", "uh", "er", "erm") and out:
            k += 1
            continue
        got = _digits(tokens, k)
        if got is not None:
            chars, nxt = got
        else:
            letters = _letters(tokens, k)
            if letters is None:
                break
            chars, nxt = letters, k + 1
        total += len(chars)
        out.append((chars, nxt))
        k = nxt
    return out


def _ibans(tokens: Tokens) -> list[Candidate]:
    out: list[Candidate] = []
    n = len(tokens)
    i = 0
    while i < n:
        raw = tokens.raw[i]
        cc: str | None = None
        start_next = i + 1
        if len(raw) == 2 and raw.isalpha() and raw.upper() in IBAN_LENGTHS:
            cc = raw.upper()
        elif i + 1 < n:
            a, b = _letters(tokens, i), _letters(tokens, i + 1)
            if a and b and len(a) == 1 and len(b) == 1 and (a + b) in IBAN_LENGTHS:
                cc, start_next = a + b, i + 2
        if cc is None or start_next >= n or _digits(tokens, start_next) is None:
            i += 1
            continue
        want = IBAN_LENGTHS[cc] - 2
        acc = ""
        for chars, nxt in _alnum_run(tokens, start_next, want):
            acc += chars
            if len(acc) == want:
                if iban_ok(cc + acc):
                    out.append((tokens.starts[i], tokens.ends[nxt - 1], IBAN, 0.99))
                    i = nxt - 1
                break
            if len(acc) > want:
                break
        i += 1
    return out


def _ninos(tokens: Tokens, ctx: Context) -> list[Candidate]:
    out: list[Candidate] = []
    n = len(tokens)
    for i in range(n):
        raw = tokens.raw[i]
        if len(raw) == 2 and raw.isalpha():
            prefix, k = raw.upper(), i + 1
        elif len(raw) == 1 and i + 1 < n:
            a, b = _letters(tokens, i), _letters(tokens, i + 1)
            if not (a and b and len(a) == 1 and len(b) == 1):
                continue
            prefix, k = a + b, i + 2
        else:
            continue
        if not nino_prefix_ok(prefix) or k >= n or _digits(tokens, k) is None:
            continue
        acc = ""
        end = k
        for chars, nxt in _alnum_run(tokens, k, 6):
            if not chars.isdigit():
                break
            acc += chars
            end = nxt
            if len(acc) >= 6:
                break
        if len(acc) != 6:
            continue
        if end < n:
            suffix = _letters(tokens, end)
            if suffix in ("A", "B", "C", "D"):
                end += 1
        lowered = not raw.isupper()
        score = 0.95 if (ctxk.NINO in ctx.before(i) or not lowered) else 0.7
        out.append((tokens.starts[i], tokens.ends[end - 1], UK_NINO, score))
    return out


def _emails(tokens: Tokens) -> list[Candidate]:
    out: list[Candidate] = []
    text = tokens.text
    if "@" in text:
        out.extend((m.start(), m.end(), EMAIL_ADDRESS, 0.95) for m in _EMAIL.finditer(text))
    low = tokens.low
    n = len(low)
    for a in range(1, n - 2):
        if low[a] not in _AT:
            continue
        # Domain: label (connector label)+ ending in a TLD.
        k = a + 1
        labels = 0
        last_label = ""
        end = -1
        while (k < n and tokens.is_word(k)) or (k < n and low[k].isdigit()):
            labels += 1
            last_label = low[k]
            k += 1
            if k < n and low[k] in ("dot", ".", "period", "point"):
                if last_label in TLDS and labels > 1:
                    end = k - 1
                k += 1
                continue
            if last_label in TLDS and labels > 1:
                end = k - 1
            break
        if end < 0 or labels > 6:
            continue
        # Local part: word (connector word)* before "at".
        j = a - 1
        if low[j] in _LOCAL_STOP and low[j] not in _CONNECTORS:
            continue
        start = j
        words = 1
        while j - 2 >= 0 and low[j - 1] in _CONNECTORS and low[j - 2] not in _LOCAL_STOP:
            j -= 2
            start = j
            words += 1
        # An unjoined name before the local part ("john smith at ...") when spoken.
        if (
            words == 1
            and j - 1 >= 0
            and tokens.is_word(j - 1)
            and low[j - 1] not in _LOCAL_STOP
            and not (j - 2 >= 0 and low[j - 2] in _AT)
        ):
            start = j - 1
        out.append((tokens.starts[start], tokens.ends[end], EMAIL_ADDRESS, 0.9))
    return out


def _postcodes(tokens: Tokens, ctx: Context) -> list[Candidate]:
    out: list[Candidate] = []
    text = tokens.text
    for m in _POSTCODE.finditer(text):
        area = m.group(1).upper()
        if area not in _POSTCODE_AREAS:
            continue
        if not _POSTCODE_FULL.fullmatch((m.group(1) + m.group(2) + m.group(3)).upper()):
            continue
        cased = m.group().isupper()
        i = tokens.index_at(m.start())
        context = ctx.has(ctxk.POSTCODE, i, i) or ctx.has(ctxk.ADDRESS, i, i)
        if cased or context:
            out.append((m.start(), m.end(), POSTCODE, 0.9 if context else 0.8))
    # Spoken: letters and digit words, in a postcode or address context.
    n = len(tokens)
    i = 0
    while i < n:
        a = _letters(tokens, i)
        if (
            a is None
            or len(a) > 2
            or not (ctx.has(ctxk.POSTCODE, i, i) or ctxk.ADDRESS in ctx.before(i))
        ):
            i += 1
            continue
        acc = ""
        matched = -1
        for chars, nxt in _alnum_run(tokens, i, 8):
            acc += chars
            if 5 <= len(acc) <= 7 and _POSTCODE_FULL.fullmatch(acc):
                area = re.match(r"[A-Z]+", acc)
                if area and area.group() in _POSTCODE_AREAS:
                    matched = nxt
        if matched > 0 and matched - i >= 3:
            out.append((tokens.starts[i], tokens.ends[matched - 1], POSTCODE, 0.85))
            i = matched
            continue
        i += 1
    return out


def _addresses(tokens: Tokens) -> list[Candidate]:
    out: list[Candidate] = []
    low = tokens.low
    for s in range(2, len(low)):
        if low[s] not in STREET_SUFFIXES:
            continue
        # house number, then 1-4 name words, then the suffix
        k = s - 1
        words = 0
        while (
            k >= 0
            and words < 4
            and tokens.is_word(k)
            and low[k] not in STOP_WORDS
            and (low[k] not in DIGIT_WORDS and low[k] not in TENS and low[k] not in TEENS)
        ):
            k -= 1
            words += 1
        if words == 0 or k < 0:
            continue
        first = -1
        if low[k].isdigit() and len(low[k]) <= 5:
            first = k
        elif len(low[k]) == 1 and k >= 1 and low[k - 1].isdigit():  # 221b
            first = k - 1
        else:
            j = k
            while j >= 0 and (
                low[j] in DIGIT_WORDS
                or low[j] in TENS
                or low[j] in TEENS
                or (low[j] in ("hundred", "and") and j < k)
            ):
                j -= 1
            if j < k:
                first = j + 1
        if first < 0:
            continue
        end = s + 1 if s + 1 < len(low) and low[s + 1] == "." else s
        out.append((tokens.starts[first], tokens.ends[end - (end != s)], STREET_ADDRESS, 0.85))
    return out


def _name_tokens(tokens: Tokens, k: int, cased: bool, limit: int = 3) -> int:
    """How many name tokens start at ``k``."""
    n = len(tokens)
    got = 0
    while k + got < n and got < limit:
        raw = tokens.raw[k + got]
        low = tokens.low[k + got]
        if not raw[0].isalpha() or low in STOP_WORDS or low in DIGIT_WORDS:
            break
        if cased and not raw[0].isupper():
            break
        if low in TITLES:
            break
        got += 1
    return got


def _persons(tokens: Tokens) -> list[Candidate]:
    out: list[Candidate] = []
    low = tokens.low
    n = len(low)
    cased = any(r[0].isupper() for r in tokens.raw[1:] if r[0].isalpha() and r.lower() != "i")
    for i in range(n):
        w = low[i]
        if w in TITLES and i + 1 < n:
            k = i + 2 if low[i + 1] == "." else i + 1
            if (
                w == "dr"
                and i > 0
                and low[i - 1] not in STOP_WORDS
                and not tokens.raw[i][0].isupper()
            ):
                continue
            got = _name_tokens(tokens, k, cased, 2)
            if got:
                out.append((tokens.starts[k], tokens.ends[k + got - 1], PERSON, 0.85))
            continue
        strong = None
        for phrase in _NAME_BY_FIRST.get(w, ()):
            m = len(phrase)
            if tuple(low[i : i + m]) == phrase:
                strong = i + m
                break
        weak = None
        if strong is None and (
            (w == "this" and i + 1 < n and low[i + 1] == "is")
            or (w == "i" and i + 1 < n and low[i + 1] == "am")
            or (w == "speaking" and i + 1 < n and low[i + 1] == "to")
        ):
            weak = i + 2
        elif strong is None and w in ("i'm", "it's"):
            weak = i + 1
        start = strong if strong is not None else weak
        if start is None or start >= n:
            continue
        if low[start] in (":", "-", ","):
            start += 1
        got = _name_tokens(tokens, start, cased)
        if not got:
            continue
        if strong is None and not cased:
            end_word = low[start + got] if start + got < n else ""
            if end_word not in _NAME_END:
                continue
        if strong is None and cased and not tokens.raw[start][0].isupper():
            continue
        out.append((tokens.starts[start], tokens.ends[start + got - 1], PERSON, 0.8))
    return out


def _birth_dates(tokens: Tokens, ctx: Context) -> list[Candidate]:
    out: list[Candidate] = []
    for first, last, _year in month_dates(tokens):
        if ctxk.DOB in ctx.before(first, 12) or ctxk.DOB in ctx.after(last):
            out.append((tokens.starts[first], tokens.ends[last], DATE_OF_BIRTH, 0.92))
    return out


def text_candidates(tokens: Tokens, ctx: Context) -> list[Candidate]:
    out = _emails(tokens)
    out.extend(_ibans(tokens))
    out.extend(_ninos(tokens, ctx))
    out.extend(_postcodes(tokens, ctx))
    out.extend(_addresses(tokens))
    out.extend(_persons(tokens))
    if ctx:
        out.extend(_birth_dates(tokens, ctx))
    return out
