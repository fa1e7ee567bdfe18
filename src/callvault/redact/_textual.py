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
from callvault.redact._dates import THIS_YEAR, month_dates, numeric_dates, year_at
from callvault.redact._lexicon import (
    DIGIT_WORDS,
    HOMOPHONES,
    IBAN_LENGTHS,
    MONTHS,
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
    CARD_EXPIRY,
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
     ("first", "name"), ("last", "name"), ("called",), ("name",), ("surname's",)}
)  # fmt: skip
_NAME_BY_FIRST: Final = {
    first: sorted((p for p in _STRONG_NAME if p[0] == first), key=len, reverse=True)
    for first in {p[0] for p in _STRONG_NAME}
}
_NAME_END: Final = frozenset(
    {"speaking", "here", "calling", "from", "ringing", "phoning", "", ",", ".", "my", "and", "i",
     "i've", "i'm", "i'll", "i'd", "on", "again", "about"}
)  # fmt: skip
_NAME_END_STRICT: Final = frozenset({"speaking", "here", "calling", "ringing", "phoning"})
_GREETINGS: Final = frozenset(
    {"hi", "hello", "yes", "yeah", "sure", "oh", "okay", "ok", "hiya", ","}
)


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
        k = i + 1
        if k < len(tokens) and tokens.low[k] == "-":
            k += 1
        nxt = tokens.low[k] if k < len(tokens) else ""
        unit = DIGIT_WORDS.get(nxt) or HOMOPHONES.get(nxt, 0)
        if unit > 0 and nxt not in ("to", "too"):
            return str(TENS[low] + unit), k + 1
        return str(TENS[low]), i + 1
    return None


Step = tuple[tuple[str, ...], int]  # the readings of one step (same length), token after it
_SPELL_SKIP: Final = frozenset({"-", ",", "um", "uh", "er", "erm"})
_AMBIGUOUS: Final = {"o": ("0", "O"), "oh": ("0", "O")}
_MAX_AMBIGUOUS: Final = 6


def _spell(
    tokens: Tokens, i: int, limit: int, *, words_ok: bool = False, lead: bool = False
) -> list[Step]:
    """A spelled-out code from token ``i``: letters, digits and number words, up to ``limit``.

    "o"/"oh" read as both zero and the letter O; homophones ("won", "to")
    count as digits after a digit; with ``words_ok`` any short word counts
    as its letters (an IBAN's bank code said as "trio" or written "nwbk").
    """
    out: list[Step] = []
    total = 0
    n = len(tokens)
    k = i
    while k < n and total < limit:
        low = tokens.low[k]
        if low in _SPELL_SKIP:
            k += 1
            continue
        readings: tuple[str, ...]
        if low in _AMBIGUOUS:
            readings, nxt = _AMBIGUOUS[low], k + 1
        elif (out or lead) and low in HOMOPHONES and k + 1 < n and _digits(tokens, k + 1):
            readings, nxt = (str(HOMOPHONES[low]),), k + 1
        else:
            got = _digits(tokens, k)
            if got is not None:
                readings, nxt = (got[0],), got[1]
            else:
                letters = _letters(tokens, k)
                raw = tokens.raw[k]
                if letters is None and words_ok and out and raw.isalpha() and len(raw) <= 4:
                    letters = raw.upper()
                if letters is None or not letters.isascii():
                    break
                readings, nxt = (letters,), k + 1
        total += len(readings[0])
        out.append((readings, nxt))
        k = nxt
    return out


def _readings(steps: list[Step]) -> list[str]:
    """Every reading of ``steps`` (the first ``_MAX_AMBIGUOUS`` ambiguous steps branch)."""
    acc = [""]
    branched = 0
    for readings, _nxt in steps:
        if len(readings) > 1 and branched < _MAX_AMBIGUOUS:
            branched += 1
            acc = [a + r for a in acc for r in readings]
        else:
            acc = [a + readings[0] for a in acc]
    return acc


