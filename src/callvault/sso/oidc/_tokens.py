"""ID token verification: values in, claims out, no I/O (joserfc does the cryptography).

:func:`verify_id_token` accepts a token only if every step passes:

1. Shape: at most :data:`MAX_ID_TOKEN_CHARS` ASCII characters, three
   base64url segments (JWS compact; a JWE or JSON serialisation is refused),
   a header that is a JSON object with no ``crit`` and no ``b64``.
2. Algorithm: the header's ``alg`` MUST be on the connection's allow-list
   (asymmetric only: ``none`` and HS* never verify, whatever the header says).
3. Key: chosen from the pinned provider's published keys only, by ``kid``
   (or the single compatible key when the token names none), of the key type
   the algorithm needs and with the same ``alg`` if the key states one.
   ``jku``, ``x5u``, ``jwk`` and ``x5c`` headers are ignored. An unknown
   ``kid`` raises :class:`UnknownKeyError`, for which the caller MAY refresh
   the key set once and call again.
4. Signature: verified by joserfc with that key and algorithm only.
5. Claims: the payload MUST be a JSON object with a string ``sub``.
6. Issuer: ``iss`` MUST equal the pinned issuer exactly. Entra: the ``tid``
   claim MUST be in the allow-list and ``iss`` MUST equal the template
   filled with that ``tid``.
7. Audience: ``aud`` (string or list) MUST contain the client id; with
   several audiences ``azp`` MUST be present, and whenever present ``azp``
   MUST equal the client id.
8. Time, with ``skew`` each way: ``exp`` MUST be in the future, ``iat``
   MUST NOT be in the future nor older than ``max_age``, ``nbf`` (if any)
   MUST have passed. All are numbers (booleans are not).
9. Nonce: MUST be present and equal (constant time) the login's nonce.
10. ``at_hash``, when present, MUST match the access token of the same
    response (left half of its hash with the algorithm's hash function).

Every failure is :class:`~callvault.errors.SsoError` with a stable reason;
the message never quotes the token, its claims or the key ids.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from callvault.errors import SsoError
from callvault.sso.oidc._config import GUID, TENANT_PLACEHOLDER
from callvault.sso.oidc._discovery import PublishedKey, SigningKey

MAX_ID_TOKEN_CHARS: Final = 96 * 1024
_B64URL: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_EC_CURVES: Final = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_HASHES: Final = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


class UnknownKeyError(SsoError):
    """The token names a key id the key set does not hold (the set may have rotated)."""

    def __init__(self) -> None:
        super().__init__("the ID token's signing key is not the provider's", reason="signature")


@dataclass(frozen=True, slots=True)
class Expected:
    """What this login's ID token must say."""

    #: Exact issuer, or the Entra template (with ``allowed_tenant_ids``).
    issuer: str
    client_id: str
    algorithms: tuple[str, ...]
    nonce: str
    now: datetime
    skew: timedelta
    max_age: timedelta
    allowed_tenant_ids: frozenset[str] | None = None
    access_token: str | None = None


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _fail(message: str, reason: str) -> SsoError:
    return SsoError(message, reason=reason)


def _segments(token: str) -> tuple[str, str, str]:
    # (1)
    if not isinstance(token, str) or not token or len(token) > MAX_ID_TOKEN_CHARS:
        raise _fail("the ID token is missing or too large", "malformed")
    parts = token.split(".")
    if len(parts) != 3 or not all(set(p) <= _B64URL for p in parts):
        raise _fail("the ID token is not a compact JWS", "malformed")
    header, payload, signature = parts
    if not header or not payload:
        raise _fail("the ID token is not a compact JWS", "malformed")
    return header, payload, signature


