"""The operator realm's API: ``/v1/operator/...``, operator keys (``cvop1.``) only.

A tenant's key is malformed here (401), and an operator key is malformed on
every tenant route. Each request authenticates the operator in a tenantless
transaction (a refused key is an entry in the installation log, docs/adr/0017),
then works in the named tenant's own transaction through
:class:`callvault.operators.OperatorAccess`, which decides (operator policy,
then the tenant's gate for content), audits in that tenant's log, and only
then serves. Metadata replies carry ids, names, regions, times, statuses and
counts; content (redacted transcript, masked recording) only under an
approved break-glass grant for the call's deployment.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import StreamingResponse

from callvault import operators
from callvault.api import resources, schemas
from callvault.api.blocking import run_blocking
from callvault.api.deps import ResourceId
from callvault.api.routers.break_glass import (
    BreakGlassOut,
    BreakGlassRequestIn,
    StatusName,
    break_glass_out,
)
from callvault.api.schemas import Out
from callvault.errors import AuthenticationError
from callvault.runtime import Runtime
from callvault.store.ids import ID_PATTERN

router = APIRouter(prefix="/v1/operator", tags=["operators"])
R = TypeVar("R")
OptionalId = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=40)]


class OperatorCall:
    """The parsed operator token of a request; checked when the route body runs."""

    def __init__(self, rt: Runtime, token: str, request_id: str | None) -> None:
        self.rt = rt
        self._token = token
        self.request_id = request_id

    def access(self) -> operators.OperatorAccess:
        """Authenticate (a refused key is an installation-log entry, then 401; 503 if that
        entry cannot be written)."""
        operator = operators.sign_in(self.rt, self._token, self.request_id)
        return operators.OperatorAccess(self.rt, operator, self.request_id)

    async def run(self, fn: Callable[[operators.OperatorAccess], R]) -> R:
        """Authenticate, then run ``fn`` (off the event loop on PostgreSQL)."""
        return await run_blocking(self.rt, lambda: fn(self.access()))


async def operator_call(request: Request) -> OperatorCall:
    """Refuse a missing or malformed operator token (401) before any work."""
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("missing bearer token")
    operators.parse_operator_token(token.strip())
    request_id = request.scope.get("state", {}).get("request_id")
    return OperatorCall(request.app.state.runtime, token.strip(), request_id)


OperatorDep = Annotated[OperatorCall, Depends(operator_call)]


class OperatorOut(Out):
    id: str
    role: str


class TenantMetaOut(Out):
    id: str
    name: str
    created_at: datetime


class DeploymentMetaOut(Out):
    id: str
    name: str
    region: str
    created_at: datetime


class AgentMetaOut(Out):
    id: str
    deployment_id: str
    name: str
    created_at: datetime


@router.get("/me")
async def me(op: OperatorDep) -> OperatorOut:
    """Who the key belongs to (no tenant data)."""
    access = await op.run(lambda a: a)
    return OperatorOut(id=access.operator.id, role=access.operator.role.value)


@router.get("/tenants")
async def list_tenants(
    op: OperatorDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[TenantMetaOut]:
    """Tenants, oldest first: an audit entry in each listed tenant's log."""
    rows = await op.run(lambda a: a.tenants(limit))
    return [TenantMetaOut(id=r.id, name=r.name, created_at=r.created_at) for r in rows]


@router.get("/tenants/{tenant_id}")
async def get_tenant(tenant_id: ResourceId, op: OperatorDep) -> TenantMetaOut:
    r = await op.run(lambda a: a.tenant(tenant_id))
    return TenantMetaOut(id=r.id, name=r.name, created_at=r.created_at)


@router.get("/tenants/{tenant_id}/deployments")
async def list_deployments(tenant_id: ResourceId, op: OperatorDep) -> list[DeploymentMetaOut]:
    rows = await op.run(lambda a: a.deployments(tenant_id))
    return [
        DeploymentMetaOut(id=r.id, name=r.name, region=r.region, created_at=r.created_at)
        for r in rows
    ]


