"""A throwaway PostgreSQL cluster for the integration tests.

:meth:`PgCluster.start` does, in order:

1. Find the server binaries (``CV_TEST_PG_BINDIR``, else the newest
   ``/usr/lib/postgresql/<ver>/bin``, else ``pg_ctl`` on ``PATH``).
2. ``initdb`` into a fresh temporary directory with trust authentication.
   initdb refuses to run as root, so as root every server command runs as the
   ``postgres`` system user (``runuser -u postgres --``) on a directory
   chowned to it; otherwise as the current user.
3. Replace ``pg_hba.conf`` so only the unix socket and 127.0.0.1 are trusted,
   and configure the server for tests: loopback only, the socket inside the
   temporary directory, no fsync.
4. Start on a free loopback port (retrying if another process takes it first).
5. Create the schema owner ``callvault_owner`` (which migrates) and the
   service role ``callvault`` (which the service runs as, granted only what it
   needs by the owner), both LOGIN NOSUPERUSER NOBYPASSRLS: the row-level
   security policies apply to them, which is what the tests need.

:meth:`PgCluster.create_database` gives each test an empty database owned by
the owner role. :meth:`PgCluster.stop` stops the server and deletes the directory.
Administration (roles, databases, looking past row-level security) goes
through the bootstrap superuser ``postgres`` on the unix socket.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

APP_ROLE = "callvault"
OWNER_ROLE = "callvault_owner"
SUPERUSER = "postgres"
_SYSTEM_USER = "postgres"
_START_ATTEMPTS = 3
_TIMEOUT_S = 60


class PgUnavailableError(Exception):
    """The PostgreSQL server binaries (or a user to run them as) are not on this machine."""


def find_bindir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    candidates: list[Path] = []
    if env := os.environ.get("CV_TEST_PG_BINDIR"):
        candidates.append(Path(env))
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
        reverse=True,
    )
    candidates.extend(versions)
    if on_path := shutil.which("pg_ctl"):
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise PgUnavailableError(
        "PostgreSQL server binaries not found (apt-get install postgresql, "
        "or set CV_TEST_PG_BINDIR)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PgCluster:
    """A running test cluster. Use :meth:`start`; always :meth:`stop` it."""

    bindir: Path
    root: Path
    port: int = 0
    #: fsync and synchronous commit on (benchmarks of durable writes); off for tests.
    durable: bool = False

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    # -- lifecycle -----------------------------------------------------------

    @classmethod
    def start(cls, bindir: Path | None = None, *, durable: bool = False) -> PgCluster:
        """Steps (1)-(5) of the module docstring; raises if the server does not come up."""
        # (1)
        bindir = bindir or find_bindir()
        as_root = os.geteuid() == 0
        if as_root:
            try:
                owner = pwd.getpwnam(_SYSTEM_USER)
            except KeyError:
                raise PgUnavailableError(
                    f"running as root but there is no {_SYSTEM_USER!r} user to run initdb as"
                ) from None
        # (2) mkdtemp in the system temp dir: short enough for the socket path and,
        # unlike pytest's per-user tmp_path, reachable by the postgres user.
        cluster = cls(bindir=bindir, root=Path(tempfile.mkdtemp(prefix="cv-pg-")), durable=durable)
        try:
            if as_root:
                os.chown(cluster.root, owner.pw_uid, owner.pw_gid)
            cluster._run(
                "initdb",
                "--pgdata",
                str(cluster.datadir),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-sync",
            )
            # (3)
            (cluster.datadir / "pg_hba.conf").write_text(
                "local all all trust\nhost all all 127.0.0.1/32 trust\n"
            )
            # (4)
            cluster._start_on_free_port()
            # (5)
            cluster.create_role(OWNER_ROLE, "LOGIN", "NOSUPERUSER", "NOBYPASSRLS")
            cluster.create_role(APP_ROLE, "LOGIN", "NOSUPERUSER", "NOBYPASSRLS")
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _start_on_free_port(self) -> None:
        for attempt in range(_START_ATTEMPTS):
            self.port = _free_port()
            settings = {
                "listen_addresses": "127.0.0.1",
                "port": str(self.port),
                "unix_socket_directories": str(self.root),
                "fsync": "on" if self.durable else "off",
                "synchronous_commit": "on" if self.durable else "off",
                "full_page_writes": "on" if self.durable else "off",
                "max_connections": "200",
                "shared_buffers": "32MB",
                "log_min_messages": "warning",
            }
            conf = self.datadir / "postgresql.auto.conf"
            conf.write_text("".join(f"{k} = '{v}'\n" for k, v in settings.items()))
            try:
                self._pg_ctl("--log", str(self.logfile), "--timeout", str(_TIMEOUT_S), "start")
            except subprocess.CalledProcessError:
                # Another process may have taken the port between probe and bind.
                if attempt == _START_ATTEMPTS - 1 or "in use" not in self.server_log():
                    raise
            else:
                return

    def stop(self) -> None:
        """Stop the server (fast: its data is thrown away) and delete the directory."""
        try:
            if (self.datadir / "postmaster.pid").exists():
                try:
                    self._pg_ctl("--mode", "immediate", "stop")
                except subprocess.CalledProcessError:
                    self._kill_postmaster()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "--pgdata", str(self.datadir), "--wait", *args)

    def _run(self, tool: str, *args: str) -> None:
        argv = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", _SYSTEM_USER, "--", *argv]
        env = {**os.environ, "LC_ALL": "C", "PGTZ": "UTC"}
        proc = subprocess.run(
            argv,
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(
                proc.returncode, argv, proc.stdout, f"{proc.stderr}\n{self.server_log()}"
            )

    def server_log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # -- administration ------------------------------------------------------

    def url(self, dbname: str, user: str = APP_ROLE) -> str:
        """The SQLAlchemy URL callvault uses: TCP on loopback, as ``user``."""
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{dbname}"

    @contextmanager
    def admin(self, dbname: str = "postgres") -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """An autocommit superuser connection over the unix socket (sees past RLS)."""
        with psycopg.connect(
            host=str(self.root), port=self.port, user=SUPERUSER, dbname=dbname, autocommit=True
        ) as conn:
            yield conn

    def create_role(self, name: str, *attributes: str) -> None:
        """``CREATE ROLE name WITH attributes`` (attributes are SQL keywords)."""
        for attr in attributes:
            if not re.fullmatch(r"[A-Z]+", attr):
                raise ValueError("role attributes are bare SQL keywords")
        stmt = sql.SQL("CREATE ROLE {} WITH {}").format(
            sql.Identifier(name), sql.SQL(" ").join(sql.SQL(a) for a in attributes)
        )
        with self.admin() as conn:
            conn.execute(stmt)

    def create_database(self, owner: str = OWNER_ROLE, *, template: str | None = None) -> str:
        """A new database owned by ``owner``: empty, or a copy of ``template``; returns its name.

        A template MUST have no open connections while it is copied.
        """
        name = f"cv_{secrets.token_hex(6)}"
        stmt = sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(owner), sql.Identifier(template or "template1")
        )
        with self.admin() as conn:
            conn.execute(stmt)
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing any connection a failed test left open."""
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
