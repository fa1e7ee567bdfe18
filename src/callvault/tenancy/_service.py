"""Tenants, deployments and agents: every create or update is a new version.

Each change runs in the caller's tenant transaction and writes, together or
not at all: the plain metadata columns, a sealed immutable version, and the
audit entry. A failure anywhere rolls all three back, so a bad request leaves
no partial rows or versions.

Callers MUST have passed the access gate for the subject before calling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel, ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callvault.audit import AuditEvent, AuditLog, Outcome
from callvault.audit._entry import OCSF_ENTITY_MANAGEMENT
from callvault.crypto import Sealer
from callvault.errors import ConflictError, InvalidInputError, NotFoundError
from callvault.store import new_id
from callvault.store.models import Agent, Deployment, Tenant, utcnow
from callvault.store.prepared import Prepared, Reader, connection_of
from callvault.store.rows import AgentFields, DeploymentFields, TenantFields
from callvault.tenancy import _versions as versions
from callvault.tenancy._settings import AgentSettings, DeploymentSettings, TenantSettings

Subject = Tenant | Deployment | Agent


@dataclass(frozen=True, slots=True)
class Change:
    """Who changes what, for the version and the audit entry."""

    actor_id: str
    request_id: str | None = None


def _kind(subject: Subject) -> str:
    if isinstance(subject, Tenant):
        return "tenant"
    if isinstance(subject, Deployment):
        return "deployment"
    return "agent"


_MODELS: dict[str, type[BaseModel]] = {
    "tenant": TenantSettings,
    "deployment": DeploymentSettings,
    "agent": AgentSettings,
}


def _model(kind: str) -> type[BaseModel]:
    return _MODELS[kind]


def _tenant_of(subject: Subject) -> str:
    return subject.id if isinstance(subject, Tenant) else subject.tenant_id


def _deployment_of(subject: Subject) -> str | None:
    if isinstance(subject, Deployment):
        return subject.id
    if isinstance(subject, Agent):
        return subject.deployment_id
    return None


def _apply(subject: Subject, settings: BaseModel) -> None:
    """Copy the metadata part of ``settings`` into the subject's plain columns."""
    if isinstance(subject, Deployment):
        assert isinstance(settings, DeploymentSettings)  # noqa: S101 - narrowing for mypy
        if subject.region and subject.region != settings.region.value:
            raise ConflictError(
                "a deployment's region cannot change; create a new deployment", field="region"
            )
        if subject.key_provider and (
            subject.key_provider != settings.key_provider or subject.key_ref != settings.key_ref
        ):
            raise ConflictError(
                "a deployment's key provider is changed by key rotation, not by a settings edit",
                field="key_provider",
            )
        subject.region = settings.region.value
        subject.recording_retention_days = settings.retention.recordings_days
        subject.transcript_retention_days = settings.retention.transcripts_days
        subject.key_provider = settings.key_provider
        subject.key_ref = settings.key_ref
    subject.name = settings.name  # type: ignore[attr-defined]


def _commit_version(
    session: Session,
    sealer: Sealer,
    audit: AuditLog,
    subject: Subject,
    settings: BaseModel,
    change: Change,
    op: str,
    detail: dict[str, Any] | None = None,
) -> versions.VersionInfo:
    kind = _kind(subject)
    tenant_id = _tenant_of(subject)
    _apply(subject, settings)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(f"a {kind} with this name already exists", field="name") from None
    info = versions.write_version(
        session,
        sealer,
        tenant_id=tenant_id,
        deployment_id=_deployment_of(subject),
        subject_kind=kind,
        subject_id=subject.id,
        content=settings.model_dump(mode="json"),
        actor_id=change.actor_id,
        op=op,
        parent_id=subject.current_version_id,
    )
    subject.current_version_id = info.id
    audit.append_in(
        session,
        tenant_id,
        AuditEvent(
            action=f"{kind}.{op}",
            outcome=Outcome.SUCCESS,
            actor=change.actor_id,
            resource_kind=kind,
            resource_id=subject.id,
            request_id=change.request_id,
            ocsf_class=OCSF_ENTITY_MANAGEMENT,
            detail={"version": info.id, "parent": info.parent_id, **(detail or {})},
        ),
    )
    session.flush()
    return info


# -- reads -----------------------------------------------------------------


# Lookups on the hot path are built once and executed with parameters.
_GET_TENANT = select(Tenant).where(Tenant.id == bindparam("t"))
_GET_DEPLOYMENT = select(Deployment).where(
    Deployment.tenant_id == bindparam("t"), Deployment.id == bindparam("i")
)
_GET_AGENT = select(Agent).where(Agent.tenant_id == bindparam("t"), Agent.id == bindparam("i"))


_T, _D, _A = Tenant.__table__, Deployment.__table__, Agent.__table__
_READ_TENANT = Prepared(select(_T).where(_T.c.id == bindparam("t")), name="tenant")
_READ_DEPLOYMENT = Prepared(
    select(_D).where(_D.c.tenant_id == bindparam("t"), _D.c.id == bindparam("i")),
    name="deployment",
)
_READ_AGENT = Prepared(
    select(_A).where(_A.c.tenant_id == bindparam("t"), _A.c.id == bindparam("i")),
    name="agent",
)


def read_tenant(db: Reader, tenant_id: str) -> TenantFields:
    """The tenant's metadata as a read-only row (no ORM object)."""
    row = _READ_TENANT.one_or_none(connection_of(db), {"t": tenant_id})
    if row is None:
        raise NotFoundError("tenant not found", field="tenant_id")
    return cast("TenantFields", row)


