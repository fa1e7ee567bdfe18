"""Engine, tenant-scoped transactions and migrations.

Every read or write of tenant-owned rows happens inside :meth:`Database.tenant_tx`,
which on PostgreSQL also sets the transaction-local ``callvault.tenant_id``
that the row-level security policies compare against. A query that forgets
its ``tenant_id`` filter therefore still sees only the current tenant's rows
on PostgreSQL; on SQLite the domain layer's filter is the only wall.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from callvault.config import Settings
from callvault.errors import ConfigError, UnavailableError
from callvault.store.grants import check_service_role, grant_service_role

TENANT_SETTING = "callvault.tenant_id"
DIRECTORY_SETTING = "callvault.scope"
_SET_TENANT = text("SELECT set_config(:name, :tenant, true)")


def move_transaction(session: Session, tenant_id: str) -> None:
    """Move ``session``'s open transaction to ``tenant_id`` (the setting is transaction-local).

    PostgreSQL only; SQLite has no second wall. For the one write that MUST span two logs
    atomically (a break-glass step's mirror in the installation log, docs/adr/0017): the
    caller MUST move the transaction back to its own tenant before it touches another row.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection().execute(_SET_TENANT, {"name": TENANT_SETTING, "tenant": tenant_id})


def begin_write(session: Session) -> None:
    """Make ``session``'s transaction a write transaction now, before it reads what it decides on.

    PostgreSQL: nothing (``SELECT … FOR UPDATE`` locks the rows read). SQLite
    ignores ``FOR UPDATE``, and its Python driver begins a transaction only at
    the first write: reads before that run outside any transaction, so two
    requests can both read a row, decide, and write (a lost update, or a
    duplicate key). Here, if no transaction is open on the driver yet,
    ``BEGIN IMMEDIATE`` takes the database's write lock (waiting up to the busy
    timeout): every read after it sees the latest commit and no one else writes
    until this transaction ends. Call it before the read of a read-decide-write.
    """
    if session.get_bind().dialect.name != "sqlite":
        return
    dbapi = session.connection().connection.dbapi_connection
    if dbapi is not None and not dbapi.in_transaction:
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")


def insert_for(session: Session) -> Any:
    """The session's dialect's ``insert()``: both have ``on_conflict_do_nothing/_update``."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.close()

    return on_connect


class Database:
    """One engine and the transactions callvault runs on it."""

    def __init__(self, settings: Settings, *, pool_size: int | None = None) -> None:
        self.settings = settings
        pool_size = settings.db_pool_size if pool_size is None else pool_size
        url = settings.db_url
        self.is_sqlite = settings.is_sqlite
        if self.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            # A fixed pool (no overflow): opening a SQLite connection runs the
            # pragmas below, far costlier than a query, so connections are kept.
            self.engine: Engine = create_engine(
                url,
                connect_args={"check_same_thread": False},
                pool_size=pool_size,
                max_overflow=0,
                pool_timeout=30,
            )
            event.listen(self.engine, "connect", _sqlite_pragmas(settings.db_busy_timeout_ms))
        elif url.startswith("postgresql"):
            self.engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=0,
                pool_timeout=30,
                pool_pre_ping=True,
            )
        else:
            raise ConfigError(
                "CALLVAULT_DATABASE_URL must be sqlite or postgresql",
                field="CALLVAULT_DATABASE_URL",
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    def begin_tenant(self, tenant_id: str) -> Session:
        """Begin a transaction confined to ``tenant_id``; the caller MUST finish it
        (``finish``) or close it (roll back)."""
        session = self._sessions()
        session.begin()
        if not self.is_sqlite:
            session.connection().execute(_SET_TENANT, {"name": TENANT_SETTING, "tenant": tenant_id})
        return session

    def begin_tenant_connection(self, tenant_id: str) -> Connection:
        """Like :meth:`begin_tenant`, on a Core connection (no ORM session).

        The request path uses this (docs/adr/0011): the key lookup and hot
        metadata reads run on the connection, and a route that writes gets a
        session joined to the same transaction (:meth:`session_on`). The caller
        MUST commit and close it; closing without commit rolls back.
        """
        conn = self.engine.connect()
        try:
            conn.begin()
            if not self.is_sqlite:
                conn.execute(_SET_TENANT, {"name": TENANT_SETTING, "tenant": tenant_id})
        except BaseException:  # release the pooled connection whatever stopped us, re-raise
            conn.close()
            raise
        return conn

    @staticmethod
    def session_on(conn: Connection) -> Session:
        """An ORM session inside ``conn``'s transaction, which stays the caller's.

        ``session.commit()`` only flushes; committing (or rolling back by
        closing) is done on ``conn``.
        """
        return Session(
            bind=conn,
            join_transaction_mode="rollback_only",
            expire_on_commit=False,
            autoflush=False,
        )

    def set_tenant(self, session: Session, tenant_id: str) -> None:
        """Move ``session``'s transaction to ``tenant_id`` (for a writer serving many tenants)."""
        if not self.is_sqlite:
            session.connection().execute(_SET_TENANT, {"name": TENANT_SETTING, "tenant": tenant_id})

    @staticmethod
    @contextmanager
    def finish(session: Session) -> Iterator[Session]:
        """Commit ``session`` if the block succeeds, roll back if it raises; close it either way."""
        try:
            yield session
            session.commit()
        except BaseException:  # whatever stopped the block, nothing of it is committed; re-raise
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def tenant_tx(self, tenant_id: str) -> Iterator[Session]:
        """A transaction confined to ``tenant_id``: commits on success, rolls back on error."""
        with self.finish(self.begin_tenant(tenant_id)) as session:
            yield session

    @contextmanager
    def system_tx(self) -> Iterator[Session]:
        """A transaction with no tenant: on PostgreSQL it sees no tenant-owned rows."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def directory_tx(self) -> Iterator[Session]:
        """A read-only transaction that may list tenant ids, for background jobs.

        On PostgreSQL it sets ``callvault.scope = 'directory'``, which one
        SELECT-only policy on ``tenants`` (migration 0003) honours; every other
        tenant-owned table stays walled. Use it only to learn which tenants to
        visit, then work in each tenant's own :meth:`tenant_tx`.
        """
        with self._sessions() as session, session.begin():
            if not self.is_sqlite:
                conn = session.connection()
                conn.execute(text("SET TRANSACTION READ ONLY"))
                conn.execute(_SET_TENANT, {"name": DIRECTORY_SETTING, "tenant": "directory"})
            yield session

    def check(self) -> None:
        """Raise :class:`UnavailableError` unless the database answers and is writable."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                if not self.is_sqlite:
                    ro = conn.execute(text("SHOW transaction_read_only")).scalar_one()
                    if ro == "on":
                        raise UnavailableError("database is read-only")
        except SQLAlchemyError:
            raise UnavailableError("database is not reachable") from None

    def check_role(self) -> None:
        """Fail closed if the PostgreSQL role could bypass row-level security."""
        if self.is_sqlite:
            return
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            ).one()
        if row[0] or row[1]:
            raise ConfigError(
                "CALLVAULT_DATABASE_URL must use a role without SUPERUSER or BYPASSRLS",
                field="CALLVAULT_DATABASE_URL",
            )

    def migrate(self) -> None:
        """Apply every Alembic migration up to head.

        On PostgreSQL with ``CALLVAULT_MIGRATION_DATABASE_URL`` the owner role
        migrates and then grants the service role its privileges
        (:func:`callvault.store.grants.grant_service_role`), in one transaction.
        """
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(files("callvault.store") / "migrations"))
        owner_url = self.settings.migration_database_url
        if self.is_sqlite or owner_url is None:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
            return
        with self.engine.connect() as conn:
            service_role = str(conn.execute(text("SELECT current_user")).scalar_one())
        owner = create_engine(owner_url.get_secret_value(), poolclass=NullPool)
        try:
            with owner.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                grant_service_role(conn, service_role)
        except SQLAlchemyError:
            raise UnavailableError("migrating as the owner role failed") from None
        finally:
            owner.dispose()

    def check_audit_privileges(self) -> None:
        """Fail closed if the service's role could rewrite or remove audit history.

        PostgreSQL only (SQLite has no roles; its triggers are the wall there).
        """
        if self.is_sqlite:
            return
        with self.engine.connect() as conn:
            bad = check_service_role(conn)
        if bad:
            raise ConfigError(
                "CALLVAULT_DATABASE_URL's role can alter the audit log "
                f"({', '.join(bad)}); migrate with CALLVAULT_MIGRATION_DATABASE_URL "
                "set to the schema owner's role",
                field="CALLVAULT_DATABASE_URL",
            )

    def dispose(self) -> None:
        self.engine.dispose()
