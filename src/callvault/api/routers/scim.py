"""SCIM 2.0 at ``/scim/v2/<tenant>``: the one place outside /v1 that changes principals.

Not a /v1 route: no API key, no ``Ctx``. The SCIM token is checked by
:class:`callvault.scim.ScimService` (inside the token's tenant transaction),
and every answer, errors included, is a SCIM message (``application/scim+json``,
RFC 7644 §3.12), never problem+json. Kept out of the OpenAPI document.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.exceptions import HTTPException

from callvault.api.blocking import run_blocking
from callvault.runtime import Runtime
from callvault.scim import ScimError, ScimRequest, ScimService
from callvault.sso import ScimGroupRevoker

router = APIRouter(prefix="/scim/v2", tags=["scim"], include_in_schema=False)

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


async def _serve(request: Request, tenant: str, path: str) -> Response:
    rt: Runtime = request.app.state.runtime
    try:
        body = await request.body()
    except HTTPException as exc:  # the Guard's body limit, raised while the body streams in
        err = ScimError(exc.status_code, "request body exceeds the configured limit")
        return Response(err.body(), status_code=err.status, media_type="application/scim+json")
    base = f"{str(request.base_url).rstrip('/')}/scim/v2/{tenant}"
    req = ScimRequest(
        method=request.method,
        tenant=tenant,
        path=path,
        query=request.query_params.multi_items(),
        body=body,
        authorization=request.headers.get("authorization"),
        base_url=base,
        request_id=request.scope.get("state", {}).get("request_id"),
    )
    service = ScimService(
        rt.db, rt.keys, rt.sealer, rt.audit, groups_left=ScimGroupRevoker(rt.keys, rt.sealer)
    )
    out = await run_blocking(rt, lambda: service.handle(req))
    headers = {"Location": out.location} if out.location else None
    if out.status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="callvault-scim"'}
    if out.body is None:
        return Response(status_code=out.status, headers=headers)
    return Response(out.body, status_code=out.status, media_type=out.media_type, headers=headers)


@router.api_route("/{tenant}", methods=_METHODS)
async def scim_root(tenant: str, request: Request) -> Response:
    return await _serve(request, tenant, "")


@router.api_route("/{tenant}/{path:path}", methods=_METHODS)
async def scim(tenant: str, path: str, request: Request) -> Response:
    return await _serve(request, tenant, path)
