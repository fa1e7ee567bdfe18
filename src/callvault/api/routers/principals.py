"""Principals (users, service accounts), their role bindings and API keys."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, status
from sqlalchemy.orm import Session

from callvault import access, tenancy
from callvault.access import Action, Role, ScopeKind
from callvault.api import resources, schemas
from callvault.api.blocking import blocking
from callvault.api.deps import Ctx, CtxDep, ResourceId
from callvault.audit import AuditEvent, Outcome
from callvault.audit._entry import OCSF_ACCOUNT_CHANGE
from callvault.errors import NotFoundError
from callvault.store.models import Principal as PrincipalRow

router = APIRouter(prefix="/v1", tags=["principals"])

#: At most this many API key ids in a deactivation's audit entry (the count is always there).
_AUDIT_MAX_IDS = 100


def _out(s: Session, ctx: Ctx, row: PrincipalRow) -> schemas.PrincipalOut:
    bindings = access.list_bindings(s, ctx.tenant_id, row.id)
    return schemas.PrincipalOut(
        id=row.id,
        kind=row.kind,
        name=row.name,
        active=row.active,
        created_at=row.created_at,
        bindings=[
            schemas.BindingOut(id=b.id, role=b.role, scope_kind=b.scope_kind, scope_id=b.scope_id)
            for b in bindings
        ],
    )


def _audit(s: Session, ctx: Ctx, action: str, kind: str, id_: str, **detail: object) -> None:
    ctx.rt.audit.append_in(
        s,
        ctx.tenant_id,
        AuditEvent(
            action=action,
            outcome=Outcome.SUCCESS,
            actor=ctx.principal.id,
            resource_kind=kind,
            resource_id=id_,
            request_id=ctx.request_id,
            ocsf_class=OCSF_ACCOUNT_CHANGE,
            detail=dict(detail),
        ),
    )


def _tenant_resource(s: Session, ctx: Ctx) -> access.Resource:
    return resources.of_tenant(tenancy.read_tenant(s, ctx.tenant_id))


@router.get("/principals")
@blocking
def list_principals(ctx: CtxDep) -> list[schemas.PrincipalOut]:
    with ctx.tx() as s:
        ctx.enforce(Action.PRINCIPAL_READ, _tenant_resource(s, ctx))
        return [_out(s, ctx, p) for p in access.list_principals(s, ctx.tenant_id)]


@router.post("/principals", status_code=status.HTTP_201_CREATED)
@blocking
def create_principal(body: schemas.PrincipalCreate, ctx: CtxDep) -> schemas.PrincipalOut:
    with ctx.tx() as s:
        ctx.enforce(Action.PRINCIPAL_MANAGE, _tenant_resource(s, ctx))
        row = access.create_principal(s, ctx.tenant_id, kind=body.kind, name=body.name)
        _audit(s, ctx, "principal.create", "principal", row.id)
        return _out(s, ctx, row)


@router.get("/principals/{principal_id}")
@blocking
def get_principal(principal_id: ResourceId, ctx: CtxDep) -> schemas.PrincipalOut:
    with ctx.tx() as s:
        ctx.enforce(Action.PRINCIPAL_READ, _tenant_resource(s, ctx))
        return _out(s, ctx, access.get_principal(s, ctx.tenant_id, principal_id))


@router.post("/principals/{principal_id}/roles", status_code=status.HTTP_201_CREATED)
@blocking
def bind_role(
    principal_id: ResourceId, body: schemas.BindingCreate, ctx: CtxDep
) -> schemas.PrincipalOut:
    with ctx.tx() as s:
        tenant = _tenant_resource(s, ctx)
        ctx.enforce(Action.PRINCIPAL_MANAGE, tenant)
        if body.role is Role.OWNER:
            ctx.enforce(Action.PRINCIPAL_GRANT_OWNER, tenant)
        row = access.get_principal(s, ctx.tenant_id, principal_id)
        # The scope must exist in this tenant (404 otherwise, like any other id).
        if body.scope.kind is ScopeKind.TENANT:
            if body.scope.id != ctx.tenant_id:
                raise NotFoundError("tenant not found", field="scope.id")
            scope_id = ctx.tenant_id
        elif body.scope.kind is ScopeKind.DEPLOYMENT:
            scope_id = tenancy.get_deployment(s, ctx.tenant_id, body.scope.id).id
        else:
            scope_id = tenancy.get_agent(s, ctx.tenant_id, body.scope.id).id
        binding = access.bind_role(
            s,
            ctx.tenant_id,
            row.id,
            body.role,
            body.scope.kind,
            scope_id,
            created_by=ctx.principal.id,
        )
        _audit(
            s,
            ctx,
            "principal.bind_role",
            "principal",
            row.id,
            binding=binding.id,
            role=body.role.value,
            scope=scope_id,
        )
        return _out(s, ctx, row)


@router.patch("/principals/{principal_id}")
@blocking
def update_principal(
    principal_id: ResourceId, body: schemas.PrincipalUpdate, ctx: CtxDep
) -> schemas.PrincipalOut:
    """Deactivate (API keys revoked and browser sessions ended at once) or activate.

    Acting on a principal that holds ``owner`` is acting as one: ``principal:grant_owner``
    too. Already in that state: 200, nothing written, no audit entry.
    """
    with ctx.tx() as s:
        tenant = _tenant_resource(s, ctx)
        ctx.enforce(Action.PRINCIPAL_MANAGE, tenant)
        row = access.get_principal(s, ctx.tenant_id, principal_id)
        if access.holds_owner(s, ctx.tenant_id, row.id):
            ctx.enforce(Action.PRINCIPAL_GRANT_OWNER, tenant)
        # Every check that can deny ran above: from here on the transaction writes.
        change = access.change_active(
            s, ctx.tenant_id, row.id, active=body.active, by=ctx.principal.id
        )
        if change.changed:
            _audit(
                s,
                ctx,
                "principal.activate" if body.active else "principal.deactivate",
                "principal",
                row.id,
                keys=list(change.revoked.keys[:_AUDIT_MAX_IDS]),
                keys_revoked=len(change.revoked.keys),
                sessions_revoked=change.revoked.sessions,
            )
        return _out(s, ctx, row)


@router.delete("/principals/{principal_id}/roles/{binding_id}")
@blocking
def unbind_role(
    principal_id: ResourceId, binding_id: ResourceId, ctx: CtxDep
) -> schemas.PrincipalOut:
    """Remove one role binding; an ``owner`` one needs ``principal:grant_owner`` too, and
    the tenant's last ``owner`` binding at tenant scope of an active principal stays (409)."""
    with ctx.tx() as s:
        tenant = _tenant_resource(s, ctx)
        ctx.enforce(Action.PRINCIPAL_MANAGE, tenant)
        row = access.get_principal(s, ctx.tenant_id, principal_id)
        binding = access.get_binding(s, ctx.tenant_id, row.id, binding_id)
        if binding.role == Role.OWNER.value:
            ctx.enforce(Action.PRINCIPAL_GRANT_OWNER, tenant)
        # Every check that can deny ran above: from here on the transaction writes.
        removed = access.unbind_role(s, ctx.tenant_id, row.id, binding_id)
        _audit(
            s,
            ctx,
            "principal.unbind_role",
            "principal",
            row.id,
            binding=binding_id,
            role=removed.role.value,
            scope_kind=removed.scope_kind.value,
            scope=removed.scope_id,
            source="api",
        )
        return _out(s, ctx, row)