@router.get("/tenants/{tenant_id}/deployments/{deployment_id}/agents")
async def list_agents(
    tenant_id: ResourceId, deployment_id: ResourceId, op: OperatorDep
) -> list[AgentMetaOut]:
    rows = await op.run(lambda a: a.agents(tenant_id, deployment_id))
    return [
        AgentMetaOut(id=r.id, deployment_id=r.deployment_id, name=r.name, created_at=r.created_at)
        for r in rows
    ]


@router.get("/tenants/{tenant_id}/calls")
async def list_calls(
    tenant_id: ResourceId,
    op: OperatorDep,
    deployment_id: OptionalId = None,
    agent_id: OptionalId = None,
    call_status: Annotated[
        Literal["active", "completed", "incomplete", "failed"] | None, Query(alias="status")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[schemas.CallOut]:
    """Call metadata, newest first (ids, times, status, counts)."""
    rows = await op.run(
        lambda a: a.calls(
            tenant_id,
            deployment_id=deployment_id,
            agent_id=agent_id,
            status=call_status,
            limit=limit,
        )
    )
    return [resources.call_out(r) for r in rows]


@router.get("/tenants/{tenant_id}/calls/{call_id}")
async def get_call(tenant_id: ResourceId, call_id: ResourceId, op: OperatorDep) -> schemas.CallOut:
    return resources.call_out(await op.run(lambda a: a.call(tenant_id, call_id)))


@router.get("/tenants/{tenant_id}/calls/{call_id}/transcript")
async def read_transcript(
    tenant_id: ResourceId,
    call_id: ResourceId,
    op: OperatorDep,
    view: Annotated[Literal["full", "redacted"] | None, Query()] = None,
) -> schemas.TranscriptOut:
    """Redacted only, under an approved break-glass grant for the call's deployment
    (``view=full`` is refused to every operator)."""
    t = await op.run(lambda a: a.transcript(tenant_id, call_id, view))
    return schemas.TranscriptOut.of(t)


@router.get(
    "/tenants/{tenant_id}/calls/{call_id}/recording",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"audio/wav": {}}, "description": "The masked recording (WAV)."},
        206: {"content": {"audio/wav": {}}, "description": "The requested byte range."},
    },
)
async def play_recording(
    tenant_id: ResourceId,
    call_id: ResourceId,
    op: OperatorDep,
    request: Request,
    view: Annotated[Literal["full", "masked"] | None, Query()] = None,
) -> StreamingResponse:
    """Masked only, under an approved break-glass grant for the call's deployment."""
    range_header = request.headers.get("range")
    played = await op.run(lambda a: a.recording(tenant_id, call_id, view, range_header))
    return StreamingResponse(
        played.body, status_code=played.status, headers=played.headers, media_type="audio/wav"
    )


@router.post("/tenants/{tenant_id}/break-glass", status_code=status.HTTP_201_CREATED)
async def request_break_glass(
    tenant_id: ResourceId, body: BreakGlassRequestIn, op: OperatorDep
) -> BreakGlassOut:
    """Ask the tenant for redacted content access to one deployment (pending until a
    tenant admin approves; the tenant's audit log and SIEM sinks are told at once)."""
    row = await op.run(
        lambda a: a.request_break_glass(
            tenant_id,
            deployment_id=body.deployment_id,
            reason=body.reason,
            ticket_ref=body.ticket_ref,
            duration=timedelta(minutes=body.duration_minutes),
        )
    )
    return break_glass_out(operators.view(row, operators.clock_now()))


@router.get("/tenants/{tenant_id}/break-glass")
async def my_requests(
    tenant_id: ResourceId,
    op: OperatorDep,
    grant_status: Annotated[StatusName | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[BreakGlassOut]:
    """The calling operator's own requests in the tenant, newest first."""
    wanted = None if grant_status is None else operators.Status(grant_status)
    views = await op.run(lambda a: a.my_requests(tenant_id, wanted, limit))
    return [break_glass_out(v) for v in views]


@router.post("/tenants/{tenant_id}/break-glass/{grant_id}/revoke")
async def revoke_break_glass(
    tenant_id: ResourceId, grant_id: ResourceId, op: OperatorDep
) -> BreakGlassOut:
    """Withdraw one's own request, or end one's own grant early."""
    return break_glass_out(await op.run(lambda a: a.revoke_break_glass(tenant_id, grant_id)))
