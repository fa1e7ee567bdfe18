"""Access: principals, roles and the one gate every request passes.

``authorize(principal, action, resource)`` decides with Cedar; ``enforce``
(in :mod:`callvault.access.gate`) adds the audit trail: every denial and
every content read is an audit event, committed before content is opened.
"""

from callvault.access._authorize import Authorizer, Decision, authorize, default_authorizer
from callvault.access._lifecycle import (
    ActiveChange,
    change_active,
    get_binding,
    holds_owner,
    unbind_role,
)
from callvault.access._model import Binding, Principal, Resource, ResourceKind, RoleRevocation
from callvault.access._principals import (
    IssuedKey,
    Revocation,
    TokenParts,
    authenticate,
    bind_role,
    create_principal,
    get_principal,
    issue_key,
    list_bindings,
    list_principals,
    load_principal,
    parse_token,
    revoke_key,
)
from callvault.access.gate import Gate, Grant
from callvault.access.roles import CONTENT_ACTIONS, ROLE_ACTIONS, Action, Role, ScopeKind

__all__ = [
    "CONTENT_ACTIONS",
    "ROLE_ACTIONS",
    "Action",
    "ActiveChange",
    "Authorizer",
    "Binding",
    "Decision",
    "Gate",
    "Grant",
    "IssuedKey",
    "Principal",
    "Resource",
    "ResourceKind",
    "Revocation",
    "Role",
    "RoleRevocation",
    "ScopeKind",
    "TokenParts",
    "authenticate",
    "authorize",
    "bind_role",
    "change_active",
    "create_principal",
    "default_authorizer",
    "get_binding",
    "get_principal",
    "holds_owner",
    "issue_key",
    "list_bindings",
    "list_principals",
    "load_principal",
    "parse_token",
    "revoke_key",
    "unbind_role",
]
