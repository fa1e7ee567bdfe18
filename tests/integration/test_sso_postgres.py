"""The SSO login core on PostgreSQL: atomic replay cache and single-use states across
connections, the row-level-security wall over the SSO tables, a login end to end.

The IdP side is the test double of ``tests/unit/sso/_double.py`` (the real
adapters are tested against real IdPs in their own suites).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault import sso
from callvault.bootstrap import create_tenant_with_owner
from callvault.config import Settings
from callvault.errors import SsoError
from callvault.runtime import Runtime
from callvault.sso._states import LoginStates
from callvault.store.models import SsoConnection, SsoIdentityLink, SsoLoginState, SsoReplay
from tests.unit.sso._double import adapters, answer, config, sso_asgi

pytestmark = pytest.mark.postgres

R = TypeVar("R")
RACERS = 8


@pytest.fixture
def rt(pg_settings: Settings) -> Iterator[Runtime]:
    settings = pg_settings.model_copy(update={"public_base_url": "https://cv.example.test"})
    runtime = Runtime.open(settings, create_key=True)
    yield runtime
    runtime.close()


def _connection(rt: Runtime, tenant_id: str, **over: object) -> str:
    store = sso.ConnectionStore(rt.keys, rt.sealer, adapters(), rt.settings.public_base_url)
    data = sso.ConnectionInput(
        protocol="saml",
        name="idp",
        config=config(),
        role_mappings=[{"group": "cv-admins", "role": "admin"}],
        **over,  # type: ignore[arg-type]
    )
    with rt.db.tenant_tx(tenant_id) as s:
        return store.create(s, tenant_id, data, actor="test").id


def _race(fn: Callable[[], R]) -> list[R | BaseException]:
    """Run ``fn`` in RACERS threads released together; results or exceptions."""
    barrier = threading.Barrier(RACERS)

    def one() -> R | BaseException:
        barrier.wait()
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            return exc

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(lambda _: one(), range(RACERS)))


def test_concurrent_uses_of_one_assertion_id_exactly_one_wins(rt: Runtime) -> None:
    tenant = create_tenant_with_owner(rt, tenant_name="acme", owner_name="o").tenant_id
    conn = _connection(rt, tenant)
    guard = sso.DbReplayGuard(rt.db, tenant)
    until = datetime.now(UTC) + timedelta(minutes=5)
    results = _race(lambda: guard.first_use(conn, "_assertion-1", until))
    assert results.count(True) == 1, results
    assert results.count(False) == RACERS - 1, results
    # A different assertion id is a first use; the same one later is still a replay.
    assert guard.first_use(conn, "_assertion-2", until) is True
    assert guard.first_use(conn, "_assertion-1", until) is False


def test_replay_rows_outlive_not_on_or_after_by_the_skew_then_are_pruned(rt: Runtime) -> None:
    tenant = create_tenant_with_owner(rt, tenant_name="acme", owner_name="o").tenant_id
    conn = _connection(rt, tenant)
    now = datetime.now(UTC)
    clock = {"now": now}
    guard = sso.DbReplayGuard(rt.db, tenant, clock=lambda: clock["now"])
    assert guard.first_use(conn, "_old", now + timedelta(seconds=30))
    clock["now"] = now + timedelta(seconds=31)  # past NotOnOrAfter, inside the skew
    assert guard.first_use(conn, "_old", now + timedelta(seconds=30)) is False
    clock["now"] = now + timedelta(minutes=10)  # past NotOnOrAfter + 300 s: pruned
    assert guard.first_use(conn, "_new", now + timedelta(minutes=15))
    with rt.db.tenant_tx(tenant) as s:
        kept = s.execute(select(SsoReplay.assertion_hash)).scalars().all()
    assert len(kept) == 1


def test_one_state_cookie_is_consumed_exactly_once_under_concurrency(rt: Runtime) -> None:
    tenant = create_tenant_with_owner(rt, tenant_name="acme", owner_name="o").tenant_id
    conn = _connection(rt, tenant)
    states = LoginStates(rt.sealer, ttl=timedelta(minutes=10), max_pending=100)
    now = datetime.now(UTC)
    with rt.db.tenant_tx(tenant) as s:
        started = states.create(s, tenant, conn, {"request_id": "_r1"}, now=now)

    def consume() -> dict[str, str]:
        with rt.db.tenant_tx(tenant) as s:
            return states.consume(s, tenant, conn, started.binding, now=now)

    results = _race(consume)
    wins = [r for r in results if isinstance(r, dict)]
    assert wins == [{"request_id": "_r1"}]
    losses = [r for r in results if isinstance(r, SsoError)]
    assert len(losses) == RACERS - 1
    assert {e.reason for e in losses} == {"state-used"}


def test_a_login_on_postgresql_and_the_tenant_wall_over_sso_rows(rt: Runtime) -> None:
    a = create_tenant_with_owner(rt, tenant_name="a", owner_name="oa").tenant_id
    b = create_tenant_with_owner(rt, tenant_name="b", owner_name="ob").tenant_id
    conn = _connection(rt, a)
    _connection(rt, b)
    with TestClient(sso_asgi(rt), base_url="https://testserver") as client:
        r = client.get(f"/sso/{a}/{conn}/login", follow_redirects=False)
        assert r.status_code == 303
        cookie = r.cookies["__Host-cv-sso-state"]
        request_id = r.headers["location"].split("request=")[1].split("&")[0]
        client.cookies.clear()
        r = client.post(
            f"/sso/{a}/{conn}/saml/acs",
            data={"SAMLResponse": answer(request_id, "subject-1", groups=("cv-admins",))},
            headers={"Cookie": f"__Host-cv-sso-state={cookie}"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        assert client.get(f"/sso/{b}/{conn}/login").status_code == 404
    for tenant, own in ((a, 1), (b, 0)):
        with rt.db.tenant_tx(tenant) as s:
            # No tenant filter on purpose: the wall alone confines these reads.
            conns = s.execute(select(SsoConnection.tenant_id)).scalars().all()
            links = s.execute(select(SsoIdentityLink.tenant_id)).scalars().all()
            states = s.execute(select(SsoLoginState.tenant_id)).scalars().all()
            replays = s.execute(select(SsoReplay.tenant_id)).scalars().all()
        assert set(conns) == {tenant}
        assert len(links) == own
        assert len(states) == own
        assert len(replays) == own
