"""What a sealed value is bound to, and the interface every sealer implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import rfc8785

if TYPE_CHECKING:  # the verifier imports callvault.crypto without a database stack
    from sqlalchemy.orm import Session


@dataclass(frozen=True, slots=True)
class SealContext:
    """Binds a sealed value to where it belongs. Every field is an id, never content.

    ``owner_kind``/``owner_id`` name whose data key seals the value: a call's
    content is sealed under the call's key (so shredding that one key shreds
    the call); other objects default to a key of their own.
    """

    tenant_id: str
    purpose: str
    object_id: str
    deployment_id: str | None = None
    owner_kind: str = "object"
    owner_id: str | None = None

    @property
    def owner(self) -> str:
        return self.owner_id if self.owner_id is not None else self.object_id

    def associated_data(self, fmt: str) -> bytes:
        """RFC 8785 canonical JSON of the context, authenticated with the ciphertext."""
        return rfc8785.dumps(
            {
                "fmt": fmt,
                "tenant": self.tenant_id,
                "deployment": self.deployment_id,
                "owner": {"kind": self.owner_kind, "id": self.owner},
                "object": self.object_id,
                "purpose": self.purpose,
            }
        )


class Sealer(Protocol):
    """Seals and opens customer content inside the caller's tenant transaction.

    ``session`` MUST be the transaction the sealed value is stored or read in:
    a data key created for it commits (or rolls back) with it. ``open`` MUST
    raise :class:`~callvault.errors.DecryptionError`, and nothing else, when
    the value does not open (wrong key, wrong context, edited, truncated,
    shredded); :class:`~callvault.errors.KeyUnavailableError` when the key
    provider cannot be used.
    """

    def seal(self, session: Session, plaintext: bytes, context: SealContext) -> bytes: ...

    def open(self, session: Session, blob: bytes, context: SealContext) -> bytes: ...

    def check(self) -> None:
        """Prove the key providers are usable; raise if not."""
