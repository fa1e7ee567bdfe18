"""Break-glass, the tenant's side: see operators' requests, approve, deny, revoke.

``break_glass:read`` (owner, admin, auditor) lists and reads; ``break_glass:approve``
(owner, admin) decides and revokes. Both at tenant scope. An approval can
shorten a grant, never lengthen it past the request (at most 4 h) nor move it
to another deployment (the body has no such field: an unknown field is 422).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import Field, StrictInt, StrictStr

from callvault import operators, tenancy
from callvault.access import Action
from callvault.api import resources
from callvault.api.blocking import blocking
from callvault.api.deps import Ctx, CtxDep, ResourceId
from callvault.api.schemas import In, Out
from callvault.operators import MAX_DURATION
from callvault.store.ids import ID_PATTERN

router = APIRouter(prefix="/v1/tenant/break-glass", tags=["break-glass"])

_MAX_MINUTES = MAX_DURATION // timedelta(minutes=1)
StatusName = Literal["pending", "approved", "denied", "revoked", "expired"]


class BreakGlassRequestIn(In):
    """What an operator asks for (``POST /v1/operator/tenants/{tenant_id}/break-glass``)."""

    deployment_id: Annotated[StrictStr, Field(pattern=ID_PATTERN, max_length=40)]
    reason: Annotated[StrictStr, Field(min_length=10, max_length=2000)]
    ticket_ref: Annotated[
        StrictStr, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:#/-]{0,63}$", max_length=64)
    ]
    duration_minutes: Annotated[StrictInt, Field(ge=1, le=_MAX_MINUTES)]


class BreakGlassApproveIn(In):
    #: Shorter than requested, if the approver wishes; never longer.
    duration_minutes: Annotated[StrictInt | None, Field(ge=1, le=_MAX_MINUTES)] = None


class BreakGlassOut(Out):
    id: str
    tenant_id: str
    deployment_id: str
    operator_id: str
    ticket_ref: str
    duration_minutes: int
    status: str
    requested_at: datetime
    decide_by: datetime
    decided_at: datetime | None
    decided_by: str | None
    expires_at: datetime | None
    ended_at: datetime | None
    ended_by: str | None
    #: The operator's reason (tenant readers only).
    reason: str | None = None


def break_glass_out(v: operators.BreakGlassView) -> BreakGlassOut:
    return BreakGlassOut(
        id=v.id,
        tenant_id=v.tenant_id,
        deployment_id=v.deployment_id,
        operator_id=v.operator_id,
        ticket_ref=v.ticket_ref,
        duration_minutes=v.duration_minutes,
        status=v.status.value,
        requested_at=v.requested_at,
        decide_by=v.decide_by,
        decided_at=v.decided_at,
        decided_by=v.decided_by,
        expires_at=v.expires_at,
        ended_at=v.ended_at,
        ended_by=v.ended_by,
        reason=v.reason,
    )


def _actor(ctx: Ctx) -> operators.Actor:
    return operators.Actor(ctx.principal.id, "tenant", ctx.request_id)


@router.get("")
@blocking
def list_requests(
    ctx: CtxDep,
    status: Annotated[StatusName | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[BreakGlassOut]:
    """Operators' requests for this tenant, newest first (``status=pending``: awaiting a
    decision)."""
    with ctx.tx() as s:
        ctx.enforce(
            Action.BREAK_GLASS_READ, resources.of_tenant(tenancy.read_tenant(s, ctx.tenant_id))
        )
        views = operators.tenant_requests(
            s,
            ctx.rt.sealer,
            ctx.rt.audit,
            ctx.tenant_id,
            status=None if status is None else operators.Status(status),
            limit=limit,
        )
        return [break_glass_out(v) for v in views]


@router.get("/{grant_id}")
@blocking
def get_request(grant_id: ResourceId, ctx: CtxDep) -> BreakGlassOut:
    with ctx.tx() as s:
        ctx.enforce(
            Action.BREAK_GLASS_READ, resources.of_tenant(tenancy.read_tenant(s, ctx.tenant_id))
        )
        return break_glass_out(operators.tenant_request(s, ctx.rt.sealer, ctx.tenant_id, grant_id))


@router.post("/{grant_id}/approve")
@blocking
def approve(
    grant_id: ResourceId, ctx: CtxDep, body: BreakGlassApproveIn | None = None
) -> BreakGlassOut:
    """Open the operator's redacted access to the request's deployment, from now, for the
    requested duration or a shorter one (``duration_minutes``)."""
    minutes = None if body is None else body.duration_minutes
    duration = None if minutes is None else timedelta(minutes=minutes)
    with ctx.tx() as s:
        ctx.enforce(
            Action.BREAK_GLASS_APPROVE, resources.of_tenant(tenancy.read_tenant(s, ctx.tenant_id))
        )
        row = operators.approve(
            s, ctx.rt.audit, ctx.tenant_id, grant_id, duration=duration, actor=_actor(ctx)
        )
        return break_glass_out(operators.view(row, operators.clock_now()))


@router.post("/{grant_id}/deny")
@blocking
def deny(grant_id: ResourceId, ctx: CtxDep) -> BreakGlassOut:
    with ctx.tx() as s:
        ctx.enforce(
            Action.BREAK_GLASS_APPROVE, resources.of_tenant(tenancy.read_tenant(s, ctx.tenant_id))
        )
        row = operators.deny(s, ctx.rt.audit, ctx.tenant_id, grant_id, actor=_actor(ctx))
        return break_glass_out(operators.view(row, operators.clock_now()))


@router.post("/{grant_id}/revoke")
@blocking
def revoke(grant_id: ResourceId, ctx: CtxDep) -> BreakGlassOut:
    """End a pending request or a live grant now."""
    with ctx.tx() as s:
        ctx.enforce(
            Action.BREAK_GLASS_APPROVE, resources.of_tenant(tenancy.read_tenant(s, ctx.tenant_id))
        )
        row = operators.revoke(s, ctx.rt.audit, ctx.tenant_id, grant_id, actor=_actor(ctx))
        return break_glass_out(operators.view(row, operators.clock_now()))
