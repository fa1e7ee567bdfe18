"""Audit entries: ids, counts and hashes only; never content or raw PII."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from callvault import canonical

ENTRY_VERSION = 1


class Outcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    SUCCESS = "success"
    FAILURE = "failure"


#: OCSF class ids used by callvault's events.
OCSF_ACCOUNT_CHANGE = 3001
OCSF_AUTHENTICATION = 3002
OCSF_ENTITY_MANAGEMENT = 3004
OCSF_API_ACTIVITY = 6003


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One thing that happened. ``detail`` MUST hold ids, counts or hashes only."""

    action: str
    outcome: Outcome
    actor: str
    resource_kind: str
    resource_id: str
    request_id: str | None = None
    ocsf_class: int = OCSF_API_ACTIVITY
    detail: dict[str, Any] = field(default_factory=dict)


def entry_bytes(tenant_id: str, event: AuditEvent, at: datetime) -> bytes:
    """The canonical JSON entry for ``event`` (RFC 8785)."""
    return canonical.dumps(
        {
            "v": ENTRY_VERSION,
            "tenant": tenant_id,
            "time": at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "actor": event.actor,
            "action": event.action,
            "resource": {"kind": event.resource_kind, "id": event.resource_id},
            "outcome": event.outcome.value,
            "request_id": event.request_id,
            "class_uid": event.ocsf_class,
            "detail": event.detail,
        }
    )
