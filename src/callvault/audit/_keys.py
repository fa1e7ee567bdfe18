"""Each tenant log's keys: the Ed25519 checkpoint signer and the HMAC key for secrets.

One random 64-byte secret per tenant (32-byte Ed25519 seed ‖ 32-byte HMAC
key), sealed under the tenant's key hierarchy (so it is as strong as, and
shredded with, the tenant's own keys) and made on first use. The public half
and the origin are stored in the clear: they are what customers pin.

``secret_ref`` turns a secret (an API key, a token) into
``hmac-sha256:<hex>`` under the tenant's key, so an entry can say *which*
secret was used, and be matched against a known one, without revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from callvault.audit.note import Signer, Verifier
from callvault.crypto import SealContext, Sealer
from callvault.crypto.hazmat import Ed25519SigningKey
from callvault.errors import AuditUnavailableError
from callvault.store import Database
from callvault.store.db import insert_for
from callvault.store.models import AuditLogKey, utcnow

PURPOSE = "audit-log-key"
_SECRET_BYTES = 64


@dataclass(frozen=True, slots=True)
class TenantLogKey:
    origin: str
    signer: Signer
    hmac_key: bytes

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier()

    def secret_ref(self, secret: str | bytes) -> str:
        raw = secret.encode() if isinstance(secret, str) else secret
        return "hmac-sha256:" + hmac.new(self.hmac_key, raw, hashlib.sha256).hexdigest()


def _context(tenant_id: str) -> SealContext:
    return SealContext(
        tenant_id=tenant_id,
        purpose=PURPOSE,
        object_id=f"{PURPOSE}:{tenant_id}",
        owner_kind=PURPOSE,
    )


class LogKeys:
    """Loads (or makes) and caches each tenant's :class:`TenantLogKey`."""

    def __init__(self, db: Database, sealer: Sealer, origin_prefix: str) -> None:
        self._db = db
        self._sealer = sealer
        self._prefix = origin_prefix.rstrip("/")
        self._cache: dict[str, TenantLogKey] = {}
        self._lock = threading.Lock()

    def origin_for(self, tenant_id: str) -> str:
        return f"{self._prefix}/{tenant_id}"

    def get(self, tenant_id: str) -> TenantLogKey:
        """The tenant's keys, made (in a transaction of their own) if it has none yet."""
        with self._lock:
            cached = self._cache.get(tenant_id)
        if cached is not None:
            return cached
        try:
            key = self._load_or_create(tenant_id)
        except SQLAlchemyError:
            raise AuditUnavailableError("audit log key is not available") from None
        with self._lock:
            self._cache[tenant_id] = key
        return key

    def public(self, session: Session, tenant_id: str) -> tuple[str, str]:
        """(origin, verifier key string), made first if the tenant has no log key yet."""
        row = session.get(AuditLogKey, tenant_id)
        if row is not None:
            return row.origin, row.verifier_key
        key = self.get(tenant_id)
        return key.origin, key.verifier.key_string()

    def _load_or_create(self, tenant_id: str) -> TenantLogKey:
        for attempt in range(2):
            try:
                with self._db.tenant_tx(tenant_id) as session:
                    row = session.get(AuditLogKey, tenant_id)
                    if row is None:
                        self._create(session, tenant_id)
                        session.flush()
                        row = session.get(AuditLogKey, tenant_id)
                    if row is None:  # pragma: no cover - inserted just above
                        raise AuditUnavailableError("audit log key could not be made")
                    return self._open(session, row)
            except IntegrityError:
                # Another process made it at the same moment: read theirs.
                if attempt:
                    raise
        raise AuditUnavailableError("audit log key could not be made")  # pragma: no cover

    def _create(self, session: Session, tenant_id: str) -> None:
        secret = secrets.token_bytes(_SECRET_BYTES)
        origin = self.origin_for(tenant_id)
        signer = Signer(origin, Ed25519SigningKey.from_seed(secret[:32]))
        sealed = self._sealer.seal(session, secret, _context(tenant_id))
        insert = insert_for(session)
        session.execute(
            insert(AuditLogKey)
            .values(
                tenant_id=tenant_id,
                origin=origin,
                verifier_key=signer.verifier().key_string(),
                secret_sealed=sealed,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )

    def _open(self, session: Session, row: AuditLogKey) -> TenantLogKey:
        secret = self._sealer.open(session, row.secret_sealed, _context(row.tenant_id))
        if len(secret) != _SECRET_BYTES:
            raise AuditUnavailableError("audit log key is malformed")
        signer = Signer(row.origin, Ed25519SigningKey.from_seed(secret[:32]))
        if signer.verifier().key_string() != row.verifier_key:
            raise AuditUnavailableError("audit log key does not match its published half")
        return TenantLogKey(row.origin, signer, secret[32:])
