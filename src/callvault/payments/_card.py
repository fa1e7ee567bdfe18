"""Card numbers as the vault takes them: digits, length, Luhn, brand. Pure, no I/O.

Errors name the field and counts only: never a digit of what was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from callvault.errors import InvalidInputError
from callvault.redact._checks import card_prefix_ok, luhn

#: ISO/IEC 7812 primary account numbers are 12 to 19 digits long.
MIN_DIGITS: Final = 12
MAX_DIGITS: Final = 19
#: Longest input looked at (digits plus spaces and hyphens); longer is refused unread.
MAX_INPUT_CHARS: Final = 64
#: Brands :func:`card_brand` names; ``unknown`` when no issuer range fits the length.
BRANDS: Final = (
    "visa",
    "mastercard",
    "amex",
    "discover",
    "jcb",
    "diners",
    "unionpay",
    "mir",
    "maestro",
    "unknown",
)

_SEPARATORS: Final = str.maketrans("", "", " -")


@dataclass(frozen=True, slots=True, repr=False)
class CardFacts:
    """What may be known of a card number without holding it: counts, checks, last four."""

    digits: int
    luhn_valid: bool
    brand: str
    last4: str

    def __repr__(self) -> str:
        return (
            f"CardFacts(digits={self.digits}, luhn_valid={self.luhn_valid}, "
            f"brand={self.brand}, last4=<{len(self.last4)} digits>)"
        )


def normalise_pan(pan: str) -> str:
    """The card number's digits (spaces and hyphens dropped); else :class:`InvalidInputError`.

    Only ASCII digits count (``str.isdigit`` alone would take other scripts' digits).
    """
    if not isinstance(pan, str):
        raise InvalidInputError("card number must be a string", field="pan")
    if len(pan) > MAX_INPUT_CHARS:
        raise InvalidInputError(
            f"card number input is over {MAX_INPUT_CHARS} characters", field="pan"
        )
    digits = pan.translate(_SEPARATORS)
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidInputError(
            "card number must be digits (spaces and hyphens allowed)", field="pan"
        )
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise InvalidInputError(
            f"card number has {len(digits)} digits; {MIN_DIGITS} to {MAX_DIGITS} expected",
            field="pan",
        )
    return digits


def card_brand(digits: str) -> str:
    """The brand whose issuer (IIN) range and length fit ``digits``, else ``unknown``.

    The ranges and their order are those of :func:`callvault.redact._checks.card_prefix_ok`
    (which decides whether any brand fits); this names the one that does.
    """
    if len(digits) < MIN_DIGITS or not card_prefix_ok(digits):
        return "unknown"
    p2, p3, p4 = int(digits[:2]), int(digits[:3]), int(digits[:4])
    ranges: tuple[tuple[str, bool], ...] = (
        ("visa", digits[0] == "4"),
        ("mastercard", 51 <= p2 <= 55 or 2221 <= p4 <= 2720),
        ("amex", p2 in (34, 37)),
        ("discover", digits.startswith("6011") or 644 <= p3 <= 649 or p2 == 65),
        ("jcb", 3528 <= p4 <= 3589),
        ("diners", p2 in (36, 38, 39) or 300 <= p3 <= 305),
        ("unionpay", p2 in (62, 81)),
        ("mir", 2200 <= p4 <= 2204),
        ("maestro", p2 == 50 or 56 <= p2 <= 69),
    )
    return next((brand for brand, fits in ranges if fits), "unknown")


def card_facts(digits: str) -> CardFacts:
    """Counts and checks of a normalised card number (see :func:`normalise_pan`)."""
    return CardFacts(
        digits=len(digits), luhn_valid=luhn(digits), brand=card_brand(digits), last4=digits[-4:]
    )
