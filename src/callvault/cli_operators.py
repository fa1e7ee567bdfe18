"""``callvault operators``: the installation admin manages operators on the server.

This module lives outside :mod:`callvault.operators` so that loading the CLI
(``callvault audit verify`` must not load the service stack) does not import
the realm, SQLAlchemy or the store; role names are checked against
:class:`~callvault.operators.OperatorRole` by a test.

Operators are created here and only here (not through the API): whoever can
run this command can read the server's configuration and database, so it is
already the installation's root of trust. A new key is printed once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")


class RoleName(StrEnum):
    """The values of ``OperatorRole``, kept in step by tests/unit/operators/test_realm.py."""

    SUPPORT_READONLY = "support_readonly"
    SUPPORT_ENGINEER = "support_engineer"


app = typer.Typer(
    help="Platform operators: create, list, revoke keys, deactivate.", no_args_is_help=True
)


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


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Handle of the operator (a-z 0-9 . _ -).")],
    role: Annotated[RoleName, typer.Option(help="Operator role.")],
    key_ttl_days: Annotated[
        int, typer.Option(min=1, max=90, help="Lifetime of the first key, in days.")
    ] = 30,
) -> None:
    """Create an operator and its first key (printed once)."""
    from callvault.operators._realm import (  # noqa: PLC0415 - see the module docstring
        OperatorRole,
        create_operator,
        issue_operator_key,
    )

    def work(s: Session) -> tuple[str, str, str]:
        row = create_operator(s, name=name, role=OperatorRole(role.value), created_by="cli")
        key = issue_operator_key(s, row.id, label="cli", ttl=timedelta(days=key_ttl_days))
        return row.id, key.id, key.token

    operator_id, key_id, token = _run(work)
    typer.echo(f"operator    {operator_id}")
    typer.echo(f"key         {key_id}")
    typer.echo(f"api key     {token}")
    typer.echo("The operator key is shown once; store it now (only a salted hash is kept).")


@app.command("issue-key")
def issue_key(
    operator_id: Annotated[str, typer.Argument(help="Operator id (opr_…).")],
    ttl_days: Annotated[int, typer.Option(min=1, max=90, help="Lifetime, in days.")] = 30,
) -> None:
    """Issue another key for an operator (printed once)."""
    from callvault.operators._realm import issue_operator_key  # noqa: PLC0415

    key = _run(
        lambda s: issue_operator_key(s, operator_id, label="cli", ttl=timedelta(days=ttl_days))
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
    from callvault.operators._realm import revoke_operator_key  # noqa: PLC0415

    _run(lambda s: revoke_operator_key(s, key_id))
    typer.echo(f"revoked     {key_id}")


@app.command("deactivate")
def deactivate(operator_id: Annotated[str, typer.Argument(help="Operator id (opr_…).")]) -> None:
    """Deactivate an operator and revoke every key of it."""
    from callvault.operators._realm import deactivate_operator  # noqa: PLC0415

    revoked = _run(lambda s: deactivate_operator(s, operator_id))
    typer.echo(f"deactivated {operator_id} (revoked {len(revoked)} keys)")
