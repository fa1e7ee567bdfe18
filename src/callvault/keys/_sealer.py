"""The sealer the service uses: envelope values under data keys from the hierarchy."""

from __future__ import annotations

from sqlalchemy.orm import Session

from callvault.crypto import SealContext, open_value, seal_value
from callvault.keys._hierarchy import KeyHierarchy, KeyOwner


def _owner(context: SealContext) -> KeyOwner:
    return KeyOwner(
        tenant_id=context.tenant_id,
        deployment_id=context.deployment_id,
        kind=context.owner_kind,
        id=context.owner,
    )


class EnvelopeSealer:
    """Implements :class:`callvault.crypto.Sealer` over a :class:`KeyHierarchy`."""

    def __init__(self, keys: KeyHierarchy) -> None:
        self.keys = keys

    def seal(self, session: Session, plaintext: bytes, context: SealContext) -> bytes:
        """(1) Get or create the owner's data key. (2) Seal under a per-value key."""
        return seal_value(
            self.keys.data_key(session, _owner(context), create=True), plaintext, context
        )

    def open(self, session: Session, blob: bytes, context: SealContext) -> bytes:
        """(1) Unwrap the owner's data key (shredded: DecryptionError). (2) Open the value."""
        return open_value(self.keys.data_key(session, _owner(context), create=False), blob, context)

    def check(self) -> None:
        self.keys.check()