def _b64json(segment: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _compatible(alg: str, pk: PublishedKey) -> bool:
    if pk.alg is not None and pk.alg != alg:
        return False
    key = pk.key
    if alg.startswith(("RS", "PS")):
        return isinstance(key, RSAKey)
    if alg in _EC_CURVES:
        return isinstance(key, ECKey) and key.curve_name == _EC_CURVES[alg]
    if alg == "EdDSA":
        return isinstance(key, OKPKey) and key.curve_name in {"Ed25519", "Ed448"}
    if alg == "Ed25519":
        return isinstance(key, OKPKey) and key.curve_name == "Ed25519"
    return False


def _select_key(header: Mapping[str, Any], alg: str, keys: tuple[PublishedKey, ...]) -> SigningKey:
    # (3)
    kid = header.get("kid")
    if kid is not None:
        if not isinstance(kid, str):
            raise _fail("the ID token's key id is malformed", "malformed")
        named = [pk for pk in keys if pk.kid == kid]
        if not named:
            raise UnknownKeyError
        matching = [pk for pk in named if _compatible(alg, pk)]
    else:
        matching = [pk for pk in keys if _compatible(alg, pk)]
    if len(matching) != 1:
        raise _fail("no single provider key fits the ID token", "signature")
    return matching[0].key


def _verify_signature(token: str, alg: str, key: SigningKey) -> None:
    # (4)
    registry = jws.JWSRegistry(algorithms=[alg], strict_check_header=False)
    try:
        jws.deserialize_compact(token, key, algorithms=[alg], registry=registry)
    except (JoseError, ValueError, TypeError):
        raise _fail("the ID token's signature does not verify", "signature") from None


def _number(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"the ID token's {name} claim is missing or not a number", "malformed")
    return float(value)


def _check_issuer(claims: Mapping[str, Any], exp: Expected) -> None:
    # (6)
    iss = claims.get("iss")
    expected = exp.issuer
    if exp.allowed_tenant_ids is not None:
        tid = claims.get("tid")
        if not isinstance(tid, str) or not GUID.match(tid) or tid not in exp.allowed_tenant_ids:
            raise _fail("the ID token's directory is not allowed", "tenant-not-allowed")
        expected = exp.issuer.replace(TENANT_PLACEHOLDER, tid)
    if not isinstance(iss, str) or iss != expected:
        raise _fail("the ID token's issuer is not the pinned one", "issuer")


def _check_audience(claims: Mapping[str, Any], client_id: str) -> None:
    # (7)
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise _fail("the ID token's audience is malformed", "audience")
    if client_id not in audiences:
        raise _fail("the ID token is not for this client", "audience")
    azp = claims.get("azp")
    if len(audiences) > 1 and azp is None:
        raise _fail("the ID token has several audiences and no azp", "audience")
    if azp is not None and azp != client_id:
        raise _fail("the ID token was issued to another party", "audience")


def _check_times(claims: Mapping[str, Any], exp: Expected) -> None:
    # (8)
    now = exp.now.timestamp()
    skew = exp.skew.total_seconds()
    expires = _number(claims, "exp", required=True)
    issued = _number(claims, "iat", required=True)
    not_before = _number(claims, "nbf", required=False)
    assert expires is not None  # noqa: S101 - required=True never returns None
    assert issued is not None  # noqa: S101 - required=True never returns None
    if now >= expires + skew:
        raise _fail("the ID token has expired", "expired")
    if issued > now + skew or (not_before is not None and not_before > now + skew):
        raise _fail("the ID token is not yet valid", "not-yet-valid")
    if issued < now - exp.max_age.total_seconds() - skew:
        raise _fail("the ID token is too old", "expired")


def _check_nonce(claims: Mapping[str, Any], nonce: str) -> None:
    # (9)
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(_bytes(got), _bytes(nonce)):
        raise _fail("the ID token's nonce is not this login's", "nonce")


def at_hash(access_token: str, alg: str) -> str:
    """The left half of the access token's hash, base64url (OIDC Core §3.1.3.6)."""
    digest = hashlib.sha512 if alg in {"EdDSA", "Ed25519"} else _HASHES[alg[-3:]]
    full = digest(access_token.encode("ascii", "strict")).digest()
    return base64.urlsafe_b64encode(full[: len(full) // 2]).rstrip(b"=").decode("ascii")


def _check_at_hash(claims: Mapping[str, Any], alg: str, access_token: str | None) -> None:
    # (10)
    got = claims.get("at_hash")
    if got is None:
        return
    if not isinstance(got, str) or access_token is None:
        raise _fail("the ID token's at_hash cannot be checked", "at-hash")
    try:
        want = at_hash(access_token, alg)
    except (UnicodeEncodeError, KeyError):
        raise _fail("the access token is malformed", "malformed") from None
    if not hmac.compare_digest(_bytes(got), _bytes(want)):
        raise _fail("the ID token's at_hash does not match the access token", "at-hash")


def verify_id_token(
    token: str, keys: tuple[PublishedKey, ...], expected: Expected
) -> dict[str, Any]:
    """Steps (1)-(10) of the module docstring; the verified claims."""
    # (1)
    header_b64, payload_b64, signature = _segments(token)
    header = _b64json(header_b64)
    if not isinstance(header, dict) or "crit" in header or "b64" in header:
        raise _fail("the ID token's header is malformed", "malformed")
    # (2)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in expected.algorithms:
        raise _fail("the ID token's algorithm is not allowed", "weak-algorithm")
    if not signature:
        raise _fail("the ID token is not signed", "signature")
    # (3)
    key = _select_key(header, alg, keys)
    # (4)
    _verify_signature(token, alg, key)
    # (5)
    claims = _b64json(payload_b64)
    if not isinstance(claims, dict):
        raise _fail("the ID token's claims are not an object", "malformed")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise _fail("the ID token's subject is missing or malformed", "malformed")
    # (6)
    _check_issuer(claims, expected)
    # (7)
    _check_audience(claims, expected.client_id)
    # (8)
    _check_times(claims, expected)
    # (9)
    _check_nonce(claims, expected.nonce)
    # (10)
    _check_at_hash(claims, alg, expected.access_token)
    return claims