def _letter_at(tokens: Tokens, i: int) -> tuple[str, int] | None:
    """One spelled letter at ``i``: "n", "november", or "n for november": (letter, next)."""
    a = _letters(tokens, i)
    if a is None or len(a) != 1:
        return None
    k = i + 1
    n = len(tokens)
    if (
        k + 1 < n
        and tokens.low[k] in ("for", "as")
        and PHONETIC.get(tokens.low[k + 1]) == a.lower()
    ):
        return a, k + 2
    if k + 2 < n and tokens.low[k : k + 2] == ["as", "in"] and tokens.low[k + 2][:1] == a.lower():
        return a, k + 3
    return a, k


def _prefix(tokens: Tokens, i: int) -> tuple[str, int] | None:
    """Two letters at ``i``: one two-letter token ("GB", "gb") or two spelled letters."""
    raw = tokens.raw[i]
    if len(raw) == 2 and raw.isalpha() and raw.isascii():
        return raw.upper(), i + 1
    first = _letter_at(tokens, i)
    if first is None:
        return None
    k = first[1]
    if k < len(tokens) and tokens.low[k] == ",":
        k += 1
    second = _letter_at(tokens, k) if k < len(tokens) else None
    if second is None:
        return None
    return first[0] + second[0], second[1]


def _ibans(tokens: Tokens, shorts: list[int]) -> list[Candidate]:
    out: list[Candidate] = []
    n = len(tokens)
    done = -1
    for i in shorts:
        if i < done:
            continue
        got = _prefix(tokens, i)
        if got is None or got[0] not in IBAN_LENGTHS or got[1] >= n:
            continue
        cc, k = got
        if tokens.low[k] == "," and k + 1 < n:
            k += 1
        if _digits(tokens, k) is None and tokens.low[k] not in _AMBIGUOUS:
            continue
        want = IBAN_LENGTHS[cc] - 2
        steps = _spell(tokens, k, want, words_ok=True)
        length = 0
        end_step = -1
        for idx, (readings, _nxt) in enumerate(steps):
            length += len(readings[0])
            if length == want:
                end_step = idx
                break
        if end_step >= 0 and any(iban_ok(cc + r) for r in _readings(steps[: end_step + 1])):
            done = steps[end_step][1]
            out.append((tokens.starts[i], tokens.ends[done - 1], IBAN, 0.99))
    return out


def _ninos(tokens: Tokens, ctx: Context, shorts: list[int]) -> list[Candidate]:
    out: list[Candidate] = []
    n = len(tokens)
    for i in shorts:
        got = _prefix(tokens, i)
        if got is None or not nino_prefix_ok(got[0]) or got[1] >= n:
            continue
        k = got[1]
        raw = tokens.raw[i]
        context = ctxk.NINO in ctx.before(i) if ctx else False
        # A two-letter word ("on", "am") is a prefix only with the keyword or glued to digits.
        if raw.lower() in _SHORT_WORDS and not raw.isupper() and not context and tokens.gap(k):
            continue
        if i > 0 and _letters(tokens, i - 1) is not None and len(tokens.raw[i - 1]) == 1:
            continue  # "c l m 683757": a longer spelled code, not a NINO
        steps = _spell(tokens, k, 7, lead=True)
        digits = ""
        end = k
        for readings, nxt in steps:
            chars = next((r for r in readings if r.isdigit()), None)
            if chars is None or len(digits) + len(chars) > 6:
                break
            digits += chars
            end = nxt
            if len(digits) == 6:
                break
        if len(digits) != 6 or (end < n and _digits(tokens, end) is not None):
            continue
        j = end
        while j < n and tokens.low[j] in (",", "-"):
            j += 1
        suffix = _letter_at(tokens, j) if j < n else None
        if suffix is not None and suffix[0] in ("A", "B", "C", "D"):
            end = suffix[1]
        out.append((tokens.starts[i], tokens.ends[end - 1], UK_NINO, 0.95 if context else 0.8))
    return out


