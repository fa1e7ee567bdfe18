"""The tenant's audit log: entries, signed checkpoints, proofs and the log's public key.

Everything here lets a customer check the log without trusting us: entries
come with their exact canonical bytes, checkpoints are C2SP signed notes
(``text/plain``), and proofs are RFC 9162 hash paths (base64) that the
offline verifier (``callvault audit verify``, :mod:`callvault.audit.verify`)
checks against a checkpoint.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from callvault import tenancy
from callvault.access import Action
from callvault.api import resources, schemas
from callvault.api.blocking import blocking
from callvault.api.deps import Ctx, CtxDep
from callvault.errors import InvalidInputError, ProofError

router = APIRouter(prefix="/v1/audit", tags=["audit"])

#: Tree sizes and indices are unsigned 64-bit in RFC 9162; SQL BIGINT holds 2^63 - 1.
_MAX = 2**63 - 1
_NOTE = "text/plain; charset=utf-8"


def _enforce_read(ctx: Ctx, s: Session) -> None:
    ctx.enforce(Action.AUDIT_READ, resources.of_tenant(tenancy.read_tenant(s, ctx.tenant_id)))


def _allow(ctx: Ctx) -> None:
    with ctx.tx() as s:
        _enforce_read(ctx, s)


def _b64(items: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode("ascii") for h in items]


@router.get("/entries")
@blocking
def list_entries(
    ctx: CtxDep,
    start: Annotated[int, Query(ge=0, le=_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> schemas.AuditEntriesOut:
    """Entries ``start`` onwards (at most ``limit``), each with its exact canonical JSON."""
    with ctx.tx() as s:
        _enforce_read(ctx, s)
        rows = ctx.rt.audit.read(s, ctx.tenant_id, start=start, limit=limit)
        size = ctx.rt.audit.size(s, ctx.tenant_id)
    return schemas.AuditEntriesOut(
        size=size,
        entries=[
            schemas.AuditEntryOut(index=i, entry=json.loads(e), canonical=e.decode())
            for i, e in rows
        ],
    )


@router.get(
    "/checkpoint",
    response_class=Response,
    responses={200: {"content": {_NOTE: {}}, "description": "C2SP signed checkpoint"}},
)
@blocking
def latest_checkpoint(ctx: CtxDep) -> Response:
    """The latest signed checkpoint (a C2SP signed note over a tlog-checkpoint)."""
    _allow(ctx)
    return Response(ctx.rt.audit.latest_checkpoint(ctx.tenant_id), media_type=_NOTE)


@router.post(
    "/checkpoint",
    response_class=Response,
    responses={200: {"content": {_NOTE: {}}, "description": "C2SP signed checkpoint"}},
)
@blocking
def sign_checkpoint(ctx: CtxDep) -> Response:
    """Sign a checkpoint over the log as it is now (or return the one at this size)."""
    _allow(ctx)
    return Response(ctx.rt.audit.checkpoint(ctx.tenant_id).note, media_type=_NOTE)


@router.get("/proofs/inclusion")
@blocking
def inclusion_proof(
    ctx: CtxDep,
    index: Annotated[int, Query(ge=0, le=_MAX)],
    size: Annotated[int, Query(ge=1, le=_MAX)],
) -> schemas.InclusionProofOut:
    """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` entries."""
    if index >= size:
        raise InvalidInputError("index must be less than size", field="index")
    with ctx.tx() as s:
        _enforce_read(ctx, s)
        try:
            proof = ctx.rt.audit.inclusion_proof(s, ctx.tenant_id, index, size)
        except ProofError:
            raise InvalidInputError("the log has not reached that size", field="size") from None
    return schemas.InclusionProofOut(index=index, size=size, proof=_b64(proof))


@router.get("/proofs/consistency")
@blocking
def consistency_proof(
    ctx: CtxDep,
    first: Annotated[int, Query(ge=1, le=_MAX)],
    second: Annotated[int, Query(ge=1, le=_MAX)],
) -> schemas.ConsistencyProofOut:
    """RFC 9162 consistency proof between the trees of ``first`` and ``second`` entries."""
    if first > second:
        raise InvalidInputError("first must not exceed second", field="first")
    with ctx.tx() as s:
        _enforce_read(ctx, s)
        try:
            proof = ctx.rt.audit.consistency_proof(s, ctx.tenant_id, first, second)
        except ProofError:
            raise InvalidInputError("the log has not reached that size", field="second") from None
    return schemas.ConsistencyProofOut(first=first, second=second, proof=_b64(proof))


@router.get("/log-key")
@blocking
def log_key(ctx: CtxDep) -> schemas.LogKeyOut:
    """The log's origin and Ed25519 verifier key (C2SP note verifier key string)."""
    with ctx.tx() as s:
        _enforce_read(ctx, s)
        origin, key = ctx.rt.audit.keys.public(s, ctx.tenant_id)
    return schemas.LogKeyOut(origin=origin, verifier_key=key)
