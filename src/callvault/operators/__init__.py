"""The platform-operator realm and break-glass access (issue 7; docs/adr/0016).

Operators run an installation; they are principals of their own realm, never
members of a tenant, with their own keys (``cvop1.…``) and roles. They see
tenants' metadata by role, every request audited in the tenant's own log,
and no tenant content unless a tenant admin approves a break-glass request:
one deployment, at most 4 hours, redacted views only, through the tenant's
own gate.
"""

from datetime import datetime

from callvault.operators import _clock
from callvault.operators._access import OperatorAccess
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
    TOKEN_PREFIX,
    IssuedOperatorKey,
    Operator,
    OperatorInfo,
    OperatorRole,
    authenticate_operator,
    create_operator,
    deactivate_operator,
    issue_operator_key,
    list_operators,
    parse_operator_token,
    revoke_operator_key,
)


def clock_now() -> datetime:
    """The clock break-glass decisions read (``_clock.now``; tests move it)."""
    return _clock.now()


__all__ = [
    "MAX_DURATION",
    "TOKEN_PREFIX",
    "ActiveGrant",
    "Actor",
    "BreakGlassView",
    "IssuedOperatorKey",
    "Operator",
    "OperatorAccess",
    "OperatorAction",
    "OperatorDecision",
    "OperatorInfo",
    "OperatorRole",
    "Status",
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
    "tenant_request",
    "tenant_requests",
    "view",
]
