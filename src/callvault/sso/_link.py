"""A verified identity → the tenant's principal, with the roles the connection maps it to.

:meth:`IdentityLinker.resolve`, in the login's tenant transaction:

1. Map groups/claims to bindings (:func:`~callvault.sso._mapping.map_identity`).
2. The user is (connection id, HMAC of the subject): look the link up. The
   subject is never stored; its ref is HMAC-SHA256 under the tenant's SSO
   lookup key (HKDF of a tenant data key), so a ref cannot be tested against a
   guessed subject without the key.
3. No link: if the connection links to SCIM (``link_scim``), find the live
   SCIM user whose ``userName`` is the identity's e-mail (``email``: the
   e-mail MUST be verified; SAML assertions count as verified, signed by the
   tenant's own IdP) or whose ``externalId`` is the subject (``subject``), and
   link it. Else, with ``jit``, create a principal of kind ``user`` (name
   ``sso:<id>``, no PII) and link it. Else the login is denied.
4. A deactivated principal (SCIM ``active=false`` or deleted) is denied, link or not.
   A new link to a principal holding ``owner`` is denied unless the connection
   allows owners (``owner-not-allowed``): SCIM linking never yields an owner's
   session through a connection an administrator could have configured.
5. With no mapped binding the login is denied (fail closed); the bindings the
   connection granted earlier are removed all the same.
6. Sync the bindings this connection manages (``created_by`` = connection
   id): add what the mapping gives and the principal lacks, remove what the
   connection granted and the mapping no longer gives. Bindings granted by
   an administrator are never touched. A deployment or agent the mapping
   names that no longer exists is skipped.
7. Seal the last profile seen (e-mail, display name) under the principal's own key.

Denials come back as :attr:`LinkOutcome.denied` (a reason code) so the caller
can commit the binding removals and the failure's audit entry together.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import rfc8785
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault import tenancy
from callvault.access import Binding, Role, ScopeKind
from callvault.crypto import SealContext, Sealer
from callvault.crypto.hazmat import hkdf_sha256
from callvault.errors import NotFoundError
from callvault.keys import KeyHierarchy, KeyOwner
from callvault.scim._store import ScimStore
from callvault.sso._connections import Connection
from callvault.sso._identity import SsoIdentity
from callvault.sso._mapping import map_identity
from callvault.store import new_id
from callvault.store.models import Principal as PrincipalRow
from callvault.store.models import RoleBinding, ScimUser, SsoIdentityLink

_LOOKUP_OWNER: Final = "sso"
_LOOKUP_PURPOSE: Final = "sso-lookup"
_SUBJECT_INFO: Final = b"callvault/sso/subject/v1\x00"
PROFILE_OWNER: Final = "sso-profile"
SSO_PRINCIPAL_PREFIX: Final = "sso:"


@dataclass(frozen=True, slots=True)
class BindingChange:
    binding_id: str
    role: str
    scope_kind: str
    scope_id: str


@dataclass(slots=True)
class LinkOutcome:
    """What a login did to principals and roles, by id only (for the audit entries)."""

    subject_ref: str
    principal_id: str | None = None
    denied: str | None = None
    created: bool = False
    linked: str | None = None  # "scim" or "jit" when the link was made by this login
    added: list[BindingChange] = field(default_factory=list)
    removed: list[BindingChange] = field(default_factory=list)
    skipped_scopes: int = 0


class IdentityLinker:
    def __init__(self, keys: KeyHierarchy, sealer: Sealer) -> None:
        self._keys = keys
        self._sealer = sealer
        self._scim = ScimStore(keys, sealer)

    def subject_ref(self, s: Session, tenant_id: str, connection_id: str, subject: str) -> bytes:
        owner = KeyOwner(tenant_id, None, _LOOKUP_OWNER, tenant_id, _LOOKUP_PURPOSE)
        key = hkdf_sha256(self._keys.data_key(s, owner, create=True), info=_SUBJECT_INFO)
        message = connection_id.encode() + b"\x00" + subject.encode("utf-8", "surrogatepass")
        return hmac.new(key, message, hashlib.sha256).digest()

    def resolve(  # noqa: PLR0911 - one return per numbered step's refusal reads best
        self, s: Session, conn: Connection, identity: SsoIdentity, *, now: datetime
    ) -> LinkOutcome:
        tenant_id = conn.tenant_id
        # (1)
        wanted = map_identity(conn.policy, identity)
        # (2)
        ref = self.subject_ref(s, tenant_id, conn.id, identity.subject)
        out = LinkOutcome(subject_ref="hmac-sha256:" + ref.hex())
        link = s.execute(
            select(SsoIdentityLink).where(
                SsoIdentityLink.tenant_id == tenant_id,
                SsoIdentityLink.connection_id == conn.id,
                SsoIdentityLink.subject_ref == ref,
            )
        ).scalar_one_or_none()
        principal: PrincipalRow | None = None
        if link is not None:
            principal = s.get(PrincipalRow, link.principal_id)
        else:
            # (3)
            principal = self._scim_principal(s, conn, identity)
            if principal is not None:
                out.linked = "scim"
            elif not conn.jit:
                out.denied = "not-provisioned"
                return out
            elif not wanted:
                out.denied = "no-role"  # (5) nothing is created for a user with no role
                return out
            else:
                principal = PrincipalRow(
                    id=new_id("prn"), tenant_id=tenant_id, kind="user", active=True, created_at=now
                )
                principal.name = f"{SSO_PRINCIPAL_PREFIX}{principal.id}"
                s.add(principal)
                s.flush()
                out.created, out.linked = True, "jit"
        if principal is None or principal.tenant_id != tenant_id:  # pragma: no cover - FK + wall
            out.denied = "not-provisioned"
            return out
        out.principal_id = principal.id
        # (4)
        if not principal.active:
            out.denied = "inactive"
            return out
        if link is None:
            if self._linked_elsewhere(s, conn, principal.id):
                out.denied = "link-conflict"
                return out
            if not conn.policy.allow_owner and self._is_owner(s, tenant_id, principal.id):
                out.denied = "owner-not-allowed"  # a link never makes an owner's session
                return out
            link = SsoIdentityLink(
                connection_id=conn.id,
                subject_ref=ref,
                tenant_id=tenant_id,
                principal_id=principal.id,
                created_at=now,
                last_login_at=now,
            )
            s.add(link)
        # (6)
        self._sync(s, conn, principal.id, wanted, out, now=now)
        if not wanted:
            out.denied = "no-role"  # (5)
            return out
        # (7)
        link.last_login_at = now
        link.profile_sealed = self._sealer.seal(
            s,
            rfc8785.dumps(
                {
                    k: v
                    for k, v in (("email", identity.email), ("name", identity.display_name))
                    if v is not None
                }
            ),
            SealContext(
                tenant_id=tenant_id,
                purpose=PROFILE_OWNER,
                object_id=f"{conn.id}:{principal.id}",
                owner_kind=PROFILE_OWNER,
                owner_id=principal.id,
            ),
        )
        s.flush()
        return out

    def _scim_principal(
        self, s: Session, conn: Connection, identity: SsoIdentity
    ) -> PrincipalRow | None:
        if conn.link_scim == "email":
            if identity.email is None or not (identity.email_verified or conn.protocol == "saml"):
                return None
            ref = self._scim.ref(s, conn.tenant_id, "userName", identity.email)
            where = ScimUser.user_name_ref == ref
        elif conn.link_scim == "subject":
            ref = self._scim.ref(s, conn.tenant_id, "externalId", identity.subject)
            where = ScimUser.external_id_ref == ref
        else:
            return None
        return s.execute(
            select(PrincipalRow)
            .join(ScimUser, ScimUser.principal_id == PrincipalRow.id)
            .where(ScimUser.tenant_id == conn.tenant_id, ScimUser.deleted_at.is_(None), where)
            .order_by(ScimUser.created_at)
            .limit(1)
        ).scalar_one_or_none()

    @staticmethod
    def _is_owner(s: Session, tenant_id: str, principal_id: str) -> bool:
        return (
            s.execute(
                select(RoleBinding.id).where(
                    RoleBinding.tenant_id == tenant_id,
                    RoleBinding.principal_id == principal_id,
                    RoleBinding.role == Role.OWNER.value,
                )
            ).first()
            is not None
        )

    def _linked_elsewhere(self, s: Session, conn: Connection, principal_id: str) -> bool:
        other = s.execute(
            select(SsoIdentityLink.subject_ref).where(
                SsoIdentityLink.tenant_id == conn.tenant_id,
                SsoIdentityLink.connection_id == conn.id,
                SsoIdentityLink.principal_id == principal_id,
            )
        ).first()
        return other is not None

    def _scope_exists(self, s: Session, tenant_id: str, b: Binding) -> bool:
        try:
            if b.scope_kind is ScopeKind.DEPLOYMENT:
                tenancy.get_deployment(s, tenant_id, b.scope_id)
            elif b.scope_kind is ScopeKind.AGENT:
                tenancy.get_agent(s, tenant_id, b.scope_id)
        except NotFoundError:
            return False
        return True

    def _sync(
        self,
        s: Session,
        conn: Connection,
        principal_id: str,
        wanted: frozenset[Binding],
        out: LinkOutcome,
        *,
        now: datetime,
    ) -> None:
        rows = list(
            s.execute(
                select(RoleBinding).where(
                    RoleBinding.tenant_id == conn.tenant_id,
                    RoleBinding.principal_id == principal_id,
                )
            ).scalars()
        )
        held = {Binding(Role(r.role), ScopeKind(r.scope_kind), r.scope_id): r for r in rows}
        for binding, row in sorted(held.items(), key=lambda kv: kv[1].id):
            if row.created_by == conn.id and binding not in wanted:
                out.removed.append(BindingChange(row.id, row.role, row.scope_kind, row.scope_id))
                s.delete(row)
        for binding in sorted(wanted, key=lambda b: (b.role, b.scope_kind, b.scope_id)):
            if binding in held:
                continue
            if not self._scope_exists(s, conn.tenant_id, binding):
                out.skipped_scopes += 1
                continue
            row = RoleBinding(
                id=new_id("rb"),
                tenant_id=conn.tenant_id,
                principal_id=principal_id,
                role=binding.role.value,
                scope_kind=binding.scope_kind.value,
                scope_id=binding.scope_id,
                created_at=now,
                created_by=conn.id,
            )
            s.add(row)
            out.added.append(BindingChange(row.id, row.role, row.scope_kind, row.scope_id))
        s.flush()
