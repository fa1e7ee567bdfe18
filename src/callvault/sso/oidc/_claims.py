"""From verified ID token claims to an :class:`SsoIdentity` (pure; profile rules applied).

:func:`identity_from_claims` runs after :func:`~callvault.sso.oidc._tokens.verify_id_token`:

1. Profile ``google``: ``hd`` MUST equal the configured hosted domain
   (``hosted-domain``) and ``email_verified`` MUST be true
   (``email-unverified``): a consumer Google account or an unverified
   address never logs in to a Workspace connection.
2. The e-mail is kept only when ``email_verified`` is true (JSON ``true``, or
   the string ``"true"`` some providers send); otherwise it is dropped, so
   the core never links or provisions by an address the IdP did not verify
   (Entra's v2 tokens carry no ``email_verified``: their e-mail is dropped).
3. Display name, groups and kept claims are read from the configured claim
   names, bounded in count and size; a value of the wrong type is malformed.
   Only an explicitly configured claim is read (Entra's group "overage"
   indirection is not followed: the groups are then empty, and the role
   mapping's default applies).
4. ``auth_time`` becomes ``authenticated_at``, ``sid`` becomes ``idp_session``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from callvault.errors import SsoError
from callvault.sso._identity import SsoIdentity
from callvault.sso.oidc._config import OidcConfig

MAX_GROUPS: Final = 1000
MAX_VALUE_CHARS: Final = 1024


def _verified(claims: Mapping[str, Any]) -> bool:
    value = claims.get("email_verified")
    return value is True or value == "true"


def _text(claims: Mapping[str, Any], name: str | None) -> str | None:
    if name is None:
        return None
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
        raise SsoError("a configured claim is not a string", reason="malformed")
    return value or None


def _values(claims: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = claims.get(name)
    if value is None:
        return ()
    items = [value] if isinstance(value, str | int | float | bool) else value
    if not isinstance(items, list) or len(items) > MAX_GROUPS:
        raise SsoError("a configured claim is not a list of values", reason="malformed")
    out: list[str] = []
    for item in items:
        if isinstance(item, bool):
            text = "true" if item else "false"
        elif isinstance(item, str | int | float):
            text = str(item)
        else:
            raise SsoError("a configured claim holds a non-scalar value", reason="malformed")
        if len(text) > MAX_VALUE_CHARS:
            raise SsoError("a configured claim's value is too long", reason="malformed")
        out.append(text)
    return tuple(dict.fromkeys(out))


def _auth_time(claims: Mapping[str, Any]) -> datetime | None:
    value = claims.get("auth_time")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SsoError("the ID token's auth_time is not a number", reason="malformed")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise SsoError("the ID token's auth_time is out of range", reason="malformed") from None


def identity_from_claims(
    claims: Mapping[str, Any], cfg: OidcConfig, *, tenant_id: str, connection_id: str
) -> SsoIdentity:
    """Steps (1)-(4) of the module docstring."""
    verified = _verified(claims)
    # (1)
    if cfg.profile == "google":
        hd = claims.get("hd")
        if not isinstance(hd, str) or hd.lower() != cfg.hosted_domain:
            raise SsoError(
                "the account is not in the connection's hosted domain", reason="hosted-domain"
            )
        if not verified:
            raise SsoError("the account's e-mail is not verified", reason="email-unverified")
    # (2)
    email = _text(claims, cfg.email_claim)
    if not verified:
        email = None
    # (3)
    groups = _values(claims, cfg.groups_claim) if cfg.groups_claim else ()
    kept = {name: _values(claims, name) for name in cfg.keep_claims if name in claims}
    sid = claims.get("sid")
    if sid is not None and (not isinstance(sid, str) or len(sid) > MAX_VALUE_CHARS):
        raise SsoError("the ID token's sid is malformed", reason="malformed")
    # (4)
    return SsoIdentity(
        protocol="oidc",
        tenant_id=tenant_id,
        connection_id=connection_id,
        subject=str(claims["sub"]),
        email=email,
        email_verified=email is not None,
        display_name=_text(claims, cfg.name_claim),
        groups=groups,
        authenticated_at=_auth_time(claims),
        idp_session=sid or None,
        attributes=kept,
    )
