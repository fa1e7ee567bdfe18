"""Context keywords: which phrases precede (or follow) a candidate, found in one pass.

An Aho-Corasick automaton (pyahocorasick) over the lower-cased tokens joined
by single spaces finds every keyword at once; a hit counts only on whole
tokens. A candidate's context is the set of keyword categories that end at
most ``BEFORE`` tokens before it, or start at most ``AFTER`` tokens after it
("... is my date of birth"); the nearest preceding category breaks ties
("sort code 40 47 84 and account number 12345678").
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection
from typing import Final

import ahocorasick

from callvault.redact._tokens import Tokens

BEFORE: Final = 10
AFTER: Final = 4

CARD: Final = "card"
CVV: Final = "cvv"
EXPIRY: Final = "expiry"
SSN: Final = "ssn"
NINO: Final = "nino"
NHS: Final = "nhs"
SORT: Final = "sort"
ACCOUNT: Final = "account"
ROUTING: Final = "routing"
IBAN: Final = "iban"
DOB: Final = "dob"
PHONE: Final = "phone"
EMAIL: Final = "email"
POSTCODE: Final = "postcode"
ADDRESS: Final = "address"
NAME: Final = "name"
# Numbers that are not PII: money, orders, references, quantities.
OTHER: Final = "other"

_KEYWORDS: Final = {
    CARD: """card number|card no|card|long number|number on the front|front of the card|
        credit card|debit card|card details|sixteen digit|16 digit|long card number|pan|
        visa|mastercard|master card|amex|american express|the card|payment card|card digits""",
    CVV: """security code|cvv|cvc|cvv2|csc|cvc2|three digits on the back|three digit code|
        3 digit code|digits on the back|last three digits|last 3 digits|number on the back|
        back of the card|security number|card verification|verification code|
        signature strip|
        three digit security|four digit code on the front|cid|on the back|the back|back of it|
        c v v|c v c|c v v two|cvv's|
        back it's|
        at the back|reverse|cvv number|security digits""",
    EXPIRY: """expiry|expiry date|expiration|expiration date|expires|expire|exp|exp date|
        valid until|valid thru|valid through|valid to|end date|good thru|good through|expiring|
        runs out|end of""",
    SSN: """social security|social security number|ssn|s s n|social|social security no|
        last four of my social|taxpayer|soc sec|soc sec number|ss #|ss#|
        ss number|social sec|ssn #|ssn number""",
    NINO: """national insurance|national insurance number|ni number|n i number|nino|
        insurance number|n i no|ni no|n . i .|n . i|n . i . number|ni #|n i #""",
    NHS: """nhs|nhs number|n h s|nhs no|health service number|nhs num|community health""",
    SORT: """sort code|sortcode|sort|sorting code|bank code|bank details|banking details|
        bank info""",
    ACCOUNT: """account number|account no|acc number|account num|bank account|account|acct|
        a / c|a / c no|a / c number|acc no|acc|
        checking account|savings account|account is|account ending""",
    ROUTING: """routing number|routing|aba|transit number|aba number|routing no""",
    IBAN: """iban|i b a n|international bank account|international bank account number|
        eye ban|iban number|iban's""",
    DOB: """date of birth|dob|d o b|d . o . b|d . o . b .|born|birthday|birth date|birthdate|
        date of birth is|born on|born in|d o b is|birth|birthday's|birth's|dob's|
        date of birth's|birth date's""",
    PHONE: """phone|phone number|mobile|mobile number|contact number|landline|telephone|
        cell|cell phone|cellphone|call me|reach me|ring me|call back|callback|text me|
        phone no|tel|number to call|best number|daytime number|home number|work number|
        mobile no|contact me|whatsapp|call me on|get me on|reach me at|reach me on""",
    EMAIL: """email|e-mail|e mail|email address|e - mail|mail address|emails|email's|
        send it to|
        address is""",
    POSTCODE: """postcode|post code|postal code|zip|zip code|zipcode|zip's|postcode's|
        post code's""",
    ADDRESS: """address|live at|i live|living at|home address|street|flat|apartment|apt|
        suite|house number|residential""",
    NAME: """my name is|name is|name's|this is|i am|i'm|speaking to|it's|full name|surname's|
        surname|first name|last name|called|name""",
    OTHER: """order number|order no|order|reference|ref|reference number|ticket|tracking|
        invoice|policy number|policy|claim number|claim|booking|confirmation number|
        confirmation|case number|case|pounds|dollars|£|$|€|percent|%|flight|room|extension|
        ext|pin|quantity|items|units|price|cost|costs|total|balance|amount|
        version|model|serial|membership|member number|customer number|parcel|consignment|
        meter|minutes|hours|seconds|days|weeks|months|years|mg|ml|kg|miles|km|times|
        o'clock|am|pm|p . m|a . m|page|chapter|item|number of|bus|platform|gate|seat|
        lottery|score|mph|degrees|inches|feet|pence|cents|grand|quid|bucks|k|ip""",
}


