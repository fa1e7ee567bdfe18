"""The ``callvault`` command. The only place that turns errors into exit codes.

Every failure prints one line, ``callvault: <what went wrong>``, on stderr
and exits non-zero (sysexits codes). Configuration commands go through the
HTTP API with an API key, so they pass the same access gate and audit trail
as any other client.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from callvault import __version__, errors
from callvault.cli_operators import app as operators_app
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
replay_app = typer.Typer(help="Play recordings into the ingest path.", no_args_is_help=True)
app.add_typer(replay_app, name="replay")
app.add_typer(operators_app, name="operators")

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
    from callvault.api.ws_protocol import IngestWebSocketProtocol
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
        # Live ingest (Twilio Media Streams): the sans-I/O websockets protocol, reading
        # whole data frames directly (api/ws_protocol.py), frames bounded well above the
        # largest one accepted (calls/_twilio.py limits).
        ws=IngestWebSocketProtocol,
        ws_max_size=512 * 1024,
        # Media frames are base64 audio: compression costs CPU per frame and gains little.
        ws_per_message_deflate=False,
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


@app.command()
def redact(
    jsonl: Annotated[
        bool,
        typer.Option(
            "--jsonl",
            help='Read JSON Lines {"id": <string or integer>, "text": <string>} on stdin.',
        ),
    ] = False,
    pseudonyms: Annotated[
        bool,
        typer.Option(
            "--pseudonyms",
            help="Replace each value with [ENTITY_n], the same n for the same value "
            "anywhere in the stream (memory then grows with the distinct values seen), "
            "instead of [ENTITY].",
        ),
    ] = False,
    max_chars: Annotated[
        int | None,
        typer.Option(
            "--max-chars",
            min=1,
            help="Longest text, in characters, redacted in one piece "
            "(default: the setting CALLVAULT_REDACT_MAX_CHARS, 65536).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Redact JSON Lines from stdin to stdout, one output line per input line, as they come.

    Writes {"id", "redacted", "findings": [{"start", "end", "entity", "score"}]};
    start and end are Python str indices (Unicode code points) into the input
    text. A line that cannot be redacted (invalid UTF-8 or JSON, not an object,
    no string "text", "id" not a string or integer, blank, too long) is answered
    with {"id": <id or null>, "line": N, "error": <code>} and one line on
    stderr naming line N (never its content); the stream goes on. A UTF-8 BOM
    on the first line and CRLF line ends are accepted. Exit 0 when every line
    was redacted, 1 when any failed.
    """
    from callvault.redact import Pseudonyms, Redactor
    from callvault.redact._jsonl import LineError, redact_jsonl

    if not jsonl:
        fail("redact reads JSON Lines only: pass --jsonl", 64)
    settings = _settings(redact_max_chars=max_chars)

    def report(problem: LineError) -> None:
        typer.echo(f"callvault: line {problem.line}: {problem.message}", err=True)

    try:
        summary = redact_jsonl(
            sys.stdin.buffer,
            sys.stdout.buffer,
            Redactor(max_chars=settings.redact_max_chars),
            pseudonyms=Pseudonyms() if pseudonyms else None,
            on_error=report,
        )
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as a killed Unix filter would.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(141) from None
    if summary.failed:
        fail(f"{summary.failed} of {summary.lines} lines failed", 1)


@app.command()
def demo(
    url: Annotated[
        str | None,
        typer.Option(
            help="https:// URL of the server (default: CALLVAULT_URL, else the local one)."
        ),
    ] = None,
    ca: Annotated[
        Path | None,
        typer.Option(
            "--ca",
            metavar="FILE",
            help="CA certificate (default: CALLVAULT_CA_FILE, else the data directory's).",
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            metavar="FILE",
            help="File holding the owner API key (default: CALLVAULT_API_KEY).",
        ),
    ] = None,
    wait: Annotated[
        float,
        typer.Option(min=0, max=600, help="Seconds to wait for the server to become ready."),
    ] = 0,
) -> None:
    """Seed a demo deployment with three synthesised calls streamed through live ingest, and
    print how a QA reviewer and a compliance officer read them. Needs espeak-ng and a running
    server; idempotent (a second run reuses the set-up and adds calls)."""
    from callvault.demo import format_report, resolve_target, run_demo

    settings = _settings()
    target = guarded(lambda: resolve_target(settings, url=url, ca=ca, key_file=key_file))
    result = guarded(lambda: run_demo(target, wait_s=wait, say=typer.echo))
    typer.echo(format_report(result))


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


