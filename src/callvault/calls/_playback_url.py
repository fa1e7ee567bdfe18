"""Short-lived signed playback URLs: one tenant, one call, one view, a few minutes.

A browser ``<audio>`` element cannot send a bearer header, so a reviewer who
may play a recording gets a URL instead::

    /v1/playback/pb1.<payload>.<mac>

``payload`` is base64url of the RFC 8785 JSON ``{"c": call, "e": expiry (unix
s), "n": nonce, "p": principal, "t": tenant, "v": "full"|"masked"}`` and
``mac`` HMAC-SHA256 over ``"pb1." ‖ payload`` with a key derived from the
tenant's own data key (owner kind ``tenant``, purpose ``playback-url``), so
no process-wide secret exists and shredding the tenant's keys voids every URL.
A URL is not the grant: when it is used the minting principal is loaded again
and passes the gate again (a revoked role or a deactivated user stops it at
once), and that use is audited before the first byte. Expired, edited,
truncated or foreign URLs all fail the same way (ids never echoed).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Final, Literal

import rfc8785
from sqlalchemy.orm import Session

from callvault.crypto.hazmat import hkdf_sha256
from callvault.errors import AuthenticationError, DecryptionError
from callvault.keys import KeyHierarchy, KeyOwner
from callvault.store.ids import is_id

PREFIX: Final = "pb1"
DEFAULT_TTL_SECONDS: Final = 300
MAX_TOKEN_CHARS: Final = 1024
_INFO: Final = b"callvault/playback-url/v1"
View = Literal["full", "masked"]


@dataclass(frozen=True, slots=True)
class PlaybackClaims:
    tenant_id: str
    call_id: str
    principal_id: str
    view: View
    expires_at: int


def _key(keys: KeyHierarchy, session: Session, tenant_id: str, *, create: bool) -> bytes:
    owner = KeyOwner(tenant_id, None, "tenant", tenant_id, purpose="playback-url")
    return hkdf_sha256(keys.data_key(session, owner, create=create), info=_INFO)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(
    keys: KeyHierarchy,
    session: Session,
    claims: PlaybackClaims,
) -> str:
    """The token for ``claims`` (the caller checked the principal may play that view)."""
    payload = _b64(
        rfc8785.dumps(
            {
                "c": claims.call_id,
                "e": claims.expires_at,
                "n": secrets.token_hex(8),
                "p": claims.principal_id,
                "t": claims.tenant_id,
                "v": claims.view,
            }
        )
    )
    signed = f"{PREFIX}.{payload}"
    mac = hmac.new(_key(keys, session, claims.tenant_id, create=True), signed.encode(), "sha256")
    return f"{signed}.{_b64(mac.digest())}"


def peek_tenant(token: str) -> str:
    """The tenant a token claims (unverified: only to open the tenant's transaction)."""
    return _parse(token)[1].tenant_id


def verify(keys: KeyHierarchy, session: Session, token: str, now: int) -> PlaybackClaims:
    """The claims of a valid, unexpired token; else :class:`AuthenticationError`."""
    signed, claims, mac = _parse(token)
    try:
        key = _key(keys, session, claims.tenant_id, create=False)
    except DecryptionError:  # no key (never minted, or shredded): no valid URL
        raise AuthenticationError("invalid or expired playback URL") from None
    expected = hmac.new(key, signed.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise AuthenticationError("invalid or expired playback URL")
    if not claims.expires_at > now:
        raise AuthenticationError("invalid or expired playback URL")
    return claims


def _parse(token: str) -> tuple[str, PlaybackClaims, bytes]:
    bad = AuthenticationError("invalid or expired playback URL")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise bad
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise bad
    try:
        raw = _unb64(parts[1])
        mac = _unb64(parts[2])
        body = json.loads(raw)
    except (binascii.Error, ValueError):
        raise bad from None
    if not (
        isinstance(body, dict)
        and set(body) == {"c", "e", "n", "p", "t", "v"}
        and all(isinstance(body[k], str) for k in ("c", "n", "p", "t", "v"))
        and isinstance(body["e"], int)
        and not isinstance(body["e"], bool)
        and body["v"] in ("full", "masked")
        and is_id(body["t"], "ten")
        and is_id(body["c"], "call")
        and is_id(body["p"], "prn")
        and len(mac) == 32
    ):
        raise bad
    view: View = "full" if body["v"] == "full" else "masked"
    claims = PlaybackClaims(body["t"], body["c"], body["p"], view, body["e"])
    return f"{parts[0]}.{parts[1]}", claims, mac
