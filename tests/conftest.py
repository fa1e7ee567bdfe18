"""Shared fixtures: settings in a temporary data directory, a runtime, an API client."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callvault.api import create_app
from callvault.config import Settings, load_settings
from callvault.runtime import Runtime
from tests.support.world import World, build_world


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({}, data_dir=tmp_path / "data")


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.open(settings, create_key=True)
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt), base_url="https://testserver") as c:
        yield c


@pytest.fixture
def world(rt: Runtime, client: TestClient) -> World:
    return build_world(rt, client)


def random_root_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()
