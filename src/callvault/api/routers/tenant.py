"""The caller's own tenant."""

from __future__ import annotations

from fastapi import APIRouter

from callvault import tenancy
from callvault.access import Action
from callvault.api import resources, schemas
from callvault.api.blocking import blocking
from callvault.api.deps import CtxDep

router = APIRouter(prefix="/v1", tags=["tenant"])


@router.get("/tenant")
@blocking
def get_tenant(ctx: CtxDep) -> schemas.TenantOut:
    with ctx.read() as c:
        row = tenancy.read_tenant(c, ctx.tenant_id)
        ctx.enforce(Action.TENANT_READ, resources.of_tenant(row))
        return resources.tenant_out(row)


@router.patch("/tenant")
@blocking
def update_tenant(body: schemas.TenantPatch, ctx: CtxDep) -> schemas.TenantOut:
    with ctx.tx() as s:
        row = tenancy.get_tenant(s, ctx.tenant_id)
        ctx.enforce(Action.TENANT_UPDATE, resources.of_tenant(row))
        tenancy.update(
            s, ctx.rt.sealer, ctx.rt.audit, row, body.model_dump(exclude_unset=True), ctx.change
        )
        return resources.tenant_out(row)
