"""What a sealed value is bound to, and the interface every sealer implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import rfc8785


@dataclass(frozen=True, slots=True)
class SealContext:
    """Binds a sealed value to where it belongs. Every field is an id, never content."""

    tenant_id: str
    purpose: str
    object_id: str
    deployment_id: str | None = None

    def associated_data(self, fmt: str) -> bytes:
        """RFC 8785 canonical JSON of the context, authenticated with the ciphertext."""
        return rfc8785.dumps(
            {
                "fmt": fmt,
                "tenant": self.tenant_id,
                "deployment": self.deployment_id,
                "object": self.object_id,
                "purpose": self.purpose,
            }
        )


class Sealer(Protocol):
    """Seals and opens customer content.

    ``open`` MUST raise :class:`~callvault.errors.DecryptionError`, and nothing
    else, on any failure: wrong key, wrong context, edited or truncated blob.
    """

    def seal(self, plaintext: bytes, context: SealContext) -> bytes: ...

    def open(self, blob: bytes, context: SealContext) -> bytes: ...

    def check(self) -> None:
        """Prove the key is usable (seal and open a probe); raise if not."""
