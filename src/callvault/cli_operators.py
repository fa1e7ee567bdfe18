"""``callvault operators``: the installation admin manages operators on the server.

This module lives outside :mod:`callvault.operators` so that loading the CLI
(``callvault audit verify`` must not load the service stack) does not import
the realm, SQLAlchemy or the store; role names are checked against
:class:`~callvault.operators.OperatorRole` by a test.

Operators are created here and only here (not through the API): whoever can
run this command can read the server's configuration and database, so it is
already the installation's root of trust. A new key is printed once.

Every change (create, issue-key, revoke-key, set-role, deactivate, activate)
is an entry in the installation audit log written in the change's own
transaction (docs/adr/0017): if the log cannot be written, nothing changes.
``callvault operators audit export|log-key|checkpoint`` export that log as an
audit bundle (checked by the unchanged ``callvault audit verify``), print its
verifier key to pin, and sign a checkpoint.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from callvault.runtime import Runtime

T = TypeVar("T")


class RoleName(StrEnum):
    """The values of ``OperatorRole``, kept in step by tests/unit/operators/test_realm.py."""

    SUPPORT_READONLY = "support_readonly"
    SUPPORT_ENGINEER = "support_engineer"


app = typer.Typer(
    help="Platform operators: create, list, keys, roles, deactivate; the installation audit log.",
    no_args_is_help=True,
)
audit_app = typer.Typer(
    help="The installation audit log (operator realm): export, log key, checkpoint.",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")


def _run(work: Callable[[Session], T]) -> T:
    """Run ``work(session)`` in a tenantless transaction, errors mapped by the main CLI."""
    from callvault.cli import _settings, guarded  # noqa: PLC0415 - the CLI imports this module
    from callvault.store import Database  # noqa: PLC0415 - heavy; only when a command runs

    settings = _settings()

    def run() -> T:
        db = Database(settings)
        try:
            with db.system_tx() as s:
                return work(s)
        finally:
            db.dispose()

    return guarded(run)


def _on_runtime(work: Callable[[Runtime], T]) -> T:
    """Run ``work(runtime)`` (keys, database, audit log), errors mapped by the main CLI."""
    from callvault.cli import _settings, guarded  # noqa: PLC0415 - the CLI imports this module
    from callvault.runtime import Runtime  # noqa: PLC0415 - heavy; only when a command runs

    settings = _settings()
    rt = guarded(lambda: Runtime.open(settings))
    try:
        return guarded(lambda: work(rt))
    finally:
        rt.close()  # also signs a checkpoint over the installation log if it grew


def _actor() -> str:
    from callvault.cli import _operator  # noqa: PLC0415 - the CLI imports this module

    return _operator()


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Handle of the operator (a-z 0-9 . _ -).")],
    role: Annotated[RoleName, typer.Option(help="Operator role.")],
    key_ttl_days: Annotated[
        int, typer.Option(min=1, max=90, help="Lifetime of the first key, in days.")
    ] = 30,
) -> None:
    """Create an operator and its first key (printed once)."""
    from callvault.operators import _admin  # noqa: PLC0415 - see the module docstring
    from callvault.operators._realm import OperatorRole  # noqa: PLC0415

    actor = _actor()
    made = _on_runtime(
        lambda rt: _admin.create(
            rt,
            name=name,
            role=OperatorRole(role.value),
            key_ttl=timedelta(days=key_ttl_days),
            actor=actor,
        )
    )
    typer.echo(f"operator    {made.id}")
    typer.echo(f"key         {made.key.id}")
    typer.echo(f"api key     {made.key.token}")
    typer.echo("The operator key is shown once; store it now (only a salted hash is kept).")


@app.command("issue-key")
def issue_key(
    operator_id: Annotated[str, typer.Argument(help="Operator id (opr_…).")],
    ttl_days: Annotated[int, typer.Option(min=1, max=90, help="Lifetime, in days.")] = 30,
) -> None:
    """Issue another key for an operator (printed once)."""
    from callvault.operators import _admin  # noqa: PLC0415

    actor = _actor()
    key = _on_runtime(
        lambda rt: _admin.issue_key(rt, operator_id, ttl=timedelta(days=ttl_days), actor=actor)
    )
    typer.echo(f"key         {key.id}")
    typer.echo(f"api key     {key.token}")


@app.command("list")
def list_() -> None:
    """List operators: id, name, role, active, live keys."""
    from callvault.operators._realm import list_operators  # noqa: PLC0415

    rows = _run(list_operators)
    for r in rows:
        state = "active" if r.active else "inactive"
        typer.echo(f"{r.id}  {r.name}  {r.role.value}  {state}  keys={r.live_keys}")


@app.command("revoke-key")
def revoke_key(key_id: Annotated[str, typer.Argument(help="Operator key id (opk_…).")]) -> None:
    """Revoke an operator key at once."""
    from callvault.operators import _admin  # noqa: PLC0415

    actor = _actor()
    _on_runtime(lambda rt: _admin.revoke_key(rt, key_id, actor=actor))
    typer.echo(f"revoked     {key_id}")


@app.command("set-role")
def set_role(
    operator_id: Annotated[str, typer.Argument(help="Operator id (opr_…).")],
    role: Annotated[RoleName, typer.Option(help="The new role.")],
) -> None:
    """Change an operator's role (effective on its next request)."""
    from callvault.operators import _admin  # noqa: PLC0415
    from callvault.operators._realm import OperatorRole  # noqa: PLC0415

    actor = _actor()
    before = _on_runtime(
        lambda rt: _admin.set_role(rt, operator_id, OperatorRole(role.value), actor=actor)
    )
    typer.echo(f"role        {operator_id} {before} -> {role.value}")


