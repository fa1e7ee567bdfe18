"""What the rest of callvault sees of a card: a token id, the last four digits, status."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from callvault.store import is_id

#: Token ids: ``tok_`` and 128 random bits in lowercase base32 (the shape of every callvault id).
TOKEN_PREFIX: Final = "tok"  # noqa: S105 - an id prefix, not a secret

Source = Literal["dtmf", "speech", "agent"]
SOURCES: Final[frozenset[str]] = frozenset({"dtmf", "speech", "agent"})


def new_token_id() -> str:
    """A new random token id, such as ``tok_3kq…``; never derived from the card."""
    body = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
    return f"{TOKEN_PREFIX}_{body}"


def is_token_id(value: object) -> bool:
    return isinstance(value, str) and is_id(value, TOKEN_PREFIX)


@dataclass(frozen=True, slots=True, repr=False)
class CardToken:
    """A card in the vault as downstream consumers see it. It never holds the card number.

    ``display`` is what goes into transcripts and agent context; the status
    (digit count, Luhn result, brand) lets an agent ask again for a number
    that cannot be right.
    """

    id: str
    call_id: str
    last4: str
    brand: str
    digits: int
    luhn_valid: bool
    source: str
    created_at: datetime

    @property
    def display(self) -> str:
        return f"[CARD {self.id} ending {self.last4}]"

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape an API reply or an agent tool result carries."""
        return {
            "token": self.id,
            "display": self.display,
            "call_id": self.call_id,
            "last4": self.last4,
            "brand": self.brand,
            "digits": self.digits,
            "luhn_valid": self.luhn_valid,
            "source": self.source,
        }

    def __repr__(self) -> str:
        return (
            f"CardToken({self.display}, brand={self.brand}, digits={self.digits}, "
            f"luhn_valid={self.luhn_valid})"
        )

    def __str__(self) -> str:
        return self.display
