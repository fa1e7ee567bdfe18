"""The gate every request passes: authorize, then audit, then (maybe) content.

:meth:`Gate.enforce` is the only way to obtain a :class:`Grant`, and every
domain function that opens customer content takes one, so no code path can
read content without having passed the gate and committed its audit entry.

Steps of :meth:`Gate.enforce`:

1. Ask :func:`authorize` (Cedar) for the decision.
2. Denied: append a ``denied`` audit entry (committed), then raise
   :class:`NotFoundError` if the principal may not even see the resource (so
   its existence does not leak) or :class:`PermissionDeniedError` otherwise.
3. Allowed content action: append an ``allowed`` audit entry and commit it
   *before* returning; if that fails, :class:`AuditUnavailableError` (503)
   propagates and nothing is opened.
4. Return the :class:`Grant`.
"""

from __future__ import annotations

from dataclasses import dataclass

from callvault.access._authorize import Authorizer
from callvault.access._model import Principal, Resource, ResourceKind
from callvault.access.roles import CONTENT_ACTIONS, Action
from callvault.audit import AuditEvent, AuditLog, Outcome
from callvault.errors import NotFoundError, PermissionDeniedError

_VISIBILITY = {
    ResourceKind.TENANT: Action.TENANT_READ,
    ResourceKind.DEPLOYMENT: Action.DEPLOYMENT_READ,
    ResourceKind.AGENT: Action.AGENT_READ,
    ResourceKind.CALL: Action.CALL_READ,
}

_MINT = object()


class Grant:
    """Proof that ``principal`` passed the gate for ``action`` on ``resource``."""

    __slots__ = ("action", "audit_index", "principal", "resource")

    def __init__(
        self,
        token: object,
        principal: Principal,
        action: Action,
        resource: Resource,
        audit_index: int | None,
    ) -> None:
        if token is not _MINT:
            raise TypeError("a Grant is issued only by Gate.enforce")
        self.principal = principal
        self.action = action
        self.resource = resource
        self.audit_index = audit_index

    def require(self, *actions: Action, resource_id: str) -> None:
        """Domain functions call this to check the grant covers what they open."""
        if self.action not in actions or self.resource.id != resource_id:
            raise PermissionDeniedError("grant does not cover this read")


def _detail(principal: Principal, reasons: tuple[str, ...]) -> dict[str, object]:
    detail: dict[str, object] = {"policies": list(reasons), "key": principal.key_id}
    if principal.realm != "tenant":  # an operator under break-glass: say so, with the grant
        detail["realm"] = principal.realm
        detail["break_glass"] = principal.break_glass_id
    return detail


@dataclass(frozen=True, slots=True)
class RequestInfo:
    request_id: str | None = None


class Gate:
    def __init__(self, authorizer: Authorizer, audit: AuditLog) -> None:
        self._authorizer = authorizer
        self._audit = audit

    def allows(self, principal: Principal, action: Action, resource: Resource) -> bool:
        """A bare decision, for shaping a reply (never for reading content)."""
        return self._authorizer.authorize(principal, action, resource).allowed

    def enforce(
        self,
        principal: Principal,
        action: Action,
        resource: Resource,
        *,
        request_id: str | None = None,
    ) -> Grant:
        # (1)
        decision = self._authorizer.authorize(principal, action, resource)
        event = AuditEvent(
            action=action.value,
            outcome=Outcome.ALLOWED if decision.allowed else Outcome.DENIED,
            actor=principal.id,
            resource_kind=resource.kind.value,
            resource_id=resource.id,
            request_id=request_id,
            detail=_detail(principal, decision.reasons),
        )
        # (2)
        if not decision.allowed:
            # Audit into the principal's tenant: a cross-tenant resource is never
            # loaded (the domain layer scopes by tenant), so this is the same tenant.
            self._audit.append(principal.tenant_id, event)
            visible = _VISIBILITY[resource.kind]
            if action is visible or not self.allows(principal, visible, resource):
                raise NotFoundError(f"{resource.kind.value} not found")
            raise PermissionDeniedError(f"not allowed to {action.value}")
        # (3)
        index = None
        if action in CONTENT_ACTIONS:
            index = self._audit.append(principal.tenant_id, event)[0]
        # (4)
        return Grant(_MINT, principal, action, resource, index)
