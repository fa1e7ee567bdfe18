"""Administrators' changes to principals that can never lock a tenant's owners out.

``PATCH /v1/principals/{id}`` (:func:`change_active`) and ``DELETE
/v1/principals/{id}/roles/{binding}`` (:func:`unbind_role`): both lock the
tenant's owners before deciding, so two concurrent changes cannot each remove
an owner and leave none; :func:`holds_owner` tells the router when a change
(or an API key issued for the principal) needs ``principal:grant_owner``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from callvault.access._model import Binding
from callvault.access._principals import Revocation, set_active_counted
from callvault.access.roles import Role, ScopeKind
from callvault.errors import ConflictError, NotFoundError
from callvault.store.db import begin_write
from callvault.store.models import Principal as PrincipalRow
from callvault.store.models import RoleBinding, ScimUser


def holds_owner(session: Session, tenant_id: str, principal_id: str) -> bool:
    """Whether the principal holds ``owner`` at any scope: an API key issued for it, a
    change of its active flag or of its owner binding needs ``principal:grant_owner``."""
    return bool(
        session.execute(
            select(
                exists().where(
                    RoleBinding.tenant_id == tenant_id,
                    RoleBinding.principal_id == principal_id,
                    RoleBinding.role == Role.OWNER.value,
                )
            )
        ).scalar_one()
    )


def _is_tenant_owner_binding(row: RoleBinding, tenant_id: str) -> bool:
    return (
        row.role == Role.OWNER.value
        and row.scope_kind == ScopeKind.TENANT.value
        and row.scope_id == tenant_id
    )


def _tenant_owner_rows(tenant_id: str) -> Select[str]:
    """Principals of the tenant with an ``owner`` binding at tenant scope (any active flag)."""
    return (
        select(PrincipalRow.id)
        .join(RoleBinding, RoleBinding.principal_id == PrincipalRow.id)
        .where(
            PrincipalRow.tenant_id == tenant_id,
            RoleBinding.tenant_id == tenant_id,
            RoleBinding.role == Role.OWNER.value,
            RoleBinding.scope_kind == ScopeKind.TENANT.value,
            RoleBinding.scope_id == tenant_id,
        )
    )


def _lock_owners(session: Session, tenant_id: str) -> None:
    """Serialise the changes that can take the tenant's last owner away.

    SQLite: the database write lock (``begin_write``). PostgreSQL: the row locks of
    every principal holding ``owner`` at tenant scope, in id order (so two such
    changes never deadlock); the caller then decides on a *new* statement, which
    sees whatever the previous holder of the locks committed.
    """
    begin_write(session)
    session.execute(
        _tenant_owner_rows(tenant_id).order_by(PrincipalRow.id).with_for_update(of=PrincipalRow)
    ).all()


def _other_active_owner(session: Session, tenant_id: str, principal_id: str) -> bool:
    return (
        session.execute(
            _tenant_owner_rows(tenant_id)
            .where(PrincipalRow.active.is_(True), PrincipalRow.id != principal_id)
            .limit(1)
        ).first()
        is not None
    )


def is_scim_managed(session: Session, tenant_id: str, principal_id: str) -> bool:
    """Whether the principal was provisioned over SCIM (it has a ``scim_users`` row,
    deleted ones included): the IdP's SCIM client owns its active flag."""
    return bool(
        session.execute(
            select(
                exists().where(
                    ScimUser.tenant_id == tenant_id, ScimUser.principal_id == principal_id
                )
            )
        ).scalar_one()
    )


@dataclass(frozen=True, slots=True)
class ActiveChange:
    """What :func:`change_active` did; ``changed`` is false for a no-op (nothing written)."""

    changed: bool
    revoked: Revocation = field(default_factory=Revocation)


