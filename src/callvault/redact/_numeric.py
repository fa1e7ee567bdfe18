"""Entities read from number runs: cards, NHS/SSN, bank details, CVV, expiry, phone, DOB, ZIP.

Each run is tried whole first; if the whole run is no entity, windows that
start and end on token boundaries are tried left to right, longest first,
so "sort code 404784 12345678" yields a sort code and an account number.
The keyword context decides ambiguous digit strings: 8 digits alone are no
account number, after "account number" they are.
"""

from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache
from typing import Final

from callvault.redact import _context as ctxk
from callvault.redact._checks import card_prefix_ok, luhn, nhs_ok, ssn_ok
from callvault.redact._context import Context
from callvault.redact._dates import digit_date
from callvault.redact._lexicon import STREET_SUFFIXES, US_STATES
from callvault.redact._numbers import CORRECTION, Run
from callvault.redact._tokens import Tokens
from callvault.redact._types import (
    BANK_ACCOUNT,
    CARD_CVV,
    CARD_EXPIRY,
    CARD_NUMBER,
    DATE_OF_BIRTH,
    NHS_NUMBER,
    PHONE_NUMBER,
    POSTCODE,
    UK_SORT_CODE,
    US_SSN,
)

Candidate = tuple[int, int, str, float]

#: Findings below this score are dropped.
THRESHOLD: Final = 0.5

_VALUE_CATS: Final = frozenset(
    {ctxk.CARD, ctxk.CVV, ctxk.EXPIRY, ctxk.SSN, ctxk.NINO, ctxk.NHS, ctxk.SORT, ctxk.ACCOUNT,
     ctxk.ROUTING, ctxk.IBAN, ctxk.DOB, ctxk.PHONE, ctxk.EMAIL, ctxk.POSTCODE, ctxk.ADDRESS,
     ctxk.OTHER}
)  # fmt: skip


class _Where:
    """The context of one candidate window: nearest keyword, and all around it."""

    __slots__ = (
        "_ctx",
        "_first",
        "_last",
        "_tokens",
        "around",
        "nearest",
        "plus",
        "plus_tok",
        "state_before",
    )

    def __init__(self, tokens: Tokens, ctx: Context | None, first: int, last: int) -> None:
        self._tokens = tokens
        self._first = first
        self._last = last
        self._ctx = ctx
        self.plus = False
        self.plus_tok = first - 1
        self.state_before = False
        if ctx:
            self.nearest = ctx.nearest(first, _VALUE_CATS)
            self.around = set(ctx.before(first)) | set(ctx.after(last))
        else:
            self.nearest = None
            self.around = set()
        if ctx is None:
            return  # a window inside a run: nothing but numbers before it
        low = tokens.low
        prev = low[first - 1] if first > 0 else ""
        prev2 = low[first - 2] if first > 1 else ""
        self.plus = prev in ("+", "plus") or (prev == "(" and prev2 in ("+", "plus"))
        self.plus_tok = first - 1 if prev in ("+", "plus") else first - 2
        self.state_before = _state(tokens, first - 1) or (prev == "," and _state(tokens, first - 2))

    def inner(self) -> _Where:
        """The same context for a window that starts inside the run."""
        other = _Where(self._tokens, None, self._first, self._last)
        other.nearest = self.nearest
        other.around = self.around
        other._ctx = self._ctx
        return other

    @property
    def birth_close(self) -> bool:
        """A birth keyword introduces this very number (see :meth:`Context.birth_close`)."""
        return self._ctx is not None and self._ctx.birth_close(
            self._tokens, self._first, self._last
        )

    @property
    def street_before(self) -> bool:
        """A street or state just before: a ZIP after an address ("Lopez Boulevard, 03526")."""
        tokens = self._tokens
        return any(
            tokens.low[k] in STREET_SUFFIXES or _state(tokens, k)
            for k in range(max(0, self._first - 6), self._first)
        )


def _state(tokens: Tokens, k: int) -> bool:
    """A US state name, or its two-letter code in capitals ("OH", not "oh") or after a comma
    ("sacramento, ca")."""
    if k < 0 or tokens.low[k] not in US_STATES:
        return False
    raw = tokens.raw[k]
    return len(raw) > 2 or raw.isupper() or (k > 0 and tokens.low[k - 1] == ",")


def _us_phone_shape(seps: list[str], groups: list[int]) -> bool:
    joined = "".join(seps)
    return groups in ([3, 3, 4], [1, 3, 3, 4]) and any(c in joined for c in "-().")


@lru_cache(maxsize=4096)
def _us_number(d: str) -> bool:
    """A number in the North American plan's assigned ranges (phonenumbers' metadata)."""
    import phonenumbers  # noqa: PLC0415 - only for the rare NHS-or-US-phone tie; import is slow

    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse("+1" + d)))
    except phonenumbers.NumberParseException:
        return False


