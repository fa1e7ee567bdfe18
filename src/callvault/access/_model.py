"""Values the gate decides on: who asks (Principal) and about what (Resource)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from callvault.access.roles import Role, ScopeKind


class ResourceKind(StrEnum):
    TENANT = "tenant"
    DEPLOYMENT = "deployment"
    AGENT = "agent"
    CALL = "call"


@dataclass(frozen=True, slots=True)
class Binding:
    """``role`` held at ``scope_kind``/``scope_id`` (and everything inside it)."""

    role: Role
    scope_kind: ScopeKind
    scope_id: str


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user or service account, with its role bindings."""

    id: str
    tenant_id: str
    kind: str
    active: bool
    #: A frozenset caches its hash, so the authorizer's per-principal cache
    #: costs one lookup even for principals with thousands of bindings.
    bindings: frozenset[Binding] = frozenset()
    #: The API key the request authenticated with, for the audit trail.
    key_id: str | None = None
    #: ``"tenant"`` for a tenant's users and service accounts; ``"operator"`` for a
    #: platform operator acting in this tenant under a break-glass grant (never a row
    #: of the tenant: see callvault.operators). Audited with every decision.
    realm: str = "tenant"
    #: The break-glass grant an operator acts under (audited with every decision).
    break_glass_id: str | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource with its containment chain: tenant ⊃ deployment ⊃ agent ⊃ call."""

    kind: ResourceKind
    id: str
    tenant_id: str
    deployment_id: str | None = None
    agent_id: str | None = None
    _chain: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        chain = [self.tenant_id]
        if self.deployment_id:
            chain.append(self.deployment_id)
        if self.agent_id:
            chain.append(self.agent_id)
        if self.kind is not ResourceKind.CALL and chain[-1] != self.id:
            chain.append(self.id)
        object.__setattr__(self, "_chain", tuple(chain))

    @property
    def scopes(self) -> tuple[str, ...]:
        """Ids of the scopes containing this resource, outermost first (itself included)."""
        return self._chain

    @classmethod
    def tenant(cls, tenant_id: str) -> Resource:
        return cls(ResourceKind.TENANT, tenant_id, tenant_id)

    @classmethod
    def deployment(cls, tenant_id: str, deployment_id: str) -> Resource:
        return cls(ResourceKind.DEPLOYMENT, deployment_id, tenant_id, deployment_id)

    @classmethod
    def agent(cls, tenant_id: str, deployment_id: str, agent_id: str) -> Resource:
        return cls(ResourceKind.AGENT, agent_id, tenant_id, deployment_id, agent_id)

    @classmethod
    def call(cls, tenant_id: str, deployment_id: str, agent_id: str, call_id: str) -> Resource:
        return cls(ResourceKind.CALL, call_id, tenant_id, deployment_id, agent_id)


@dataclass(frozen=True, slots=True)
class RoleRevocation:
    """A role binding taken back (a SCIM group change, an SSO connection deleted or
    remapped): ids and role names only, for the audit entries."""

    principal_id: str
    binding_id: str
    role: str
    scope_kind: str
    scope_id: str
    connection_id: str