@app.command("deactivate")
def deactivate(operator_id: Annotated[str, typer.Argument(help="Operator id (opr_…).")]) -> None:
    """Deactivate an operator and revoke every key of it."""
    from callvault.operators import _admin  # noqa: PLC0415

    actor = _actor()
    revoked = _on_runtime(lambda rt: _admin.deactivate(rt, operator_id, actor=actor))
    typer.echo(f"deactivated {operator_id} (revoked {len(revoked)} keys)")


@app.command("activate")
def activate(operator_id: Annotated[str, typer.Argument(help="Operator id (opr_…).")]) -> None:
    """Enable a deactivated operator again (its old keys stay revoked: issue a new one)."""
    from callvault.operators import _admin  # noqa: PLC0415

    actor = _actor()
    _on_runtime(lambda rt: _admin.activate(rt, operator_id, actor=actor))
    typer.echo(f"activated   {operator_id}")


# -- the installation audit log ---------------------------------------------------------------


def _check_out_dir(out_dir: Path) -> None:
    """Refuse, before anything is written or audited, a --out the bundle cannot go to."""
    from callvault.cli import fail  # noqa: PLC0415 - the CLI imports this module

    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        fail(f"--out {out_dir} exists and is not a directory", 64)
    if out_dir.is_dir() and any(out_dir.iterdir()):
        fail(f"--out {out_dir} is not empty", 64)
    if not out_dir.exists() and not out_dir.parent.is_dir():
        fail(f"--out {out_dir}: its parent directory does not exist", 64)


@audit_app.command("export")
def audit_export(
    out_dir: Annotated[Path, typer.Option("--out", help="New (or empty) directory to write.")],
) -> None:
    """Write the installation log as an audit bundle; check it with `callvault audit verify`."""
    from callvault.operators import _installation_log  # noqa: PLC0415

    _check_out_dir(out_dir)
    actor = _actor()
    summary = _on_runtime(lambda rt: _installation_log.export(rt, out_dir, actor=actor))
    key = (out_dir / "log-key.txt").read_text().strip()
    typer.echo(
        f"wrote {summary.size} entries of {summary.origin} to {out_dir} "
        f"(root {base64.b64encode(summary.root_hash).decode()}); pin the log key "
        f"(callvault operators audit log-key) and check with: callvault audit verify {out_dir} "
        f"--trusted-key '{key}'"
    )


@audit_app.command("log-key")
def audit_log_key() -> None:
    """Print the installation log's verifier key (pin it to check bundles and checkpoints)."""
    from callvault.operators import _installation_log  # noqa: PLC0415

    typer.echo(_on_runtime(_installation_log.log_key))


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign a checkpoint over the installation log now and print it (a C2SP signed note)."""
    from callvault.operators import _installation_log  # noqa: PLC0415

    note = _on_runtime(_installation_log.checkpoint)
    sys.stdout.write(note.decode())
