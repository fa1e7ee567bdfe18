"""Roles and the actions each may perform: the entity data behind the Cedar policies.

The policy set (``policies.cedar``) has one generic rule per role; which
actions a role grants is data (each action's parent action groups), and which
principal holds which role where is data (the principal's ``bindings``).
Adding a grant never adds a policy.

Separation of duties: ``owner`` and ``admin`` run the tenant but do not read
call content; content readers are ``compliance_officer`` (everything) and
``qa_reviewer`` (redacted transcripts and masked audio only).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    COMPLIANCE_OFFICER = "compliance_officer"
    QA_REVIEWER = "qa_reviewer"
    DEVELOPER = "developer"
    AUDITOR = "auditor"
    #: Service accounts of voice agents and carriers: create and feed calls, read nothing.
    INGEST = "ingest"
    #: Hands tokenized card numbers to the payment connector; reads nothing. Never a
    #: default: bound deliberately to the one service account that settles payments.
    PAYMENT_OPERATOR = "payment_operator"


class ScopeKind(StrEnum):
    TENANT = "tenant"
    DEPLOYMENT = "deployment"
    AGENT = "agent"


class Action(StrEnum):
    """Every action a request can ask for. The value is the Cedar action id."""

    TENANT_READ = "tenant:read"
    TENANT_UPDATE = "tenant:update"
    PRINCIPAL_READ = "principal:read"
    PRINCIPAL_MANAGE = "principal:manage"
    PRINCIPAL_GRANT_OWNER = "principal:grant_owner"
    AUDIT_READ = "audit:read"
    DEPLOYMENT_CREATE = "deployment:create"
    DEPLOYMENT_READ = "deployment:read"
    DEPLOYMENT_UPDATE = "deployment:update"
    AGENT_CREATE = "agent:create"
    AGENT_READ = "agent:read"
    AGENT_UPDATE = "agent:update"
    AGENT_READ_CONFIG = "agent:read_config"
    AGENT_READ_HISTORY = "agent:read_history"
    CONFIG_READ = "config:read"
    CALL_LIST = "call:list"
    CALL_CREATE = "call:create"
    CALL_READ = "call:read"
    CALL_APPEND = "call:append"
    TRANSCRIPT_READ = "transcript:read"
    TRANSCRIPT_READ_REDACTED = "transcript:read_redacted"
    RECORDING_READ = "recording:read"
    RECORDING_READ_MASKED = "recording:read_masked"
    #: Hand a card number from the tokenization vault to the payment connector.
    #: Only ``payment_operator`` has it (see payments/).
    PAYMENTS_DETOKENIZE = "payments:detokenize"
    #: See and decide platform operators' break-glass requests (callvault.operators).
    BREAK_GLASS_READ = "break_glass:read"
    BREAK_GLASS_APPROVE = "break_glass:approve"


#: Actions that return customer content: every one is an audit event when allowed.
CONTENT_ACTIONS: Final = frozenset(
    {
        Action.AGENT_READ_CONFIG,
        Action.TRANSCRIPT_READ,
        Action.TRANSCRIPT_READ_REDACTED,
        Action.RECORDING_READ,
        Action.RECORDING_READ_MASKED,
    }
)

_METADATA: Final = frozenset(
    {
        Action.TENANT_READ,
        Action.DEPLOYMENT_READ,
        Action.AGENT_READ,
        Action.CALL_LIST,
        Action.CALL_READ,
    }
)
_ADMIN: Final = _METADATA | {
    Action.TENANT_UPDATE,
    Action.PRINCIPAL_READ,
    Action.PRINCIPAL_MANAGE,
    Action.AUDIT_READ,
    Action.DEPLOYMENT_CREATE,
    Action.DEPLOYMENT_UPDATE,
    Action.AGENT_CREATE,
    Action.AGENT_UPDATE,
    Action.AGENT_READ_CONFIG,
    Action.AGENT_READ_HISTORY,
    Action.CONFIG_READ,
    Action.BREAK_GLASS_READ,
    Action.BREAK_GLASS_APPROVE,
}

ROLE_ACTIONS: Final[dict[Role, frozenset[Action]]] = {
    Role.OWNER: frozenset(_ADMIN | {Action.PRINCIPAL_GRANT_OWNER}),
    Role.ADMIN: frozenset(_ADMIN),
    Role.COMPLIANCE_OFFICER: frozenset(
        _METADATA
        | {
            Action.CONFIG_READ,
            Action.AGENT_READ_CONFIG,
            Action.AGENT_READ_HISTORY,
            Action.AUDIT_READ,
            Action.TRANSCRIPT_READ,
            Action.TRANSCRIPT_READ_REDACTED,
            Action.RECORDING_READ,
            Action.RECORDING_READ_MASKED,
        }
    ),
    Role.QA_REVIEWER: frozenset(
        _METADATA | {Action.TRANSCRIPT_READ_REDACTED, Action.RECORDING_READ_MASKED}
    ),
    Role.DEVELOPER: frozenset(
        _METADATA
        | {
            Action.AGENT_CREATE,
            Action.AGENT_UPDATE,
            Action.AGENT_READ_CONFIG,
            Action.AGENT_READ_HISTORY,
        }
    ),
    Role.AUDITOR: frozenset(
        _METADATA
        | {
            Action.AUDIT_READ,
            Action.CONFIG_READ,
            Action.AGENT_READ_HISTORY,
            Action.PRINCIPAL_READ,
            Action.BREAK_GLASS_READ,
        }
    ),
    Role.INGEST: frozenset({Action.AGENT_READ, Action.CALL_CREATE, Action.CALL_APPEND}),
    Role.PAYMENT_OPERATOR: frozenset({Action.PAYMENTS_DETOKENIZE}),
}
