"""Who left which groups in a SCIM group change, and the hook that takes their roles back.

Roles come from the groups an IdP asserts at single sign-on (ADR 14); SCIM
tells callvault about group changes between logins. A user who leaves a
group in the IdP should lose what that group gave at once, not at their next
login (up to a session's absolute lifetime later). After a group change
:func:`groups_left` names, per user, the group names (``displayName`` and
``externalId``: IdPs assert one or the other, e.g. Entra's group object id is
the SCIM ``externalId``) the user no longer has through any SCIM group:

- a member removed: the group's names before the change;
- the group deleted: its names, for every member it had;
- the group renamed: the names it had and no longer has, for every member.

Names the user still has through another SCIM group are not "left". The
:data:`GroupsLeftHook` (wired by the API to ``callvault.sso``) then removes
the bindings the tenant's SSO connections granted for those names, in the
same transaction as the group change and its audit entries. Adding a member
grants nothing: grants need the IdP's signed assertion at login. No I/O here
beyond the SCIM store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.access import RoleRevocation
from callvault.scim._groups import GroupChange
from callvault.scim._store import GroupRecord, ScimStore
from callvault.store.models import ScimGroupMember

#: Per principal, the group names it still has through SCIM groups (asked only for the
#: principals that hold a binding the hook might remove).
KeptNames = Callable[[Sequence[str]], Mapping[str, frozenset[str]]]


#: ``(session, tenant, {principal: names left}, kept) -> bindings removed``.
GroupsLeftHook = Callable[
    [Session, str, Mapping[str, frozenset[str]], KeptNames], Sequence[RoleRevocation]
]

_CHUNK = 500


def names(group: GroupRecord | None) -> frozenset[str]:
    if group is None:
        return frozenset()
    return frozenset(n for n in (group.display_name, group.external_id) if n)


def groups_left(change: GroupChange) -> dict[str, frozenset[str]]:
    """Per principal, the names it left by this change (before subtracting other groups)."""
    before = names(change.previous)
    if not before or not change.changed:
        return {}
    after = frozenset() if change.deleted else names(change.group)
    left: dict[str, frozenset[str]] = {}
    for pid in change.removed:
        left[pid] = before
    renamed_away = before - after
    if renamed_away and not change.deleted:
        for pid in change.group.members:
            left[pid] = left.get(pid, frozenset()) | renamed_away
    return left


def kept_names(store: ScimStore, s: Session, tenant_id: str) -> KeptNames:
    """The names each principal still has through its SCIM groups, as the transaction sees
    them now (after the change)."""

    def kept(principal_ids: Sequence[str]) -> Mapping[str, frozenset[str]]:
        wanted = sorted(set(principal_ids))
        memberships: dict[str, set[str]] = {pid: set() for pid in wanted}
        for i in range(0, len(wanted), _CHUNK):
            rows = s.execute(
                select(ScimGroupMember.principal_id, ScimGroupMember.group_id).where(
                    ScimGroupMember.tenant_id == tenant_id,
                    ScimGroupMember.principal_id.in_(wanted[i : i + _CHUNK]),
                )
            ).all()
            for pid, gid in rows:
                memberships[pid].add(gid)
        group_ids = sorted(set().union(*memberships.values())) if memberships else []
        by_id = {g.id: names(g) for g in store.groups(s, tenant_id, group_ids, with_members=False)}
        return {
            pid: frozenset().union(*(by_id.get(g, frozenset()) for g in gids))
            for pid, gids in memberships.items()
        }

    return kept
