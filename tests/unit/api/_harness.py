"""Module-scoped test installation for the API tests, and problem+json checks.

The ``world`` fixture in ``tests/conftest.py`` is function-scoped; the API
suites here send thousands of requests against one populated installation,
so they build their own runtime, client and world once per module with the
same helpers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from callvault.api import create_app
from callvault.config import load_settings
from callvault.runtime import Runtime
from callvault.store.models import AuditHead, Base
from tests.support.world import World, build_world

PROBLEM = "application/problem+json"


@dataclass
class Installation:
    rt: Runtime
    client: TestClient
    world: World


@contextmanager
def installation(data_dir: Path, **settings: object) -> Iterator[Installation]:
    """A runtime over ``data_dir``, an HTTPS test client, and the populated world."""
    rt = Runtime.open(load_settings({}, data_dir=data_dir, **settings), create_key=True)
    try:
        with TestClient(create_app(rt), base_url="https://testserver") as client:
            yield Installation(rt=rt, client=client, world=build_world(rt, client))
    finally:
        rt.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def is_problem(resp: httpx.Response) -> bool:
    return resp.headers.get("content-type", "").split(";")[0].strip() == PROBLEM


def problem_json(resp: httpx.Response) -> dict[str, Any]:
    """The problem document of ``resp`` (asserting it is one)."""
    assert is_problem(resp), (resp.status_code, resp.headers.get("content-type"), resp.text[:300])
    body = json.loads(resp.content)
    assert isinstance(body, dict)
    assert body.get("status") == resp.status_code, body
    return body


def row_counts(rt: Runtime) -> dict[str, int]:
    """Rows in every table of the metadata DB (audit entries and config versions included)."""
    with rt.db.system_tx() as s:
        return {
            t.name: int(s.execute(select(func.count()).select_from(t)).scalar_one())
            for t in Base.metadata.sorted_tables
        }


def audit_size(rt: Runtime, tenant_id: str) -> int:
    with rt.db.tenant_tx(tenant_id) as s:
        head = s.get(AuditHead, tenant_id)
        return 0 if head is None else int(head.size)


def audit_entries(rt: Runtime, tenant_id: str, start: int = 0) -> list[dict[str, Any]]:
    """The tenant's audit entries from index ``start``, read through the DB."""
    with rt.db.tenant_tx(tenant_id) as s:
        rows = rt.audit.read(s, tenant_id, start=start, limit=1_000_000)
    return [json.loads(entry) for _, entry in rows]