_SHORT_WORDS: Final = frozenset(
    {"am", "an", "as", "at", "be", "by", "do", "go", "he", "hi", "if", "in", "is", "it", "me",
     "my", "no", "of", "oh", "ok", "on", "or", "so", "to", "up", "us", "we", "ya", "ye"}
)  # fmt: skip
_LOCAL_STOP_EMAIL: Final = (_LOCAL_STOP | {"thats", "its", "and", "or", "to", "me", "is", "at"}) - {
    "oh",
    "one",
}
_DOTS: Final = frozenset({"dot", ".", "period", "point"})
_DOMAIN_STOP: Final = frozenset({"and", "or", "thank", "thanks", "please", "yeah", "is", "the"})


def _emails(tokens: Tokens) -> list[Candidate]:
    out: list[Candidate] = []
    text = tokens.text
    if "@" in text:
        out.extend((m.start(), m.end(), EMAIL_ADDRESS, 0.95) for m in _EMAIL.finditer(text))
    low = tokens.low
    n = len(low)
    for a in range(1, n - 2):
        if low[a] not in _AT or (low[a] == "@" and not tokens.gap(a) and not tokens.gap(a + 1)):
            continue
        end = _domain_end(tokens, a + 1)
        if end < 0:
            continue
        start = _local_start(tokens, a)
        if start < 0:
            continue
        out.append((tokens.starts[start], tokens.ends[end], EMAIL_ADDRESS, 0.9))
    return out


def _domain_end(tokens: Tokens, k: int) -> int:
    """Last token of a said domain from ``k`` ("g m a i l dot c o m"), or -1."""
    low = tokens.low
    n = len(low)
    labels = 0
    cur = ""
    cur_tokens = 0
    end = -1
    while k < n and labels < 6:
        w = low[k]
        if (w in _DOTS or (w == "full" and k + 1 < n and low[k + 1] == "stop")) and cur:
            labels += 1
            cur, cur_tokens = "", 0
            k += w == "full"
        elif (w.isalnum() and w not in _DOMAIN_STOP and cur_tokens < 6) or (w == "-" and cur):
            cur += w
            cur_tokens += 1
            if labels and cur in TLDS:
                end = k
        else:
            break
        k += 1
    return end


def _local_start(tokens: Tokens, a: int) -> int:
    """First token of the local part said before "at" (token ``a``), or -1."""
    low = tokens.low
    j = a - 1
    start = -1
    count = 0
    while j >= 0 and count < 12:
        w = low[j]
        if w in _CONNECTORS and start >= 0 and j > 0 and low[j - 1] not in _LOCAL_STOP_EMAIL:
            j -= 1
            continue
        if not w.isalnum() or w in _LOCAL_STOP_EMAIL:
            break
        start = j
        count += 1
        j -= 1
    return start


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
        steps = _spell(tokens, i, 8)
        matched = -1
        length = 0
        for idx, (readings, nxt) in enumerate(steps):
            length += len(readings[0])
            if 5 <= length <= 7:
                for r in _readings(steps[: idx + 1]):
                    area = _POSTCODE_FULL.fullmatch(r)
                    if area and area.group(1) in _POSTCODE_AREAS:
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
        last = _unit_after(tokens, s)
        first = _unit_before(tokens, first)
        out.append((tokens.starts[first], tokens.ends[last], STREET_ADDRESS, 0.85))
    return out


_UNIT_WORDS: Final = frozenset({"apt", "apartment", "flat", "unit", "suite", "#", "no"})


def _unit_number(tokens: Tokens, k: int) -> int:
    """Last token of a flat/apartment number at ``k`` ("27B", "12", "nineteen b"), or -1."""
    low = tokens.low
    n = len(low)
    if k >= n:
        return -1
    if low[k].isdigit():
        end = k
    else:
        got = _digits(tokens, k)
        if got is None:
            return -1
        end = got[1] - 1
    if (
        end + 1 < n
        and len(low[end + 1]) == 1
        and low[end + 1].isalpha()
        and not tokens.gap(end + 1)
    ):
        end += 1  # "27B"
    return end