# Words that may sit between a birth keyword and the date it introduces.
_BIRTH_GLUE: Final = frozenset(
    {"is", "was", "the", "on", "of", "it's", "its", "'s", ":", ",", "-", "um", "uh", "er",
     "erm", "yes", "yeah", "it", "at", "in", "be", "should", "that's", "?", "!", ".", ";",
     "my", "sure", "okay", "ok", "right", "please", "so", "thats", "her", "his", "their"}
)  # fmt: skip


def _build() -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for category, phrases in _KEYWORDS.items():
        for phrase in phrases.split("|"):
            key = " " + " ".join(phrase.split()) + " "
            value = automaton.get(key, ())
            automaton.add_word(key, (*value, (category, len(phrase.split()))))
    automaton.make_automaton()
    return automaton


_AUTOMATON: Final = _build()


class Context:
    """Keyword hits of one text, by token position."""

    __slots__ = ("_ends", "_hits", "_starts")

    def __init__(self, tokens: Tokens) -> None:
        # " " + tokens joined by " " + " ": token k starts at offsets[k] in the joined string.
        joined = " " + " ".join(tokens.low) + " "
        hits: list[tuple[int, int, str]] = []  # (first token, last token, category)
        for end, values in _AUTOMATON.iter(joined):
            # ``end`` is the key's trailing space; tokens hold no spaces, so the spaces
            # before it count the tokens up to and including the key's last one.
            last = joined.count(" ", 0, end) - 1
            for category, n_tokens in values:
                hits.append((last - n_tokens + 1, last, category))
        hits.sort(key=lambda h: h[1])
        self._hits = hits
        self._ends = [h[1] for h in hits]
        self._starts = sorted((h[0], h[2]) for h in hits)

    def __bool__(self) -> bool:
        return bool(self._hits)

    def birth_close(self, tokens: Tokens, first: int, last: int) -> bool:
        """A birth keyword right before ``first`` (no word between but "is",
        "the", "on", ...) or right after ``last``: "date of birth is the 12th", not "changed
        my date of birth in the app on the 12th"."""
        if DOB in self.after(last):
            return True
        hi = bisect_left(self._ends, first)
        k = hi - 1
        while k >= 0 and self._hits[k][1] >= first - BEFORE:
            end, cat = self._hits[k][1], self._hits[k][2]
            if cat == DOB:
                between = [w for w in tokens.low[end + 1 : first] if w not in _BIRTH_GLUE]
                return not between
            k -= 1
        return False

    def starts_of(self, category: str) -> list[int]:
        """First token of each hit of ``category``."""
        return sorted({h[0] for h in self._hits if h[2] == category})

    def ends_of(self, category: str) -> list[int]:
        """Last token of each hit of ``category``."""
        return sorted({h[1] for h in self._hits if h[2] == category})

    def any_of(self, categories: frozenset[str]) -> bool:
        return any(h[2] in categories for h in self._hits)

    def before(self, first: int, window: int = BEFORE) -> list[str]:
        """Categories of hits ending in the ``window`` tokens before ``first``, nearest first."""
        hi = bisect_left(self._ends, first)
        out: list[str] = []
        k = hi - 1
        while k >= 0 and self._hits[k][1] >= first - window:
            cat = self._hits[k][2]
            if cat not in out:
                out.append(cat)
            k -= 1
        return out

    def nearest(self, first: int, categories: Collection[str], window: int = BEFORE) -> str | None:
        """The nearest preceding category among ``categories`` (longest hit wins a tie)."""
        hi = bisect_left(self._ends, first)
        best: tuple[int, int, str] | None = None
        k = hi - 1
        while k >= 0 and self._hits[k][1] >= first - window:
            h = self._hits[k]
            if h[2] in categories and (
                best is None or h[1] > best[1] or (h[1] == best[1] and h[0] < best[0])
            ):
                best = h
            k -= 1
        return best[2] if best else None

    def after(self, last: int, window: int = AFTER) -> list[str]:
        """Categories of hits starting in the ``window`` tokens after ``last``."""
        lo = bisect_left(self._starts, (last + 1, ""))
        out: list[str] = []
        for k in range(lo, len(self._starts)):
            start, cat = self._starts[k]
            if start > last + window:
                break
            out.append(cat)
        return out

    def has(self, category: str, first: int, last: int) -> bool:
        return category in self.before(first) or category in self.after(last)

    def categories_between(self, first: int, last: int) -> list[str]:
        """Categories of hits lying fully inside tokens ``first..last``."""
        return [h[2] for h in self._hits if first <= h[0] and h[1] <= last]
