"""The text form of random secrets in tokens and cookies: unpadded base64url, canonical only.

A 32-byte secret is 43 base64url characters whose last one carries 4 bits
of the secret and 2 unused bits. Decoding ignores the unused bits, so four
different texts would name one secret; :func:`secret_from_text` accepts only
the one text :func:`secret_to_text` makes (a token is one exact string, and
"change a character, get a different secret" holds for every character).
"""

from __future__ import annotations

import base64
import binascii


def secret_to_text(secret: bytes) -> str:
    return base64.urlsafe_b64encode(secret).rstrip(b"=").decode("ascii")


def secret_from_text(text: str) -> bytes | None:
    """The secret ``text`` encodes, or None if it is not the canonical encoding of one."""
    try:
        secret = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return secret if secret_to_text(secret) == text else None
