"""Principals, role bindings and API keys.

API keys are ``cv1.<tenant id>.<key id>.<secret>`` where the secret is 256
random bits (base64url). Only SHA-256(salt ‖ secret) and the 16-byte salt are
stored. A slow password hash would add nothing against a 256-bit secret and
would cap throughput (see docs/adr/0003-api-key-hashing.md). The tenant id in
the token lets the lookup run inside that tenant's row-level-security wall.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callvault.access._model import Binding, Principal
from callvault.access.roles import Role, ScopeKind
from callvault.crypto.encoding import secret_from_text, secret_to_text
from callvault.errors import AuthenticationError, ConflictError, NotFoundError
from callvault.store import new_id
from callvault.store.ids import ID_PATTERN
from callvault.store.models import ApiKey, RoleBinding, utcnow
from callvault.store.models import Principal as PrincipalRow
from callvault.store.prepared import Prepared, Reader, connection_of

TOKEN_PREFIX = "cv1"  # noqa: S105 - a format tag, not a secret
_ID = ID_PATTERN.strip("^$")
_TOKEN_RE = re.compile(rf"^{TOKEN_PREFIX}\.({_ID})\.({_ID})\.([A-Za-z0-9_-]{{43}})$")
_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new API key. ``token`` is shown once and never stored."""

    id: str
    principal_id: str
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenParts:
    tenant_id: str
    key_id: str
    secret: bytes


def parse_token(token: str) -> TokenParts:
    """Split a bearer token; raise :class:`AuthenticationError` if malformed."""
    m = _TOKEN_RE.match(token)
    if m is None:
        raise AuthenticationError("malformed API key")
    secret = secret_from_text(m.group(3))
    if secret is None:  # not the canonical text of a secret (crypto/encoding.py)
        raise AuthenticationError("malformed API key")
    return TokenParts(tenant_id=m.group(1), key_id=m.group(2), secret=secret)


def _hash(salt: bytes, secret: bytes) -> bytes:
    return hashlib.sha256(salt + secret).digest()


