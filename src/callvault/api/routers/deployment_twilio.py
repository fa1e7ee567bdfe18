"""A deployment's Twilio auth token: set, see whether one is configured, remove.

With a token configured, live ingest (``/v1/ingest/twilio/{deployment_id}``)
refuses every stream whose upgrade does not carry Twilio's
``X-Twilio-Signature`` under it. Setting or removing the token is a change of
the deployment's configuration (``deployment:update``), audited in the same
transaction, the token by its ``hmac-sha256:`` reference only; reading says
whether one is configured and since when (``deployment:read``), never the
token. Another tenant's deployment answers exactly as one that does not exist.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from callvault import tenancy
from callvault.access import Action
from callvault.api import resources, schemas
from callvault.api.blocking import blocking
from callvault.api.deps import Ctx, CtxDep, ResourceId
from callvault.audit import AuditEvent, Outcome
from callvault.audit._entry import OCSF_ENTITY_MANAGEMENT
from callvault.calls._twilio_token import AuthToken, TokenStatus, TwilioAuthTokens
from callvault.store.models import Deployment

router = APIRouter(prefix="/v1/deployments", tags=["deployments"])


def _tokens(ctx: Ctx) -> TwilioAuthTokens:
    return TwilioAuthTokens(ctx.rt.keys, ctx.rt.sealer)


def _out(state: TokenStatus) -> schemas.TwilioAuthTokenOut:
    return schemas.TwilioAuthTokenOut(
        configured=state.configured, configured_at=state.configured_at
    )


def _deployment(s: Session, ctx: Ctx, deployment_id: str, action: Action) -> Deployment:
    row = tenancy.get_deployment(s, ctx.tenant_id, deployment_id)  # another tenant's: 404
    ctx.enforce(action, resources.of_deployment(row))
    return row


def _audit(s: Session, ctx: Ctx, action: str, deployment_id: str, **detail: object) -> None:
    ctx.rt.audit.append_in(
        s,
        ctx.tenant_id,
        AuditEvent(
            action=action,
            outcome=Outcome.SUCCESS,
            actor=ctx.principal.id,
            resource_kind="deployment",
            resource_id=deployment_id,
            request_id=ctx.request_id,
            ocsf_class=OCSF_ENTITY_MANAGEMENT,
            detail=dict(detail),
        ),
    )


@router.get("/{deployment_id}/twilio")
@blocking
def get_twilio(deployment_id: ResourceId, ctx: CtxDep) -> schemas.TwilioAuthTokenOut:
    with ctx.tx() as s:
        row = _deployment(s, ctx, deployment_id, Action.DEPLOYMENT_READ)
        return _out(_tokens(ctx).status(s, row))


@router.put("/{deployment_id}/twilio")
@blocking
def put_twilio(
    deployment_id: ResourceId, body: schemas.TwilioAuthTokenIn, ctx: CtxDep
) -> schemas.TwilioAuthTokenOut:
    # The log key is loaded (or made, in a transaction of its own) before this
    # request's transaction starts writing.
    log_key = ctx.rt.audit.log_key(ctx.tenant_id)
    with ctx.tx() as s:
        row = _deployment(s, ctx, deployment_id, Action.DEPLOYMENT_UPDATE)
        token = AuthToken(body.auth_token.get_secret_value())  # 422 naming the rule, no value
        state, replaced = _tokens(ctx).set(s, row, token)
        _audit(
            s,
            ctx,
            "deployment.twilio_auth_token.set",
            row.id,
            auth_token=log_key.secret_ref(token.reveal()),
            replaced=replaced,
        )
        return _out(state)


@router.delete("/{deployment_id}/twilio", status_code=status.HTTP_204_NO_CONTENT)
@blocking
def delete_twilio(deployment_id: ResourceId, ctx: CtxDep) -> Response:
    """Remove the token (and shred its key). Idempotent: 204 whether or not one was set;
    only a removal is a change, and only a change is audited."""
    with ctx.tx() as s:
        row = _deployment(s, ctx, deployment_id, Action.DEPLOYMENT_UPDATE)
        if _tokens(ctx).remove(s, row):
            _audit(s, ctx, "deployment.twilio_auth_token.delete", row.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
