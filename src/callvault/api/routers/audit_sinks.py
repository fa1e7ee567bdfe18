"""The tenant's SIEM sinks: add, list (with delivery state), remove.

Adding or removing a sink is a tenant setting change (``tenant:update``) and is
itself audited, the secret by its HMAC reference only. Listing shows the
non-secret settings, the delivery cursor and the backlog, never the secret.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from callvault import access, tenancy
from callvault.access import Action
from callvault.api import resources, schemas
from callvault.api.blocking import blocking
from callvault.api.deps import Ctx, CtxDep, ResourceId
from callvault.audit import AuditEvent, Outcome
from callvault.audit._entry import OCSF_ENTITY_MANAGEMENT
from callvault.errors import NotFoundError
from callvault.store.models import AuditSink, AuditSinkCursor

router = APIRouter(prefix="/v1/audit/sinks", tags=["audit"])


def _tenant(s: Session, ctx: Ctx) -> access.Resource:
    return resources.of_tenant(tenancy.read_tenant(s, ctx.tenant_id))


def _out(s: Session, ctx: Ctx, row: AuditSink, size: int) -> schemas.AuditSinkOut:
    cursor = s.get(AuditSinkCursor, (ctx.tenant_id, row.id))
    next_index = cursor.next_index if cursor is not None else 0
    return schemas.AuditSinkOut(
        id=row.id,
        kind=row.kind,
        name=row.name,
        enabled=row.enabled,
        config=json.loads(row.config),
        has_secret=row.secret_sealed is not None,
        created_at=row.created_at,
        next_index=next_index,
        backlog=max(0, size - next_index),
        failures=cursor.failures if cursor is not None else 0,
        last_error=cursor.last_error if cursor is not None else None,
    )


def _audit(s: Session, ctx: Ctx, action: str, sink_id: str, **detail: str) -> None:
    ctx.rt.audit.append_in(
        s,
        ctx.tenant_id,
        AuditEvent(
            action=action,
            outcome=Outcome.SUCCESS,
            actor=ctx.principal.id,
            resource_kind="audit-sink",
            resource_id=sink_id,
            request_id=ctx.request_id,
            ocsf_class=OCSF_ENTITY_MANAGEMENT,
            detail=dict(detail),
        ),
    )


@router.get("")
@blocking
def list_sinks(ctx: CtxDep) -> list[schemas.AuditSinkOut]:
    with ctx.tx() as s:
        ctx.enforce(Action.AUDIT_READ, _tenant(s, ctx))
        size = ctx.rt.audit.size(s, ctx.tenant_id)
        return [_out(s, ctx, row, size) for row in ctx.rt.sinks.rows(s, ctx.tenant_id)]


@router.post("", status_code=status.HTTP_201_CREATED)
@blocking
def create_sink(body: schemas.AuditSinkCreate, ctx: CtxDep) -> schemas.AuditSinkOut:
    secret = body.secret.get_secret_value() if body.secret is not None else None
    # The log key is loaded (or made, in a transaction of its own) before this
    # request's transaction starts writing.
    log_key = ctx.rt.audit.log_key(ctx.tenant_id)
    with ctx.tx() as s:
        ctx.enforce(Action.TENANT_UPDATE, _tenant(s, ctx))
        row = ctx.rt.sinks.create(
            s, ctx.tenant_id, kind=body.kind, name=body.name, config=body.config, secret=secret
        )
        detail = {"kind": row.kind}
        if secret is not None:
            detail["secret"] = log_key.secret_ref(secret)
        _audit(s, ctx, "audit.sink.create", row.id, **detail)
        return _out(s, ctx, row, ctx.rt.audit.size(s, ctx.tenant_id))


@router.delete("/{sink_id}", status_code=status.HTTP_204_NO_CONTENT)
@blocking
def delete_sink(sink_id: ResourceId, ctx: CtxDep) -> Response:
    with ctx.tx() as s:
        ctx.enforce(Action.TENANT_UPDATE, _tenant(s, ctx))
        if not ctx.rt.sinks.delete(s, ctx.tenant_id, sink_id):
            raise NotFoundError("audit sink not found")
        _audit(s, ctx, "audit.sink.delete", sink_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