def _nanp(d: str) -> bool:
    return len(d) == 10 and d[0] in "23456789" and d[3] in "23456789" and d[1:3] != "11"


def classify(
    d: str, groups: list[int], seps: list[str], where: _Where, *, whole: bool = True
) -> tuple[str, float] | None:
    """The best entity for digit string ``d`` in its context, or None."""
    n = len(d)
    near = where.nearest
    around = where.around
    other = near == ctxk.OTHER
    # Date of birth: a date in a birth context wins over every numeric reading.
    if ctxk.DOB in around and 4 <= n <= 8 and where.birth_close and digit_date(d, groups):
        return DATE_OF_BIRTH, 0.91
    if 12 <= n <= 19 and luhn(d):
        carded = ctxk.CARD in around
        # Inside a longer run, a card needs its context or the usual 15/16 digits.
        plausible = whole or carded or n in (15, 16)
        if card_prefix_ok(d) and plausible:
            if carded:
                return CARD_NUMBER, 0.99
            # After "order"/"reference", only a whole card-length number stays a card: a
            # missed card is a PCI leak, a masked order number is not.
            return CARD_NUMBER, 0.9 if not other else (0.8 if whole and n in (15, 16) else 0.4)
        if carded and not other:
            return CARD_NUMBER, 0.8
    if where.plus and 8 <= n <= 15:
        return PHONE_NUMBER, 0.9
    if n == 10 and nhs_ok(d):
        if near == ctxk.NHS or (ctxk.NHS in around and near not in (ctxk.PHONE, ctxk.ACCOUNT)):
            return NHS_NUMBER, 0.95
        us_shaped = _us_phone_shape(seps, groups) and _us_number(d)
        if near == ctxk.PHONE or ctxk.PHONE in around or us_shaped:
            return PHONE_NUMBER, 0.85 if _nanp(d) or d[0] == "0" else 0.6
        if not other and near not in (ctxk.ACCOUNT, ctxk.ROUTING, ctxk.CARD, ctxk.SSN, ctxk.SORT):
            return NHS_NUMBER, 0.75
    if n == 9 and ssn_ok(d):
        if ctxk.SSN in around and near != ctxk.ROUTING:
            return US_SSN, 0.95
        if (
            groups == [3, 2, 4]
            and not other
            and near not in (ctxk.ACCOUNT, ctxk.ROUTING, ctxk.PHONE)
        ):
            return US_SSN, 0.85
    sort_shape = groups == [2, 2, 2] and "-" in "".join(seps)
    if n == 6 and (near == ctxk.SORT or (sort_shape and not other)):
        return UK_SORT_CODE, 0.95 if near == ctxk.SORT else 0.7
    if near == ctxk.CVV and n in (3, 4):
        return CARD_CVV, 0.95
    if near == ctxk.EXPIRY and _expiry(d):
        return CARD_EXPIRY, 0.9
    if (near == ctxk.SORT and n == 8) or (near == ctxk.ACCOUNT and 6 <= n <= 17):
        return BANK_ACCOUNT, 0.9
    zip_ctx = near == ctxk.POSTCODE or where.state_before or (n == 5 and where.street_before)
    if zip_ctx and (n == 5 or (n == 9 and groups == [5, 4])):
        return POSTCODE, 0.85 if near in (
            ctxk.POSTCODE,
            ctxk.ADDRESS,
        ) or where.state_before else 0.6
    phone = _phone(d, groups, seps, where)
    if phone is not None:
        return PHONE_NUMBER, phone
    if ctxk.CARD in around and _expiry(d) and "/" in "".join(seps):
        return CARD_EXPIRY, 0.7
    if ctxk.CVV in around and n in (3, 4) and near in (ctxk.CVV, ctxk.CARD, ctxk.EXPIRY):
        return CARD_CVV, 0.8
    if ctxk.SSN in around and n == 4 and near == ctxk.SSN:
        return US_SSN, 0.7  # "the last four of my social"
    return None


def _expiry(d: str) -> bool:
    n = len(d)
    if n == 4:
        return 1 <= int(d[:2]) <= 12 and 15 <= int(d[2:]) <= 45
    if n == 3:
        return 1 <= int(d[0]) <= 9 and 15 <= int(d[1:]) <= 45
    if n == 6:
        return 1 <= int(d[:2]) <= 12 and d[2:4] == "20"
    return False


