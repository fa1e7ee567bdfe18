"""Dates said or written with a month name, and dates as digit runs.

Token forms: "12th March 1984", "12 March 84", "March 12, 1984", "the
twelfth of march nineteen eighty four", "3rd of March '84", "march the third
eighty four". Digit forms (from a number run): 12/03/1984, 12.03.84,
1984-03-12, "oh three oh three nineteen eighty four" (DDMMYYYY, DDMMYY, and
MMDDYYYY when the day-first reading is impossible).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from callvault.redact._checks import valid_date
from callvault.redact._lexicon import DIGIT_WORDS, MONTHS, ORDINAL_SUFFIXES, ORDINALS, TEENS, TENS
from callvault.redact._tokens import Tokens

#: Dates after this year are no birth dates.
THIS_YEAR: Final = datetime.now(UTC).year
_SKIP = frozenset({"the", "of", ",", "'", "\u2019", "-", "/", ".", "in"})


def _day(low: list[str], i: int, n: int) -> tuple[int, int] | None:
    """A day of the month at ``i``: (day, next index)."""
    if i >= n:
        return None
    w = low[i]
    if w.isdigit() and len(w) <= 2:
        day = int(w)
        k = i + 1
        if k < n and low[k] in ORDINAL_SUFFIXES:
            k += 1
        return (day, k) if 1 <= day <= 31 else None
    if w in ORDINALS:
        return ORDINALS[w], i + 1
    if w in TENS and i + 1 < n:
        nxt = low[i + 1]
        k = i + 2 if nxt == "-" else i + 1
        if k < n and low[k] in ORDINALS and ORDINALS[low[k]] < 10:
            day = TENS[w] + ORDINALS[low[k]]
            return (day, k + 1) if day <= 31 else None
        if k < n and low[k] in DIGIT_WORDS and DIGIT_WORDS[low[k]] > 0 and TENS[w] < 40:
            day = TENS[w] + DIGIT_WORDS[low[k]]
            return (day, k + 1) if day <= 31 else None
    if w in TENS and TENS[w] <= 30:
        return TENS[w], i + 1
    if w in TEENS:
        return TEENS[w], i + 1
    if w in DIGIT_WORDS and DIGIT_WORDS[w] > 0 and w not in ("oh", "o"):
        return DIGIT_WORDS[w], i + 1
    return None


def _two_digits(low: list[str], i: int, n: int) -> tuple[int, int] | None:
    """A spoken two-digit number (10-99) or 'oh five': (value, next)."""
    if i >= n:
        return None
    w = low[i]
    if w in TEENS:
        return TEENS[w], i + 1
    if w in TENS:
        if i + 1 < n and low[i + 1] in DIGIT_WORDS and DIGIT_WORDS[low[i + 1]] > 0:
            return TENS[w] + DIGIT_WORDS[low[i + 1]], i + 2
        return TENS[w], i + 1
    if w in ("oh", "o", "zero") and i + 1 < n and low[i + 1] in DIGIT_WORDS:
        return DIGIT_WORDS[low[i + 1]], i + 2
    return None


def year_at(low: list[str], i: int, n: int) -> tuple[int, int] | None:
    """A year at ``i``: 1984, '84, 84, nineteen eighty four, two thousand and five, eighty four."""
    if i < n and low[i] in ("'", "\u2019"):
        i += 1
    if i >= n:
        return None
    w = low[i]
    if w.isdigit():
        if len(w) == 4:
            return int(w), i + 1
        if len(w) == 2:
            v = int(w)
            return (1900 + v if v > 25 else 2000 + v), i + 1
        return None
    if w in ("nineteen", "eighteen") and i + 1 < n:
        rest = _two_digits(low, i + 1, n)
        if rest:
            return TEENS[w] * 100 + rest[0], rest[1]
        return None
    if w == "twenty" and i + 1 < n:
        rest = _two_digits(low, i + 1, n)
        if (rest and rest[0] >= 10) or (rest and low[i + 1] in ("oh", "o", "zero")):
            return 2000 + rest[0], rest[1]
    if w == "two" and i + 1 < n and low[i + 1] == "thousand":
        k = i + 2
        if k < n and low[k] == "and":
            k += 1
        rest = _two_digits(low, k, n)
        if rest is None and k < n and low[k] in DIGIT_WORDS and DIGIT_WORDS[low[k]] > 0:
            return 2000 + DIGIT_WORDS[low[k]], k + 1
        if rest:
            return 2000 + rest[0], rest[1]
        return 2000, i + 2
    two = _two_digits(low, i, n)
    if two and ((two[0] >= 10 and w in TENS) or w in ("oh", "o", "zero")):
        v = two[0]
        return (1900 + v if v > 25 else 2000 + v), two[1]
    if w in ("zero", "oh") and i + 1 < n and low[i + 1] in ("zero", "oh"):
        return 2000, i + 2
    return None


