"""Groups: create, replace, patch and delete SCIM groups and their user members.

Members are SCIM users of the same tenant, named by id; a member that is not
one (unknown, deleted, another tenant's, or a group: groups do not nest here)
makes the whole request a 400 ``invalidValue`` and nothing of it is applied.
Only ``value`` is kept of a member; ``$ref`` is derived, ``display`` and
``type`` are dropped.

Groups grant no roles here: roles come from the groups the IdP asserts at
each single sign-on login (ADR 14). A group change that takes a user out of
a group (a member removed, the group deleted or renamed) can take back the
roles an SSO connection granted for that group (``callvault.scim._left``,
ADR 13 amendment).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from scim2_models import Context, GroupMember
from sqlalchemy.orm import Session

from callvault.scim._errors import bad_request, not_found
from callvault.scim._models import MAX_MEMBERS, InGroup
from callvault.scim._parse import apply_patch, bounded, read, read_patch, replace_checked
from callvault.scim._store import GroupRecord, ScimStore
from callvault.store import new_id
from callvault.store.ids import is_id
from callvault.store.models import ScimGroup, utcnow


@dataclass(frozen=True, slots=True)
class GroupChange:
    group: GroupRecord
    changed: tuple[str, ...]
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    #: The group before the change (None when it was created); ``group`` when deleted.
    previous: GroupRecord | None = None
    deleted: bool = False


def _members(store: ScimStore, s: Session, tenant_id: str, full: InGroup) -> list[str]:
    entries = full.members or []
    if len(entries) > MAX_MEMBERS:
        raise bad_request("invalidValue", where="members")
    ids: list[str] = []
    for i, member in enumerate(entries):
        value = member.value
        kind = (member.type or "User") if isinstance(member.type, str) else "User"
        if value is None or kind.casefold() != "user" or not is_id(value, "prn"):
            raise bad_request("invalidValue", where=f"members[{i}].value")
        if value not in ids:
            ids.append(value)
    live = store.live_user_ids(s, tenant_id, ids)
    for i, value in enumerate(ids):
        if value not in live:
            raise bad_request("invalidValue", where=f"members[{i}].value")
    return ids


def _kept(
    store: ScimStore, s: Session, tenant_id: str, full: InGroup
) -> tuple[str, str | None, list[str]]:
    display_name = bounded(full.display_name, "displayName", required=True)
    assert display_name is not None  # noqa: S101 - bounded(required=True) returns a string
    external_id = bounded(full.external_id, "externalId")
    return display_name, external_id, _members(store, s, tenant_id, full)


def _as_full(rec: GroupRecord) -> InGroup:
    return InGroup(
        id=rec.id,
        display_name=rec.display_name,
        external_id=rec.external_id,
        members=[GroupMember(value=m) for m in rec.members] or None,
    )


def _changed(old: GroupRecord | None, new: GroupRecord) -> tuple[str, ...]:
    names: list[str] = []
    if old is None or old.display_name != new.display_name:
        names.append("displayName")
    if (old.external_id if old else None) != new.external_id:
        names.append("externalId")
    if set(old.members if old else ()) != set(new.members):
        names.append("members")
    return tuple(names)


def create_group(store: ScimStore, s: Session, tenant_id: str, doc: dict[str, Any]) -> GroupChange:
    full = read(InGroup, dict(doc), Context.RESOURCE_CREATION_REQUEST)
    display_name, external_id, members = _kept(store, s, tenant_id, full)
    now = utcnow()
    rec = GroupRecord(new_id("grp"), display_name, external_id, now, now, members)
    row = ScimGroup(id=rec.id, tenant_id=tenant_id, created_at=now, updated_at=now)
    added, _ = store.write_group(s, tenant_id, row, rec, at=now)
    return GroupChange(group=rec, changed=_changed(None, rec), added=tuple(added))


def _load(
    store: ScimStore, s: Session, tenant_id: str, group_id: str
) -> tuple[ScimGroup, GroupRecord]:
    row = store.group_row(s, tenant_id, group_id)
    found = [] if row is None else store.groups(s, tenant_id, [group_id])
    if row is None or not found:
        raise not_found("Group")
    return row, found[0]


def _commit(
    store: ScimStore, s: Session, tenant_id: str, row: ScimGroup, old: GroupRecord, full: InGroup
) -> GroupChange:
    display_name, external_id, members = _kept(store, s, tenant_id, full)
    new = replace(old, display_name=display_name, external_id=external_id, members=members)
    changed = _changed(old, new)
    if not changed:
        return GroupChange(group=old, changed=(), previous=old)
    added, removed = store.write_group(s, tenant_id, row, new, at=utcnow())
    return GroupChange(
        group=replace(new, updated_at=row.updated_at),
        changed=changed,
        added=tuple(added),
        removed=tuple(removed),
        previous=old,
    )


def replace_group(
    store: ScimStore, s: Session, tenant_id: str, group_id: str, doc: dict[str, Any]
) -> GroupChange:
    row, old = _load(store, s, tenant_id, group_id)
    full = read(InGroup, dict(doc), Context.RESOURCE_REPLACEMENT_REQUEST)
    replace_checked(full, _as_full(old))
    return _commit(store, s, tenant_id, row, old, full)


def patch_group(
    store: ScimStore, s: Session, tenant_id: str, group_id: str, doc: dict[str, Any]
) -> GroupChange:
    row, old = _load(store, s, tenant_id, group_id)
    patch = read_patch(InGroup, dict(doc))
    full = _as_full(old)
    apply_patch(patch, full)
    return _commit(store, s, tenant_id, row, old, full)


def delete_group(store: ScimStore, s: Session, tenant_id: str, group_id: str) -> GroupChange:
    row, old = _load(store, s, tenant_id, group_id)
    store.erase_group(s, tenant_id, row)
    return GroupChange(
        group=old, changed=("deleted",), removed=tuple(old.members), previous=old, deleted=True
    )
