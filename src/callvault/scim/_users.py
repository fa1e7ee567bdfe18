"""Users: create, replace, patch and delete SCIM users (principals of kind ``user``).

A SCIM user is a principal of the tenant: its SCIM id is the principal id,
and its ``active`` is the principal's. Steps shared by every change
(:func:`_commit_change`):

1. A new ``userName`` MUST be free in the tenant (compared case-insensitively,
   through its HMAC ref); else 409 ``uniqueness``.
2. The profile is sealed again and the refs refreshed.
3. ``active`` turned false deactivates the principal and revokes every API
   key of it in the same transaction (:func:`callvault.access._principals.set_active_counted`):
   once the request commits, nothing authenticates as the user. Turned true,
   the principal is active again with no key.

DELETE does step 3, then erases the profile (refs and sealed profile
cleared, memberships removed, profile key shredded) and keeps the principal
row, inactive, so audit entries naming it still resolve. A deleted user is
gone from SCIM (404); its userName may be provisioned again as a new user.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from scim2_models import Context
from sqlalchemy.orm import Session

from callvault.access._principals import Revocation, set_active_counted
from callvault.scim._errors import ScimError, not_found
from callvault.scim._models import InUser
from callvault.scim._parse import apply_patch, bounded, read, read_patch, replace_checked
from callvault.scim._store import ScimStore, UserRecord
from callvault.store import new_id
from callvault.store.models import Principal as PrincipalRow
from callvault.store.models import ScimUser, utcnow

SCIM_PRINCIPAL_PREFIX = "scim:"


@dataclass(frozen=True, slots=True)
class UserChange:
    """What a request did, by attribute name and id only (for the audit entry)."""

    user: UserRecord
    changed: tuple[str, ...]
    keys_revoked: tuple[str, ...] = ()
    sessions_revoked: int = 0
    memberships_removed: int = 0


def _kept(
    full: InUser, *, creating: bool = False
) -> tuple[str, str | None, str | None, bool | None]:
    """The attributes kept. ``active`` omitted at creation is true (as Okta and Entra ID
    assume); unassigned later (PUT without it, PATCH ``remove``) it is shown unassigned
    and the principal is inactive: only an explicit true lets the user authenticate."""
    user_name = bounded(full.user_name, "userName", required=True)
    assert user_name is not None  # noqa: S101 - bounded(required=True) returns a string
    display_name = bounded(full.display_name, "displayName")
    external_id = bounded(full.external_id, "externalId")
    active = True if full.active is None and creating else full.active
    return user_name, display_name, external_id, active


def _as_full(rec: UserRecord) -> InUser:
    return InUser(
        id=rec.id,
        user_name=rec.user_name,
        display_name=rec.display_name,
        external_id=rec.external_id,
        active=rec.active,
    )


def _diff(old: UserRecord, new: UserRecord) -> tuple[str, ...]:
    pairs = {
        "userName": (old.user_name, new.user_name),
        "displayName": (old.display_name, new.display_name),
        "externalId": (old.external_id, new.external_id),
        "active": (old.active, new.active),
    }
    return tuple(name for name, (a, b) in pairs.items() if a != b)


def create_user(store: ScimStore, s: Session, tenant_id: str, doc: dict[str, object]) -> UserChange:
    full = read(InUser, dict(doc), Context.RESOURCE_CREATION_REQUEST)
    user_name, display_name, external_id, active = _kept(full, creating=True)
    if store.user_name_taken(s, tenant_id, user_name):
        raise ScimError(409, "userName is already in use", scim_type="uniqueness")
    now = utcnow()
    principal_id = new_id("prn")
    s.add(
        PrincipalRow(
            id=principal_id,
            tenant_id=tenant_id,
            kind="user",
            name=f"{SCIM_PRINCIPAL_PREFIX}{principal_id}",
            active=active is True,
            created_at=now,
        )
    )
    s.flush()
    rec = UserRecord(principal_id, user_name, display_name, external_id, active, now, now)
    store.write_user(
        s,
        tenant_id,
        ScimUser(principal_id=principal_id, tenant_id=tenant_id, created_at=now, updated_at=now),
        rec,
        at=now,
    )
    changed = (
        ("userName", "active")
        + (("displayName",) if display_name is not None else ())
        + (("externalId",) if external_id is not None else ())
    )
    return UserChange(user=rec, changed=changed)


def _load(
    store: ScimStore, s: Session, tenant_id: str, user_id: str
) -> tuple[ScimUser, UserRecord]:
    row = store.user_row(s, tenant_id, user_id)
    rec = None if row is None else store.user(s, tenant_id, user_id)
    if row is None or rec is None:
        raise not_found("User")
    return row, rec


def _commit_change(
    store: ScimStore, s: Session, tenant_id: str, row: ScimUser, old: UserRecord, new: UserRecord
) -> UserChange:
    changed = _diff(old, new)
    if not changed:
        return UserChange(user=old, changed=())
    # (1)
    if "userName" in changed and store.user_name_taken(
        s, tenant_id, new.user_name, other_than=old.id
    ):
        raise ScimError(409, "userName is already in use", scim_type="uniqueness")
    # (2)
    store.write_user(s, tenant_id, row, new, at=utcnow())
    # (3)
    revoked = Revocation()
    if (old.active is True) != (new.active is True):
        revoked = set_active_counted(s, tenant_id, old.id, active=new.active is True)
    return UserChange(
        user=replace(new, updated_at=row.updated_at),
        changed=changed,
        keys_revoked=revoked.keys,
        sessions_revoked=revoked.sessions,
    )


def replace_user(
    store: ScimStore, s: Session, tenant_id: str, user_id: str, doc: dict[str, object]
) -> UserChange:
    row, old = _load(store, s, tenant_id, user_id)
    full = read(InUser, dict(doc), Context.RESOURCE_REPLACEMENT_REQUEST)
    replace_checked(full, _as_full(old))
    user_name, display_name, external_id, active = _kept(full)
    new = replace(
        old,
        user_name=user_name,
        display_name=display_name,
        external_id=external_id,
        active=active,
    )
    return _commit_change(store, s, tenant_id, row, old, new)


def patch_user(
    store: ScimStore, s: Session, tenant_id: str, user_id: str, doc: dict[str, object]
) -> UserChange:
    row, old = _load(store, s, tenant_id, user_id)
    patch = read_patch(InUser, dict(doc))
    full = _as_full(old)
    apply_patch(patch, full)
    if full.id != old.id:  # pragma: no cover - scim2-models refuses a change of the read-only id
        raise ScimError(400, "id cannot change", scim_type="mutability")
    user_name, display_name, external_id, active = _kept(full)
    new = replace(
        old,
        user_name=user_name,
        display_name=display_name,
        external_id=external_id,
        active=active,
    )
    return _commit_change(store, s, tenant_id, row, old, new)


def delete_user(store: ScimStore, s: Session, tenant_id: str, user_id: str) -> UserChange:
    row, old = _load(store, s, tenant_id, user_id)
    revoked = set_active_counted(s, tenant_id, user_id, active=False)
    removed = store.erase_user(s, tenant_id, row)
    return UserChange(
        user=old,
        changed=("deleted",),
        keys_revoked=revoked.keys,
        sessions_revoked=revoked.sessions,
        memberships_removed=removed,
    )
