"""Reading the tenant's audit entries (auditors, compliance officers, admins)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query

from callvault import tenancy
from callvault.access import Action
from callvault.api import resources, schemas
from callvault.api.blocking import blocking
from callvault.api.deps import CtxDep

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("/entries")
@blocking
def list_entries(
    ctx: CtxDep,
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> schemas.AuditEntriesOut:
    with ctx.tx() as s:
        ctx.enforce(Action.AUDIT_READ, resources.of_tenant(tenancy.read_tenant(s, ctx.tenant_id)))
        rows = ctx.rt.audit.read(s, ctx.tenant_id, start=start, limit=limit)
        return schemas.AuditEntriesOut(
            entries=[schemas.AuditEntryOut(index=i, entry=json.loads(e)) for i, e in rows]
        )
