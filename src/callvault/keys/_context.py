"""What a wrapped data key is bound to (the associated data of every wrap)."""

from __future__ import annotations

from dataclasses import dataclass

import rfc8785

WRAP_FORMAT = 1


@dataclass(frozen=True, slots=True)
class WrapContext:
    """Binds a wrapped data key to its owner. Ids only, never content."""

    tenant_id: str
    deployment_id: str
    owner_kind: str
    owner_id: str
    purpose: str

    def associated_data(self) -> bytes:
        """RFC 8785 canonical JSON: the AAD / EncryptionContext of the wrap."""
        return rfc8785.dumps(self.as_dict())

    def as_dict(self) -> dict[str, str | int]:
        """The context as a flat string map (KMS EncryptionContext shape), with the format."""
        return {
            "v": WRAP_FORMAT,
            "tenant": self.tenant_id,
            "deployment": self.deployment_id,
            "owner_kind": self.owner_kind,
            "owner_id": self.owner_id,
            "purpose": self.purpose,
        }
