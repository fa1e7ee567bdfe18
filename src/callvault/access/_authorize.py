"""``authorize(principal, action, resource)``: every decision, made by Cedar.

What Cedar sees:

- the policy set ``policies.cedar`` (parsed and validated once per process);
- entity data: the action hierarchy (each action's parents are the role
  action-groups that grant it, from :data:`ROLE_ACTIONS`) and the principal
  (tenant, active flag, and its role bindings as sets of scope ids per role);
- the request context: the resource's tenant and the ids of the scopes that
  contain it (tenant, deployment, agent), computed by the domain layer from
  tenant-scoped rows.

The parsed entity set for a principal is cached, keyed by the principal's
id, tenant, active flag and its (immutable, hash-caching) set of bindings: a
changed binding is a different key, so the cache cannot serve stale grants.
Decisions are memoised on a key that holds all of Cedar's input but the
fixed policy set (see :meth:`Authorizer.authorize`).
This module never decides on its own; it only shapes Cedar's input.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Generic, TypeVar

import cedarpy

from callvault.access._model import Binding, Principal, Resource, ResourceKind
from callvault.access.roles import ROLE_ACTIONS, Action, Role
from callvault.errors import ConfigError

_PRINCIPAL_CACHE_SIZE = 4096
_CONTEXT_CACHE_SIZE = 65536
_DECISION_CACHE_SIZE = 65536


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    #: ``@id`` of the policies that decided: the permitting role, or the forbid that won.
    reasons: tuple[str, ...] = ()


def _uid(type_: str, id_: str) -> dict[str, str]:
    return {"type": type_, "id": id_}


def policy_schema() -> dict[str, Any]:
    """Cedar schema (JSON form) for the policy set, generated from the role data."""
    scope_ids = {"type": "Set", "element": {"type": "String"}}
    actions: dict[str, Any] = {f"role:{role}": {} for role in Role}
    for action in Action:
        actions[action.value] = {
            "memberOf": [
                {"id": f"role:{role}"} for role, acts in ROLE_ACTIONS.items() if action in acts
            ],
            "appliesTo": {
                "principalTypes": ["Principal"],
                "resourceTypes": [kind.value.capitalize() for kind in ResourceKind],
                "context": {
                    "type": "Record",
                    "attributes": {"tenant": {"type": "String"}, "scopes": scope_ids},
                },
            },
        }
    entity_types: dict[str, Any] = {kind.value.capitalize(): {} for kind in ResourceKind}
    entity_types["Principal"] = {
        "shape": {
            "type": "Record",
            "attributes": {
                "tenant": {"type": "String"},
                "active": {"type": "Boolean"},
                "bindings": {
                    "type": "Record",
                    "attributes": {role.value: scope_ids for role in Role},
                },
            },
        }
    }
    return {"": {"entityTypes": entity_types, "actions": actions}}


def _action_entities() -> list[dict[str, Any]]:
    groups = [{"uid": _uid("Action", f"role:{role}"), "attrs": {}, "parents": []} for role in Role]
    members = [
        {
            "uid": _uid("Action", action.value),
            "attrs": {},
            "parents": [
                _uid("Action", f"role:{role}")
                for role, acts in ROLE_ACTIONS.items()
                if action in acts
            ],
        }
        for action in Action
    ]
    return groups + members


def _principal_entity(principal: Principal) -> dict[str, Any]:
    scopes: dict[str, list[str]] = {role.value: [] for role in Role}
    for binding in principal.bindings:
        scopes[binding.role.value].append(binding.scope_id)
    return {
        "uid": _uid("Principal", principal.id),
        "attrs": {
            "tenant": principal.tenant_id,
            "active": principal.active,
            "bindings": {role: sorted(ids) for role, ids in scopes.items()},
        },
        "parents": [],
    }


_CacheKey = tuple[str, str, bool, frozenset[Binding]]
_DecisionKey = tuple[str, str, bool, frozenset[Binding], Action, ResourceKind, str, tuple[str, ...]]
_ENTITY_TYPE = {kind: kind.value.capitalize() for kind in ResourceKind}


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Memo(Generic[K, V]):
    """A bounded memo: reads are a plain dict lookup (atomic under the GIL);
    writers take a lock and, when full, drop the oldest eighth (dicts keep
    insertion order)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> V:
        with self._lock:
            if len(self._items) >= self._size:
                for stale in list(self._items)[: max(1, self._size // 8)]:
                    del self._items[stale]
            self._items[key] = value
        return value


class Authorizer:
    """Holds the parsed policy set and action hierarchy, and the principal cache."""

    def __init__(self, policy_text: str) -> None:
        # (1) Validate the policy set against the schema: a bad policy stops startup.
        schema = json.dumps(policy_schema())
        try:
            result = cedarpy.validate_policies(policy_text, schema)
        except ValueError:
            raise ConfigError("access policy set does not parse") from None
        if not result.validation_passed:
            raise ConfigError(
                "access policy set is invalid: " + "; ".join(str(e) for e in result.errors)
            )
        # (2) Parse once; reuse for every decision.
        self._policies = cedarpy.PolicySet.from_str(policy_text)
        self._actions_json = json.dumps(_action_entities())
        self._cache: _Memo[_CacheKey, cedarpy.Entities] = _Memo(_PRINCIPAL_CACHE_SIZE)
        self._contexts: _Memo[tuple[str, ...], str] = _Memo(_CONTEXT_CACHE_SIZE)
        self._decisions: _Memo[_DecisionKey, Decision] = _Memo(_DECISION_CACHE_SIZE)

    def _entities(self, principal: Principal) -> cedarpy.Entities:
        key: _CacheKey = (principal.id, principal.tenant_id, principal.active, principal.bindings)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        actions = json.loads(self._actions_json)
        parsed = cedarpy.Entities.from_json_str(
            json.dumps([*actions, _principal_entity(principal)])
        )
        return self._cache.put(key, parsed)

    def _context(self, resource: Resource) -> str:
        """The request context as JSON, memoised per containment chain.

        It goes to cedarpy pre-serialised (it would otherwise copy the request
        and serialise it on every call), and the same string object is reused
        for the same chain, which cedarpy converts faster than a fresh one.
        """
        scopes = resource.scopes
        hit = self._contexts.get(scopes)
        if hit is not None:
            return hit
        text = json.dumps({"tenant": resource.tenant_id, "scopes": list(scopes)})
        return self._contexts.put(scopes, text)

    def authorize(self, principal: Principal, action: Action, resource: Resource) -> Decision:
        """Decide ``action`` by ``principal`` on ``resource``.

        Decisions are memoised. The key holds everything Cedar is given (the
        principal's id, tenant, active flag and bindings; the action; the
        resource's type, id and containment chain), and the policy set and
        action hierarchy are fixed for the process, so a memoised decision is
        the decision Cedar would make again.
        """
        key: _DecisionKey = (
            principal.id,
            principal.tenant_id,
            principal.active,
            principal.bindings,
            action,
            resource.kind,
            resource.id,
            resource.scopes,
        )
        hit = self._decisions.get(key)
        if hit is not None:
            return hit
        return self._decisions.put(key, self.evaluate(principal, action, resource))

    def evaluate(self, principal: Principal, action: Action, resource: Resource) -> Decision:
        """Ask Cedar, bypassing the decision memo (benchmarks and diagnostics)."""
        context = self._context(resource)
        request = {
            "principal": {"type": "Principal", "id": principal.id},
            "action": {"type": "Action", "id": action.value},
            "resource": {"type": _ENTITY_TYPE[resource.kind], "id": resource.id},
            "context": context,
        }
        result = cedarpy.is_authorized(request, self._policies, self._entities(principal))
        diagnostics = result.diagnostics
        if diagnostics.errors:
            # An evaluation error is a deny (Cedar's semantics); surface it as such.
            return Decision(allowed=False, reasons=("evaluation-error",))
        ids = diagnostics.id_annotations_by_reason
        return Decision(
            allowed=result.allowed,
            reasons=tuple(sorted(ids.get(r, r) for r in diagnostics.reasons)),
        )


@cache
def default_authorizer() -> Authorizer:
    """The process-wide authorizer over the shipped policy set."""
    text = (files("callvault.access") / "policies.cedar").read_text(encoding="utf-8")
    return Authorizer(text)


def authorize(principal: Principal, action: Action, resource: Resource) -> Decision:
    """The one function that decides every request (ARCHITECTURE.md §2)."""
    return default_authorizer().authorize(principal, action, resource)
