"""The hot lookups use an index on both the tenant and the looked-up column (SQLite).

Without statistics SQLite's planner chose a single-column ``tenant_id`` index
over the selective one and scanned every row of the tenant (12 ms per
authenticated request at 10,000 users; migration 0010). These tests read
the planner's choice for the statements the request path runs.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Select, select
from sqlalchemy.dialects import sqlite

from callvault.access import _principals
from callvault.runtime import Runtime
from callvault.store.models import Call, CallEvent, Recording, TranscriptSegment


def plan(rt: Runtime, statement: Select[tuple[object, ...]]) -> str:
    sql = str(statement.compile(dialect=sqlite.dialect()))
    sql = re.sub(r"\?|:\w+", "'x'", sql)  # constants in place of binds: the same plan shape
    with rt.db.engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql).fetchall()
    return "\n".join(str(r[3]) for r in rows)


@pytest.mark.parametrize(
    ("name", "table"),
    [("_AUTHENTICATE", "role_bindings"), ("_LOAD_PRINCIPAL", "role_bindings")],
)
def test_a_principals_bindings_are_found_by_tenant_and_principal(
    rt: Runtime, name: str, table: str
) -> None:
    text = plan(rt, getattr(_principals, name).statement)
    line = next(x for x in text.splitlines() if f"SEARCH {table}" in x)
    assert "(tenant_id=? AND principal_id=?)" in line, text


@pytest.mark.parametrize("model", [TranscriptSegment, CallEvent, Recording])
def test_a_calls_rows_are_found_by_tenant_and_call(rt: Runtime, model: type) -> None:
    statement = select(model).where(model.tenant_id == "t", model.call_id == "c")  # type: ignore[attr-defined]
    text = plan(rt, statement)
    assert "(tenant_id=? AND call_id=?)" in text, text


@pytest.mark.parametrize("column", ["agent_id", "deployment_id"])
def test_call_listings_read_the_index_in_order(rt: Runtime, column: str) -> None:
    statement = (
        select(Call)
        .where(Call.tenant_id == "t", getattr(Call, column) == "x")
        .order_by(Call.started_at.desc())
        .limit(50)
    )
    text = plan(rt, statement)
    assert f"(tenant_id=? AND {column}=?)" in text, text
    assert "TEMP B-TREE" not in text, text
