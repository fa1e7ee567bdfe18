"""Payments: hand a tokenized card number to the configured payment connector.

The card number never comes back in a response: the caller (a
``payment_operator``, the only role with ``payments:detokenize``) gets the
processor's reference and status. The hand-off is authorised on the token's
call and audited (committed) before the number is opened.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from callvault import calls
from callvault.access import Action
from callvault.api import resources, schemas
from callvault.api.blocking import blocking
from callvault.api.deps import CtxDep
from callvault.payments import TokenVault
from callvault.payments._configured import configured_connector

router = APIRouter(prefix="/v1/payments", tags=["payments"])

TokenId = Annotated[str, Path(pattern=r"^tok_[a-z2-7]{26}$", max_length=40)]


@router.post("/tokens/{token_id}/handoff")
@blocking
def hand_off(token_id: TokenId, ctx: CtxDep) -> schemas.HandoffOut:
    """Send the card behind ``token_id`` to the payment connector; return its reference."""
    vault = TokenVault(ctx.rt.keys, ctx.rt.audit)
    with ctx.tx() as s:
        token = vault.get(s, ctx.tenant_id, token_id)
        call = calls.read_call(s, ctx.tenant_id, token.call_id)
        grant = ctx.enforce(Action.PAYMENTS_DETOKENIZE, resources.of_call(call))
        connector = configured_connector(ctx.rt.settings)
        # Only now, allowed: a security code captured on the call goes with it (used once).
        cvv = ctx.rt.cvv_holds.take(ctx.tenant_id, token_id)
        result = vault.detokenize_to_connector(
            s, grant, token_id, connector, cvv=cvv, request_id=ctx.request_id
        )
    return schemas.HandoffOut(
        token_id=result.token_id,
        connector=result.connector,
        status=result.status,
        reference=result.reference,
    )