@router.post("/principals/{principal_id}/keys", status_code=status.HTTP_201_CREATED)
@blocking
def issue_key(principal_id: ResourceId, body: schemas.KeyCreate, ctx: CtxDep) -> schemas.KeyOut:
    """A new API key for the principal; a key of a principal holding ``owner`` (at any
    scope) acts as an owner, so issuing one needs ``principal:grant_owner`` too."""
    with ctx.tx() as s:
        tenant = _tenant_resource(s, ctx)
        ctx.enforce(Action.PRINCIPAL_MANAGE, tenant)
        row = access.get_principal(s, ctx.tenant_id, principal_id)
        # Checked before anything is written: on SQLite a denial after a write could not
        # append its audit entry while this transaction holds the write lock (503).
        if access.holds_owner(s, ctx.tenant_id, row.id):
            ctx.enforce(Action.PRINCIPAL_GRANT_OWNER, tenant)
        ttl = timedelta(days=body.ttl_days or ctx.rt.settings.api_key_ttl_days)
        issued = access.issue_key(s, ctx.tenant_id, row.id, label=body.label, ttl=ttl)
        _audit(s, ctx, "api_key.issue", "api_key", issued.id, principal=row.id)
        return schemas.KeyOut(
            id=issued.id, principal_id=row.id, expires_at=issued.expires_at, token=issued.token
        )


@router.delete("/keys/{key_id}")
@blocking
def revoke_key(key_id: ResourceId, ctx: CtxDep) -> schemas.KeyOut:
    with ctx.tx() as s:
        ctx.enforce(Action.PRINCIPAL_MANAGE, _tenant_resource(s, ctx))
        row = access.revoke_key(s, ctx.tenant_id, key_id)
        _audit(s, ctx, "api_key.revoke", "api_key", row.id, principal=row.principal_id)
        return schemas.KeyOut(id=row.id, principal_id=row.principal_id, expires_at=row.expires_at)
