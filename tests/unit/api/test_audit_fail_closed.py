"""If the audit log cannot be written, the guarded action does not happen (ARCHITECTURE.md §2).

The audit table is made unwritable mid-run with a SQLite trigger that aborts
every insert. Content reads then answer 503 without content, changes answer
503 and leave no version behind, denials answer 503 (the denial could not be
recorded), and the service still answers its readiness probe. Dropping the
trigger brings everything back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from callvault import tenancy
from tests.support.world import CALLER_NUMBER, PROMPT, TRANSCRIPT, TenantWorld
from tests.unit.api._harness import (
    Installation,
    audit_entries,
    audit_size,
    auth,
    installation,
    is_problem,
    problem_json,
    row_counts,
)

CONTENT = (
    "4111 1111 1111 1111",
    "31926819",
    "twelfth of march",
    TRANSCRIPT[1]["text"],
    CALLER_NUMBER,
    PROMPT,
)
NEW_PROMPT = "You are the after-hours assistant; never reveal the door code 7291."


@dataclass
class Env:
    inst: Installation

    @property
    def a(self) -> TenantWorld:
        return self.inst.world.a

    def get(self, path: str, role: str, scope: str = "tenant", **kw: object) -> httpx.Response:
        resp: httpx.Response = self.inst.client.get(
            path, headers=auth(self.a.tokens[(role, scope)]), **kw
        )
        return resp

    def send(self, method: str, path: str, token: str, body: object) -> httpx.Response:
        resp: httpx.Response = self.inst.client.request(
            method, path, headers=auth(token), json=body
        )
        return resp


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    data: Path = tmp_path_factory.mktemp("audit-down") / "data"
    with installation(data) as inst:
        yield Env(inst)


def _triggers(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        return [str(r[0]) for r in rows]


def break_audit(engine: Engine) -> None:
    """Make every insert into audit_entries abort.

    ``IF NOT EXISTS`` matters beyond tidiness: SQLite checks a DDL name against
    the connection's cached schema while parsing, so a pooled connection that
    has not seen an earlier DROP would refuse a plain CREATE; with ``IF NOT
    EXISTS`` it verifies the schema cookie and re-reads the schema instead.
    """
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TRIGGER IF NOT EXISTS audit_down BEFORE INSERT ON audit_entries "
                "BEGIN SELECT RAISE(ABORT, 'audit down'); END"
            )
        )
    assert "audit_down" in _triggers(engine)


def restore_audit(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS audit_down"))
    assert "audit_down" not in _triggers(engine)


@pytest.fixture
def audit_down(env: Env) -> Iterator[None]:
    """Every insert into audit_entries aborts until the test ends."""
    break_audit(env.inst.rt.db.engine)
    try:
        yield
    finally:
        restore_audit(env.inst.rt.db.engine)


def _assert_unavailable(resp: httpx.Response) -> None:
    assert resp.status_code == 503, resp.text[:300]
    problem_json(resp)
    for marker in (*CONTENT, NEW_PROMPT):
        assert marker not in resp.text


def _current_version(env: Env, agent_id: str) -> str | None:
    with env.inst.rt.db.tenant_tx(env.a.id) as s:
        return tenancy.get_agent(s, env.a.id, agent_id).current_version_id


def test_transcript_read_fails_closed(env: Env, audit_down: None) -> None:
    call = env.a.calls[0]
    _assert_unavailable(env.get(f"/v1/calls/{call}/transcript", "compliance_officer"))
    _assert_unavailable(
        env.get(f"/v1/calls/{call}/transcript", "compliance_officer", params={"view": "full"})
    )
    _assert_unavailable(env.get(f"/v1/calls/{call}/transcript", "qa_reviewer"))


def test_agent_config_read_fails_closed(env: Env, audit_down: None) -> None:
    agent = env.a.agents[0]
    _assert_unavailable(env.get(f"/v1/agents/{agent}/config", "developer"))
    _assert_unavailable(env.get(f"/v1/agents/{agent}/config", "owner", "dep0"))
    version = _current_version(env, agent)
    _assert_unavailable(env.get(f"/v1/agents/{agent}/versions/{version}", "developer"))


def test_config_change_fails_closed_and_leaves_no_version(env: Env, audit_down: None) -> None:
    agent = env.a.agents[0]
    before_version = _current_version(env, agent)
    before = row_counts(env.inst.rt)
    resp = env.send("PATCH", f"/v1/agents/{agent}", env.a.owner_token, {"prompt": NEW_PROMPT})
    _assert_unavailable(resp)
    assert row_counts(env.inst.rt) == before  # config_versions included
    assert _current_version(env, agent) == before_version


@pytest.mark.parametrize(
    ("method", "path", "who", "body"),
    [
        ("POST", "/v1/deployments", "owner", {"name": "audit-down dep"}),
        ("PATCH", "/v1/tenant", "owner", {"name": "audit-down tenant"}),
        ("POST", "/v1/principals", "owner", {"name": "audit-down person"}),
        ("POST", "/v1/agents/{agent}/calls", "ingest", {"direction": "inbound"}),
    ],
    ids=["create deployment", "rename tenant", "create principal", "create call"],
)
def test_audited_changes_fail_closed_and_write_nothing(
    env: Env, audit_down: None, method: str, path: str, who: str, body: object
) -> None:
    token = env.a.owner_token if who == "owner" else env.a.tokens[("ingest", "tenant")]
    before = row_counts(env.inst.rt)
    resp = env.send(method, path.format(agent=env.a.agents[0]), token, body)
    _assert_unavailable(resp)
    assert row_counts(env.inst.rt) == before


def test_denial_that_cannot_be_recorded_fails_closed(env: Env, audit_down: None) -> None:
    a = env.a
    # would be 403: a QA reviewer asking for the full transcript
    _assert_unavailable(
        env.get(f"/v1/calls/{a.calls[0]}/transcript", "qa_reviewer", params={"view": "full"})
    )
    # would be 404: an agent-scoped developer asking for the other deployment
    _assert_unavailable(env.get(f"/v1/deployments/{a.deployments[1]}", "developer", "agent0"))
    # would be 403: an owner reading call content
    _assert_unavailable(env.get(f"/v1/calls/{a.calls[0]}/transcript", "owner"))


def test_readiness_probe_still_answers(env: Env, audit_down: None) -> None:
    resp = env.inst.client.get("/readyz")
    assert resp.status_code in (200, 503), resp.text
    if resp.status_code == 503:
        assert is_problem(resp)
    assert "checks" in resp.json()
    assert env.inst.client.get("/healthz").status_code == 200


def test_everything_works_again_once_audit_is_back(env: Env) -> None:
    engine = env.inst.rt.db.engine
    a = env.a
    call, agent = a.calls[1], a.agents[1]
    break_audit(engine)
    try:
        _assert_unavailable(env.get(f"/v1/calls/{call}/transcript", "compliance_officer"))
    finally:
        restore_audit(engine)

    start = audit_size(env.inst.rt, a.id)
    resp = env.get(f"/v1/calls/{call}/transcript", "compliance_officer")
    assert resp.status_code == 200, resp.text
    assert "twelfth of march" in resp.text

    resp = env.get(f"/v1/agents/{agent}/config", "developer")
    assert resp.status_code == 200, resp.text
    assert resp.json()["config"]["prompt"] == PROMPT

    before_version = _current_version(env, agent)
    resp = env.send("PATCH", f"/v1/agents/{agent}", a.owner_token, {"prompt": NEW_PROMPT})
    assert resp.status_code == 200, resp.text
    assert _current_version(env, agent) not in (None, before_version)

    resp = env.get(f"/v1/calls/{call}/transcript", "qa_reviewer", params={"view": "full"})
    assert resp.status_code == 403, resp.text

    outcomes = [(e["action"], e["outcome"]) for e in audit_entries(env.inst.rt, a.id, start)]
    assert ("transcript:read", "allowed") in outcomes
    assert ("agent:read_config", "allowed") in outcomes
    assert ("agent.update", "success") in outcomes
    assert ("transcript:read", "denied") in outcomes
