"""What an operator may do: a fixed table by operator role, and what a grant lends.

Pure values in, values out (no I/O). Two layers decide an operator's request:

1. :func:`decide` — the operator policy. Metadata actions by role; content
   actions only for ``support_engineer`` holding an *active* break-glass
   grant for the resource's own tenant and deployment, and only the least
   views (redacted transcript, masked recording). Full views, configuration,
   secrets and detokenization are in no operator role.
2. For content, the tenant's gate (:class:`callvault.access.Gate`, Cedar)
   decides again on the principal the grant lends
   (:func:`break_glass_principal`): a ``qa_reviewer`` binding at that one
   deployment, in that tenant, tagged realm ``operator`` and the grant id —
   the same gate, audit and redaction path as a tenant's own reviewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from callvault.access import Action, Binding, Principal, Role, ScopeKind
from callvault.operators._realm import Operator, OperatorRole

#: The longest a tenant can open its content to an operator, per grant.
MAX_DURATION: Final = timedelta(hours=4)
#: A request not decided within this can no longer be approved (ask again).
DECIDE_WITHIN: Final = timedelta(hours=24)
#: The tenant role a grant lends, at the grant's deployment only.
LENT_ROLE: Final = Role.QA_REVIEWER


class OperatorAction(StrEnum):
    """What an operator request asks for. Values read like the tenant actions in audit logs."""

    TENANT_READ = "tenant:read"
    DEPLOYMENT_READ = "deployment:read"
    AGENT_READ = "agent:read"
    CALL_LIST = "call:list"
    CALL_READ = "call:read"
    #: The operator's own break-glass requests in a tenant.
    BREAK_GLASS_READ = "break_glass:read"
    BREAK_GLASS_REQUEST = "break_glass:request"
    #: End one's own request or grant early.
    BREAK_GLASS_REVOKE = "break_glass:revoke"
    TRANSCRIPT_READ_REDACTED = "transcript:read_redacted"
    RECORDING_READ_MASKED = "recording:read_masked"
    #: Named so that a refusal is audited as what was asked; no role has them.
    TRANSCRIPT_READ = "transcript:read"
    RECORDING_READ = "recording:read"


METADATA: Final = frozenset(
    {
        OperatorAction.TENANT_READ,
        OperatorAction.DEPLOYMENT_READ,
        OperatorAction.AGENT_READ,
        OperatorAction.CALL_LIST,
        OperatorAction.CALL_READ,
    }
)
#: Content an active grant opens, and the tenant action the gate is asked for.
CONTENT: Final[dict[OperatorAction, Action]] = {
    OperatorAction.TRANSCRIPT_READ_REDACTED: Action.TRANSCRIPT_READ_REDACTED,
    OperatorAction.RECORDING_READ_MASKED: Action.RECORDING_READ_MASKED,
}
ROLE_ACTIONS: Final[dict[OperatorRole, frozenset[OperatorAction]]] = {
    OperatorRole.SUPPORT_READONLY: METADATA,
    OperatorRole.SUPPORT_ENGINEER: METADATA
    | {
        OperatorAction.BREAK_GLASS_READ,
        OperatorAction.BREAK_GLASS_REQUEST,
        OperatorAction.BREAK_GLASS_REVOKE,
    }
    | frozenset(CONTENT),
}


@dataclass(frozen=True, slots=True)
class ActiveGrant:
    """An approved break-glass grant as a decision sees it."""

    id: str
    tenant_id: str
    deployment_id: str
    operator_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OperatorDecision:
    allowed: bool
    #: ``operator-role-<role>`` when allowed; else why not: ``role``, ``no-break-glass``.
    reason: str
    grant_id: str | None = None


def decide(
    operator: Operator,
    action: OperatorAction,
    *,
    tenant_id: str,
    deployment_id: str | None = None,
    grant: ActiveGrant | None = None,
    now: datetime | None = None,
) -> OperatorDecision:
    """The operator policy (module docstring, layer 1).

    For a content action the caller MUST pass the resource's deployment, the
    grant it found for it and the current time; the grant is checked again
    here (operator, tenant, deployment, not expired), so a wrong one denies.
    """
    if action not in ROLE_ACTIONS.get(operator.role, frozenset()):
        return OperatorDecision(allowed=False, reason="role")
    if action in CONTENT:
        if (
            grant is None
            or now is None
            or deployment_id is None
            or grant.operator_id != operator.id
            or grant.tenant_id != tenant_id
            or grant.deployment_id != deployment_id
            or now >= grant.expires_at
        ):
            return OperatorDecision(allowed=False, reason="no-break-glass")
        return OperatorDecision(
            allowed=True, reason=f"break-glass-{LENT_ROLE.value}", grant_id=grant.id
        )
    return OperatorDecision(allowed=True, reason=f"operator-role-{operator.role.value}")


def break_glass_principal(operator: Operator, grant: ActiveGrant) -> Principal:
    """The principal the tenant's gate decides on for an operator under ``grant``.

    It is no row of the tenant: it exists for one request, holds ``qa_reviewer``
    at the grant's deployment only, and carries the realm and the grant id into
    every audit entry the gate writes.
    """
    if grant.operator_id != operator.id:
        raise ValueError("the grant is another operator's")
    return Principal(
        id=operator.id,
        tenant_id=grant.tenant_id,
        kind="operator",
        active=True,
        bindings=frozenset({Binding(LENT_ROLE, ScopeKind.DEPLOYMENT, grant.deployment_id)}),
        key_id=operator.key_id,
        realm="operator",
        break_glass_id=grant.id,
    )
