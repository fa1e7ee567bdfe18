"""The ``callvault`` command. The only place that turns errors into exit codes.

Every failure prints one line, ``callvault: <what went wrong>``, on stderr
and exits non-zero (sysexits codes). Configuration commands go through the
HTTP API with an API key, so they pass the same access gate and audit trail
as any other client.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from callvault import __version__, errors
from callvault.config import Settings, load_settings

app = typer.Typer(
    name="callvault",
    help="Compliance runtime for voice AI agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Configuration versions: list, diff, revert.", no_args_is_help=True)
app.add_typer(config_app, name="config")
keys_app = typer.Typer(help="Key operations: rotate, shred, destroy.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

# Piped output is not cut to a terminal width: ids must survive `| grep`.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 1_000)
err = Console(stderr=True, highlight=False)

EXIT_CODES: dict[type[errors.Error], int] = {
    errors.ConfigError: 78,  # EX_CONFIG
    errors.InvalidInputError: 65,  # EX_DATAERR
    errors.AuthenticationError: 77,  # EX_NOPERM
    errors.PermissionDeniedError: 77,
    errors.NotFoundError: 66,  # EX_NOINPUT
    errors.ConflictError: 73,  # EX_CANTCREAT
    errors.UnavailableError: 69,  # EX_UNAVAILABLE
    errors.KeyUnavailableError: 69,
    errors.CryptoError: 70,  # EX_SOFTWARE
}

T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"callvault: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; a callvault error becomes one line and its exit code."""
    try:
        return fn()
    except errors.Error as exc:
        code = next((c for cls, c in EXIT_CODES.items() if isinstance(exc, cls)), 1)
        fail(exc.message, code)


def _settings(**overrides: object) -> Settings:
    given = {k: v for k, v in overrides.items() if v is not None}
    return guarded(lambda: load_settings(None, **given))


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


@app.command()
def migrate() -> None:
    """Apply database migrations and exit."""
    from callvault.store import Database

    settings = _settings()

    def run() -> None:
        db = Database(settings)
        try:
            db.check()
            db.check_role()
            db.migrate()
        finally:
            db.dispose()

    guarded(run)
    out.print("database is at the latest schema")


@app.command()
def init(
    tenant_name: Annotated[str, typer.Option(help="Name of the first tenant.")] = "default",
    owner_name: Annotated[str, typer.Option(help="Name of the owner user.")] = "owner",
) -> None:
    """Create the first tenant, its owner and an owner API key (printed once)."""
    from callvault.bootstrap import initialise

    settings = _settings()
    result = guarded(lambda: initialise(settings, tenant_name=tenant_name, owner_name=owner_name))
    # Plain echo: a console would wrap the key at the terminal width.
    typer.echo(f"tenant      {result.tenant_id}")
    typer.echo(f"owner       {result.principal_id}")
    typer.echo(f"api key     {result.token}")
    typer.echo("The API key is shown once; store it now (only a salted hash is kept).")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Serve the API over TLS 1.3 only."""
    # Settings first, so a bad one is reported before the heavy imports.
    settings = _settings(host=host, port=port)
    import uvicorn

    from callvault.api import create_app
    from callvault.logs import setup_logging
    from callvault.runtime import Runtime
    from callvault.tls import ensure_tls_files, restrict_to_tls13

    setup_logging(settings.log_level)
    # The runtime (keys, database) before the certificate: a data directory
    # that cannot serve gets nothing written into it.
    rt = guarded(lambda: Runtime.open(settings))
    tls = guarded(lambda: ensure_tls_files(settings))
    if tls.generated:
        typer.echo(f"generated a self-signed TLS certificate: {tls.cert}")
    typer.echo(f"TLS certificate SHA-256 fingerprint: {tls.fingerprint}")
    typer.echo(f"listening on https://{settings.host}:{settings.port} (TLS 1.3 only)")
    config = uvicorn.Config(
        create_app(rt),
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_config=None,
        server_header=False,
        # Never trust X-Forwarded-* from whoever connects; a deployment behind a
        # proxy terminates TLS 1.3 there and configures this explicitly.
        proxy_headers=False,
        date_header=True,
        timeout_graceful_shutdown=10,
    )
    config.load()
    if config.ssl is None:  # pragma: no cover - uvicorn builds it from the files above
        fail("TLS context was not created", 70)
    restrict_to_tls13(config.ssl)
    uvicorn.Server(config).run()


# -- configuration versions, through the API -------------------------------------------


class Kind(StrEnum):
    tenant = "tenant"
    deployment = "deployment"
    agent = "agent"


def _base_path(kind: Kind, subject: str | None) -> str:
    if kind is Kind.tenant:
        return "/v1/tenant"
    if not subject:
        fail(f"a {kind.value} id is required", 64)
    return f"/v1/{kind.value}s/{subject}"


def _api(method: str, path: str, params: dict[str, str] | None = None) -> Any:
    from callvault.client import ApiClient

    settings = _settings()
    client = guarded(lambda: ApiClient.from_env(settings))
    return guarded(lambda: client.request(method, path, params=params))


@config_app.command("versions")
def config_versions(
    kind: Annotated[Kind, typer.Argument(help="tenant, deployment or agent")],
    subject: Annotated[str | None, typer.Argument(help="Deployment or agent id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the versions of a tenant, deployment or agent."""
    rows = _api("GET", f"{_base_path(kind, subject)}/versions")
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("seq", "version", "op", "actor", "created")
    for r in rows:
        table.add_row(str(r["seq"]), r["id"], r["op"], r["actor_id"], r["created_at"])
    out.print(table)


