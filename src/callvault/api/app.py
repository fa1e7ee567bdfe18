"""The FastAPI application: routers under /v1, problem+json errors, security headers.

``create_app`` builds the ASGI app for a :class:`Runtime`. The outermost layer
is :class:`~callvault.api.middleware.Guard` (request id, security headers,
body limit, last-resort error shield).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from starlette.types import ASGIApp

from callvault import __version__
from callvault.api import problems
from callvault.api.middleware import Guard
from callvault.api.routers import (
    agents,
    audit,
    audit_sinks,
    break_glass,
    calls,
    deployment_twilio,
    deployments,
    health,
    ingest,
    ingest_stream,
    operators,
    payments,
    playback,
    principals,
    scim,
    scim_tokens,
    sessions,
    sso,
    sso_connections,
    tenant,
    versions,
)
from callvault.runtime import Runtime


def create_fastapi(rt: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Half as many request threads as database connections: a request holds
        # at most two at once (its transaction, and a short one of its own, e.g.
        # a checkpoint), so none waits for the pool or opens a new one. The
        # audit writer has connections of its own.
        threads = max(1, rt.settings.db_pool_size // 2)
        to_thread.current_default_thread_limiter().total_tokens = threads
        rt.start_background()
        yield
        rt.close()

    app = FastAPI(
        title="callvault",
        version=__version__,
        openapi_url="/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry would record exception messages and
        # request details to whatever provider the environment configures:
        # off, entirely (nothing about a request leaves except our own logs).
        telemetry={
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        },
        # The body limit is enforced once, outermost, by Guard (with its
        # problem+json reply); FastAPI's own limiter would wrap every level again.
        max_body_size=None,
    )
    app.state.runtime = rt
    problems.install(app)
    # Routes are matched in order: the busiest routers first.
    routers = (
        deployments,
        deployment_twilio,
        calls,
        agents,
        tenant,
        versions,
        principals,
        audit,
        audit_sinks,
        health,
        ingest,
        ingest_stream,
        payments,
        playback,
        scim_tokens,
        scim,
        sso_connections,
        sso,
        sessions,
        break_glass,
        operators,
    )
    for module in routers:
        app.include_router(module.router)
    return app


def create_app(rt: Runtime) -> ASGIApp:
    """The ASGI app to serve: FastAPI inside the Guard."""
    return Guard(
        create_fastapi(rt),
        max_body_bytes=rt.settings.max_body_bytes,
        hsts_max_age_seconds=rt.settings.hsts_max_age_seconds,
    )