def create_principal(session: Session, tenant_id: str, *, kind: str, name: str) -> PrincipalRow:
    row = PrincipalRow(
        id=new_id("prn"),
        tenant_id=tenant_id,
        kind=kind,
        name=name,
        active=True,
        created_at=utcnow(),
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError("a principal with this name already exists", field="name") from None
    return row


def get_principal(session: Session, tenant_id: str, principal_id: str) -> PrincipalRow:
    row = session.execute(
        select(PrincipalRow).where(
            PrincipalRow.tenant_id == tenant_id, PrincipalRow.id == principal_id
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError("principal not found", field="principal_id")
    return row


def list_principals(session: Session, tenant_id: str) -> list[PrincipalRow]:
    return list(
        session.execute(
            select(PrincipalRow)
            .where(PrincipalRow.tenant_id == tenant_id)
            .order_by(PrincipalRow.created_at)
        ).scalars()
    )


def bind_role(
    session: Session,
    tenant_id: str,
    principal_id: str,
    role: Role,
    scope_kind: ScopeKind,
    scope_id: str,
    *,
    created_by: str,
) -> RoleBinding:
    row = RoleBinding(
        id=new_id("rb"),
        tenant_id=tenant_id,
        principal_id=principal_id,
        role=role.value,
        scope_kind=scope_kind.value,
        scope_id=scope_id,
        created_at=utcnow(),
        created_by=created_by,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError("this role binding already exists") from None
    return row


def list_bindings(session: Session, tenant_id: str, principal_id: str) -> list[RoleBinding]:
    return list(
        session.execute(
            select(RoleBinding).where(
                RoleBinding.tenant_id == tenant_id, RoleBinding.principal_id == principal_id
            )
        ).scalars()
    )


def issue_key(
    session: Session,
    tenant_id: str,
    principal_id: str,
    *,
    label: str,
    ttl: timedelta,
) -> IssuedKey:
    secret = secrets.token_bytes(_SECRET_BYTES)
    salt = secrets.token_bytes(16)
    now = utcnow()
    row = ApiKey(
        id=new_id("key"),
        tenant_id=tenant_id,
        principal_id=principal_id,
        label=label,
        salt=salt,
        secret_hash=_hash(salt, secret),
        created_at=now,
        expires_at=now + ttl,
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    encoded = secret_to_text(secret)
    token = f"{TOKEN_PREFIX}.{tenant_id}.{row.id}.{encoded}"
    return IssuedKey(id=row.id, principal_id=principal_id, token=token, expires_at=row.expires_at)


def revoke_key(session: Session, tenant_id: str, key_id: str) -> ApiKey:
    row = session.execute(
        select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id)
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError("API key not found", field="key_id")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


@dataclass(frozen=True, slots=True)
class Revocation:
    """What deactivating a principal ended: its API keys (ids) and browser sessions (a count)."""

    keys: tuple[str, ...] = ()
    sessions: int = 0


def set_active(session: Session, tenant_id: str, principal_id: str, *, active: bool) -> list[str]:
    """Activate or deactivate a principal; return the ids of the API keys revoked.

    Deactivating (1) marks the principal inactive, which :func:`authenticate`,
    :func:`load_principal` and the Cedar ``inactive`` forbid all refuse, and
    (2) revokes every API key of it not yet revoked and ends every browser
    session of it (``callvault.sessions``), in the caller's transaction: once
    it commits, no request authenticates as the principal.
    Activating again revokes nothing and restores no key: the principal needs
    new keys. Raises :class:`NotFoundError` for a principal not in the tenant.
    :func:`set_active_counted` does the same and also counts the sessions ended.
    """
    return list(set_active_counted(session, tenant_id, principal_id, active=active).keys)


def set_active_counted(
    session: Session, tenant_id: str, principal_id: str, *, active: bool, by: str | None = None
) -> Revocation:
    """:func:`set_active`, returning the key ids (sorted) and how many sessions ended;
    ``by`` (the acting principal) is kept on the ended session rows."""
    row = get_principal(session, tenant_id, principal_id)
    # (1)
    row.active = active
    session.flush()
    if active:
        return Revocation()
    # (2)
    revoked = list(
        session.execute(
            update(ApiKey)
            .where(
                ApiKey.tenant_id == tenant_id,
                ApiKey.principal_id == principal_id,
                ApiKey.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
            .returning(ApiKey.id)
            .execution_options(synchronize_session=False)
        ).scalars()
    )
    # Imported here: callvault.sessions builds on this package.
    from callvault.sessions import revoke_principal_sessions  # noqa: PLC0415 - import cycle

    ended = revoke_principal_sessions(
        session,
        tenant_id=tenant_id,
        principal_id=principal_id,
        reason="principal-deactivated",
        by=by,
    )
    return Revocation(keys=tuple(sorted(revoked)), sessions=ended)


# Built once and run precompiled on the driver (store/prepared.py): the hot
# path of every request.
_AUTHENTICATE = Prepared(
    select(
        ApiKey.salt,
        ApiKey.secret_hash,
        ApiKey.expires_at,
        ApiKey.revoked_at,
        PrincipalRow.id,
        PrincipalRow.kind,
        PrincipalRow.active,
        RoleBinding.role,
        RoleBinding.scope_kind,
        RoleBinding.scope_id,
    )
    .join(PrincipalRow, PrincipalRow.id == ApiKey.principal_id)
    .outerjoin(
        RoleBinding,
        (RoleBinding.principal_id == PrincipalRow.id)
        & (RoleBinding.tenant_id == bindparam("tenant")),
    )
    .where(ApiKey.tenant_id == bindparam("tenant"), ApiKey.id == bindparam("key")),
    name="authenticate",
)


def authenticate(db: Reader, parts: TokenParts) -> Principal:
    """Resolve a parsed token to its principal with bindings, or raise.

    (1) Look up the key, its principal and the principal's role bindings, by
    key id within the token's tenant (one query). (2) Compare the salted hash
    in constant time. (3) Refuse revoked or expired keys and keys of a
    deactivated principal. Every failure raises the same message.
    """
    # (1)
    params = {"tenant": parts.tenant_id, "key": parts.key_id}
    rows = _AUTHENTICATE.rows(connection_of(db), params)
    if not rows:
        raise AuthenticationError("invalid API key")
    salt, secret_hash, expires_at, revoked_at, principal_id, kind, active = rows[0][:7]
    # (2)
    if not hmac.compare_digest(secret_hash, _hash(salt, parts.secret)):
        raise AuthenticationError("invalid API key")
    # (3)
    if revoked_at is not None or expires_at <= utcnow() or not active:
        raise AuthenticationError("invalid API key")
    bindings = frozenset(
        Binding(Role(r.role), ScopeKind(r.scope_kind), r.scope_id) for r in rows if r.role
    )
    return Principal(
        id=principal_id,
        tenant_id=parts.tenant_id,
        kind=kind,
        active=active,
        bindings=bindings,
        key_id=parts.key_id,
    )


_LOAD_PRINCIPAL = Prepared(
    select(
        PrincipalRow.kind,
        PrincipalRow.active,
        RoleBinding.role,
        RoleBinding.scope_kind,
        RoleBinding.scope_id,
    )
    .outerjoin(
        RoleBinding,
        (RoleBinding.principal_id == PrincipalRow.id)
        & (RoleBinding.tenant_id == bindparam("tenant")),
    )
    .where(PrincipalRow.tenant_id == bindparam("tenant"), PrincipalRow.id == bindparam("id")),
    name="load_principal",
)


def load_principal(db: Reader, tenant_id: str, principal_id: str) -> Principal:
    """A principal as it is now (bindings included), for a credential that names it
    (a signed playback URL); an unknown or deactivated one raises AuthenticationError."""
    rows = _LOAD_PRINCIPAL.rows(connection_of(db), {"tenant": tenant_id, "id": principal_id})
    if not rows or not rows[0].active:
        raise AuthenticationError("invalid or expired credential")
    bindings = frozenset(
        Binding(Role(r.role), ScopeKind(r.scope_kind), r.scope_id) for r in rows if r.role
    )
    return Principal(
        id=principal_id,
        tenant_id=tenant_id,
        kind=rows[0].kind,
        active=True,
        bindings=bindings,
        key_id=None,
    )