def _unit_after(tokens: Tokens, s: int) -> int:
    """Extend an address past its street suffix over ", Apt 27B" / "apartment twelve"."""
    low = tokens.low
    k = s + 1
    if k < len(low) and low[k] == ",":
        k += 1
    if k < len(low) and low[k] in _UNIT_WORDS:
        end = _unit_number(tokens, k + 1)
        if end >= 0:
            return end
    return s


def _unit_before(tokens: Tokens, first: int) -> int:
    """Extend an address back over a leading "Flat 15, " / "apartment 3"."""
    low = tokens.low
    k = first - 1
    if k >= 0 and low[k] == ",":
        k -= 1
    for back in range(k, max(-1, k - 4), -1):
        if back >= 0 and low[back] in _UNIT_WORDS and _unit_number(tokens, back + 1) == k:
            return back
    return first


def _name_tokens(tokens: Tokens, k: int, cased: bool, limit: int = 3) -> int:
    """How many name tokens start at ``k``."""
    n = len(tokens)
    got = 0
    while k + got < n and got < limit:
        raw = tokens.raw[k + got]
        low = tokens.low[k + got]
        if not raw[0].isalpha() or low in STOP_WORDS or low in _CODE_WORDS:
            break
        if not cased and low.endswith(("ing", "ed", "ly")) and len(low) > 4:
            break  # "i'm worried", "this is really": words, not names
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
    cased = _CASED.search(tokens.text, 1) is not None
    for i in [k for k, w in enumerate(low) if w in _PERSON_CUES]:
        w = low[i]
        if w in TITLES and i + 1 < n:
            k = i + 2 if low[i + 1] == "." else i + 1
            if w == "dr" and any(low[j].isdigit() for j in range(max(0, i - 4), i)):
                continue  # "12 Acacia Dr": a street, not a doctor
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
        if strong is not None and low[start] in ("is", "was", "'s"):
            start += 1  # "my surname is anderson"
        if start < n and low[start] in (":", "-", ","):
            start += 1
        if start >= n:
            continue
        got = _name_tokens(tokens, start, cased)
        if not got:
            continue
        if strong is None and not cased:
            end_word = low[start + got] if start + got < n else ""
            # "it's wrong", "it's order number ...": after "it's" only "X here/speaking" counts
            ends = _NAME_END_STRICT if w == "it's" else _NAME_END
            if end_word not in ends:
                continue
        if strong is None and cased and not tokens.raw[start][0].isupper():
            continue
        out.append((tokens.starts[start], tokens.ends[start + got - 1], PERSON, 0.8))
    # "hi, Troy Hatfield here": a name right after a greeting (or the start) and before
    # "here"/"speaking".
    for h in [k for k, w in enumerate(low) if w in ("here", "speaking")]:
        for size in (3, 2, 1):
            k = h - size
            if k < 0 or (k > 0 and low[k - 1] not in _GREETINGS):
                continue
            if _name_tokens(tokens, k, cased, size) == size:
                out.append((tokens.starts[k], tokens.ends[h - 1], PERSON, 0.75))
                break
    return out


def _birth_dates(tokens: Tokens, ctx: Context) -> list[Candidate]:
    out: list[Candidate] = []
    for first, last, year in month_dates(tokens):
        if year > THIS_YEAR:
            continue  # not a birth date, whatever the context says
        if ctx.birth_close(tokens, first, last):
            out.append((tokens.starts[first], tokens.ends[last], DATE_OF_BIRTH, 0.92))
    return out


def _spoken_birth_dates(tokens: Tokens, ctx: Context) -> list[Candidate]:
    """Dates said as numbers right after a birth keyword ("born on four oh nine sixty one")."""
    out: list[Candidate] = []
    n = len(tokens)
    for end in ctx.ends_of(ctxk.DOB):
        k = end + 1
        while k < n and k <= end + 4 and tokens.low[k] in _DOB_LEAD:
            k += 1
        got = numeric_dates(tokens, k) if k < n else None
        if got is not None and not (got[1] + 1 < n and _digits(tokens, got[1] + 1) is not None):
            # (a number going on after the "date" means it was a longer digit string)
            out.append((tokens.starts[got[0]], tokens.ends[got[1]], DATE_OF_BIRTH, 0.93))
    # "... the twenty second of the ninth forty, my date of birth": the date before the phrase.
    for first in ctx.starts_of(ctxk.DOB):
        for k in range(max(0, first - 14), first):
            if k > 0 and _digits(tokens, k - 1) is not None:
                continue  # a date starts where a number starts, not inside one
            got = numeric_dates(tokens, k)
            if got is not None and first - 5 <= got[1] < first:
                out.append((tokens.starts[got[0]], tokens.ends[got[1]], DATE_OF_BIRTH, 0.9))
                break
    return out


