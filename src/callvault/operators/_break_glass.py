"""Break-glass requests: asked by an operator, decided by the tenant, ended by the clock.

Every function works inside the caller's tenant transaction and writes its
audit entry there, last (``AuditLog.append_in``), right after its mirror in
the installation log (docs/adr/0017, same transaction): the change, its
entry and the mirror commit together or not at all. The caller MUST have
authorized the actor (the operator policy for operators; the gate's
``break_glass:*`` actions for tenant principals).

Life of a request::

    pending ──approve──▶ approved ──(clock ≥ expires_at)──▶ expired
       │  └──deny──▶ denied   └──revoke (tenant or operator)──▶ revoked
       ├──revoke──▶ revoked
       └──(clock ≥ decide_by)──▶ expired

Time is never trusted to a background job: :func:`find_active` compares
``expires_at`` with the clock on every request, and :func:`expire_due`
records (and audits) the transition the first time anyone looks after it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from callvault import tenancy
from callvault.audit import AuditEvent, AuditLog
from callvault.crypto import Sealer
from callvault.errors import ConflictError, InvalidInputError, NotFoundError
from callvault.operators import _clock, _ids
from callvault.operators._authorize import DECIDE_WITHIN, MAX_DURATION, ActiveGrant
from callvault.operators._installation_log import mirror_in
from callvault.operators._records import (
    SYSTEM_ACTOR,
    Actor,
    BreakGlassView,
    Status,
    audit_event,
    check_request,
    seal_context,
    status_at,
    view,
)
from callvault.store.db import begin_write
from callvault.store.models import BreakGlassGrant

__all__ = [
    "Actor",
    "BreakGlassView",
    "Status",
    "approve",
    "check_request",
    "deny",
    "expire_due",
    "find_active",
    "get",
    "list_requests",
    "request",
    "revoke",
    "tenant_request",
    "tenant_requests",
    "view",
]


def request(
    session: Session,
    sealer: Sealer,
    audit: AuditLog,
    *,
    operator_id: str,
    tenant_id: str,
    deployment_id: str,
    reason: str,
    ticket_ref: str,
    duration: timedelta,
    now: datetime,
    actor: Actor,
) -> BreakGlassGrant:
    """Record a pending request and notify the tenant (its audit log, so its SIEM sinks).

    (1) Refuse malformed input. (2) The deployment MUST be the tenant's (else
    404, nothing written). (3) Store the request, the reason sealed. (4)
    Audit ``break_glass.request`` in the same transaction.
    """
    # (1)
    check_request(reason, ticket_ref, duration)
    # (2)
    tenancy.get_deployment(session, tenant_id, deployment_id)
    # (3)
    row = BreakGlassGrant(
        id=_ids.new_id(_ids.BREAK_GLASS),
        tenant_id=tenant_id,
        deployment_id=deployment_id,
        operator_id=operator_id,
        reason_sealed=b"",
        ticket_ref=ticket_ref,
        duration_minutes=duration // timedelta(minutes=1),
        status=Status.PENDING.value,
        requested_at=now,
        decide_by=now + DECIDE_WITHIN,
    )
    row.reason_sealed = sealer.seal(session, reason.strip().encode("utf-8"), seal_context(row))
    session.add(row)
    session.flush()
    # (4)
    _audit(session, audit, tenant_id, audit_event("request", row, actor))
    return row


def _audit(session: Session, audit: AuditLog, tenant_id: str, *events: AuditEvent) -> None:
    """A step's entries: mirrored in the installation log, then in the tenant's log, last."""
    mirror_in(session, audit, tenant_id, *events)
    audit.append_in(session, tenant_id, *events)


def _locked(session: Session, tenant_id: str, grant_id: str) -> BreakGlassGrant:
    # FOR UPDATE locks the row on PostgreSQL; SQLite ignores it, and there a read before the
    # first write is outside the transaction (an approval could overwrite a revocation made
    # in between): begin the write transaction first (store.db.begin_write).
    begin_write(session)
    mine = (BreakGlassGrant.tenant_id == tenant_id, BreakGlassGrant.id == grant_id)
    row = session.execute(
        select(BreakGlassGrant)
        .where(*mine)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError("break-glass request not found", field="grant_id")
    return row


def get(session: Session, tenant_id: str, grant_id: str) -> BreakGlassGrant:
    row = session.execute(
        select(BreakGlassGrant).where(
            BreakGlassGrant.tenant_id == tenant_id, BreakGlassGrant.id == grant_id
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError("break-glass request not found", field="grant_id")
    return row


def list_requests(
    session: Session,
    tenant_id: str,
    *,
    operator_id: str | None = None,
    status: Status | None = None,
    now: datetime,
    limit: int = 100,
) -> list[BreakGlassGrant]:
    """A tenant's requests, newest first (optionally one operator's, one effective status)."""
    q = select(BreakGlassGrant).where(BreakGlassGrant.tenant_id == tenant_id)
    if operator_id is not None:
        q = q.where(BreakGlassGrant.operator_id == operator_id)
    rows = session.execute(q.order_by(BreakGlassGrant.requested_at.desc())).scalars()
    out = [r for r in rows if status is None or status_at(r, now) is status]
    return out[:limit]


def approve(
    session: Session,
    audit: AuditLog,
    tenant_id: str,
    grant_id: str,
    *,
    duration: timedelta | None,
    now: datetime | None = None,
    actor: Actor,
) -> BreakGlassGrant:
    """Open the grant from now for its duration (or a shorter one the approver sets).

    The approver cannot lengthen it (at most what was asked, itself at most 4 h)
    nor move it to another deployment (the request fixes it). A request past
    ``decide_by`` cannot be approved.
    """
    now = _clock.now() if now is None else now
    row = _locked(session, tenant_id, grant_id)
    if status_at(row, now) is not Status.PENDING:
        raise ConflictError("only a pending request can be approved", field="grant_id")
    asked = timedelta(minutes=row.duration_minutes)
    granted = asked if duration is None else duration
    if not timedelta(minutes=1) <= granted <= min(asked, MAX_DURATION):
        raise InvalidInputError(
            "duration must be 1 minute up to what was requested (at most 4 hours)",
            field="duration_minutes",
        )
    if granted % timedelta(minutes=1):
        raise InvalidInputError("duration must be whole minutes", field="duration_minutes")
    row.status = Status.APPROVED.value
    row.duration_minutes = granted // timedelta(minutes=1)
    row.decided_at = now
    row.decided_by = actor.id
    row.expires_at = now + granted
    session.flush()
    _audit(
        session,
        audit,
        tenant_id,
        audit_event("approve", row, actor, requested_minutes=asked // timedelta(minutes=1)),
    )
    return row


def deny(
    session: Session,
    audit: AuditLog,
    tenant_id: str,
    grant_id: str,
    *,
    now: datetime | None = None,
    actor: Actor,
) -> BreakGlassGrant:
    now = _clock.now() if now is None else now
    row = _locked(session, tenant_id, grant_id)
    if status_at(row, now) is not Status.PENDING:
        raise ConflictError("only a pending request can be denied", field="grant_id")
    row.status = Status.DENIED.value
    row.decided_at = now
    row.decided_by = actor.id
    session.flush()
    _audit(session, audit, tenant_id, audit_event("deny", row, actor))
    return row


def revoke(
    session: Session,
    audit: AuditLog,
    tenant_id: str,
    grant_id: str,
    *,
    now: datetime | None = None,
    actor: Actor,
    operator_id: str | None = None,
) -> BreakGlassGrant:
    """End a pending or live grant now. With ``operator_id`` (an operator revoking), only
    that operator's own grant is found: another's answers 404."""
    now = _clock.now() if now is None else now
    row = _locked(session, tenant_id, grant_id)
    if operator_id is not None and row.operator_id != operator_id:
        raise NotFoundError("break-glass request not found", field="grant_id")
    if status_at(row, now) not in (Status.PENDING, Status.APPROVED):
        raise ConflictError("the request is already closed", field="grant_id")
    row.status = Status.REVOKED.value
    row.ended_at = now
    row.ended_by = actor.id
    session.flush()
    _audit(session, audit, tenant_id, audit_event("revoke", row, actor))
    return row


def expire_due(session: Session, audit: AuditLog, tenant_id: str, now: datetime) -> list[str]:
    """Record (and audit, once) every request of the tenant whose time has run out.

    Only bookkeeping: access already ended at ``expires_at`` whether or not
    this ran (:func:`find_active` reads the clock). Rows are locked, so two
    processes never audit the same expiry twice.
    """
    is_due = (
        BreakGlassGrant.tenant_id == tenant_id,
        or_(
            (BreakGlassGrant.status == Status.APPROVED.value) & (BreakGlassGrant.expires_at <= now),
            (BreakGlassGrant.status == Status.PENDING.value) & (BreakGlassGrant.decide_by <= now),
        ),
    )
    begin_write(session)  # as in _locked: two sweeps never audit one expiry twice
    due = list(
        session.execute(
            select(BreakGlassGrant)
            .where(*is_due)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalars()
    )
    if not due:
        return []
    events = []
    for row in due:
        was = row.status
        row.status = Status.EXPIRED.value
        row.ended_at = row.expires_at if was == Status.APPROVED else row.decide_by
        events.append(audit_event("expire", row, Actor(SYSTEM_ACTOR, "system"), was=was))
    session.flush()
    _audit(session, audit, tenant_id, *events)
    return sorted(r.id for r in due)


def find_active(
    session: Session, tenant_id: str, operator_id: str, deployment_id: str, now: datetime
) -> ActiveGrant | None:
    """The operator's approved, unexpired grant for the deployment (latest-ending), if any."""
    row = session.execute(
        select(BreakGlassGrant)
        .where(
            BreakGlassGrant.tenant_id == tenant_id,
            BreakGlassGrant.operator_id == operator_id,
            BreakGlassGrant.deployment_id == deployment_id,
            BreakGlassGrant.status == Status.APPROVED.value,
            BreakGlassGrant.expires_at > now,
        )
        .order_by(BreakGlassGrant.expires_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if row is None or row.expires_at is None:
        return None
    return ActiveGrant(
        id=row.id,
        tenant_id=row.tenant_id,
        deployment_id=row.deployment_id,
        operator_id=row.operator_id,
        expires_at=row.expires_at,
    )


def tenant_requests(
    session: Session,
    sealer: Sealer,
    audit: AuditLog,
    tenant_id: str,
    *,
    status: Status | None = None,
    limit: int = 100,
) -> list[BreakGlassView]:
    """What a tenant admin reviews: the tenant's requests with their reasons, newest first.

    Records due expiries first (audited). The caller MUST have passed the gate
    for ``break_glass:read``.
    """
    now = _clock.now()
    expire_due(session, audit, tenant_id, now)
    rows = list_requests(session, tenant_id, status=status, now=now, limit=limit)
    return [view(r, now, session=session, sealer=sealer) for r in rows]


def tenant_request(
    session: Session, sealer: Sealer, tenant_id: str, grant_id: str
) -> BreakGlassView:
    """One request with its reason, as of now (gate: ``break_glass:read``)."""
    return view(get(session, tenant_id, grant_id), _clock.now(), session=session, sealer=sealer)