# -- audit verify: run offline by customers; no settings, data directory or database ----
# (`audit export`, which needs the runtime, belongs on the same `audit_app`.)

audit_app = typer.Typer(help="Audit log bundles: verify offline.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _pinned_key(value: str) -> str:
    """``--trusted-key``: a verifier key string, or a file holding one."""
    from callvault.audit.bundle import MAX_KEY_FILE_BYTES, BundleError, read_trusted_file
    from callvault.audit.note import Verifier

    try:
        Verifier.from_key_string(value)
    except errors.NoteError:
        pass
    else:
        return value
    try:
        data = read_trusted_file(value, max_bytes=MAX_KEY_FILE_BYTES)
    except BundleError:
        fail("--trusted-key is neither a verifier key nor a readable key file", 2)
    # A malformed key in the file is a verification failure, reported with the others.
    return data.decode("utf-8", "replace").strip()


@audit_app.command("verify")
def audit_verify(
    bundle_dir: Annotated[str, typer.Argument(metavar="DIR", help="The bundle directory.")],
    trusted_checkpoint: Annotated[
        str | None,
        typer.Option(
            "--trusted-checkpoint",
            metavar="FILE",
            help="A checkpoint you pinned earlier: the bundle must extend that history.",
        ),
    ] = None,
    trusted_key: Annotated[
        str | None,
        typer.Option(
            "--trusted-key",
            metavar="KEY_OR_FILE",
            help="The log's verifier key, or a file holding it: the bundle must be signed by it.",
        ),
    ] = None,
) -> None:
    """Verify an exported audit bundle: signature, every entry, root, consistency.

    Prints one OK line and exits 0, or one FAILED line per problem and exits 1.
    """
    from callvault.audit.bundle import BundleError, read_trusted_file, verify_bundle

    pinned = None
    if trusted_checkpoint is not None:
        try:
            pinned = read_trusted_file(trusted_checkpoint)
        except BundleError as exc:
            fail(f"--trusted-checkpoint: {exc.message}", 2)
    key = _pinned_key(trusted_key) if trusted_key is not None else None
    try:
        verdict = verify_bundle(bundle_dir, trusted_checkpoint=pinned, trusted_key=key)
    except Exception as exc:  # noqa: BLE001 - a verdict is always a line, never a traceback
        typer.echo(f"FAILED: internal-error: the verifier stopped ({type(exc).__name__})")
        raise typer.Exit(1) from None
    for line in verdict.lines():
        typer.echo(line)
    if verdict.ok and not verdict.key_pinned:
        typer.echo(
            "WARNING: checked against the key inside the bundle only; pin the log's key "
            "with --trusted-key (or a checkpoint with --trusted-checkpoint) to know who signed it",
            err=True,
        )
    raise typer.Exit(0 if verdict.ok else 1)


# -- audit export / log-key / checkpoint / sinks: the operator's side, on the runtime -----

TenantRequired = Annotated[str, typer.Option("--tenant", help="Tenant id.")]


@audit_app.command("export")
def audit_export(
    tenant: TenantRequired,
    out_dir: Annotated[Path, typer.Option("--out", help="New (or empty) directory to write.")],
) -> None:
    """Write the tenant's log as a self-contained bundle (entries, checkpoint, public key)."""
    from callvault.audit._export import export_bundle
    from callvault.runtime import Runtime

    settings = _settings()
    rt = guarded(lambda: Runtime.open(settings))
    try:
        summary = guarded(
            lambda: export_bundle(rt.db, rt.audit, tenant, out_dir, actor=_operator())
        )
    finally:
        rt.close()
    key = (out_dir / "log-key.txt").read_text().strip()
    out.print(
        f"wrote {summary.size} entries of {summary.origin} to {out_dir} "
        f"(root {base64.b64encode(summary.root_hash).decode()}); pin the log key "
        f"(callvault audit log-key) and check with: callvault audit verify {out_dir} "
        f"--trusted-key '{key}'",
        soft_wrap=True,
    )


@audit_app.command("log-key")
def audit_log_key(tenant: TenantRequired) -> None:
    """Print the tenant log's verifier key (pin it to check bundles and checkpoints)."""
    from callvault.runtime import Runtime

    settings = _settings()
    rt = guarded(lambda: Runtime.open(settings))
    try:

        def read() -> str:
            with rt.db.tenant_tx(tenant) as s:
                return rt.audit.keys.public(s, tenant)[1]

        key = guarded(read)
    finally:
        rt.close()
    out.print(key, soft_wrap=True)


@audit_app.command("checkpoint")
def audit_checkpoint(tenant: TenantRequired) -> None:
    """Sign a checkpoint over the tenant's log now and print it (a C2SP signed note)."""
    from callvault.runtime import Runtime

    settings = _settings()
    rt = guarded(lambda: Runtime.open(settings))
    try:
        note = guarded(lambda: rt.audit.checkpoint(tenant).note)
    finally:
        rt.close()
    sys.stdout.write(note.decode())


@audit_app.command("sinks")
def audit_sinks(tenant: TenantRequired) -> None:
    """The tenant's SIEM sinks: kind, delivery position, backlog, failures."""
    from callvault.audit.sinks import SinkCursors
    from callvault.runtime import Runtime

    settings = _settings()
    rt = guarded(lambda: Runtime.open(settings))
    try:

        def read() -> list[tuple[str, str, str, int, int, int, str]]:
            cursors = SinkCursors(rt.db)
            with rt.db.tenant_tx(tenant) as s:
                size = rt.audit.size(s, tenant)
                rows = rt.sinks.rows(s, tenant)
            out_rows = []
            for row in rows:
                c = cursors.get(tenant, row.id)
                out_rows.append(
                    (
                        row.id,
                        row.kind,
                        "enabled" if row.enabled else "disabled",
                        c.next_index,
                        max(0, size - c.next_index),
                        c.failures,
                        c.last_error or "-",
                    )
                )
            return out_rows

        rows = guarded(read)
    finally:
        rt.close()
    if not rows:
        out.print("no sinks")
        return
    for sink_id, kind, state, next_index, backlog, failures, last in rows:
        out.print(
            f"{sink_id} {kind} {state} next={next_index} backlog={backlog} "
            f"failures={failures} last_error={last}",
            soft_wrap=True,
        )


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()


@replay_app.command("twilio")
def replay_twilio(
    wav: Annotated[Path, typer.Argument(help="WAV file (16-bit PCM, mono or stereo).")],
    agent: Annotated[str, typer.Option("--agent", help="Agent id the call is for.")],
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="wss:// URL of the stream endpoint (default: CALLVAULT_URL's "
            "/v1/ingest/twilio/<--deployment>).",
        ),
    ] = None,
    deployment: Annotated[
        str | None, typer.Option("--deployment", help="Deployment id (when --url is not given).")
    ] = None,
    dtmf_at: Annotated[
        list[str] | None,
        typer.Option("--dtmf-at", help="SECONDS:DIGITS keypad presses laid over the audio."),
    ] = None,
    fast: Annotated[bool, typer.Option("--fast", help="Send as fast as possible.")] = False,
) -> None:
    """Stream a WAV file to callvault as a Twilio Media Stream (key: CALLVAULT_API_KEY)."""
    from callvault.calls._replay import DtmfAt, load_wav, overlay_dtmf, parse_dtmf_at, replay
    from callvault.client import ApiClient

    settings = _settings()
    given = dtmf_at or []
    presses: list[DtmfAt] = guarded(lambda: [parse_dtmf_at(v) for v in given])
    audio = guarded(lambda: overlay_dtmf(load_wav(wav), presses))
    client = guarded(lambda: ApiClient.from_env(settings))
    if url is None:
        if deployment is None:
            fail("give --url or --deployment", 64)
        base = client.base_url.replace("https://", "wss://", 1)
        url = f"{base}/v1/ingest/twilio/{deployment}"
    if not url.startswith("wss://"):
        fail("--url must be a wss:// URL (TLS only)", 64)
    target = url
    result = guarded(
        lambda: replay(
            target,
            audio,
            agent_id=agent,
            api_key=client.token,
            context=client.context,
            presses=presses,
            realtime=not fast,
        )
    )
    typer.echo(
        f"sent {result.frames} frames ({result.frames * 20 / 1000:.1f} s of audio) in "
        f"{result.seconds:.1f} s; server closed with {result.close_code} {result.close_reason}"
    )
    if result.close_code != 1000:
        raise typer.Exit(1)
