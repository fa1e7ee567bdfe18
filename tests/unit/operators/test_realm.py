"""Operators and their keys: a realm apart from every tenant."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select
from typer.testing import CliRunner

from callvault import access, operators
from callvault.bootstrap import create_tenant_with_owner
from callvault.cli_operators import RoleName
from callvault.cli_operators import app as operators_cli
from callvault.config import Settings
from callvault.errors import AuthenticationError, ConflictError, InvalidInputError
from callvault.operators import OperatorRole
from callvault.runtime import Runtime
from callvault.store.models import TENANT_TABLES, Base, OperatorKey, utcnow
from tests.unit.operators._support import make_operator

TABLES = ("operators", "operator_keys", "break_glass_grants")


def test_a_key_authenticates_its_operator_and_is_stored_hashed(rt: Runtime) -> None:
    op = make_operator(rt, "alice", OperatorRole.SUPPORT_ENGINEER)
    assert op.token.startswith("cvop1.")
    with rt.db.system_tx() as s:
        who = operators.authenticate_operator(s, op.token)
        row = s.get(OperatorKey, op.key_id)
        assert row is not None
        secret = op.token.rsplit(".", 1)[1].encode()
        assert secret not in row.secret_hash
        assert secret not in row.salt
    assert who == operators.Operator(op.id, OperatorRole.SUPPORT_ENGINEER, op.key_id)


def test_tenant_and_operator_tokens_never_cross(rt: Runtime) -> None:
    op = make_operator(rt, "bob", OperatorRole.SUPPORT_READONLY)
    tenant = create_tenant_with_owner(rt, tenant_name="acme", owner_name="o")
    with pytest.raises(AuthenticationError):
        access.parse_token(op.token)
    with pytest.raises(AuthenticationError):
        operators.parse_operator_token(tenant.token)
    # Even re-labelled, a tenant key's secret opens no operator key and vice versa.
    key_id = tenant.token.split(".")[2]
    secret = tenant.token.split(".")[3]
    with rt.db.system_tx() as s, pytest.raises(AuthenticationError):
        operators.authenticate_operator(s, f"cvop1.{key_id}.{secret}")


@pytest.mark.parametrize("how", ["secret", "revoked", "expired", "deactivated", "unknown"])
def test_every_bad_credential_is_the_same_401(rt: Runtime, how: str) -> None:
    op = make_operator(rt, f"carol-{how}", OperatorRole.SUPPORT_READONLY)
    token = op.token
    with rt.db.system_tx() as s:
        if how == "secret":
            token = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        elif how == "revoked":
            operators.revoke_operator_key(s, op.key_id)
        elif how == "expired":
            row = s.get(OperatorKey, op.key_id)
            assert row is not None
            row.expires_at = utcnow() - timedelta(seconds=1)
        elif how == "deactivated":
            operators.deactivate_operator(s, op.id)
        else:
            token = "cvop1.opk_" + "z" * 26 + "." + token.rsplit(".", 1)[1]
    with rt.db.system_tx() as s, pytest.raises(AuthenticationError, match="invalid operator key"):
        operators.authenticate_operator(s, token)


def test_names_roles_and_key_lifetimes_are_checked(rt: Runtime) -> None:
    make_operator(rt, "dave", OperatorRole.SUPPORT_READONLY)
    with rt.db.system_tx() as s, pytest.raises(ConflictError):
        operators.create_operator(
            s, name="dave", role=OperatorRole.SUPPORT_READONLY, created_by="t"
        )
    for bad in ("", "Dave", "dave smith", "x" * 65, "-dave"):
        with rt.db.system_tx() as s, pytest.raises(InvalidInputError):
            operators.create_operator(
                s, name=bad, role=OperatorRole.SUPPORT_READONLY, created_by="t"
            )
    op = make_operator(rt, "erin", OperatorRole.SUPPORT_READONLY)
    for ttl in (timedelta(0), timedelta(days=91)):
        with rt.db.system_tx() as s, pytest.raises(InvalidInputError):
            operators.issue_operator_key(s, op.id, label="x", ttl=ttl)


def test_operator_tables_are_installation_level_and_grants_are_walled(rt: Runtime) -> None:
    with rt.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        columns = {t: {c["name"] for c in inspect(conn).get_columns(t)} for t in TABLES}
    assert [d for d in diff if any(t in repr(d) for t in TABLES)] == []
    assert "tenant_id" not in columns["operators"]
    assert "tenant_id" not in columns["operator_keys"]
    assert "break_glass_grants" in TENANT_TABLES
    assert "reason" not in columns["break_glass_grants"], "only reason_sealed"
    assert "secret" not in columns["operator_keys"]


runner = CliRunner()


def test_cli_bootstraps_lists_and_revokes(rt: Runtime, settings: Settings) -> None:
    env = {"CALLVAULT_DATA_DIR": str(settings.data_dir)}
    created = runner.invoke(
        operators_cli, ["create", "--name", "frank", "--role", "support_engineer"], env=env
    )
    assert created.exit_code == 0, created.output
    lines = dict(line.split(None, 1) for line in created.stdout.splitlines()[:2])
    token = next(w for w in created.stdout.split() if w.startswith("cvop1."))
    with rt.db.system_tx() as s:
        assert operators.authenticate_operator(s, token).id == lines["operator"]
    listed = runner.invoke(operators_cli, ["list"], env=env)
    assert listed.exit_code == 0
    assert lines["operator"] in listed.stdout
    assert "support_engineer" in listed.stdout
    assert "keys=1" in listed.stdout
    revoked = runner.invoke(operators_cli, ["revoke-key", lines["key"]], env=env)
    assert revoked.exit_code == 0, revoked.output
    with rt.db.system_tx() as s, pytest.raises(AuthenticationError):
        operators.authenticate_operator(s, token)
    # Errors are one line and an exit code, never a traceback.
    dup = runner.invoke(
        operators_cli, ["create", "--name", "frank", "--role", "support_readonly"], env=env
    )
    assert dup.exit_code == 73
    assert "Traceback" not in dup.output
    missing = runner.invoke(operators_cli, ["revoke-key", "opk_" + "q" * 26], env=env)
    assert missing.exit_code == 66
    bad_role = runner.invoke(operators_cli, ["create", "--name", "g", "--role", "owner"], env=env)
    assert bad_role.exit_code != 0
    with rt.db.system_tx() as s:
        assert (
            s.execute(select(OperatorKey).where(OperatorKey.revoked_at.is_(None))).first() is None
        )


def test_the_cli_offers_exactly_the_operator_roles() -> None:
    # The CLI names roles without importing the realm (ADR 16); they must not drift apart.
    assert [r.value for r in OperatorRole] == [r.value for r in RoleName]
