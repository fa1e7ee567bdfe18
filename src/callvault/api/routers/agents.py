"""Agents: a prompt, knowledge-base documents and tools (all customer content)."""

from __future__ import annotations

from fastapi import APIRouter, status

from callvault import tenancy
from callvault.access import Action
from callvault.api import resources, schemas
from callvault.api.blocking import blocking
from callvault.api.deps import CtxDep, ResourceId

router = APIRouter(prefix="/v1", tags=["agents"])


@router.get("/deployments/{deployment_id}/agents")
@blocking
def list_agents(deployment_id: ResourceId, ctx: CtxDep) -> list[schemas.AgentOut]:
    with ctx.tx() as s:
        dep = tenancy.read_deployment(s, ctx.tenant_id, deployment_id)
        ctx.enforce(Action.DEPLOYMENT_READ, resources.of_deployment(dep))
        rows = tenancy.list_agents(s, ctx.tenant_id, dep.id)
        return [
            resources.agent_out(r)
            for r in rows
            if ctx.allows(Action.AGENT_READ, resources.of_agent(r))
        ]


@router.post("/deployments/{deployment_id}/agents", status_code=status.HTTP_201_CREATED)
@blocking
def create_agent(
    deployment_id: ResourceId, body: tenancy.AgentSettings, ctx: CtxDep
) -> schemas.AgentOut:
    with ctx.tx() as s:
        dep = tenancy.get_deployment(s, ctx.tenant_id, deployment_id)
        ctx.enforce(Action.AGENT_CREATE, resources.of_deployment(dep))
        row = tenancy.create_agent(s, ctx.rt.sealer, ctx.rt.audit, dep, body, ctx.change)
        return resources.agent_out(row)


@router.get("/agents/{agent_id}")
@blocking
def get_agent(agent_id: ResourceId, ctx: CtxDep) -> schemas.AgentOut:
    with ctx.read() as c:
        row = tenancy.read_agent(c, ctx.tenant_id, agent_id)
        ctx.enforce(Action.AGENT_READ, resources.of_agent(row))
        return resources.agent_out(row)


@router.get("/agents/{agent_id}/config")
@blocking
def get_agent_config(agent_id: ResourceId, ctx: CtxDep) -> schemas.AgentConfigOut:
    """The agent's prompt, documents and tools: a content read, audited before it is opened."""
    with ctx.tx() as s:
        row = tenancy.get_agent(s, ctx.tenant_id, agent_id)
        ctx.enforce(Action.AGENT_READ_CONFIG, resources.of_agent(row))
        config = tenancy.current_settings(s, ctx.rt.sealer, row)
        return schemas.AgentConfigOut(
            agent_id=row.id, version_id=row.current_version_id, config=config
        )


@router.patch("/agents/{agent_id}")
@blocking
def update_agent(agent_id: ResourceId, body: schemas.AgentPatch, ctx: CtxDep) -> schemas.AgentOut:
    with ctx.tx() as s:
        row = tenancy.get_agent(s, ctx.tenant_id, agent_id)
        ctx.enforce(Action.AGENT_UPDATE, resources.of_agent(row))
        patch = body.model_dump(mode="json", exclude_unset=True)
        tenancy.update(s, ctx.rt.sealer, ctx.rt.audit, row, patch, ctx.change)
        return resources.agent_out(row)