def change_active(
    session: Session, tenant_id: str, principal_id: str, *, active: bool, by: str
) -> ActiveChange:
    """Activate or deactivate a principal for an administrator (``PATCH /v1/principals/{id}``).

    The caller MUST have passed every check that can deny (``principal:manage``,
    and ``principal:grant_owner`` if the principal holds ``owner``) before: this
    takes the write lock, and on SQLite a denial's audit entry cannot be written
    while the request holds it.

    1. Lock the tenant's owners (:func:`_lock_owners`), then read the principal
       again (``NotFoundError`` if it is not the tenant's).
    2. Already in the state asked for: a no-op, nothing written.
    3. Activating a SCIM-provisioned principal: ``ConflictError`` (the IdP's SCIM
       client owns its active flag). Deactivating one is allowed: a kill switch.
    4. Deactivating the last active principal holding ``owner`` at tenant scope:
       ``ConflictError``, nothing written (the tenant would have no way back).
    5. :func:`set_active_counted`: deactivating revokes its API keys and ends its
       browser sessions in the caller's transaction.
    """
    # (1)
    _lock_owners(session, tenant_id)
    row = session.execute(
        select(PrincipalRow)
        .where(PrincipalRow.tenant_id == tenant_id, PrincipalRow.id == principal_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError("principal not found", field="principal_id")
    # (2)
    if row.active == active:
        return ActiveChange(changed=False)
    # (3)
    if active and is_scim_managed(session, tenant_id, principal_id):
        raise ConflictError(
            "a SCIM-provisioned principal is activated by its identity provider", field="active"
        )
    # (4)
    if (
        not active
        and _holds_tenant_owner(session, tenant_id, principal_id)
        and not _other_active_owner(session, tenant_id, principal_id)
    ):
        raise ConflictError("the tenant's last active owner cannot be deactivated", field="active")
    # (5)
    revoked = set_active_counted(session, tenant_id, principal_id, active=active, by=by)
    return ActiveChange(changed=True, revoked=revoked)


def _holds_tenant_owner(session: Session, tenant_id: str, principal_id: str) -> bool:
    return (
        session.execute(
            _tenant_owner_rows(tenant_id).where(PrincipalRow.id == principal_id).limit(1)
        ).first()
        is not None
    )


def get_binding(
    session: Session, tenant_id: str, principal_id: str, binding_id: str
) -> RoleBinding:
    """The principal's binding ``binding_id``; ``NotFoundError`` if it is not this
    principal's in this tenant."""
    row = session.execute(
        select(RoleBinding).where(
            RoleBinding.tenant_id == tenant_id,
            RoleBinding.principal_id == principal_id,
            RoleBinding.id == binding_id,
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError("role binding not found", field="binding_id")
    return row


def unbind_role(session: Session, tenant_id: str, principal_id: str, binding_id: str) -> Binding:
    """Remove one of a principal's role bindings; return what it was.

    The caller MUST have passed every check that can deny (``principal:manage``,
    and ``principal:grant_owner`` for an ``owner`` binding) before: this takes
    the write lock (see :func:`change_active`).

    1. Lock the tenant's owners (:func:`_lock_owners`), then read the binding
       again (``NotFoundError`` if it is not the principal's in the tenant).
    2. The last ``owner`` binding at tenant scope of an active principal (no
       other active principal holds one): ``ConflictError``, nothing written.
    3. Delete it. Every request reads current bindings, so the principal's keys
       and sessions lose the role as soon as this commits.
    """
    # (1)
    _lock_owners(session, tenant_id)
    row = session.execute(
        select(RoleBinding)
        .where(
            RoleBinding.tenant_id == tenant_id,
            RoleBinding.principal_id == principal_id,
            RoleBinding.id == binding_id,
        )
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError("role binding not found", field="binding_id")
    removed = Binding(Role(row.role), ScopeKind(row.scope_kind), row.scope_id)
    # (2)
    if _is_tenant_owner_binding(row, tenant_id):
        active = session.execute(
            select(PrincipalRow.active).where(
                PrincipalRow.tenant_id == tenant_id, PrincipalRow.id == principal_id
            )
        ).scalar_one()
        if active and not _other_active_owner(session, tenant_id, principal_id):
            raise ConflictError(
                "the tenant's last owner binding cannot be removed", field="binding_id"
            )
    # (3)
    session.delete(row)
    session.flush()
    return removed
