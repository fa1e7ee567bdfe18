"""Deployments: a region, retention settings and a key provider for a set of agents."""

from __future__ import annotations

from fastapi import APIRouter, status

from callvault import tenancy
from callvault.access import Action
from callvault.api import resources, schemas
from callvault.api.blocking import blocking
from callvault.api.deps import CtxDep, ResourceId

router = APIRouter(prefix="/v1/deployments", tags=["deployments"])


@router.get("")
@blocking
def list_deployments(ctx: CtxDep) -> list[schemas.DeploymentOut]:
    """The deployments the caller may see."""
    with ctx.tx() as s:
        rows = tenancy.list_deployments(s, ctx.tenant_id)
        return [
            resources.deployment_out(r)
            for r in rows
            if ctx.allows(Action.DEPLOYMENT_READ, resources.of_deployment(r))
        ]


@router.post("", status_code=status.HTTP_201_CREATED)
@blocking
def create_deployment(body: tenancy.DeploymentSettings, ctx: CtxDep) -> schemas.DeploymentOut:
    with ctx.tx() as s:
        tenant = tenancy.read_tenant(s, ctx.tenant_id)
        ctx.enforce(Action.DEPLOYMENT_CREATE, resources.of_tenant(tenant))
        row = tenancy.create_deployment(
            s, ctx.rt.sealer, ctx.rt.audit, ctx.tenant_id, body, ctx.change
        )
        return resources.deployment_out(row)


@router.get("/{deployment_id}")
@blocking
def get_deployment(deployment_id: ResourceId, ctx: CtxDep) -> schemas.DeploymentOut:
    with ctx.read() as c:
        row = tenancy.read_deployment(c, ctx.tenant_id, deployment_id)
        ctx.enforce(Action.DEPLOYMENT_READ, resources.of_deployment(row))
        return resources.deployment_out(row)


@router.patch("/{deployment_id}")
@blocking
def update_deployment(
    deployment_id: ResourceId, body: schemas.DeploymentPatch, ctx: CtxDep
) -> schemas.DeploymentOut:
    with ctx.tx() as s:
        row = tenancy.get_deployment(s, ctx.tenant_id, deployment_id)
        ctx.enforce(Action.DEPLOYMENT_UPDATE, resources.of_deployment(row))
        patch = body.model_dump(mode="json", exclude_unset=True)
        if "retention" in patch:
            current = tenancy.current_settings(s, ctx.rt.sealer, row)["retention"]
            patch["retention"] = {**current, **patch["retention"]}
        tenancy.update(s, ctx.rt.sealer, ctx.rt.audit, row, patch, ctx.change)
        return resources.deployment_out(row)