def _phone(d: str, groups: list[int], seps: list[str], where: _Where) -> float | None:
    n = len(d)
    near = where.nearest
    ctx = ctxk.PHONE in where.around
    other = near == ctxk.OTHER
    if other and not ctx:
        return None
    if n == 11 and d[0] == "0" and d[1] in "123578":
        return 0.95 if ctx else 0.85
    if d.startswith("00") and 12 <= n <= 15 and d[2] != "0":
        return 0.9  # international prefix: 0044 7930 084077
    if n == 12 and d.startswith("44") and d[2] in "123578":
        return 0.9
    if n == 13 and d.startswith("440") and d[3] in "123578":
        return 0.9
    if n == 10 and d[0] == "0" and d[1] in "123578" and ctx:
        return 0.8  # UK numbers with 9 digits after the trunk zero (some areas)
    if n == 10 and _nanp(d):
        if ctx:
            return 0.9
        if _us_phone_shape(seps, groups):
            return 0.8
        return (
            0.55
            if near not in (ctxk.ACCOUNT, ctxk.ROUTING, ctxk.SORT, ctxk.CARD, ctxk.SSN)
            else None
        )
    if n == 11 and d[0] == "1" and _nanp(d[1:]):
        return 0.85 if ctx or groups[0] == 1 else 0.6
    if n == 7 and ctx and d[0] in "23456789":
        return 0.7
    return None


def run_candidates(tokens: Tokens, ctx: Context, run: Run) -> list[Candidate]:
    """Candidates from one number run."""
    d = run.digits
    n = len(d)
    if n < 3:
        return []
    out: list[Candidate] = []
    first, last = run.first_tok[0], run.last_tok[-1]
    where = _Where(tokens, ctx, first, last)
    whole = classify(d, run.groups(), run.seps, where)
    if whole is not None and whole[1] >= THRESHOLD:
        s, e = run.span(tokens, 0, n)
        if where.plus and whole[0] == PHONE_NUMBER:
            s = tokens.starts[where.plus_tok]
        elif whole[0] == PHONE_NUMBER and first > 0 and tokens.low[first - 1] == "(":
            s = tokens.starts[first - 1]  # "(212) 555-0123": the bracket goes with it
        return [(s, e, whole[0], whole[1])]
    if CORRECTION in run.seps:
        # "4804, sorry, 4808 1978 ...": the value is what follows the last correction; the
        # abandoned digits before it are masked with it.
        k = len(run.seps) - 1 - run.seps[::-1].index(CORRECTION)
        seps = ["", *run.seps[k + 1 :]]
        again = classify(d[k:], _groups(seps), seps, _Where(tokens, ctx, run.first_tok[k], last))
        if again is not None and again[1] >= THRESHOLD:
            s, e = run.span(tokens, 0, n)
            return [(s, e, again[0], again[1])]
    # Windows inside a run share its context (no keyword sits inside a run); only the first
    # window can follow a "+" or a state name.
    run_where = where
    inner = where.inner()
    bounds = run.boundaries()
    lengths = _window_lengths(inner)
    bi = 0
    while bi < len(bounds) - 1:
        i = bounds[bi]
        found = False
        top = bisect_right(bounds, i + 19, bi) - 1
        for bj in range(top, bi, -1):
            j = bounds[bj]
            if (i == 0 and j == n) or (j - i) not in lengths:
                if j - i < 3:
                    break
                continue
            seps = ["", *run.seps[i + 1 : j]]
            groups = _groups(seps)
            where = run_where if i == 0 else inner
            got = classify(d[i:j], groups, seps, where, whole=False)
            if got is not None and got[1] >= THRESHOLD:
                s, e = run.span(tokens, i, j)
                out.append((s, e, got[0], got[1]))
                bi = bj
                found = True
                break
        if not found:
            bi += 1
    return out


_BASE_LENGTHS: Final = frozenset({6, 9, 10, 11, 12, 13, 14, 15, 16})


def _window_lengths(where: _Where) -> frozenset[int]:
    """The window lengths :func:`classify` could accept in this context (the rest are skipped)."""
    around = where.around
    if not around:
        return _BASE_LENGTHS
    extra: set[int] = set(_BASE_LENGTHS)
    if ctxk.DOB in around:
        extra.update(range(4, 9))
    if ctxk.CARD in around:
        extra.update(range(3, 20))  # any card length, and expiry/CVV beside it
    if around & {ctxk.CVV, ctxk.EXPIRY, ctxk.SSN}:
        extra.update((3, 4, 6))
    if around & {ctxk.ACCOUNT, ctxk.SORT, ctxk.ROUTING}:
        extra.update(range(6, 18))
    if around & {ctxk.POSTCODE, ctxk.ADDRESS}:
        extra.update((5, 9))
    if ctxk.PHONE in around:
        extra.update(range(7, 16))
    return frozenset(extra)


def _groups(seps: list[str]) -> list[int]:
    out: list[int] = []
    k = 0
    for idx, s in enumerate(seps):
        if idx and s:
            out.append(k)
            k = 0
        k += 1
    out.append(k)
    return out