def _part(low: list[str], i: int, n: int, top: int) -> tuple[int, int] | None:
    """A day (top 31) or month (top 12) said as a number: "oh nine", "twelfth", "24", "five"."""
    if i >= n:
        return None
    w = low[i]
    if w in ("oh", "o", "zero") and i + 1 < n and low[i + 1] in DIGIT_WORDS:
        v = DIGIT_WORDS[low[i + 1]]
        return (v, i + 2) if 1 <= v <= top else None
    got = _day(low, i, n)
    if got is None or got[0] > top:
        return None
    return got


def numeric_dates(tokens: Tokens, start: int) -> tuple[int, int] | None:
    """A date said as numbers from token ``start`` ("oh nine one nineteen sixty one",
    "the nineteenth of the twelfth seventy four"): (first token, last token)."""
    low = tokens.low
    n = len(low)
    i = start
    if i < n and low[i] == "the":
        i += 1
    first = _part(low, i, n, 31)
    if first is None:
        return None
    k = first[1]
    while k < n and low[k] in ("of", "the", "/", ".", "-"):
        k += 1
    second = _part(low, k, n, 31)
    if second is None:
        return None
    k = second[1]
    while k < n and low[k] in ("/", ".", "-", ","):
        k += 1
    year = year_at(low, k, n)
    if year is None:
        return None
    y = year[0]
    day, month = first[0], second[0]
    if not (_ok(day, month, y) or _ok(month, day, y)):
        return None
    return i, year[1] - 1


def month_dates(tokens: Tokens) -> list[tuple[int, int, int]]:
    """Dates with a month name: (first token, last token, year or 0 when unsaid)."""
    low = tokens.low
    n = len(low)
    out: list[tuple[int, int, int]] = []
    for m in range(n):
        month = MONTHS.get(low[m])
        if month is None:
            continue
        if low[m] in ("may", "march", "sat") and not tokens.raw[m][0].isupper():
            pass  # lower-case ASR: still a month when a day sits next to it
        # DAY [of] MONTH: look back over "of"/"the".
        first = last = -1
        day = None
        k = m - 1
        while k >= 0 and low[k] in ("of", "the", "day"):
            k -= 1
        for start in (k - 2, k - 1, k):  # "twenty first", "12 th", "12"
            if start < 0:
                continue
            got = _day(low, start, n)
            if got and got[1] == k + 1 and (start == k or low[start] not in _SKIP):
                day, first = got[0], start
                break
        nxt = m + 1
        if day is None:
            # MONTH [the] DAY
            k = nxt
            if k < n and low[k] == "the":
                k += 1
            got = _day(low, k, n)
            if got is None:
                continue
            day, nxt, first = got[0], got[1], m
        last = nxt - 1
        k = nxt
        while k < n and low[k] in (",", "of", "in"):
            k += 1
        year = year_at(low, k, n)
        y = 0
        if year:
            y, last = year[0], year[1] - 1
        if valid_date(day, month, y or 2000):
            out.append((first, last, y))
    return out


def digit_date(digits: str, groups: list[int]) -> bool:
    """Whether a digit run reads as a plausible date of birth."""
    n = len(digits)
    if len(groups) == 3:
        a, b, _c = groups
        x, y, z = digits[:a], digits[a : a + b], digits[a + b :]
        if a == 4:
            return _ok(int(z), int(y), int(x))
        return _ok(int(x), int(y), _full(z)) or _ok(int(y), int(x), _full(z))
    if n == 8:
        return (
            _ok(int(digits[:2]), int(digits[2:4]), int(digits[4:]))
            or _ok(int(digits[2:4]), int(digits[:2]), int(digits[4:]))
            or _ok(int(digits[6:]), int(digits[4:6]), int(digits[:4]))
        )
    if n == 6:
        return _ok(int(digits[:2]), int(digits[2:4]), _full(digits[4:])) or _ok(
            int(digits[2:4]), int(digits[:2]), _full(digits[4:])
        )
    return False


def _full(y: str) -> int:
    if len(y) == 4:
        return int(y)
    if len(y) == 2:
        v = int(y)
        return 1900 + v if v > 25 else 2000 + v
    return -1


def _ok(day: int, month: int, year: int) -> bool:
    return valid_date(day, month, year) and 1900 <= year <= THIS_YEAR
