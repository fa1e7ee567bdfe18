"""The session cookie: its value's format and its attributes.

The value is ``cvs1.<tenant id>.<session id>.<secret>`` where the secret is
256 random bits (base64url). The tenant id lets the lookup run inside that
tenant's row-level-security wall, as API keys do; only SHA-256 of the secret
is stored. The cookie is ``__Host-`` prefixed (so Secure, Path=/ and no
Domain are enforced by the browser too), HttpOnly, SameSite=Lax, and has no
Max-Age: a browser session cookie, while the server enforces the absolute and
idle limits.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from starlette.responses import Response

from callvault.crypto.encoding import secret_from_text, secret_to_text
from callvault.errors import AuthenticationError
from callvault.store.ids import ID_PATTERN

COOKIE_NAME: Final = "__Host-cv-session"
VALUE_PREFIX: Final = "cvs1"
_ID = ID_PATTERN.strip("^$")
_VALUE_RE: Final = re.compile(rf"^{VALUE_PREFIX}\.({_ID})\.({_ID})\.([A-Za-z0-9_-]{{43}})$")
SECRET_BYTES: Final = 32
_SECRET_DOMAIN: Final = b"callvault session secret v1\x00"


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A new session. ``cookie_value`` and ``csrf_token`` are shown once, never stored."""

    id: str
    tenant_id: str
    principal_id: str
    method: str
    cookie_value: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    idle_timeout_seconds: int


@dataclass(frozen=True, slots=True)
class CookieParts:
    tenant_id: str
    session_id: str
    secret: bytes


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def secret_hash(secret: bytes) -> bytes:
    return hashlib.sha256(_SECRET_DOMAIN + secret).digest()


def cookie_value(tenant_id: str, session_id: str, secret: bytes) -> str:
    encoded = secret_to_text(secret)
    return f"{VALUE_PREFIX}.{tenant_id}.{session_id}.{encoded}"


def parse_cookie(value: str) -> CookieParts:
    """Split a cookie value; raise :class:`AuthenticationError` if malformed."""
    m = _VALUE_RE.match(value)
    if m is None:
        raise AuthenticationError("invalid session")
    secret = secret_from_text(m.group(3))
    if secret is None:  # not the canonical text of a secret (crypto/encoding.py)
        raise AuthenticationError("invalid session")
    return CookieParts(tenant_id=m.group(1), session_id=m.group(2), secret=secret)


def set_session_cookie(response: Response, issued: IssuedSession) -> None:
    """Put the session cookie on ``response`` (Secure, HttpOnly, SameSite=Lax, Path=/).

    The API's outermost layer marks every answer ``Cache-Control: no-store``.
    """
    response.set_cookie(
        COOKIE_NAME,
        issued.cookie_value,
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response) -> None:
    """Tell the browser to drop the session cookie."""
    response.delete_cookie(COOKIE_NAME, path="/", secure=True, httponly=True, samesite="lax")
