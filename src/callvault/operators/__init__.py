"""The platform-operator realm and break-glass access (issue 7; docs/adr/0016).

Operators run an installation; they are principals of their own realm, never
members of a tenant, with their own keys (``cvop1.…``) and roles. They see
tenants' metadata by role, every request audited in the tenant's own log,
and no tenant content unless a tenant admin approves a break-glass request:
one deployment, at most 4 hours, redacted views only, through the tenant's
own gate.

The realm's own history — operators created, roles changed, disabled and
enabled, keys issued and revoked, refused operator keys, and a mirror of every
break-glass step — is the installation audit log (docs/adr/0017): the same
Merkle log, checkpoints and bundles as a tenant's, under a reserved id.
Lifecycle changes go through :mod:`callvault.operators._admin` (the CLI).
"""

from datetime import datetime

from callvault.operators import _clock
from callvault.operators._access import OperatorAccess, sign_in
from callvault.operators._authorize import (
    MAX_DURATION,
    ActiveGrant,
    OperatorAction,
    OperatorDecision,
    break_glass_principal,
    decide,
)
from callvault.operators._break_glass import (
    Actor,
    BreakGlassView,
    Status,
    approve,
    deny,
    expire_due,
    find_active,
    list_requests,
    revoke,
    tenant_request,
    tenant_requests,
    view,
)
from callvault.operators._break_glass import get as get_request
from callvault.operators._realm import (
    AUTH_FAILURE_REASONS,
    TOKEN_PREFIX,
    IssuedOperatorKey,
    Operator,
    OperatorAuthError,
    OperatorInfo,
    OperatorRole,
    activate_operator,
    authenticate_operator,
    create_operator,
    deactivate_operator,
    issue_operator_key,
    list_operators,
    parse_operator_token,
    revoke_operator_key,
    set_operator_role,
)
from callvault.store.ids import INSTALLATION_LOG


def clock_now() -> datetime:
    """The clock break-glass decisions read (``_clock.now``; tests move it)."""
    return _clock.now()


__all__ = [
    "AUTH_FAILURE_REASONS",
    "INSTALLATION_LOG",
    "MAX_DURATION",
    "TOKEN_PREFIX",
    "ActiveGrant",
    "Actor",
    "BreakGlassView",
    "IssuedOperatorKey",
    "Operator",
    "OperatorAccess",
    "OperatorAction",
    "OperatorAuthError",
    "OperatorDecision",
    "OperatorInfo",
    "OperatorRole",
    "Status",
    "activate_operator",
    "approve",
    "authenticate_operator",
    "break_glass_principal",
    "clock_now",
    "create_operator",
    "deactivate_operator",
    "decide",
    "deny",
    "expire_due",
    "find_active",
    "get_request",
    "issue_operator_key",
    "list_operators",
    "list_requests",
    "parse_operator_token",
    "revoke",
    "revoke_operator_key",
    "set_operator_role",
    "sign_in",
    "tenant_request",
    "tenant_requests",
    "view",
]
