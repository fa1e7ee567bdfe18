"""Liveness and readiness (outside /v1, unauthenticated, no content)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from callvault.api.blocking import run_blocking
from callvault.api.deps import runtime
from callvault.api.problems import problem
from callvault.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(request: Request, rt: Annotated[Runtime, Depends(runtime)]) -> Response:
    """Ready only when the database, the key provider and the audit log are usable."""
    state = await run_blocking(rt, rt.readiness)
    checks: dict[str, Any] = dict(state.checks)
    if state.ready:
        return JSONResponse({"status": "ready", "checks": checks, "audit_sinks": state.sinks})
    return problem(
        request,
        code="not-ready",
        title="Not ready",
        status=503,
        detail="a dependency is not usable",
        extra={"checks": checks, "audit_sinks": state.sinks},
    )
