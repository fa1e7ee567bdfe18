"""SCIM users and groups in the metadata database: profiles sealed, lookups by HMAC.

Keys (all in the tenant's key hierarchy, wrapped by the tenant-level KEK):

- owner kind ``scim_user`` / ``scim_group``, owner id the user's (principal's)
  or group's id: the data key that seals that one profile. Deleting a user or a
  group shreds it, so the profile cannot be opened again from any backup.
- owner kind ``scim``, owner id the tenant, purpose ``scim-lookup``: the key
  (HKDF per attribute) of ``HMAC-SHA256(key, normalised value)``, kept in the
  ``*_ref`` columns for uniqueness and ``eq`` filters. Without the key a ref
  cannot be tested against a guessed address.

Values are normalised as the SCIM comparisons do: ``userName`` and group
``displayName`` are case-insensitive (NFC, lowercase, NFC), ``externalId`` is
case-exact (NFC).

Every function runs in the caller's tenant transaction and MUST be given it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

import rfc8785
from sqlalchemy import ColumnElement, CursorResult, delete, func, select
from sqlalchemy.orm import Session

from callvault.crypto import SealContext, Sealer
from callvault.crypto.hazmat import hkdf_sha256
from callvault.keys import KeyHierarchy, KeyOwner
from callvault.store.models import Principal as PrincipalRow
from callvault.store.models import ScimGroup, ScimGroupMember, ScimUser, utcnow

USER_OWNER: Final = "scim_user"
GROUP_OWNER: Final = "scim_group"
_LOOKUP_OWNER: Final = "scim"
_LOOKUP_PURPOSE: Final = "scim-lookup"
_PROFILE_PURPOSE: Final = "scim-profile"
_LOOKUP_INFO: Final = b"callvault/scim/lookup/v1\x00"

Attribute = Literal["userName", "externalId", "displayName"]


def _folded(value: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", value).lower())


def normalise(attribute: Attribute, value: str) -> str:
    if attribute == "externalId":
        return unicodedata.normalize("NFC", value)
    return _folded(value)


@dataclass(slots=True)
class UserRecord:
    id: str
    user_name: str
    display_name: str | None
    external_id: str | None
    #: As SCIM shows it: ``None`` when unassigned. The principal is active only when True.
    active: bool | None
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class GroupRecord:
    id: str
    display_name: str
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    members: list[str] = field(default_factory=list)


class ScimStore:
    """Reads and writes SCIM rows of one tenant transaction at a time."""

    def __init__(self, keys: KeyHierarchy, sealer: Sealer) -> None:
        self._keys = keys
        self._sealer = sealer

    # -- lookups -------------------------------------------------------------

    def ref(self, s: Session, tenant_id: str, attribute: Attribute, value: str) -> bytes:
        owner = KeyOwner(tenant_id, None, _LOOKUP_OWNER, tenant_id, _LOOKUP_PURPOSE)
        key = hkdf_sha256(
            self._keys.data_key(s, owner, create=True), info=_LOOKUP_INFO + attribute.encode()
        )
        return hmac.new(key, normalise(attribute, value).encode(), hashlib.sha256).digest()

    def _context(self, tenant_id: str, owner_kind: str, owner_id: str) -> SealContext:
        return SealContext(
            tenant_id=tenant_id,
            purpose=_PROFILE_PURPOSE,
            object_id=owner_id,
            owner_kind=owner_kind,
            owner_id=owner_id,
        )

    def _seal(self, s: Session, ctx: SealContext, doc: dict[str, str | bool | None]) -> bytes:
        kept = {k: v for k, v in doc.items() if v is not None}
        return self._sealer.seal(s, rfc8785.dumps(kept), ctx)

    def _open(self, s: Session, ctx: SealContext, blob: bytes) -> dict[str, Any]:
        doc = json.loads(self._sealer.open(s, blob, ctx))
        if not isinstance(doc, dict):  # pragma: no cover - only this module seals profiles
            raise TypeError("profile is not an object")
        return doc

    # -- users ---------------------------------------------------------------

    def _user(
        self, s: Session, tenant_id: str, row: ScimUser, principal_active: bool
    ) -> UserRecord:
        if row.profile_sealed is None:  # pragma: no cover - only deleted rows lack one
            raise LookupError("deleted user")
        doc = self._open(
            s, self._context(tenant_id, USER_OWNER, row.principal_id), row.profile_sealed
        )
        active = doc.get("active")
        if active is True and not principal_active:  # pragma: no cover - SCIM alone sets both
            active = False  # never show active what authentication refuses
        return UserRecord(
            id=row.principal_id,
            user_name=str(doc["userName"]),
            display_name=doc.get("displayName"),
            external_id=doc.get("externalId"),
            active=active if isinstance(active, bool) else None,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def _users_where(self, tenant_id: str) -> list[ColumnElement[bool]]:
        return [ScimUser.tenant_id == tenant_id, ScimUser.deleted_at.is_(None)]

    def user_ids(
        self,
        s: Session,
        tenant_id: str,
        *,
        where: Sequence[ColumnElement[bool]] = (),
        offset: int = 0,
        limit: int | None = None,
    ) -> list[str]:
        q = (
            select(ScimUser.principal_id)
            .where(*self._users_where(tenant_id), *where)
            .order_by(ScimUser.created_at, ScimUser.principal_id)
            .offset(offset)
        )
        if limit is not None:
            q = q.limit(limit)
        return list(s.execute(q).scalars())

    def count_users(
        self, s: Session, tenant_id: str, *, where: Sequence[ColumnElement[bool]] = ()
    ) -> int:
        q = select(func.count()).select_from(ScimUser).where(*self._users_where(tenant_id), *where)
        return int(s.execute(q).scalar_one())

    def users(self, s: Session, tenant_id: str, ids: Sequence[str]) -> list[UserRecord]:
        """The live users of ``ids``, in that order (unknown or deleted ids left out)."""
        if not ids:
            return []
        rows = s.execute(
            select(ScimUser, PrincipalRow.active)
            .join(PrincipalRow, PrincipalRow.id == ScimUser.principal_id)
            .where(*self._users_where(tenant_id), ScimUser.principal_id.in_(list(ids)))
        ).all()
        by_id = {row.principal_id: self._user(s, tenant_id, row, active) for row, active in rows}
        return [by_id[i] for i in ids if i in by_id]

    def user(self, s: Session, tenant_id: str, user_id: str) -> UserRecord | None:
        found = self.users(s, tenant_id, [user_id])
        return found[0] if found else None

    def user_row(self, s: Session, tenant_id: str, user_id: str) -> ScimUser | None:
        return s.execute(
            select(ScimUser).where(*self._users_where(tenant_id), ScimUser.principal_id == user_id)
        ).scalar_one_or_none()

    def user_name_taken(
        self, s: Session, tenant_id: str, user_name: str, *, other_than: str | None = None
    ) -> bool:
        ref = self.ref(s, tenant_id, "userName", user_name)
        q = select(ScimUser.principal_id).where(
            ScimUser.tenant_id == tenant_id, ScimUser.user_name_ref == ref
        )
        found = s.execute(q).scalar_one_or_none()
        return found is not None and found != other_than

    def write_user(
        self, s: Session, tenant_id: str, row: ScimUser, rec: UserRecord, *, at: datetime
    ) -> None:
        """Seal ``rec``'s profile into ``row`` and refresh its refs (modified ``at``)."""
        row.profile_sealed = self._seal(
            s,
            self._context(tenant_id, USER_OWNER, row.principal_id),
            {
                "userName": rec.user_name,
                "displayName": rec.display_name,
                "externalId": rec.external_id,
                "active": rec.active,
            },
        )
        row.user_name_ref = self.ref(s, tenant_id, "userName", rec.user_name)
        row.external_id_ref = (
            None
            if rec.external_id is None
            else self.ref(s, tenant_id, "externalId", rec.external_id)
        )
        row.updated_at = at
        s.add(row)  # a new row joins the session only once every column is set
        s.flush()

    def erase_user(self, s: Session, tenant_id: str, row: ScimUser) -> int:
        """Mark deleted, clear refs and profile, drop memberships, shred the profile key.

        Returns the number of group memberships removed.
        """
        result: CursorResult[Any] = s.execute(  # type: ignore[assignment]
            delete(ScimGroupMember).where(
                ScimGroupMember.tenant_id == tenant_id,
                ScimGroupMember.principal_id == row.principal_id,
            )
        )
        removed = result.rowcount
        row.deleted_at = row.updated_at = utcnow()
        row.user_name_ref = row.external_id_ref = row.profile_sealed = None
        s.flush()
        self._keys.shred(s, tenant_id, USER_OWNER, row.principal_id)
        return int(removed or 0)

    # -- groups --------------------------------------------------------------

    def group_ids(
        self,
        s: Session,
        tenant_id: str,
        *,
        where: Sequence[ColumnElement[bool]] = (),
        offset: int = 0,
        limit: int | None = None,
    ) -> list[str]:
        q = (
            select(ScimGroup.id)
            .where(ScimGroup.tenant_id == tenant_id, *where)
            .order_by(ScimGroup.created_at, ScimGroup.id)
            .offset(offset)
        )
        if limit is not None:
            q = q.limit(limit)
        return list(s.execute(q).scalars())

    def count_groups(
        self, s: Session, tenant_id: str, *, where: Sequence[ColumnElement[bool]] = ()
    ) -> int:
        q = (
            select(func.count())
            .select_from(ScimGroup)
            .where(ScimGroup.tenant_id == tenant_id, *where)
        )
        return int(s.execute(q).scalar_one())

    def groups(
        self, s: Session, tenant_id: str, ids: Sequence[str], *, with_members: bool = True
    ) -> list[GroupRecord]:
        if not ids:
            return []
        rows = s.execute(
            select(ScimGroup).where(ScimGroup.tenant_id == tenant_id, ScimGroup.id.in_(list(ids)))
        ).scalars()
        by_id: dict[str, GroupRecord] = {}
        for row in rows:
            doc = self._open(s, self._context(tenant_id, GROUP_OWNER, row.id), row.profile_sealed)
            by_id[row.id] = GroupRecord(
                id=row.id,
                display_name=str(doc["displayName"]),
                external_id=doc.get("externalId"),
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
        if with_members and by_id:
            members = s.execute(
                select(ScimGroupMember.group_id, ScimGroupMember.principal_id)
                .where(
                    ScimGroupMember.tenant_id == tenant_id,
                    ScimGroupMember.group_id.in_(list(by_id)),
                )
                .order_by(ScimGroupMember.added_at, ScimGroupMember.principal_id)
            ).all()
            for group_id, principal_id in members:
                by_id[group_id].members.append(principal_id)
        return [by_id[i] for i in ids if i in by_id]

    def group_row(self, s: Session, tenant_id: str, group_id: str) -> ScimGroup | None:
        return s.execute(
            select(ScimGroup).where(ScimGroup.tenant_id == tenant_id, ScimGroup.id == group_id)
        ).scalar_one_or_none()

    def live_user_ids(self, s: Session, tenant_id: str, ids: Iterable[str]) -> set[str]:
        wanted = sorted(set(ids))
        if not wanted:
            return set()
        return set(
            s.execute(
                select(ScimUser.principal_id).where(
                    *self._users_where(tenant_id), ScimUser.principal_id.in_(wanted)
                )
            ).scalars()
        )

    def write_group(
        self, s: Session, tenant_id: str, row: ScimGroup, rec: GroupRecord, *, at: datetime
    ) -> tuple[list[str], list[str]]:
        """Seal ``rec`` into ``row``, set its members; return (added, removed) member ids."""
        row.profile_sealed = self._seal(
            s,
            self._context(tenant_id, GROUP_OWNER, row.id),
            {"displayName": rec.display_name, "externalId": rec.external_id},
        )
        row.display_name_ref = self.ref(s, tenant_id, "displayName", rec.display_name)
        row.external_id_ref = (
            None
            if rec.external_id is None
            else self.ref(s, tenant_id, "externalId", rec.external_id)
        )
        row.updated_at = at
        s.add(row)  # a new row joins the session only once every column is set
        s.flush()
        current = set(
            s.execute(
                select(ScimGroupMember.principal_id).where(
                    ScimGroupMember.tenant_id == tenant_id, ScimGroupMember.group_id == row.id
                )
            ).scalars()
        )
        wanted = set(rec.members)
        added, removed = sorted(wanted - current), sorted(current - wanted)
        if removed:
            s.execute(
                delete(ScimGroupMember).where(
                    ScimGroupMember.tenant_id == tenant_id,
                    ScimGroupMember.group_id == row.id,
                    ScimGroupMember.principal_id.in_(removed),
                )
            )
        s.add_all(
            ScimGroupMember(group_id=row.id, principal_id=p, tenant_id=tenant_id, added_at=at)
            for p in added
        )
        s.flush()
        return added, removed

    def erase_group(self, s: Session, tenant_id: str, row: ScimGroup) -> int:
        """Delete the group and its memberships, shred its key; return members removed."""
        result: CursorResult[Any] = s.execute(  # type: ignore[assignment]
            delete(ScimGroupMember).where(
                ScimGroupMember.tenant_id == tenant_id, ScimGroupMember.group_id == row.id
            )
        )
        removed = result.rowcount
        s.delete(row)
        s.flush()
        self._keys.shred(s, tenant_id, GROUP_OWNER, row.id)
        return int(removed or 0)
