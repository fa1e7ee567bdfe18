"""Fixtures for tests against the real PostgreSQL server the suite starts itself.

One cluster per test process (so each pytest-xdist worker has its own, on its
own port and in its own directory), and a fresh database per test. Without the
server binaries the PostgreSQL tests skip, unless ``CV_TEST_REQUIRE_POSTGRES=1``
(``scripts/test`` sets it) makes that a failure.

``pg_settings`` / ``pg_rt`` / ``pg_client`` mirror ``settings`` / ``rt`` /
``client`` of ``tests/conftest.py``. A test that also asks for ``pg_world``
gets, instead of an empty database, its own copy of a database in which
:func:`build_world` ran once per process (copying a template takes a fraction
of the time the API takes to build the world again).
"""

from __future__ import annotations

import base64
import copy
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from callvault.api import create_app
from callvault.config import Settings, load_settings
from callvault.keys import KEYRING_FILE
from callvault.runtime import Runtime
from tests.integration.pg import OWNER_ROLE, PgCluster, PgUnavailableError, find_bindir
from tests.support.world import World, build_world


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgCluster]:
    try:
        bindir = find_bindir()
    except PgUnavailableError as exc:
        if os.environ.get("CV_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CV_TEST_REQUIRE_POSTGRES=1 but {exc}")
        pytest.skip(str(exc))
    cluster = PgCluster.start(bindir)
    try:
        yield cluster
    finally:
        cluster.stop()


@dataclass(frozen=True)
class WorldTemplate:
    """A database holding a built world (no connections left open) and its root key."""

    dbname: str
    root_key: SecretStr
    world: World
    #: The template's keyring (its KEKs wrap the copied data keys).
    keyring: Path


@pytest.fixture(scope="session")
def pg_world_template(
    pg_server: PgCluster, tmp_path_factory: pytest.TempPathFactory
) -> WorldTemplate:
    dbname = pg_server.create_database()
    root_key = SecretStr(base64.b64encode(secrets.token_bytes(32)).decode())
    settings = load_settings(
        {},
        data_dir=tmp_path_factory.mktemp("pg-world") / "data",
        database_url=pg_server.url(dbname),
        migration_database_url=pg_server.url(dbname, user=OWNER_ROLE),
        root_key=root_key,
    )
    rt = Runtime.open(settings)
    try:
        with TestClient(create_app(rt), base_url="https://testserver") as client:
            world = build_world(rt, client)
    finally:
        rt.close()
    keyring = settings.data_dir / "keyring" / KEYRING_FILE
    return WorldTemplate(dbname=dbname, root_key=root_key, world=world, keyring=keyring)


def _wants_world(request: pytest.FixtureRequest) -> bool:
    return "pg_world" in request.fixturenames


@pytest.fixture
def pg_database(request: pytest.FixtureRequest, pg_server: PgCluster) -> Iterator[str]:
    """This test's own database, owned by the unprivileged ``callvault_owner`` role.

    Empty, or a copy of the world template when the test uses ``pg_world``.
    """
    template = (
        request.getfixturevalue("pg_world_template").dbname if _wants_world(request) else None
    )
    name = pg_server.create_database(template=template)
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def pg_settings(
    request: pytest.FixtureRequest, tmp_path: Path, pg_server: PgCluster, pg_database: str
) -> Settings:
    extra: dict[str, object] = {}
    if _wants_world(request):
        # The copied rows' data keys are wrapped by KEKs in the template's
        # keyring, which is sealed by the template's root key: bring both.
        template = request.getfixturevalue("pg_world_template")
        extra["root_key"] = template.root_key
        (tmp_path / "data" / "keyring").mkdir(parents=True, mode=0o700)
        shutil.copy2(template.keyring, tmp_path / "data" / "keyring" / KEYRING_FILE)
    return load_settings(
        {},
        data_dir=tmp_path / "data",
        database_url=pg_server.url(pg_database),
        migration_database_url=pg_server.url(pg_database, user=OWNER_ROLE),
        **extra,
    )


@pytest.fixture
def pg_rt(pg_settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.open(pg_settings, create_key=True)
    yield runtime
    runtime.close()


@pytest.fixture
def pg_client(pg_rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(pg_rt), base_url="https://testserver") as c:
        yield c


@pytest.fixture
def pg_world(pg_world_template: WorldTemplate, pg_rt: Runtime) -> World:
    """Two tenants as :func:`build_world` makes them, already in ``pg_rt``'s database."""
    return copy.deepcopy(pg_world_template.world)
