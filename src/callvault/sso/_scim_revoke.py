"""Take back the roles an SSO connection granted for groups a user has left over SCIM.

A connection grants bindings at each login from the groups the IdP asserts
(``created_by`` = the connection, :mod:`callvault.sso._link`). When the
IdP's SCIM client takes a user out of a group (``callvault.scim._left``),
:class:`ScimGroupRevoker` runs in the SCIM request's transaction:

1. Open the tenant's connections (all of them, disabled ones too: their
   bindings still grant) and keep those with a group rule naming a group
   someone left. None: nothing to do (the common case costs one query).
2. Load the bindings those connections granted to those users.
3. :func:`revocable` (no I/O) picks the bindings to remove: granted by a
   group rule for a name the user left, and not also granted by a group
   rule for a name the user still has through another SCIM group. Bindings
   from claim rules or the default role are not touched (nothing SCIM says
   bears on them); a binding a claim rule would also give is removed, and
   the next login grants it again: the error is on the side of less access.
4. Delete them. Every request checks the principal's current bindings, so
   the user's live sessions and API keys lose the role at once.

The caller audits each removal (``principal.unbind_role``, source
``scim-group``) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.access import Binding, Role, RoleRevocation, ScopeKind
from callvault.crypto import Sealer
from callvault.keys import KeyHierarchy
from callvault.scim._left import KeptNames
from callvault.sso._connections import ConnectionStore
from callvault.sso._mapping import MappingPolicy
from callvault.store.models import RoleBinding

_CHUNK: Final = 500


def _granted_by_groups(policy: MappingPolicy, group_names: frozenset[str]) -> set[Binding]:
    return {r.binding for r in policy.rules if r.group is not None and r.group in group_names}


def revocable(
    policy: MappingPolicy,
    held: Sequence[tuple[str, Binding]],
    *,
    left: frozenset[str],
    kept: frozenset[str],
) -> list[str]:
    """Step (3): ids of the ``held`` bindings (``(id, binding)``, granted by the connection
    of ``policy``) to remove for a user who left the groups ``left`` and keeps ``kept``."""
    taken = _granted_by_groups(policy, left - kept)
    still = _granted_by_groups(policy, kept)
    return [bid for bid, b in held if b in taken and b not in still]


class ScimGroupRevoker:
    """The ``GroupsLeftHook`` of the SCIM service (steps in the module doc)."""

    def __init__(self, keys: KeyHierarchy, sealer: Sealer) -> None:
        # Only policies are read: no adapter, no URL, nothing fetched.
        self._connections = ConnectionStore(keys, sealer, {}, None)

    def __call__(
        self,
        s: Session,
        tenant_id: str,
        left: Mapping[str, frozenset[str]],
        kept: KeptNames,
    ) -> list[RoleRevocation]:
        every_left = frozenset().union(*left.values()) if left else frozenset()
        if not every_left:
            return []
        # (1)
        policies = {
            c.id: c.policy
            for c in self._connections.list_all(s, tenant_id)
            if _granted_by_groups(c.policy, every_left)
        }
        if not policies:
            return []
        # (2)
        rows = self._granted(s, tenant_id, sorted(left), sorted(policies))
        candidates = [
            r
            for r in rows
            if _binding(r) in _granted_by_groups(policies[r.created_by], left[r.principal_id])
        ]
        if not candidates:
            return []
        # (3)
        still = kept(sorted({r.principal_id for r in candidates}))
        out: list[RoleRevocation] = []
        for row in candidates:
            pid = row.principal_id
            gone = revocable(
                policies[row.created_by],
                [(row.id, _binding(row))],
                left=left[pid],
                kept=still.get(pid, frozenset()),
            )
            if not gone:
                continue
            # (4)
            out.append(
                RoleRevocation(
                    principal_id=pid,
                    binding_id=row.id,
                    role=row.role,
                    scope_kind=row.scope_kind,
                    scope_id=row.scope_id,
                    connection_id=row.created_by,
                )
            )
            s.delete(row)
        s.flush()
        return out

    @staticmethod
    def _granted(
        s: Session, tenant_id: str, principals: list[str], connections: list[str]
    ) -> list[RoleBinding]:
        rows: list[RoleBinding] = []
        for i in range(0, len(principals), _CHUNK):
            rows += s.execute(
                select(RoleBinding)
                .where(
                    RoleBinding.tenant_id == tenant_id,
                    RoleBinding.principal_id.in_(principals[i : i + _CHUNK]),
                    RoleBinding.created_by.in_(connections),
                )
                .order_by(RoleBinding.principal_id, RoleBinding.id)
            ).scalars()
        return rows


def _binding(row: RoleBinding) -> Binding:
    return Binding(Role(row.role), ScopeKind(row.scope_kind), row.scope_id)
