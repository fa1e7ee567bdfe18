"""The SAML replay cache in the database: an assertion id is accepted once per connection.

:meth:`DbReplayGuard.first_use`, in a transaction of its own (committed
before the login goes on, so a concurrent replay in another process sees it):

1. Prune the connection's rows that can no longer matter (``keep_until`` passed).
2. Insert (connection, SHA-256 of the assertion id) with ``keep_until`` =
   NotOnOrAfter + :data:`MAX_CLOCK_SKEW`: an adapter accepts an assertion up
   to its NotOnOrAfter plus its skew allowance (at most 5 minutes), so the
   row MUST outlive that, or a replay just after NotOnOrAfter would pass.
3. The primary key decides: the insert that commits first wins (True); any
   other, in this process or another, hits the key and gets False.

Only the hash of the assertion id is stored (the id is the IdP's value).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from callvault.store import Database
from callvault.store.models import SsoReplay, utcnow

#: The largest clock skew an adapter may allow (SAML connections: at most 300 s).
MAX_CLOCK_SKEW: Final = timedelta(seconds=300)


class DbReplayGuard:
    """:class:`callvault.sso.ReplayGuard` over the tenant's ``sso_replay`` rows."""

    def __init__(
        self, db: Database, tenant_id: str, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._db = db
        self._tenant_id = tenant_id
        self._clock = clock

    def first_use(self, connection_id: str, assertion_id: str, not_on_or_after: datetime) -> bool:
        if not_on_or_after.tzinfo is None:
            not_on_or_after = not_on_or_after.replace(tzinfo=UTC)
        now = self._clock()
        digest = hashlib.sha256(assertion_id.encode("utf-8", "surrogatepass")).digest()
        try:
            with self._db.tenant_tx(self._tenant_id) as s:
                # (1)
                s.execute(
                    delete(SsoReplay).where(
                        SsoReplay.tenant_id == self._tenant_id,
                        SsoReplay.connection_id == connection_id,
                        SsoReplay.keep_until < now,
                    )
                )
                # (2)
                s.add(
                    SsoReplay(
                        connection_id=connection_id,
                        assertion_hash=digest,
                        tenant_id=self._tenant_id,
                        keep_until=max(not_on_or_after, now) + MAX_CLOCK_SKEW,
                        created_at=now,
                    )
                )
                s.flush()
        except IntegrityError:
            # (3)
            return False
        return True
