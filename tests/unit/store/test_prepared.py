"""Prepared hot reads return exactly what SQLAlchemy Core returns for the same select."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.exc import DBAPIError

from callvault.runtime import Runtime
from callvault.store.models import ApiKey, Call, Deployment, Principal, Tenant
from callvault.store.prepared import Prepared, connection_of
from tests.support.world import World

_D = Deployment.__table__
_C = Call.__table__


def _same(conn: Connection, prepared: Prepared, params: dict[str, object]) -> list[object]:
    """Rows from the prepared path, checked equal (values and types) to Core's."""
    fast = prepared.rows(conn, params)
    core = conn.execute(prepared.statement, params).all()
    assert [tuple(r) for r in fast] == [tuple(r) for r in core]
    for f, c in zip(fast, core, strict=True):
        assert [type(v) for v in f] == [type(v) for v in c]
        assert f._fields == tuple(c._fields)
    return fast


def test_metadata_rows_match_core_including_types(rt: Runtime, world: World) -> None:
    a = world.a
    by_id = Prepared(
        select(_D).where(_D.c.tenant_id == bindparam("t"), _D.c.id == bindparam("i")), name="d"
    )
    calls = Prepared(select(_C).where(_C.c.tenant_id == bindparam("t")), name="calls")
    with rt.db.tenant_tx(a.id) as s:
        conn = connection_of(s)
        rows = _same(conn, by_id, {"t": a.id, "i": a.deployments[0]})
        assert len(rows) == 1
        row = rows[0]
        assert row.id == a.deployments[0]
        # The UTCDateTime result processor ran: an aware datetime, not SQLite's text.
        assert isinstance(row.created_at, datetime)
        assert row.created_at.tzinfo is not None
        assert len(_same(conn, calls, {"t": a.id})) == len(a.calls)
        # Another tenant's id finds nothing through the tenant filter.
        assert _same(conn, by_id, {"t": a.id, "i": world.b.deployments[0]}) == []
        assert by_id.one_or_none(conn, {"t": a.id, "i": world.b.deployments[0]}) is None


def test_joins_with_repeated_binds_booleans_and_nulls(rt: Runtime, world: World) -> None:
    stmt = (
        select(ApiKey.id, ApiKey.revoked_at, Principal.active, Principal.name)
        .join(Principal, Principal.id == ApiKey.principal_id)
        .where(ApiKey.tenant_id == bindparam("t"), Principal.tenant_id == bindparam("t"))
        .order_by(ApiKey.id)
    )
    prepared = Prepared(stmt, name="keys")
    with rt.db.tenant_tx(world.a.id) as s:
        rows = _same(connection_of(s), prepared, {"t": world.a.id})
    assert rows
    assert {type(r.active) for r in rows} == {bool}
    assert {r.revoked_at for r in rows} == {None}


def test_bind_processors_apply(rt: Runtime, world: World) -> None:
    # UTCDateTime's bind processor normalises an aware datetime before it reaches SQLite.
    later = datetime.now(UTC) + timedelta(days=3650)
    prepared = Prepared(
        select(ApiKey.id).where(
            ApiKey.tenant_id == bindparam("t"), ApiKey.expires_at < bindparam("when")
        ),
        name="expiring",
    )
    with rt.db.tenant_tx(world.a.id) as s:
        rows = _same(connection_of(s), prepared, {"t": world.a.id, "when": later})
        assert len(rows) >= 1
        earlier = datetime(2000, 1, 1, tzinfo=UTC)
        assert _same(connection_of(s), prepared, {"t": world.a.id, "when": earlier}) == []


def test_duplicate_column_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        Prepared(select(Tenant.id, Deployment.id), name="dup")


def test_more_than_one_row_is_an_error_for_one_or_none(rt: Runtime, world: World) -> None:
    prepared = Prepared(select(_D.c.id).where(_D.c.tenant_id == bindparam("t")), name="many")
    with rt.db.tenant_tx(world.a.id) as s, pytest.raises(RuntimeError, match="more than one"):
        prepared.one_or_none(connection_of(s), {"t": world.a.id})


def test_driver_errors_surface_as_sqlalchemy_errors_without_parameters(
    rt: Runtime, client: TestClient
) -> None:
    prepared = Prepared(select(_D.c.id).where(_D.c.tenant_id == bindparam("t")), name="gone")
    with rt.db.engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE deployments (x INTEGER)"))  # shadows the real one
        with pytest.raises(DBAPIError) as info:
            prepared.rows(conn, {"t": "tnt_secretish_value"})
    assert "tnt_secretish_value" not in str(info.value)
