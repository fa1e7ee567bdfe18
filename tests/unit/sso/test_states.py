"""Pending login states at the per-connection limit: the oldest make room, nobody is refused."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callvault import sso
from callvault.bootstrap import create_tenant_with_owner
from callvault.config import load_settings
from callvault.errors import SsoError
from callvault.runtime import Runtime
from callvault.sso._states import LoginStates
from callvault.store.models import SsoLoginState
from tests.unit.sso._double import adapters, config


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime.open(load_settings({}, data_dir=tmp_path / "data"), create_key=True)
    yield runtime
    runtime.close()


def _connection(rt: Runtime, tenant: str) -> str:
    store = sso.ConnectionStore(rt.keys, rt.sealer, adapters(), "https://cv.example.test")
    data = sso.ConnectionInput(
        protocol="saml",
        name="c",
        config=config(),
        role_mappings=[{"group": "g", "role": "auditor"}],
    )
    with rt.db.tenant_tx(tenant) as s:
        return store.create(s, tenant, data, actor="test").id


def test_at_the_limit_the_oldest_pending_login_makes_room(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = create_tenant_with_owner(rt, tenant_name="acme", owner_name="o").tenant_id
    conn = _connection(rt, tenant)
    states = LoginStates(rt.sealer, ttl=timedelta(minutes=10), max_pending=3)
    now = datetime.now(UTC)
    started = []
    with caplog.at_level(logging.WARNING, logger="callvault.sso"):
        for i in range(5):
            with rt.db.tenant_tx(tenant) as s:
                when = now + timedelta(seconds=i)
                started.append(states.create(s, tenant, conn, {"request_id": f"_r{i}"}, now=when))
    with rt.db.tenant_tx(tenant) as s:
        count = s.execute(select(func.count()).select_from(SsoLoginState)).scalar_one()
        assert count == 3
        for old in started[:2]:
            with pytest.raises(SsoError) as info:
                states.consume(s, tenant, conn, old.binding, now=now + timedelta(seconds=5))
            assert info.value.reason == "state-unknown"
        got = states.consume(s, tenant, conn, started[4].binding, now=now + timedelta(seconds=5))
        assert got == {"request_id": "_r4"}
    evictions = [r for r in caplog.records if "evicted" in r.getMessage()]
    assert len(evictions) == 1  # at most one line a minute per connection
    assert conn in evictions[0].getMessage()
