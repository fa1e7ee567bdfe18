"""The operator realm: operators, their roles and their API keys.

Operators are the people running an installation (SRE, support). They are
not principals of any tenant: their rows carry no tenant id, their keys have
their own format ``cvop1.<key id>.<secret>`` (a tenant's ``cv1.`` key is
malformed here, and an operator key is malformed for tenant routes), and
their roles are their own (:class:`OperatorRole`). Secrets are 256 random
bits stored as SHA-256(salt ‖ secret), compared in constant time (ADR 3).

Operators and keys are created from the server's CLI (the installation
admin), never through the API. The row functions here are building blocks:
the CLI changes the realm only through :mod:`callvault.operators._admin`,
which records each change in the installation audit log (docs/adr/0017).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callvault.crypto.encoding import secret_from_text, secret_to_text
from callvault.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError
from callvault.operators import _ids
from callvault.store.ids import ID_PATTERN
from callvault.store.models import Operator as OperatorRow
from callvault.store.models import OperatorKey, utcnow

log = logging.getLogger(__name__)

TOKEN_PREFIX = "cvop1"  # noqa: S105 - a format tag, not a secret
_ID = ID_PATTERN.strip("^$")
_TOKEN_RE = re.compile(rf"^{TOKEN_PREFIX}\.({_ID})\.([A-Za-z0-9_-]{{43}})$")
_SECRET_BYTES = 32
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
#: Longest lifetime of an operator key: operators rotate more often than services.
MAX_KEY_TTL = timedelta(days=90)


class OperatorRole(StrEnum):
    #: Metadata only: tenants, deployments, agents, call lists (ids, times, status, counts).
    SUPPORT_READONLY = "support_readonly"
    #: Metadata, and may ask a tenant for break-glass access to one deployment.
    SUPPORT_ENGINEER = "support_engineer"


@dataclass(frozen=True, slots=True)
class Operator:
    """An authenticated operator (what a request acts as)."""

    id: str
    role: OperatorRole
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class OperatorInfo:
    id: str
    name: str
    role: OperatorRole
    active: bool
    created_at: datetime
    live_keys: int


@dataclass(frozen=True, slots=True)
class IssuedOperatorKey:
    """A new operator key. ``token`` is shown once and never stored."""

    id: str
    operator_id: str
    token: str
    expires_at: datetime


def _hash(salt: bytes, secret: bytes) -> bytes:
    return hashlib.sha256(salt + secret).digest()


def create_operator(
    session: Session, *, name: str, role: OperatorRole, created_by: str
) -> OperatorRow:
    """A new operator. ``name`` is a handle (lowercase letters, digits, ``._-``), unique."""
    if not _NAME_RE.match(name):
        raise InvalidInputError(
            "operator name must be 1-64 of a-z 0-9 . _ - (starting with a letter or digit)",
            field="name",
        )
    row = OperatorRow(
        id=_ids.new_id(_ids.OPERATOR),
        name=name,
        role=role.value,
        active=True,
        created_at=utcnow(),
        created_by=created_by[:200],
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError("an operator with this name already exists", field="name") from None
    return row


def _operator(session: Session, operator_id: str) -> OperatorRow:
    row = session.get(OperatorRow, operator_id)
    if row is None:
        raise NotFoundError("operator not found", field="operator_id")
    return row


def list_operators(session: Session) -> list[OperatorInfo]:
    now = utcnow()
    out = []
    for row in session.execute(select(OperatorRow).order_by(OperatorRow.created_at)).scalars():
        keys = session.execute(
            select(OperatorKey).where(OperatorKey.operator_id == row.id)
        ).scalars()
        live = sum(1 for k in keys if k.revoked_at is None and k.expires_at > now)
        out.append(
            OperatorInfo(
                id=row.id,
                name=row.name,
                role=OperatorRole(row.role),
                active=row.active,
                created_at=row.created_at,
                live_keys=live,
            )
        )
    return out


def issue_operator_key(
    session: Session, operator_id: str, *, label: str, ttl: timedelta
) -> IssuedOperatorKey:
    if not timedelta(0) < ttl <= MAX_KEY_TTL:
        raise InvalidInputError("operator key lifetime must be 1 to 90 days", field="ttl")
    if not _operator(session, operator_id).active:
        raise ConflictError("the operator is deactivated", field="operator_id")
    secret = secrets.token_bytes(_SECRET_BYTES)
    salt = secrets.token_bytes(16)
    now = utcnow()
    row = OperatorKey(
        id=_ids.new_id(_ids.OPERATOR_KEY),
        operator_id=operator_id,
        label=label[:200],
        salt=salt,
        secret_hash=_hash(salt, secret),
        created_at=now,
        expires_at=now + ttl,
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    encoded = secret_to_text(secret)
    return IssuedOperatorKey(
        id=row.id,
        operator_id=operator_id,
        token=f"{TOKEN_PREFIX}.{row.id}.{encoded}",
        expires_at=row.expires_at,
    )


def revoke_operator_key(session: Session, key_id: str) -> OperatorKey:
    row = session.get(OperatorKey, key_id)
    if row is None:
        raise NotFoundError("operator key not found", field="key_id")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


def deactivate_operator(session: Session, operator_id: str) -> list[str]:
    """Mark the operator inactive and revoke every live key; return the revoked key ids."""
    row = _operator(session, operator_id)
    row.active = False
    now = utcnow()
    revoked = []
    keys = session.execute(select(OperatorKey).where(OperatorKey.operator_id == operator_id))
    for key in keys.scalars():
        if key.revoked_at is None:
            key.revoked_at = now
            revoked.append(key.id)
    session.flush()
    return sorted(revoked)


def set_operator_role(session: Session, operator_id: str, role: OperatorRole) -> str:
    """Give the operator ``role`` (effective on its next request); return the role it had."""
    row = _operator(session, operator_id)
    before = row.role
    row.role = role.value
    session.flush()
    return before


def activate_operator(session: Session, operator_id: str) -> bool:
    """Mark a deactivated operator active again; return whether it was inactive.

    Keys revoked when it was deactivated stay revoked: it needs a new key.
    """
    row = _operator(session, operator_id)
    was_inactive = not row.active
    row.active = True
    session.flush()
    return was_inactive


def parse_operator_token(token: str) -> tuple[str, bytes]:
    """``(key id, secret)`` of an operator token; :class:`AuthenticationError` if malformed."""
    m = _TOKEN_RE.match(token)
    if m is None:
        raise AuthenticationError("malformed operator key")
    secret = secret_from_text(m.group(2))
    if secret is None:  # not the canonical text of a secret (crypto/encoding.py)
        raise AuthenticationError("malformed operator key")
    return m.group(1), secret


class OperatorAuthError(AuthenticationError):
    """A well-formed operator key that does not authenticate (the same 401 to the caller).

    ``reason`` is a stable code for the installation log (:data:`AUTH_FAILURE_REASONS`);
    ``key_id`` and ``operator_id`` are ids, never the token or its secret.
    """

    def __init__(self, reason: str, *, key_id: str, operator_id: str | None = None) -> None:
        super().__init__("invalid operator key")
        self.reason = reason
        self.key_id = key_id
        self.operator_id = operator_id


#: Why an operator key was refused, as :class:`OperatorAuthError` says it.
AUTH_FAILURE_REASONS = (
    "unknown-key",
    "bad-secret",
    "revoked-key",
    "expired-key",
    "operator-disabled",
    "unknown-role",
)


def authenticate_operator(session: Session, token: str) -> Operator:
    """The operator a bearer token stands for, or :class:`AuthenticationError`.

    (1) Parse (operator format only). (2) Look up the key and its operator by
    key id. (3) Compare the salted hash in constant time. (4) Refuse revoked
    or expired keys and deactivated operators. Every failure says the same to
    the caller; after step 1 it is an :class:`OperatorAuthError` whose reason
    code and ids the caller MUST record (``operators.sign_in`` puts them in the
    installation log). The token is never logged.
    """
    # (1)
    key_id, secret = parse_operator_token(token)
    # (2)
    row = session.execute(
        select(OperatorKey, OperatorRow)
        .join(OperatorRow, OperatorRow.id == OperatorKey.operator_id)
        .where(OperatorKey.id == key_id)
    ).one_or_none()
    if row is None:
        raise _refused("unknown-key", key_id)
    key, operator = row
    # (3)
    if not hmac.compare_digest(key.secret_hash, _hash(key.salt, secret)):
        raise _refused("bad-secret", key_id, operator.id)
    # (4)
    role = _ROLES.get(operator.role)  # an unknown role (a newer schema?) is no role: refuse
    if not operator.active:  # first: deactivating also revokes every key
        raise _refused("operator-disabled", key_id, operator.id)
    if key.revoked_at is not None:
        raise _refused("revoked-key", key_id, operator.id)
    if key.expires_at <= utcnow():
        raise _refused("expired-key", key_id, operator.id)
    if not role:
        raise _refused("unknown-role", key_id, operator.id)
    return Operator(id=operator.id, role=role, key_id=key.id)


def _refused(reason: str, key_id: str, operator_id: str | None = None) -> OperatorAuthError:
    log.warning("operator authentication failed", extra={"key_id": key_id, "reason": reason})
    return OperatorAuthError(reason, key_id=key_id, operator_id=operator_id)


_ROLES = {r.value: r for r in OperatorRole}
