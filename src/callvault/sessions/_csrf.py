"""Cross-site request forgery defence for cookie-authenticated requests (pure functions).

A request authenticated by the session cookie that can change state (any
method but GET, HEAD and OPTIONS) passes, in order:

1. ``Sec-Fetch-Site``, when the browser sends it, MUST be ``same-origin``
   (a sibling subdomain is ``same-site`` and may be someone else's).
2. ``Origin``, when sent, MUST equal this installation's origin (the origin
   of ``CALLVAULT_PUBLIC_BASE_URL``, else ``https://`` + the Host header);
   ``null`` never does.
3. ``X-CSRF-Token`` MUST carry the session's synchronizer token, compared in
   constant time by its SHA-256 (only the hash is stored). The token is an
   HMAC of the session secret, so ``GET /v1/session`` can hand it to the
   page again without the server keeping it.

Requests authenticated by a bearer API key are not subject to any of this: a
browser never attaches an ``Authorization`` header on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from callvault.errors import PermissionDeniedError

CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_TOKEN_LABEL: Final = b"callvault csrf token v1"
_HASH_DOMAIN: Final = b"callvault csrf hash v1\x00"
_MAX_TOKEN_CHARS: Final = 128


class CsrfError(PermissionDeniedError):
    """A cookie-authenticated state change without a valid CSRF token or from another origin."""

    code = "csrf-failed"

    def __init__(self, reason: str) -> None:
        super().__init__("cross-site request refused: send the session's CSRF token")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the CSRF checks read from a request (header values as sent, or None)."""

    method: str
    origin: str | None
    fetch_site: str | None
    csrf_token: str | None
    expected_origin: str

    @property
    def unsafe(self) -> bool:
        return self.method.upper() not in SAFE_METHODS


def csrf_token(secret: bytes) -> str:
    """The session's synchronizer token, derived from its secret."""
    mac = hmac.new(secret, _TOKEN_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def csrf_hash(token: str) -> bytes:
    return hashlib.sha256(_HASH_DOMAIN + token.encode("utf-8", "surrogatepass")).digest()


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lowercased, the default port dropped."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    default = {"https": 443, "http": 80}.get(scheme)
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def expected_origin(public_base_url: str | None, host_header: str | None) -> str:
    if public_base_url:
        return origin_of(public_base_url)
    return origin_of(f"https://{host_header or ''}")


def cross_site_reason(facts: RequestFacts) -> str | None:
    """Why the request comes from another site (steps 1-2), or None."""
    # (1)
    if facts.fetch_site is not None and facts.fetch_site.strip().lower() != "same-origin":
        return "cross-site-fetch"
    # (2)
    if facts.origin is not None:
        if facts.origin.strip().lower() == "null":
            return "origin"
        try:
            if origin_of(facts.origin) != facts.expected_origin:
                return "origin"
        except ValueError:  # a malformed port
            return "origin"
    return None


def check_csrf(facts: RequestFacts, stored_hash: bytes) -> None:
    """Steps 1-3 for an unsafe method; raise :class:`CsrfError` with a reason code."""
    if not facts.unsafe:
        return
    reason = cross_site_reason(facts)
    if reason is not None:
        raise CsrfError(reason)
    # (3)
    token = facts.csrf_token
    if not token:
        raise CsrfError("csrf-token-missing")
    if len(token) > _MAX_TOKEN_CHARS or not hmac.compare_digest(csrf_hash(token), stored_hash):
        raise CsrfError("csrf-token-mismatch")
