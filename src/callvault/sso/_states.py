"""Pending logins: kept server-side, sealed, short-lived, single use, bound to one browser.

Starting a login (:meth:`LoginStates.create`):

1. Prune the connection's expired rows. When ``max_pending`` rows are still
   live (used ones stay until they expire, to tell a reused cookie from an
   unknown one), delete the oldest to make room (a flood of login
   starts cannot grow the table without bound, and cannot lock real users
   out either: an attacker must now start ``max_pending`` logins within one
   user's round trip to the IdP to push that user's out, where refusing new
   starts needed only ``max_pending`` per state lifetime). Evictions are
   logged (connection id and count, at most once a minute per connection).
2. Draw a 256-bit random *binding* value for the browser's cookie; the row
   keeps only SHA-256 of it.
3. Seal what the adapter asked to keep (SAML request id; OIDC state, nonce,
   PKCE verifier) under the connection's login-state key, bound to tenant,
   connection and state id, and write the row with its expiry.

Finishing (:meth:`LoginStates.consume`):

1. The cookie's value MUST be present and well-formed (else ``state-missing``).
2. Its hash MUST name a row of this tenant *and this connection* (else
   ``state-unknown``): a cookie from another connection or tenant finds nothing.
3. The row MUST be unexpired (``state-expired``) and unused (``state-used``);
   it is marked used by a conditional UPDATE, so of two requests racing with
   the same cookie exactly one gets it.
4. The pending values are opened and returned.

The SAML ``InResponseTo`` (and the OIDC ``state``) is thereby bound to the
browser that started the login: the adapter compares the IdP's answer with
the pending values only this browser's cookie unlocks. The caller MUST
commit the consumption even if the login then fails (single use).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import rfc8785
from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import Session

from callvault.crypto import SealContext, Sealer
from callvault.errors import DecryptionError, SsoError
from callvault.store.ids import new_id
from callvault.store.models import SsoLoginState

log = logging.getLogger("callvault.sso")

OWNER_KIND: Final = "sso-login-state"
_PURPOSE: Final = "sso-login-state"
_BINDING_BYTES: Final = 32
_BINDING_RE: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True, slots=True)
class StartedState:
    id: str
    #: The value for the browser's state cookie (shown once, never stored).
    binding: str
    expires_at: datetime


def _hash(binding: str) -> bytes:
    return hashlib.sha256(binding.encode("ascii")).digest()


def _state_id() -> str:
    return new_id("sls")


def _context(tenant_id: str, connection_id: str, state_id: str) -> SealContext:
    return SealContext(
        tenant_id=tenant_id,
        purpose=_PURPOSE,
        object_id=state_id,
        owner_kind=OWNER_KIND,
        owner_id=connection_id,
    )


_EVICTION_LOG_EVERY: Final = timedelta(minutes=1)
_last_eviction_log: dict[str, datetime] = {}
_eviction_log_lock = threading.Lock()


def _note_eviction(connection_id: str, count: int, now: datetime) -> None:
    with _eviction_log_lock:
        last = _last_eviction_log.get(connection_id)
        if last is not None and now - last < _EVICTION_LOG_EVERY:
            return
        if len(_last_eviction_log) > 10_000:  # bounded: forget the oldest notes
            _last_eviction_log.clear()
        _last_eviction_log[connection_id] = now
    log.warning(
        "sso: pending logins at the limit, oldest evicted: connection=%s evicted=%d",
        connection_id,
        count,
    )


class LoginStates:
    def __init__(self, sealer: Sealer, *, ttl: timedelta, max_pending: int) -> None:
        self._sealer = sealer
        self._ttl = ttl
        self._max = max_pending

    def create(
        self,
        s: Session,
        tenant_id: str,
        connection_id: str,
        pending: dict[str, str],
        *,
        now: datetime,
    ) -> StartedState:
        # (1)
        mine = (SsoLoginState.tenant_id == tenant_id, SsoLoginState.connection_id == connection_id)
        s.execute(delete(SsoLoginState).where(*mine, SsoLoginState.expires_at <= now))
        live = int(
            s.execute(select(func.count()).select_from(SsoLoginState).where(*mine)).scalar_one()
        )
        if live >= self._max:
            oldest = select(SsoLoginState.id).where(*mine)
            oldest = oldest.order_by(SsoLoginState.created_at, SsoLoginState.id)
            evict = list(s.execute(oldest.limit(live - self._max + 1)).scalars())
            s.execute(delete(SsoLoginState).where(*mine, SsoLoginState.id.in_(evict)))
            _note_eviction(connection_id, len(evict), now)
        # (2)
        binding = base64.urlsafe_b64encode(secrets.token_bytes(_BINDING_BYTES)).decode()
        binding = binding.rstrip("=")
        # (3)
        state_id = _state_id()
        sealed = self._sealer.seal(
            s, rfc8785.dumps(dict(pending)), _context(tenant_id, connection_id, state_id)
        )
        expires = now + self._ttl
        s.add(
            SsoLoginState(
                id=state_id,
                tenant_id=tenant_id,
                connection_id=connection_id,
                binding_hash=_hash(binding),
                pending_sealed=sealed,
                created_at=now,
                expires_at=expires,
                used_at=None,
            )
        )
        s.flush()
        return StartedState(id=state_id, binding=binding, expires_at=expires)

    def consume(
        self, s: Session, tenant_id: str, connection_id: str, binding: str | None, *, now: datetime
    ) -> dict[str, str]:
        """The pending values of this browser's login (see the module docstring), or SsoError."""
        # (1)
        if binding is None or not _BINDING_RE.match(binding):
            raise SsoError("no login in progress in this browser", reason="state-missing")
        try:
            base64.urlsafe_b64decode(binding + "=")
        except (binascii.Error, ValueError):  # pragma: no cover - the pattern admits base64url only
            raise SsoError("no login in progress in this browser", reason="state-missing") from None
        # (2)
        row = s.execute(
            select(SsoLoginState).where(
                SsoLoginState.tenant_id == tenant_id,
                SsoLoginState.connection_id == connection_id,
                SsoLoginState.binding_hash == _hash(binding),
            )
        ).scalar_one_or_none()
        if row is None:
            raise SsoError("the login state is unknown", reason="state-unknown")
        # (3)
        if row.used_at is not None:
            raise SsoError("the login state was already used", reason="state-used")
        if row.expires_at <= now:
            raise SsoError("the login took too long", reason="state-expired")
        result: CursorResult[Any] = s.execute(  # type: ignore[assignment]
            update(SsoLoginState)
            .where(SsoLoginState.id == row.id, SsoLoginState.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise SsoError("the login state was already used", reason="state-used")
        # (4)
        try:
            doc = json.loads(
                self._sealer.open(s, row.pending_sealed, _context(tenant_id, connection_id, row.id))
            )
        except DecryptionError:
            raise SsoError("the login state does not open", reason="state-unknown") from None
        if not isinstance(doc, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in doc.items()
        ):  # pragma: no cover - only create() seals these
            raise SsoError("the login state is malformed", reason="state-unknown")
        return doc