def read_deployment(db: Reader, tenant_id: str, deployment_id: str) -> DeploymentFields:
    """A deployment's metadata as a read-only row (no ORM object)."""
    params = {"t": tenant_id, "i": deployment_id}
    row = _READ_DEPLOYMENT.one_or_none(connection_of(db), params)
    if row is None:
        raise NotFoundError("deployment not found", field="deployment_id")
    return cast("DeploymentFields", row)


def read_agent(db: Reader, tenant_id: str, agent_id: str) -> AgentFields:
    """An agent's metadata as a read-only row (no ORM object)."""
    row = _READ_AGENT.one_or_none(connection_of(db), {"t": tenant_id, "i": agent_id})
    if row is None:
        raise NotFoundError("agent not found", field="agent_id")
    return cast("AgentFields", row)


def get_tenant(session: Session, tenant_id: str) -> Tenant:
    row = session.execute(_GET_TENANT, {"t": tenant_id}).scalar_one_or_none()
    if row is None:
        raise NotFoundError("tenant not found", field="tenant_id")
    return row


def get_deployment(session: Session, tenant_id: str, deployment_id: str) -> Deployment:
    row = session.execute(
        _GET_DEPLOYMENT, {"t": tenant_id, "i": deployment_id}
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError("deployment not found", field="deployment_id")
    return row


def list_deployments(session: Session, tenant_id: str) -> list[Deployment]:
    rows = session.execute(
        select(Deployment).where(Deployment.tenant_id == tenant_id).order_by(Deployment.created_at)
    ).scalars()
    return list(rows)


def get_agent(session: Session, tenant_id: str, agent_id: str) -> Agent:
    row = session.execute(_GET_AGENT, {"t": tenant_id, "i": agent_id}).scalar_one_or_none()
    if row is None:
        raise NotFoundError("agent not found", field="agent_id")
    return row


def list_agents(session: Session, tenant_id: str, deployment_id: str) -> list[Agent]:
    rows = session.execute(
        select(Agent)
        .where(Agent.tenant_id == tenant_id, Agent.deployment_id == deployment_id)
        .order_by(Agent.created_at)
    ).scalars()
    return list(rows)


def version_content(
    session: Session, sealer: Sealer, subject: Subject, version_id: str
) -> dict[str, Any]:
    """The configuration held by one of the subject's versions (opens it)."""
    return versions.read_content(
        session,
        sealer,
        tenant_id=_tenant_of(subject),
        deployment_id=_deployment_of(subject),
        subject_kind=_kind(subject),
        subject_id=subject.id,
        version_id=version_id,
    )


def current_settings(session: Session, sealer: Sealer, subject: Subject) -> dict[str, Any]:
    """The subject's current configuration (opens its sealed current version)."""
    if subject.current_version_id is None:  # pragma: no cover - every subject is created with one
        raise NotFoundError("no configuration version")
    return version_content(session, sealer, subject, subject.current_version_id)


def versions_of(session: Session, subject: Subject) -> list[versions.VersionInfo]:
    return versions.list_versions(
        session, tenant_id=_tenant_of(subject), subject_kind=_kind(subject), subject_id=subject.id
    )


def version_info(session: Session, subject: Subject, version_id: str) -> versions.VersionInfo:
    return versions.get_version_info(
        session,
        tenant_id=_tenant_of(subject),
        subject_kind=_kind(subject),
        subject_id=subject.id,
        version_id=version_id,
    )


# -- creates ---------------------------------------------------------------


def create_tenant(
    session: Session,
    sealer: Sealer,
    audit: AuditLog,
    settings: TenantSettings,
    change: Change,
    *,
    tenant_id: str | None = None,
) -> Tenant:
    tenant = Tenant(id=tenant_id or new_id("ten"), name=settings.name, created_at=utcnow())
    session.add(tenant)
    session.flush()
    _commit_version(session, sealer, audit, tenant, settings, change, "create")
    return tenant


def create_deployment(
    session: Session,
    sealer: Sealer,
    audit: AuditLog,
    tenant_id: str,
    settings: DeploymentSettings,
    change: Change,
) -> Deployment:
    dep = Deployment(
        id=new_id("dep"), tenant_id=tenant_id, region="", key_provider="", created_at=utcnow()
    )
    session.add(dep)
    _commit_version(session, sealer, audit, dep, settings, change, "create")
    return dep


def create_agent(
    session: Session,
    sealer: Sealer,
    audit: AuditLog,
    deployment: Deployment,
    settings: AgentSettings,
    change: Change,
) -> Agent:
    agent = Agent(
        id=new_id("agt"),
        tenant_id=deployment.tenant_id,
        deployment_id=deployment.id,
        created_at=utcnow(),
    )
    session.add(agent)
    _commit_version(session, sealer, audit, agent, settings, change, "create")
    return agent


# -- updates and reverts ---------------------------------------------------


def update(
    session: Session,
    sealer: Sealer,
    audit: AuditLog,
    subject: Subject,
    patch: dict[str, Any],
    change: Change,
) -> versions.VersionInfo | None:
    """Merge ``patch`` (top-level fields) into the current settings; None if nothing changed."""
    current = current_settings(session, sealer, subject)
    merged = {**current, **patch}
    try:
        settings = _model(_kind(subject)).model_validate(merged)
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InvalidInputError(f"{field}: {err['msg']}", field=field) from None
    if settings.model_dump(mode="json") == current:
        return None
    return _commit_version(session, sealer, audit, subject, settings, change, "update")


def revert(
    session: Session,
    sealer: Sealer,
    audit: AuditLog,
    subject: Subject,
    version_id: str,
    change: Change,
) -> versions.VersionInfo:
    """A new version whose content equals ``version_id``'s."""
    settings = _model(_kind(subject)).model_validate(
        version_content(session, sealer, subject, version_id)
    )
    return _commit_version(
        session, sealer, audit, subject, settings, change, "revert", {"reverted_to": version_id}
    )
