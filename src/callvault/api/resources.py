"""Rows to the gate's :class:`Resource` values, and rows to response bodies."""

from __future__ import annotations

from callvault.access import Resource
from callvault.api import schemas
from callvault.store.rows import AgentFields, CallFields, DeploymentFields, TenantFields
from callvault.tenancy import VersionInfo


def of_tenant(row: TenantFields) -> Resource:
    return Resource.tenant(row.id)


def of_deployment(row: DeploymentFields) -> Resource:
    return Resource.deployment(row.tenant_id, row.id)


def of_agent(row: AgentFields) -> Resource:
    return Resource.agent(row.tenant_id, row.deployment_id, row.id)


def of_call(row: CallFields) -> Resource:
    return Resource.call(row.tenant_id, row.deployment_id, row.agent_id, row.id)


def tenant_out(row: TenantFields) -> schemas.TenantOut:
    return schemas.TenantOut(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        current_version_id=row.current_version_id,
    )


def deployment_out(row: DeploymentFields) -> schemas.DeploymentOut:
    return schemas.DeploymentOut(
        id=row.id,
        name=row.name,
        region=row.region,
        retention=schemas.RetentionOut(
            recordings_days=row.recording_retention_days,
            transcripts_days=row.transcript_retention_days,
        ),
        key_provider=row.key_provider,
        key_ref=row.key_ref,
        created_at=row.created_at,
        current_version_id=row.current_version_id,
    )


def agent_out(row: AgentFields) -> schemas.AgentOut:
    return schemas.AgentOut(
        id=row.id,
        deployment_id=row.deployment_id,
        name=row.name,
        created_at=row.created_at,
        current_version_id=row.current_version_id,
    )


def call_out(row: CallFields) -> schemas.CallOut:
    return schemas.CallOut(
        id=row.id,
        deployment_id=row.deployment_id,
        agent_id=row.agent_id,
        direction=row.direction,
        status=row.status,
        started_at=row.started_at,
        ended_at=row.ended_at,
        segment_count=row.segment_count,
        event_count=row.event_count,
        has_caller_number=row.caller_number_sealed is not None,
    )


def version_out(info: VersionInfo) -> schemas.VersionOut:
    return schemas.VersionOut(
        id=info.id,
        subject_kind=info.subject_kind,
        subject_id=info.subject_id,
        seq=info.seq,
        parent_id=info.parent_id,
        actor_id=info.actor_id,
        op=info.op,
        created_at=info.created_at,
    )
