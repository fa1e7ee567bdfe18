"""Configuration versions of the tenant, a deployment or an agent: list, show, diff, revert.

One router factory serves the three subjects; each says how to load its row
and which actions guard reading and changing its configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from callvault import tenancy
from callvault.access import Action, Resource
from callvault.api import resources, schemas
from callvault.api.blocking import blocking
from callvault.api.deps import Ctx, CtxDep, ResourceId, VersionId
from callvault.store.ids import VERSION_ID_PATTERN

Loader = Callable[[Session, Ctx, str], tuple[tenancy.Subject, Resource]]
VersionQuery = Annotated[str, Query(pattern=VERSION_ID_PATTERN)]


def _tenant(s: Session, ctx: Ctx, _id: str) -> tuple[tenancy.Subject, Resource]:
    row = tenancy.get_tenant(s, ctx.tenant_id)
    return row, resources.of_tenant(row)


def _deployment(s: Session, ctx: Ctx, id_: str) -> tuple[tenancy.Subject, Resource]:
    row = tenancy.get_deployment(s, ctx.tenant_id, id_)
    return row, resources.of_deployment(row)


def _agent(s: Session, ctx: Ctx, id_: str) -> tuple[tenancy.Subject, Resource]:
    row = tenancy.get_agent(s, ctx.tenant_id, id_)
    return row, resources.of_agent(row)


def _routes(
    router: APIRouter,
    path: str,
    kind: str,
    load: Loader,
    read: Action,
    change: Action,
    with_id: bool,
    history: Action = Action.CONFIG_READ,
) -> None:
    def subject_id(id_: str | None, ctx: Ctx) -> str:
        return id_ if id_ is not None else ctx.tenant_id

    def list_versions(ctx: Ctx, id_: str | None) -> list[schemas.VersionOut]:
        with ctx.tx() as s:
            subject, res = load(s, ctx, subject_id(id_, ctx))
            ctx.enforce(history, res)
            infos = tenancy.versions_of(s, subject)
            return [resources.version_out(i) for i in infos]

    def diff(ctx: Ctx, id_: str | None, from_: str, to: str) -> schemas.DiffOut:
        with ctx.tx() as s:
            subject, res = load(s, ctx, subject_id(id_, ctx))
            ctx.enforce(read, res)
            old = tenancy.version_content(s, ctx.rt.sealer, subject, from_)
            new = tenancy.version_content(s, ctx.rt.sealer, subject, to)
            return schemas.DiffOut(from_version=from_, to_version=to, patch=tenancy.diff(old, new))

    def show(ctx: Ctx, id_: str | None, version_id: str) -> schemas.VersionContentOut:
        with ctx.tx() as s:
            subject, res = load(s, ctx, subject_id(id_, ctx))
            ctx.enforce(read, res)
            info = tenancy.version_info(s, subject, version_id)
            content = tenancy.version_content(s, ctx.rt.sealer, subject, version_id)
            return schemas.VersionContentOut(version=resources.version_out(info), content=content)

    def revert(ctx: Ctx, id_: str | None, version_id: str) -> schemas.VersionOut:
        with ctx.tx() as s:
            subject, res = load(s, ctx, subject_id(id_, ctx))
            ctx.enforce(change, res)
            info = tenancy.revert(s, ctx.rt.sealer, ctx.rt.audit, subject, version_id, ctx.change)
            return resources.version_out(info)

    tag: list[str | Enum] = [f"{kind} versions"]
    if with_id:

        @router.get(f"{path}/versions", tags=tag, name=f"list_{kind}_versions")
        @blocking
        def _list(id: ResourceId, ctx: CtxDep) -> list[schemas.VersionOut]:  # noqa: A002 - path name
            return list_versions(ctx, id)

        @router.get(f"{path}/versions/diff", tags=tag, name=f"diff_{kind}_versions")
        @blocking
        def _diff(
            id: ResourceId,  # noqa: A002 - path name
            ctx: CtxDep,
            from_: Annotated[str, Query(alias="from", pattern=VERSION_ID_PATTERN)],
            to: VersionQuery,
        ) -> schemas.DiffOut:
            return diff(ctx, id, from_, to)

        @router.get(f"{path}/versions/{{version_id}}", tags=tag, name=f"show_{kind}_version")
        @blocking
        def _show(id: ResourceId, version_id: VersionId, ctx: CtxDep) -> schemas.VersionContentOut:  # noqa: A002
            return show(ctx, id, version_id)

        @router.post(
            f"{path}/versions/{{version_id}}/revert",
            tags=tag,
            name=f"revert_{kind}",
            status_code=status.HTTP_201_CREATED,
        )
        @blocking
        def _revert(id: ResourceId, version_id: VersionId, ctx: CtxDep) -> schemas.VersionOut:  # noqa: A002
            return revert(ctx, id, version_id)

    else:

        @router.get(f"{path}/versions", tags=tag, name=f"list_{kind}_versions")
        @blocking
        def _list_t(ctx: CtxDep) -> list[schemas.VersionOut]:
            return list_versions(ctx, None)

        @router.get(f"{path}/versions/diff", tags=tag, name=f"diff_{kind}_versions")
        @blocking
        def _diff_t(
            ctx: CtxDep,
            from_: Annotated[str, Query(alias="from", pattern=VERSION_ID_PATTERN)],
            to: VersionQuery,
        ) -> schemas.DiffOut:
            return diff(ctx, None, from_, to)

        @router.get(f"{path}/versions/{{version_id}}", tags=tag, name=f"show_{kind}_version")
        @blocking
        def _show_t(version_id: VersionId, ctx: CtxDep) -> schemas.VersionContentOut:
            return show(ctx, None, version_id)

        @router.post(
            f"{path}/versions/{{version_id}}/revert",
            tags=tag,
            name=f"revert_{kind}",
            status_code=status.HTTP_201_CREATED,
        )
        @blocking
        def _revert_t(version_id: VersionId, ctx: CtxDep) -> schemas.VersionOut:
            return revert(ctx, None, version_id)


router = APIRouter(prefix="/v1")
_routes(
    router, "/tenant", "tenant", _tenant, Action.CONFIG_READ, Action.TENANT_UPDATE, with_id=False
)
_routes(
    router,
    "/deployments/{id}",
    "deployment",
    _deployment,
    Action.CONFIG_READ,
    Action.DEPLOYMENT_UPDATE,
    with_id=True,
)
_routes(
    router,
    "/agents/{id}",
    "agent",
    _agent,
    Action.AGENT_READ_CONFIG,
    Action.AGENT_UPDATE,
    with_id=True,
    history=Action.AGENT_READ_HISTORY,
)
