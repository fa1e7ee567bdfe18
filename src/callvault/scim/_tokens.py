"""SCIM bearer tokens: one or more per tenant, shown once, kept as a salted hash.

A token is ``cvscim1.<tenant id>.<token id>.<secret>`` with a 256-bit random
secret (base64url), hashed like API keys (ADR 3): SHA-256(salt ‖ secret) with
a 16-byte salt, compared in constant time. The tenant id lets authentication
run inside that tenant's row-level-security wall. A SCIM token is not an API
key: it authenticates only on ``/scim/v2/<its tenant>`` and acts as no
principal (audit entries name the token).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.crypto.encoding import secret_from_text, secret_to_text
from callvault.errors import AuthenticationError, NotFoundError
from callvault.store import new_id
from callvault.store.ids import ID_PATTERN
from callvault.store.models import ScimToken, utcnow

TOKEN_PREFIX: Final = "cvscim1"  # noqa: S105 - a format tag, not a secret
_ID = ID_PATTERN.strip("^$")
_TOKEN_RE = re.compile(rf"^{TOKEN_PREFIX}\.({_ID})\.({_ID})\.([A-Za-z0-9_-]{{43}})$")
_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class IssuedScimToken:
    """A new SCIM token. ``token`` is shown once and never stored."""

    id: str
    label: str
    token: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ScimTokenParts:
    tenant_id: str
    token_id: str
    secret: bytes


def parse_scim_token(token: str) -> ScimTokenParts:
    """Split a bearer token; raise :class:`AuthenticationError` if malformed."""
    m = _TOKEN_RE.match(token)
    if m is None:
        raise AuthenticationError("malformed SCIM token")
    secret = secret_from_text(m.group(3))
    if secret is None:  # not the canonical text of a secret (crypto/encoding.py)
        raise AuthenticationError("malformed SCIM token")
    return ScimTokenParts(tenant_id=m.group(1), token_id=m.group(2), secret=secret)


def _hash(salt: bytes, secret: bytes) -> bytes:
    return hashlib.sha256(salt + secret).digest()


def issue_scim_token(
    session: Session, tenant_id: str, *, label: str, ttl: timedelta, created_by: str
) -> IssuedScimToken:
    secret = secrets.token_bytes(_SECRET_BYTES)
    salt = secrets.token_bytes(16)
    now = utcnow()
    row = ScimToken(
        id=new_id("sct"),
        tenant_id=tenant_id,
        label=label,
        salt=salt,
        secret_hash=_hash(salt, secret),
        created_at=now,
        created_by=created_by,
        expires_at=now + ttl,
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    encoded = secret_to_text(secret)
    return IssuedScimToken(
        id=row.id,
        label=label,
        token=f"{TOKEN_PREFIX}.{tenant_id}.{row.id}.{encoded}",
        created_at=now,
        expires_at=row.expires_at,
    )


def list_scim_tokens(session: Session, tenant_id: str) -> list[ScimToken]:
    return list(
        session.execute(
            select(ScimToken)
            .where(ScimToken.tenant_id == tenant_id)
            .order_by(ScimToken.created_at, ScimToken.id)
        ).scalars()
    )


def revoke_scim_token(session: Session, tenant_id: str, token_id: str) -> tuple[ScimToken, bool]:
    """Revoke a token (idempotent); return it and whether this call revoked it."""
    row = session.execute(
        select(ScimToken).where(ScimToken.tenant_id == tenant_id, ScimToken.id == token_id)
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError("SCIM token not found", field="token_id")
    if row.revoked_at is not None:
        return row, False
    row.revoked_at = utcnow()
    session.flush()
    return row, True


def authenticate_scim_token(session: Session, parts: ScimTokenParts) -> str:
    """Return the token's id if it is valid now; else raise :class:`AuthenticationError`.

    (1) Look the token up by id within its tenant. (2) Compare the salted hash
    in constant time. (3) Refuse revoked and expired tokens. Every failure
    raises the same message.
    """
    # (1)
    row = session.execute(
        select(
            ScimToken.salt, ScimToken.secret_hash, ScimToken.expires_at, ScimToken.revoked_at
        ).where(ScimToken.tenant_id == parts.tenant_id, ScimToken.id == parts.token_id)
    ).one_or_none()
    if row is None:
        raise AuthenticationError("invalid SCIM token")
    salt, secret_hash, expires_at, revoked_at = row
    # (2)
    if not hmac.compare_digest(secret_hash, _hash(salt, parts.secret)):
        raise AuthenticationError("invalid SCIM token")
    # (3)
    if revoked_at is not None or expires_at <= utcnow():
        raise AuthenticationError("invalid SCIM token")
    return parts.token_id
