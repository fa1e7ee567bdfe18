"""The tenant's SCIM tokens: create (shown once), list, revoke. Owners and admins only.

Managing a SCIM token is managing principals (a token can create and
deactivate users), so every route is gated by ``principal:manage`` on the
tenant; each creation and revocation is an audit entry carrying the token id
and an HMAC of the token (never the token).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from callvault import scim, tenancy
from callvault.access import Action
from callvault.api import resources
from callvault.api.blocking import blocking
from callvault.api.deps import Ctx, CtxDep, ResourceId
from callvault.audit import AuditEvent, Outcome
from callvault.audit._entry import OCSF_ACCOUNT_CHANGE
from callvault.store.models import ScimToken

router = APIRouter(prefix="/v1/tenant/scim-tokens", tags=["scim"])

#: Lifetime of a SCIM token when the request names none, and the longest allowed.
DEFAULT_TTL_DAYS = 365
MAX_TTL_DAYS = 3650


class ScimTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=200, pattern=r"^[\x20-\x7e]+$")
    ttl_days: int | None = Field(default=None, ge=1, le=MAX_TTL_DAYS)


class ScimTokenOut(BaseModel):
    id: str
    label: str
    created_at: datetime
    created_by: str | None = None
    expires_at: datetime
    revoked_at: datetime | None = None
    #: ``/scim/v2/<tenant>``: the base URL to give the identity provider (after the host).
    scim_base_path: str
    #: Only in the reply that created it; never again.
    token: str | None = None


def _out(row: ScimToken) -> ScimTokenOut:
    return ScimTokenOut(
        id=row.id,
        label=row.label,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        scim_base_path=f"/scim/v2/{row.tenant_id}",
    )


def _audit(s: Session, ctx: Ctx, action: str, token_id: str, **detail: str) -> None:
    ctx.rt.audit.append_in(
        s,
        ctx.tenant_id,
        AuditEvent(
            action=action,
            outcome=Outcome.SUCCESS,
            actor=ctx.principal.id,
            resource_kind="scim_token",
            resource_id=token_id,
            request_id=ctx.request_id,
            ocsf_class=OCSF_ACCOUNT_CHANGE,
            detail=dict(detail),
        ),
    )


def _gate(s: Session, ctx: Ctx) -> None:
    ctx.enforce(Action.PRINCIPAL_MANAGE, resources.of_tenant(tenancy.read_tenant(s, ctx.tenant_id)))


@router.post("", status_code=status.HTTP_201_CREATED)
@blocking
def create_scim_token(body: ScimTokenCreate, ctx: CtxDep) -> ScimTokenOut:
    # The log key is loaded (or made, in a transaction of its own) before this
    # request's transaction starts writing.
    log_key = ctx.rt.audit.log_key(ctx.tenant_id)
    with ctx.tx() as s:
        _gate(s, ctx)
        issued = scim.issue_scim_token(
            s,
            ctx.tenant_id,
            label=body.label,
            ttl=timedelta(days=body.ttl_days or DEFAULT_TTL_DAYS),
            created_by=ctx.principal.id,
        )
        _audit(s, ctx, "scim_token.create", issued.id, token=log_key.secret_ref(issued.token))
        return ScimTokenOut(
            id=issued.id,
            label=issued.label,
            created_at=issued.created_at,
            created_by=ctx.principal.id,
            expires_at=issued.expires_at,
            scim_base_path=f"/scim/v2/{ctx.tenant_id}",
            token=issued.token,
        )


@router.get("")
@blocking
def list_scim_tokens(ctx: CtxDep) -> list[ScimTokenOut]:
    with ctx.tx() as s:
        _gate(s, ctx)
        return [_out(row) for row in scim.list_scim_tokens(s, ctx.tenant_id)]


@router.delete("/{token_id}")
@blocking
def revoke_scim_token(token_id: ResourceId, ctx: CtxDep) -> ScimTokenOut:
    """Revoke a token: it stops authenticating at once. Idempotent; only a revocation is audited."""
    with ctx.tx() as s:
        _gate(s, ctx)
        row, revoked = scim.revoke_scim_token(s, ctx.tenant_id, token_id)
        if revoked:
            _audit(s, ctx, "scim_token.revoke", row.id)
        return _out(row)