@config_app.command("diff")
def config_diff(
    kind: Annotated[Kind, typer.Argument()],
    old: Annotated[str, typer.Argument(help="Older version id.")],
    new: Annotated[str, typer.Argument(help="Newer version id.")],
    subject: Annotated[str | None, typer.Option("--id", help="Deployment or agent id.")] = None,
) -> None:
    """Show the RFC 6902 JSON Patch from one version to another."""
    body = _api("GET", f"{_base_path(kind, subject)}/versions/diff", {"from": old, "to": new})
    for op in body["patch"]:
        out.print(json.dumps(op, ensure_ascii=False), markup=False)


@config_app.command("revert")
def config_revert(
    kind: Annotated[Kind, typer.Argument()],
    version_id: Annotated[str, typer.Argument(help="Version whose content to restore.")],
    subject: Annotated[str | None, typer.Option("--id", help="Deployment or agent id.")] = None,
) -> None:
    """Write a new version whose content equals VERSION_ID's."""
    body = _api("POST", f"{_base_path(kind, subject)}/versions/{version_id}/revert")
    out.print(f"new version {body['id']} (seq {body['seq']})")


# -- key operations, run locally by an operator with the service's settings -------------


def _operator() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def _tenant_of(rt: Any, kind: str, object_id: str, tenant: str | None) -> str:
    """The tenant owning a deployment or call; PostgreSQL's row-level security needs --tenant."""
    if tenant:
        return tenant
    from sqlalchemy import select

    from callvault.store.models import Call, Deployment

    model = Deployment if kind == "deployment" else Call
    with rt.db.system_tx() as s:
        found = s.execute(select(model.tenant_id).where(model.id == object_id)).scalar()
    if found is None:
        fail(f"{kind} {object_id} not found (on PostgreSQL pass --tenant)", 66)
    return str(found)


Tenant = Annotated[str | None, typer.Option("--tenant", help="Tenant id (needed on PostgreSQL).")]


@keys_app.command("rotate")
def keys_rotate(
    deployment: Annotated[str, typer.Option("--deployment", help="Deployment id.")],
    tenant: Tenant = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Keys rewrapped per commit.")] = 200,
) -> None:
    """Rotate a deployment's KEK: rewrap its data keys (never the data). Resumable."""
    from rich.progress import Progress

    from callvault.keys import rotate
    from callvault.runtime import Runtime

    settings = _settings()
    rt = guarded(lambda: Runtime.open(settings))
    try:
        tenant_id = _tenant_of(rt, "deployment", deployment, tenant)
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("rewrapping data keys", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = guarded(
                lambda: rotate(
                    rt.db,
                    rt.keys,
                    rt.audit,
                    tenant_id,
                    deployment,
                    actor=_operator(),
                    batch=batch,
                    progress=progress,
                )
            )
    finally:
        rt.close()
    out.print(
        f"deployment {result.deployment_id}: KEK version {result.new_version} active; "
        f"{result.rewrapped} data keys rewrapped; retired versions {list(result.retired_versions)}"
    )


@keys_app.command("shred")
def keys_shred(
    call: Annotated[str, typer.Option("--call", help="Call id.")],
    tenant: Tenant = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
) -> None:
    """Delete a call's data key: its recording, transcript and events become unrecoverable."""
    from callvault.keys import shred_call
    from callvault.runtime import Runtime

    if not yes:
        fail("shredding cannot be undone; pass --yes", 64)
    settings = _settings()
    rt = guarded(lambda: Runtime.open(settings))
    try:
        tenant_id = _tenant_of(rt, "call", call, tenant)
        guarded(lambda: shred_call(rt.db, rt.keys, rt.audit, tenant_id, call, actor=_operator()))
    finally:
        rt.close()
    out.print(f"call {call}: data key deleted; its content can no longer be opened")


@keys_app.command("destroy")
def keys_destroy(
    deployment: Annotated[str, typer.Option("--deployment", help="Deployment id.")],
    tenant: Tenant = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
) -> None:
    """Destroy a deployment's KEKs at their provider: all of its data becomes unrecoverable."""
    from callvault.keys import destroy_deployment_keys
    from callvault.runtime import Runtime

    if not yes:
        fail("destroying keys cannot be undone; pass --yes", 64)
    settings = _settings()
    rt = guarded(lambda: Runtime.open(settings))
    try:
        tenant_id = _tenant_of(rt, "deployment", deployment, tenant)
        n = guarded(
            lambda: destroy_deployment_keys(
                rt.db, rt.keys, rt.audit, tenant_id, deployment, actor=_operator()
            )
        )
    finally:
        rt.close()
    out.print(f"deployment {deployment}: {n} KEK version(s) destroyed")


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
