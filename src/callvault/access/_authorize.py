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

Decision classes (ADR 10). When the policy set is exactly the shipped shape
(the tenant wall, the inactive forbid, and one "role R bound at any scope in
the chain" permit per role, checked structurally at start-up), Cedar's
answer depends only on: whether the principal's tenant is the resource's,
the active flag, the action, the resource type, and *which roles* have a
binding among the resource's scopes. Such a request is decided by asking
Cedar about a canonical representative of its class (a principal bound at
one scope "S" for exactly those roles, a resource in "S"), memoised per
class, so a decision is a few dict lookups after the first of its class. A
policy set of any other shape turns this off: every request goes to Cedar
as it is. Tests check class decisions against full evaluation on random
principals and resources.

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
_ClassKey = tuple[bool, bool, Action, ResourceKind, frozenset[Role]]
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
        # (3) Decision classes: only for a policy set of exactly the shipped shape.
        self.classes = _has_role_shape(policy_text)
        self._indexes: _Memo[_CacheKey, dict[str, frozenset[Role]]] = _Memo(_PRINCIPAL_CACHE_SIZE)
        self._class_decisions: _Memo[_ClassKey, Decision] = _Memo(_DECISION_CACHE_SIZE)
        self._class_entities: _Memo[tuple[bool, frozenset[Role]], cedarpy.Entities] = _Memo(512)

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
        if self.classes:
            return self._decisions.put(key, self.decide_by_class(principal, action, resource))
        return self._decisions.put(key, self.evaluate(principal, action, resource))

    def _role_index(self, principal: Principal) -> dict[str, frozenset[Role]]:
        """Scope id → the roles the principal holds there (cached like the entities)."""
        key: _CacheKey = (principal.id, principal.tenant_id, principal.active, principal.bindings)
        hit = self._indexes.get(key)
        if hit is not None:
            return hit
        roles: dict[str, set[Role]] = {}
        for binding in principal.bindings:
            roles.setdefault(binding.scope_id, set()).add(binding.role)
        return self._indexes.put(key, {sid: frozenset(rs) for sid, rs in roles.items()})

    def decide_by_class(self, principal: Principal, action: Action, resource: Resource) -> Decision:
        """Cedar's decision for the request's class (module docstring), memoised per class."""
        index = self._role_index(principal)
        matched: frozenset[Role] = frozenset().union(*(index.get(s, ()) for s in resource.scopes))
        same_tenant = principal.tenant_id == resource.tenant_id
        key: _ClassKey = (same_tenant, principal.active, action, resource.kind, matched)
        hit = self._class_decisions.get(key)
        if hit is not None:
            return hit
        return self._class_decisions.put(key, self._ask_class(*key))

    def _ask_class(
        self,
        same_tenant: bool,
        active: bool,
        action: Action,
        kind: ResourceKind,
        matched: frozenset[Role],
    ) -> Decision:
        ekey = (active, matched)
        entities = self._class_entities.get(ekey)
        if entities is None:
            rep = {
                "uid": _uid("Principal", _REP_PRINCIPAL),
                "attrs": {
                    "tenant": _REP_TENANT,
                    "active": active,
                    "bindings": {r.value: ([_REP_SCOPE] if r in matched else []) for r in Role},
                },
                "parents": [],
            }
            parsed = cedarpy.Entities.from_json_str(
                json.dumps([*json.loads(self._actions_json), rep])
            )
            entities = self._class_entities.put(ekey, parsed)
        context = json.dumps(
            {"tenant": _REP_TENANT if same_tenant else _REP_OTHER_TENANT, "scopes": [_REP_SCOPE]}
        )
        request = {
            "principal": {"type": "Principal", "id": _REP_PRINCIPAL},
            "action": {"type": "Action", "id": action.value},
            "resource": {"type": _ENTITY_TYPE[kind], "id": _REP_RESOURCE},
            "context": context,
        }
        return _decision(cedarpy.is_authorized(request, self._policies, entities))

    def evaluate(self, principal: Principal, action: Action, resource: Resource) -> Decision:
        """Ask Cedar, bypassing the decision memo (benchmarks and diagnostics)."""
        context = self._context(resource)
        request = {
            "principal": {"type": "Principal", "id": principal.id},
            "action": {"type": "Action", "id": action.value},
            "resource": {"type": _ENTITY_TYPE[resource.kind], "id": resource.id},
            "context": context,
        }
        return _decision(cedarpy.is_authorized(request, self._policies, self._entities(principal)))


def _decision(result: cedarpy.AuthzResult) -> Decision:
    diagnostics = result.diagnostics
    if diagnostics.errors:
        # An evaluation error is a deny (Cedar's semantics); surface it as such.
        return Decision(allowed=False, reasons=("evaluation-error",))
    ids = diagnostics.id_annotations_by_reason
    return Decision(
        allowed=result.allowed,
        reasons=tuple(sorted(ids.get(r, r) for r in diagnostics.reasons)),
    )


# The canonical representative of a decision class (ids no real row can have: no prefix).
_REP_PRINCIPAL = "class-principal"
_REP_TENANT = "class-tenant"
_REP_OTHER_TENANT = "class-other-tenant"
_REP_SCOPE = "class-scope"
_REP_RESOURCE = "class-resource"


def role_shape_text() -> str:
    """The policy set whose shape decision classes rely on (the shipped one, generated)."""
    parts = [
        (
            '@id("tenant-wall")\nforbid (principal, action, resource)\n'
            "unless { context.tenant == principal.tenant };"
        ),
        '@id("inactive")\nforbid (principal, action, resource)\nunless { principal.active };',
    ]
    parts.extend(
        f'@id("role-{role.value}")\n'
        f'permit (principal, action in Action::"role:{role.value}", resource)\n'
        f"when {{ principal.bindings.{role.value}.containsAny(context.scopes) }};"
        for role in Role
    )
    return "\n\n".join(parts)


def _canonical_policies(text: str) -> list[str] | None:
    """The policies of ``text`` as sorted canonical JSON, or None if it has templates."""
    doc = json.loads(cedarpy.policies_to_json_str(text))
    if doc.get("templates") or doc.get("templateLinks"):
        return None
    return sorted(json.dumps(p, sort_keys=True) for p in doc["staticPolicies"].values())


def _has_role_shape(policy_text: str) -> bool:
    """Whether ``policy_text`` is, policy for policy, the shape decision classes rely on."""
    actual = _canonical_policies(policy_text)
    return actual is not None and actual == _canonical_policies(role_shape_text())


@cache
def default_authorizer() -> Authorizer:
    """The process-wide authorizer over the shipped policy set."""
    text = (files("callvault.access") / "policies.cedar").read_text(encoding="utf-8")
    return Authorizer(text)


def authorize(principal: Principal, action: Action, resource: Resource) -> Decision:
    """The one function that decides every request (ARCHITECTURE.md §2)."""
    return default_authorizer().authorize(principal, action, resource)