_DOB_LEAD: Final = frozenset({"is", "was", "on", "yes", "it's", "its", "'s", ":", ",", "-", "um"})


def _expiry_months(tokens: Tokens, ctx: Context) -> list[Candidate]:
    """A card expiry said with a month name: "expires september twenty seven"."""
    out: list[Candidate] = []
    low = tokens.low
    n = len(low)
    for m in range(n):
        if low[m] not in MONTHS or ctx.nearest(m, _EXPIRY_NEAR, 6) != ctxk.EXPIRY:
            continue
        k = m + 1
        while k < n and low[k] in ("of", ",", "/"):
            k += 1
        year = year_at(low, k, n)
        if year is not None and 1926 <= year[0] < 2000:
            year = (year[0] + 100, year[1])  # "september twenty seven": 2027, not 1927
        if year is None or not 2000 <= year[0] <= 2060:
            continue
        out.append((tokens.starts[m], tokens.ends[year[1] - 1], CARD_EXPIRY, 0.9))
    return out


_EXPIRY_NEAR: Final = frozenset({ctxk.EXPIRY, ctxk.DOB, ctxk.OTHER})


_PERSON_CUES: Final = (
    TITLES | {p[0] for p in _STRONG_NAME} | {"this", "i", "speaking", "i'm", "it's", "here"}
)


def text_candidates(tokens: Tokens, ctx: Context) -> list[Candidate]:
    """Candidates from words and letters; each recogniser runs only if its cue is present."""
    present = set(tokens.low)
    out: list[Candidate] = []
    if "@" in tokens.text or "at" in present:
        out.extend(_emails(tokens))
    shorts = _short_letters(tokens)
    if shorts:
        out.extend(_ibans(tokens, shorts))
        out.extend(_ninos(tokens, ctx, shorts))
    if _POSTCODE_CUE.search(tokens.text) or (ctx and ctx.any_of(_POSTCODE_CATS)):
        out.extend(_postcodes(tokens, ctx))
    if not present.isdisjoint(STREET_SUFFIXES):
        out.extend(_addresses(tokens))
    if not present.isdisjoint(_PERSON_CUES):
        out.extend(_persons(tokens))
    if ctx and not present.isdisjoint(MONTHS):
        out.extend(_birth_dates(tokens, ctx))
        out.extend(_expiry_months(tokens, ctx))
    if ctx and ctx.any_of(_DOB_CATS):
        out.extend(_spoken_birth_dates(tokens, ctx))
    return out


_CASED: Final = re.compile(r"[A-Z][a-z]")
_POSTCODE_CUE: Final = re.compile(r"[A-Za-z]\d")
_DOB_CATS: Final = frozenset({ctxk.DOB})
_CODE_WORDS: Final = frozenset(DIGIT_WORDS) | frozenset(TEENS) | frozenset(TENS) | {"double"}
_POSTCODE_CATS: Final = frozenset({ctxk.POSTCODE, ctxk.ADDRESS})


def _short_letters(tokens: Tokens) -> list[int]:
    """Tokens an IBAN or NINO could start at: one or two letters, or a spelling-alphabet word,
    with a digit, a number word or another letter within the next four tokens."""
    low = tokens.low
    marks = [w.isdigit() or w in _CODE_WORDS or len(w) == 1 for w in low]
    return [
        i
        for i, r in enumerate(low)
        if ((len(r) <= 2 and r.isalpha()) or r in PHONETIC) and any(marks[i + 1 : i + 5])
    ]
