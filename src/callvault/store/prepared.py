"""Hot read queries compiled once per dialect and run on the driver's cursor.

SQLAlchemy Core spends ~50 µs per execution on this machine around a query
that SQLite answers in ~10 µs: it rebuilds and hashes the statement's cache
key, sets up an execution context and a result object. The few queries every
authenticated request runs (the key lookup, the metadata read of the route's
resource) are written as ordinary Core ``select()`` statements and wrapped in
:class:`Prepared`, which compiles each one once per dialect with SQLAlchemy's
own compiler (so the SQL is exactly what ``Connection.execute`` would send,
including PostgreSQL bind casts), then executes it on the DBAPI cursor of the
caller's SQLAlchemy connection, inside the caller's transaction.

What is kept from SQLAlchemy: the column types' bind and result processors
(e.g. :class:`~callvault.store.models.UTCDateTime`), taken from the dialect's
implementation of each type, and error translation (a driver error surfaces
as :class:`sqlalchemy.exc.DBAPIError`, so the API's 503 handler and the
fail-closed paths treat it as any other database error). What is not: ORM
entities, events, statement caching and logging of statements (nothing here
logs parameters). A statement must select plain columns with unique keys.

docs/adr/0011-request-transactions-on-core-connections.md records the choice.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

Processor = Callable[[Any], Any] | None
Reader = Session | Connection
"""What read functions accept: a request's connection, or a session (its connection is used)."""


def connection_of(reader: Reader) -> Connection:
    """The Core connection of ``reader`` (a session begins its transaction if needed)."""
    return reader if isinstance(reader, Connection) else reader.connection()


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    positional: tuple[str, ...] | None  # bind names in order (qmark/format), or None (named)
    binds: tuple[tuple[str, Processor], ...]  # processors for binds that need one
    results: tuple[tuple[int, Processor], ...]  # (column index, processor) that need one
    make: Callable[[Any], Any]  # the row type's constructor from an iterable


class Prepared:
    """One Core ``select`` run as a precompiled statement on the caller's connection."""

    def __init__(self, statement: Select[*tuple[Any, ...]], *, name: str) -> None:
        keys = [str(c.key) for c in statement.selected_columns]
        if len(set(keys)) != len(keys):
            raise ValueError(f"prepared statement {name}: column keys must be unique")
        self.statement = statement
        self.name = name
        # A tuple subclass with the statement's column keys as attributes, as Core's Row offers.
        row_type: Any = namedtuple(name, keys)  # type: ignore[misc]  # fields known only at run time
        self._make: Callable[[Any], Any] = row_type._make
        self._plans: dict[str, _Plan] = {}

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = self._compile(dialect)
        return plan

    def _compile(self, dialect: Dialect) -> _Plan:
        compiled = self.statement.compile(dialect=dialect)
        binds: list[tuple[str, Processor]] = []
        for key, bind in compiled.binds.items():
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                binds.append((key, proc))
        results: list[tuple[int, Processor]] = []
        for i, column in enumerate(self.statement.selected_columns):
            proc = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if proc is not None:
                results.append((i, proc))
        positional = tuple(compiled.positiontup or ()) if compiled.positional else None
        return _Plan(compiled.string, positional, tuple(binds), tuple(results), self._make)

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Execute with ``params`` (every bind by name) and return all rows."""
        plan = self._plan(conn.dialect)
        values = dict(params)
        for key, proc in plan.binds:
            values[key] = proc(values[key])  # type: ignore[misc]
        args: Any = values if plan.positional is None else [values[k] for k in plan.positional]
        dbapi_conn = conn.connection.dbapi_connection
        if dbapi_conn is None:  # pragma: no cover - a checked-out connection always has one
            raise RuntimeError("connection is closed")
        try:
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute(plan.sql, args)
                fetched = cursor.fetchall()
            finally:
                cursor.close()
        except conn.dialect.loaded_dbapi.Error as exc:
            # Translate as SQLAlchemy would; the statement is ours, the
            # parameters (ids) are left out of the error.
            raise DBAPIError.instance(
                plan.sql, None, exc, conn.dialect.loaded_dbapi.Error
            ) from None
        if not plan.results:
            return [plan.make(r) for r in fetched]
        out = []
        for r in fetched:
            row = list(r)
            for i, proc in plan.results:
                row[i] = proc(row[i])  # type: ignore[misc]
            out.append(plan.make(row))
        return out

    def one_or_none(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The single row, or None; more than one row is a programming error."""
        rows = self.rows(conn, params)
        if len(rows) > 1:
            raise RuntimeError(f"prepared statement {self.name} returned more than one row")
        return rows[0] if rows else None
