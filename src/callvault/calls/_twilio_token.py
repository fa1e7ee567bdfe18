"""A deployment's Twilio auth token: sealed at rest, opened only to check ``X-Twilio-Signature``.

Twilio signs every request it makes, the Media Streams WebSocket upgrade
included, with the account's auth token (:mod:`callvault.calls._twilio_signature`).
A deployment that stores its token here has live ingest refuse every stream
whose upgrade that token did not sign (:mod:`callvault.calls._twilio_ingest`).

Keys. The token is sealed through :class:`~callvault.crypto.Sealer` under a
data key of its own (owner kind :data:`OWNER_KIND`, owner id the deployment
id) wrapped by the deployment's KEK, bound to tenant, deployment and purpose,
so a sealed token copied to another row does not open. Setting a new token or
removing it shreds the previous data key first: a copy of an old row (a
backup) never opens again.

What leaves: whether a token is configured and since when. The token itself
is opened only by :meth:`TwilioAuthTokens.open`, for the signature check;
it is never logged, returned or put in an error message, and its ``repr`` is
masked. Audit entries name it by its ``hmac-sha256:`` reference under the
tenant's log key (the caller's job: the route that changes it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callvault.crypto import SealContext, Sealer
from callvault.errors import ConflictError, DecryptionError, InvalidInputError
from callvault.keys import KeyHierarchy
from callvault.store.models import TwilioAuthToken, utcnow
from callvault.store.rows import DeploymentFields

PURPOSE: Final = "twilio-auth-token"
OWNER_KIND: Final = "twilio-auth-token"
FIELD: Final = "auth_token"
#: Twilio issues 32 hexadecimal characters; anything from 16 to 128 visible ASCII
#: characters is accepted, so a reformatted or future token still fits.
MIN_CHARS: Final = 16
MAX_CHARS: Final = 128
_VISIBLE: Final = re.compile(r"[\x21-\x7e]+")


class AuthToken:
    """A Twilio auth token as accepted: 16 to 128 visible ASCII characters (no spaces).

    Cannot be built from anything else (:class:`InvalidInputError` naming the
    field and the rule, never the value). ``repr`` and ``str`` are masked.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"{FIELD} is required", field=FIELD)
        if len(value) > MAX_CHARS:
            raise InvalidInputError(f"{FIELD} must be at most {MAX_CHARS} characters", field=FIELD)
        if _VISIBLE.fullmatch(value) is None:
            raise InvalidInputError(
                f"{FIELD} must be printable ASCII without spaces or control characters",
                field=FIELD,
            )
        if len(value) < MIN_CHARS:
            raise InvalidInputError(f"{FIELD} must be at least {MIN_CHARS} characters", field=FIELD)
        self._value = value

    def reveal(self) -> str:
        """The token itself: only for computing a signature or an HMAC reference."""
        return self._value

    def __repr__(self) -> str:
        return "AuthToken('**********')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class TokenStatus:
    """All the API says about a deployment's token."""

    configured: bool
    configured_at: datetime | None = None


def _context(tenant_id: str, deployment_id: str) -> SealContext:
    return SealContext(
        tenant_id=tenant_id,
        deployment_id=deployment_id,
        purpose=PURPOSE,
        object_id=deployment_id,
        owner_kind=OWNER_KIND,
    )


def _status(row: TwilioAuthToken | None) -> TokenStatus:
    if row is None:
        return TokenStatus(configured=False)
    return TokenStatus(configured=True, configured_at=row.configured_at)


class TwilioAuthTokens:
    """Stores, reports, opens and removes deployments' Twilio auth tokens.

    Every method takes the tenant's transaction (``session``), which the data
    key made or shredded commits with; the caller MUST have passed the gate
    for the deployment (``deployment:update`` to change, ``deployment:read``
    for the status), and a ``deployment`` argument MUST be a row read in that
    transaction (so it is the tenant's).
    """

    def __init__(self, keys: KeyHierarchy, sealer: Sealer) -> None:
        self._keys = keys
        self._sealer = sealer

    def set(
        self, session: Session, deployment: DeploymentFields, token: AuthToken
    ) -> tuple[TokenStatus, bool]:
        """Make ``token`` the deployment's; returns its status and whether one was replaced.

        1. Shred the data key of the token it replaces, if any.
        2. Seal the new token under a new data key (the deployment's KEK wraps it).
        3. Write the row.
        """
        tenant_id, deployment_id = deployment.tenant_id, deployment.id
        row = session.get(TwilioAuthToken, (tenant_id, deployment_id))
        try:
            # (1):
            self._keys.shred(session, tenant_id, OWNER_KIND, deployment_id)
            # (2):
            sealed = self._sealer.seal(
                session, token.reveal().encode("ascii"), _context(tenant_id, deployment_id)
            )
            # (3):
            replaced = row is not None
            if row is None:
                row = TwilioAuthToken(tenant_id=tenant_id, deployment_id=deployment_id)
                session.add(row)
            row.token_sealed = sealed
            row.configured_at = utcnow()
            session.flush()
        except IntegrityError:  # another request set it at the same moment
            raise ConflictError(
                f"{FIELD} was changed by another request; retry", field=FIELD
            ) from None
        return _status(row), replaced

    def status(self, session: Session, deployment: DeploymentFields) -> TokenStatus:
        return _status(session.get(TwilioAuthToken, (deployment.tenant_id, deployment.id)))

    def remove(self, session: Session, deployment: DeploymentFields) -> bool:
        """Delete the deployment's token and shred its key; False when there was none."""
        row = session.get(TwilioAuthToken, (deployment.tenant_id, deployment.id))
        if row is None:
            return False
        session.delete(row)
        self._keys.shred(session, deployment.tenant_id, OWNER_KIND, deployment.id)
        session.flush()
        return True

    def open(self, session: Session, tenant_id: str, deployment_id: str) -> AuthToken | None:
        """The token of ``deployment_id`` in ``tenant_id``, or None when it has none.

        Looked up in the caller's tenant only: a deployment of another tenant
        has no token here (and this says nothing about whether it has one).
        A stored token that does not open or parse raises
        :class:`DecryptionError` (fail closed: the caller refuses).
        """
        row = session.get(TwilioAuthToken, (tenant_id, deployment_id))
        if row is None:
            return None
        raw = self._sealer.open(session, row.token_sealed, _context(tenant_id, deployment_id))
        try:
            return AuthToken(raw.decode("ascii"))
        except (UnicodeDecodeError, InvalidInputError):
            raise DecryptionError from None
