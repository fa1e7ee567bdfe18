"""Group and claim → role mapping of a connection: parsed once, applied per login. No I/O.

A connection's ``role_mappings`` is a list of rules; each names what the IdP
must assert (a group, or a value of a named claim/attribute) and the role
binding it grants (role, scope kind, scope id). At login every matching rule
contributes its binding; when none matches, the connection's
``default_role`` (if any) is the one binding; when there is none either,
the login is denied (fail closed).

Rules are checked when the configuration is written (:func:`parse_policy`):

1. the role MUST be one callvault knows; ``owner`` only when the connection
   says ``allow_owner`` (and granting that needs ``principal:grant_owner``,
   checked by the caller);
2. the scope kind MUST be tenant, deployment or agent; a tenant scope is the
   connection's own tenant (its id may be omitted); deployment and agent
   scopes MUST name an id (whether it exists in the tenant is the caller's
   check, :attr:`MappingPolicy.scoped_ids`);
3. a rule matches exactly one thing (``group``, or ``claim`` with ``value``),
   compared exactly (IdP group ids and claim values are case-sensitive).

Errors name the field (``role_mappings[2].role``), never the value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from callvault.access import Binding, Role, ScopeKind
from callvault.errors import SsoConfigError
from callvault.sso._identity import SsoIdentity

#: Most rules per connection, and longest group name, claim name or value matched.
MAX_RULES: Final = 200
MAX_VALUE_CHARS: Final = 512
_RULE_KEYS: Final = frozenset({"group", "claim", "value", "role", "scope_kind", "scope_id"})
_DEFAULT_KEYS: Final = frozenset({"role", "scope_kind", "scope_id"})


@dataclass(frozen=True, slots=True)
class RoleRule:
    """When the IdP asserts ``group`` (or ``claim`` = ``value``), grant ``binding``."""

    binding: Binding
    group: str | None = None
    claim: str | None = None
    value: str | None = None

    def matches(self, identity: SsoIdentity) -> bool:
        if self.group is not None:
            return self.group in identity.groups
        assert self.claim is not None  # noqa: S101 - parse_policy builds one or the other
        return self.value in identity.attributes.get(self.claim, ())


@dataclass(frozen=True, slots=True)
class MappingPolicy:
    rules: tuple[RoleRule, ...] = ()
    default: Binding | None = None
    allow_owner: bool = False

    @property
    def scoped_ids(self) -> frozenset[tuple[ScopeKind, str]]:
        """Deployment and agent ids the rules name (the caller checks they exist)."""
        bindings = [r.binding for r in self.rules] + ([self.default] if self.default else [])
        return frozenset(
            (b.scope_kind, b.scope_id) for b in bindings if b.scope_kind is not ScopeKind.TENANT
        )

    @property
    def grants_owner(self) -> bool:
        bindings = [r.binding for r in self.rules] + ([self.default] if self.default else [])
        return any(b.role is Role.OWNER for b in bindings)

    def document(self) -> dict[str, Any]:
        """The policy as stored and shown (the inverse of :func:`parse_policy`)."""

        def scope(b: Binding) -> dict[str, str]:
            return {"role": b.role.value, "scope_kind": b.scope_kind.value, "scope_id": b.scope_id}

        rules: list[dict[str, Any]] = []
        for r in self.rules:
            match = (
                {"group": r.group} if r.group is not None else {"claim": r.claim, "value": r.value}
            )
            rules.append({**match, **scope(r.binding)})
        return {
            "role_mappings": rules,
            "default_role": scope(self.default) if self.default else None,
            "allow_owner": self.allow_owner,
        }


def _text(raw: object, where: str, *, required: bool = True) -> str | None:
    if raw is None and not required:
        return None
    if not isinstance(raw, str) or not raw or len(raw) > MAX_VALUE_CHARS:
        raise SsoConfigError(
            f"{where} must be a string of 1 to {MAX_VALUE_CHARS} characters", field=where
        )
    return raw


def _binding(raw: Mapping[str, Any], where: str, *, tenant_id: str, allow_owner: bool) -> Binding:
    # (1)
    try:
        role = Role(str(raw.get("role")))
    except ValueError:
        raise SsoConfigError(f"{where}.role is not a known role", field=f"{where}.role") from None
    if role is Role.OWNER and not allow_owner:
        raise SsoConfigError(
            f"{where}.role: owner is granted by mapping only when allow_owner is true",
            field=f"{where}.role",
        )
    # (2)
    try:
        kind = ScopeKind(raw.get("scope_kind", ScopeKind.TENANT.value))
    except ValueError:
        raise SsoConfigError(
            f"{where}.scope_kind must be tenant, deployment or agent", field=f"{where}.scope_kind"
        ) from None
    scope_id = raw.get("scope_id")
    if kind is ScopeKind.TENANT:
        if scope_id not in (None, tenant_id):
            raise SsoConfigError(
                f"{where}.scope_id must be this tenant's id or omitted", field=f"{where}.scope_id"
            )
        scope_id = tenant_id
    elif not isinstance(scope_id, str) or not scope_id:
        raise SsoConfigError(
            f"{where}.scope_id is required for a {kind.value} scope", field=f"{where}.scope_id"
        )
    return Binding(role, kind, scope_id)


def _object(raw: object, where: str, keys: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise SsoConfigError(f"{where} must be an object", field=where)
    unknown = sorted(k for k in raw if k not in keys)
    if unknown:
        raise SsoConfigError(f"{where} has an unknown field", field=f"{where}.{unknown[0]}")
    return raw


def parse_policy(
    role_mappings: object, default_role: object, *, tenant_id: str, allow_owner: bool
) -> MappingPolicy:
    """Parse and check a connection's mapping (see the module docstring for the rules)."""
    if not isinstance(role_mappings, Sequence) or isinstance(role_mappings, str | bytes):
        raise SsoConfigError("role_mappings must be a list", field="role_mappings")
    if len(role_mappings) > MAX_RULES:
        raise SsoConfigError(
            f"role_mappings holds at most {MAX_RULES} rules", field="role_mappings"
        )
    rules: list[RoleRule] = []
    for i, raw in enumerate(role_mappings):
        where = f"role_mappings[{i}]"
        doc = _object(raw, where, _RULE_KEYS)
        binding = _binding(doc, where, tenant_id=tenant_id, allow_owner=allow_owner)
        # (3)
        if ("group" in doc) == ("claim" in doc):
            raise SsoConfigError(f"{where} must name either group or claim", field=where)
        if "group" in doc:
            if "value" in doc:
                raise SsoConfigError(f"{where}.value goes with claim", field=f"{where}.value")
            rules.append(RoleRule(binding, group=_text(doc["group"], f"{where}.group")))
        else:
            claim = _text(doc["claim"], f"{where}.claim")
            rules.append(
                RoleRule(binding, claim=claim, value=_text(doc.get("value"), f"{where}.value"))
            )
    default = None
    if isinstance(default_role, str):  # shorthand: a role at tenant scope
        default_role = {"role": default_role}
    if default_role is not None:
        doc = _object(default_role, "default_role", _DEFAULT_KEYS)
        default = _binding(doc, "default_role", tenant_id=tenant_id, allow_owner=allow_owner)
    return MappingPolicy(rules=tuple(rules), default=default, allow_owner=allow_owner)


def map_identity(policy: MappingPolicy, identity: SsoIdentity) -> frozenset[Binding]:
    """The bindings ``identity`` gets: every matching rule's, else the default, else none.

    An empty result means the login MUST be denied.
    """
    matched = frozenset(rule.binding for rule in policy.rules if rule.matches(identity))
    if matched:
        return matched
    return frozenset({policy.default}) if policy.default is not None else frozenset()
