"""Break-glass request values: states, who acts, the view of a request, input checks,
the sealed reason's context and the audit entry of each step (no I/O but sealing)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from callvault.audit import AuditEvent, Outcome
from callvault.audit._entry import OCSF_ENTITY_MANAGEMENT
from callvault.crypto import SealContext, Sealer
from callvault.errors import InvalidInputError
from callvault.operators._authorize import MAX_DURATION
from callvault.store.models import BreakGlassGrant

TICKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:#/-]{0,63}$")
REASON_MIN, REASON_MAX = 10, 2000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_PURPOSE = "break-glass-reason"
OWNER_KIND = "break_glass"
SYSTEM_ACTOR = "system:break-glass"


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who changes a request: a tenant principal, or an operator (realm ``operator``)."""

    id: str
    realm: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class BreakGlassView:
    id: str
    tenant_id: str
    deployment_id: str
    operator_id: str
    ticket_ref: str
    duration_minutes: int
    #: As of the clock given to the read (an approved grant past its end reads ``expired``).
    status: Status
    requested_at: datetime
    decide_by: datetime
    decided_at: datetime | None
    decided_by: str | None
    expires_at: datetime | None
    ended_at: datetime | None
    ended_by: str | None
    #: The operator's reason; only for tenant readers (None otherwise).
    reason: str | None = None


def seal_context(row: BreakGlassGrant) -> SealContext:
    return SealContext(
        tenant_id=row.tenant_id,
        purpose=_PURPOSE,
        object_id=row.id,
        deployment_id=row.deployment_id,
        owner_kind=OWNER_KIND,
        owner_id=row.id,
    )


def status_at(row: BreakGlassGrant, now: datetime) -> Status:
    if row.status == Status.PENDING and now >= row.decide_by:
        return Status.EXPIRED
    if row.status == Status.APPROVED and row.expires_at is not None and now >= row.expires_at:
        return Status.EXPIRED
    return Status(row.status)


def view(
    row: BreakGlassGrant,
    now: datetime,
    *,
    session: Session | None = None,
    sealer: Sealer | None = None,
) -> BreakGlassView:
    """The request as a value; with ``session`` and ``sealer``, the reason opened too."""
    reason = None
    if session is not None and sealer is not None:
        reason = sealer.open(session, row.reason_sealed, seal_context(row)).decode("utf-8")
    return BreakGlassView(
        id=row.id,
        tenant_id=row.tenant_id,
        deployment_id=row.deployment_id,
        operator_id=row.operator_id,
        ticket_ref=row.ticket_ref,
        duration_minutes=row.duration_minutes,
        status=status_at(row, now),
        requested_at=row.requested_at,
        decide_by=row.decide_by,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        expires_at=row.expires_at,
        ended_at=row.ended_at,
        ended_by=row.ended_by,
        reason=reason,
    )


def audit_event(verb: str, row: BreakGlassGrant, actor: Actor, **extra: object) -> AuditEvent:
    detail: dict[str, object] = {
        "break_glass": row.id,
        "operator": row.operator_id,
        "deployment": row.deployment_id,
        "ticket": row.ticket_ref,
        "duration_minutes": row.duration_minutes,
        "realm": actor.realm,
    }
    if row.expires_at is not None:
        detail["expires_at"] = row.expires_at.isoformat()
    detail.update(extra)
    return AuditEvent(
        action=f"break_glass.{verb}",
        outcome=Outcome.SUCCESS,
        actor=actor.id,
        resource_kind="break_glass",
        resource_id=row.id,
        request_id=actor.request_id,
        ocsf_class=OCSF_ENTITY_MANAGEMENT,
        detail=detail,
    )


def check_request(reason: str, ticket_ref: str, duration: timedelta) -> None:
    """Refuse a malformed request (:class:`InvalidInputError` naming the field, never the value)."""
    if not isinstance(reason, str) or not REASON_MIN <= len(reason.strip()) <= REASON_MAX:
        raise InvalidInputError(
            f"reason must be {REASON_MIN} to {REASON_MAX} characters", field="reason"
        )
    if _CONTROL.search(reason):
        raise InvalidInputError("reason must not contain control characters", field="reason")
    if not isinstance(ticket_ref, str) or not TICKET_RE.match(ticket_ref):
        raise InvalidInputError(
            "ticket_ref must be 1-64 of A-Z a-z 0-9 . _ : # / -", field="ticket_ref"
        )
    if not timedelta(minutes=1) <= duration <= MAX_DURATION:
        raise InvalidInputError("duration must be 1 minute to 4 hours", field="duration_minutes")
    if duration % timedelta(minutes=1):
        raise InvalidInputError("duration must be whole minutes", field="duration_minutes")
