"""Audit entries: ids, counts and hashes only; never content or raw PII."""

from __future__ import annotations

import json
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


_str = json.encoder.encode_basestring  # the C encoder's string form: RFC 8785's escaping


def entry_bytes(tenant_id: str, event: AuditEvent, at: datetime) -> bytes:
    """The canonical JSON entry for ``event`` (RFC 8785).

    The fixed fields are laid out directly in RFC 8785 key order (this runs on
    every append); only ``detail`` goes through the general encoder. A test
    checks the result equals ``rfc8785.dumps`` of the same object.
    """
    try:
        text = (
            f'{{"action":{_str(event.action)},"actor":{_str(event.actor)},'
            f'"class_uid":{int(event.ocsf_class)},"detail":'
        )
        tail = (
            f',"outcome":{_str(event.outcome.value)},'
            f'"request_id":{"null" if event.request_id is None else _str(event.request_id)},'
            f'"resource":{{"id":{_str(event.resource_id)},"kind":{_str(event.resource_kind)}}},'
            f'"tenant":{_str(tenant_id)},"time":{_str(_time(at))},"v":{ENTRY_VERSION}}}'
        )
        return text.encode() + canonical.dumps(event.detail) + tail.encode()
    except (UnicodeEncodeError, TypeError):  # a lone surrogate or a non-str field
        return canonical.dumps(entry_object(tenant_id, event, at))


def _time(at: datetime) -> str:
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def entry_object(tenant_id: str, event: AuditEvent, at: datetime) -> dict[str, Any]:
    """The entry as a JSON object (what :func:`entry_bytes` encodes)."""
    return {
        "v": ENTRY_VERSION,
        "tenant": tenant_id,
        "time": _time(at),
        "actor": event.actor,
        "action": event.action,
        "resource": {"kind": event.resource_kind, "id": event.resource_id},
        "outcome": event.outcome.value,
        "request_id": event.request_id,
        "class_uid": event.ocsf_class,
        "detail": event.detail,
    }
