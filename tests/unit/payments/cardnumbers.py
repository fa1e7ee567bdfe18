"""Card numbers the payments tests use: distinctive, so a search for them finds only leaks."""

from __future__ import annotations

from callvault.redact._checks import luhn


def with_check_digit(body: str) -> str:
    """``body`` plus the digit that makes it pass the Luhn check."""
    return next(body + d for d in "0123456789" if luhn(body + d))


#: A Luhn-valid 16-digit Visa-range number, as the vault stores it and as a caller says it.
PAN = with_check_digit("453914880343646")
SPOKEN = " ".join(PAN[i : i + 4] for i in range(0, 16, 4))
#: Another valid number, and one that fails the Luhn check.
OTHER_PAN = with_check_digit("520082828282821")
BAD_LUHN_PAN = PAN[:-1] + str((int(PAN[-1]) + 1) % 10)
#: Fragments that must not show either: all but the last four, the first twelve.
FRAGMENTS = (PAN, PAN[:-4], PAN[4:], SPOKEN)


def leaks(text: str | bytes) -> list[str]:
    """Which fragments of :data:`PAN` occur in ``text``."""
    hay = text.decode("latin-1") if isinstance(text, bytes) else text
    return [f for f in FRAGMENTS if f in hay]
