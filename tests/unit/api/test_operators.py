"""The operator realm over HTTP: metadata by role, no content, realms kept apart."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from callvault.operators import OperatorRole
from tests.support.world import CALLER_NUMBER, PROMPT
from tests.unit.api._harness import (
    Installation,
    audit_entries,
    audit_size,
    auth,
    installation,
    problem_json,
)
from tests.unit.operators._support import Op, make_operator

#: Strings only customer content holds (transcripts, caller numbers, prompts).
CONTENT = ("31926819", "twelfth of march", CALLER_NUMBER, PROMPT)


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    with installation(tmp_path_factory.mktemp("operators") / "data") as i:
        yield i


def _op(inst: Installation, role: OperatorRole) -> Op:
    return make_operator(inst.rt, f"op-{uuid.uuid4().hex[:10]}", role)


def _metadata_paths(inst: Installation) -> list[str]:
    a = inst.world.a
    base = f"/v1/operator/tenants/{a.id}"
    return [
        base,
        f"{base}/deployments",
        f"{base}/deployments/{a.deployments[0]}/agents",
        f"{base}/calls",
        f"{base}/calls?deployment_id={a.deployments[1]}",
        f"{base}/calls?agent_id={a.agents[0]}",
        f"{base}/calls/{a.calls[0]}",
    ]


@pytest.mark.parametrize("role", list(OperatorRole))
def test_operator_roles_read_metadata_and_each_read_is_audited_in_the_tenant(
    inst: Installation, role: OperatorRole
) -> None:
    op = _op(inst, role)
    a, b = inst.world.a, inst.world.b
    for path in _metadata_paths(inst):
        start_a, start_b = audit_size(inst.rt, a.id), audit_size(inst.rt, b.id)
        resp = inst.client.get(path, headers=auth(op.token))
        assert resp.status_code == 200, (path, resp.text)
        assert not [m for m in CONTENT if m in resp.text], path
        entries = audit_entries(inst.rt, a.id, start_a)
        assert len(entries) == 1, path
        entry = entries[0]
        assert entry["actor"] == op.id
        assert entry["outcome"] == "allowed"
        assert entry["detail"]["realm"] == "operator"
        assert entry["detail"]["role"] == role.value
        assert entry["detail"]["key"] == op.key_id
        assert audit_size(inst.rt, b.id) == start_b, "nothing in the other tenant's log"


def test_listing_tenants_audits_in_every_listed_tenant(inst: Installation) -> None:
    op = _op(inst, OperatorRole.SUPPORT_READONLY)
    a, b = inst.world.a, inst.world.b
    start = {t: audit_size(inst.rt, t) for t in (a.id, b.id)}
    resp = inst.client.get("/v1/operator/tenants", headers=auth(op.token))
    assert resp.status_code == 200, resp.text
    assert {t["id"] for t in resp.json()} >= {a.id, b.id}
    for tenant in (a.id, b.id):
        entries = audit_entries(inst.rt, tenant, start[tenant])
        assert [(e["actor"], e["action"], e["resource"]["id"]) for e in entries] == [
            (op.id, "tenant:read", tenant)
        ]


def test_call_metadata_carries_no_content(inst: Installation) -> None:
    op = _op(inst, OperatorRole.SUPPORT_READONLY)
    a = inst.world.a
    resp = inst.client.get(f"/v1/operator/tenants/{a.id}/calls", headers=auth(op.token))
    assert resp.status_code == 200
    calls = resp.json()
    assert {c["id"] for c in calls} >= set(a.calls)
    assert set(calls[0]) == {
        "id",
        "deployment_id",
        "agent_id",
        "direction",
        "status",
        "started_at",
        "ended_at",
        "segment_count",
        "event_count",
        "has_caller_number",
    }


@pytest.mark.parametrize(
    "suffix",
    [
        "transcript",
        "transcript?view=redacted",
        "transcript?view=full",
        "recording",
        "recording?view=masked",
        "recording?view=full",
    ],
)
@pytest.mark.parametrize("role", list(OperatorRole))
def test_without_break_glass_every_content_read_is_refused_and_audited(
    inst: Installation, role: OperatorRole, suffix: str
) -> None:
    op = _op(inst, role)
    a = inst.world.a
    for call in a.calls:
        start = audit_size(inst.rt, a.id)
        resp = inst.client.get(
            f"/v1/operator/tenants/{a.id}/calls/{call}/{suffix}", headers=auth(op.token)
        )
        body = problem_json(resp)
        assert resp.status_code == 403, resp.text
        assert body["type"].endswith("permission-denied") or body["title"] == "Forbidden"
        assert not [m for m in CONTENT if m in resp.text]
        entries = audit_entries(inst.rt, a.id, start)
        denied = [e for e in entries if e["outcome"] == "denied"]
        assert len(denied) == 1
        assert denied[0]["actor"] == op.id
        assert denied[0]["resource"] == {"kind": "call", "id": call}
        assert denied[0]["detail"]["realm"] == "operator"


def test_support_readonly_cannot_request_break_glass(inst: Installation) -> None:
    op = _op(inst, OperatorRole.SUPPORT_READONLY)
    a = inst.world.a
    start = audit_size(inst.rt, a.id)
    resp = inst.client.post(
        f"/v1/operator/tenants/{a.id}/break-glass",
        headers=auth(op.token),
        json={
            "deployment_id": a.deployments[0],
            "reason": "customer reports dropped audio on call",
            "ticket_ref": "INC-1001",
            "duration_minutes": 60,
        },
    )
    assert resp.status_code == 403
    problem_json(resp)
    entries = audit_entries(inst.rt, a.id, start)
    assert [(e["action"], e["outcome"], e["actor"]) for e in entries] == [
        ("break_glass:request", "denied", op.id)
    ]
    owner = auth(a.owner_token)
    pending = inst.client.get("/v1/tenant/break-glass", headers=owner).json()
    assert op.id not in {p["operator_id"] for p in pending}


def test_tenant_keys_cannot_call_operator_routes(inst: Installation) -> None:
    a = inst.world.a
    paths = ["/v1/operator/me", "/v1/operator/tenants", *_metadata_paths(inst)]
    for token in (a.owner_token, *a.tokens.values()):
        for path in paths:
            resp = inst.client.get(path, headers=auth(token))
            assert resp.status_code == 401, (path, resp.text)
            problem_json(resp)
            assert "bearer" in resp.headers["www-authenticate"].lower()


@pytest.mark.parametrize("role", list(OperatorRole))
def test_operator_keys_cannot_call_tenant_routes(inst: Installation, role: OperatorRole) -> None:
    op = _op(inst, role)
    a = inst.world.a
    paths = [
        "/v1/tenant",
        "/v1/deployments",
        f"/v1/calls/{a.calls[0]}",
        f"/v1/calls/{a.calls[0]}/transcript",
        f"/v1/calls/{a.calls[0]}/recording",
        "/v1/tenant/break-glass",
        "/v1/audit/entries",
    ]
    for path in paths:
        resp = inst.client.get(path, headers=auth(op.token))
        assert resp.status_code == 401, (path, resp.text)
        problem_json(resp)
    # Nor decide break-glass requests (its own or any).
    resp = inst.client.post(
        f"/v1/tenant/break-glass/{a.calls[0]}/approve", headers=auth(op.token), json={}
    )
    assert resp.status_code == 401


def test_bad_operator_credentials_are_401(inst: Installation) -> None:
    op = _op(inst, OperatorRole.SUPPORT_READONLY)
    tampered = op.token[:-2] + ("AA" if not op.token.endswith("AA") else "BB")
    for header in (
        {},
        {"Authorization": "Basic abc"},
        auth("cvop1.garbage"),
        auth(tampered),
        auth(op.token.replace("cvop1.", "cv1.", 1)),
    ):
        resp = inst.client.get("/v1/operator/me", headers=header)
        assert resp.status_code == 401, header
        problem_json(resp)
    assert inst.client.get("/v1/operator/me", headers=auth(op.token)).json() == {
        "id": op.id,
        "role": "support_readonly",
    }


def test_unknown_tenant_and_resources_are_404(inst: Installation) -> None:
    op = _op(inst, OperatorRole.SUPPORT_ENGINEER)
    a, b = inst.world.a, inst.world.b
    missing = "ten_" + "a" * 26
    for path in (
        f"/v1/operator/tenants/{missing}",
        f"/v1/operator/tenants/{missing}/calls",
        f"/v1/operator/tenants/{missing}/calls/{a.calls[0]}/transcript",
        # Another tenant's ids under tenant a: nothing there.
        f"/v1/operator/tenants/{a.id}/calls/{b.calls[0]}",
        f"/v1/operator/tenants/{a.id}/calls/{b.calls[0]}/transcript",
        f"/v1/operator/tenants/{a.id}/deployments/{b.deployments[0]}/agents",
        f"/v1/operator/tenants/{a.id}/calls?deployment_id={b.deployments[0]}",
    ):
        resp = inst.client.get(path, headers=auth(op.token))
        assert resp.status_code == 404, (path, resp.text)
        problem_json(resp)


def test_revoked_key_and_deactivated_operator_are_cut_off(inst: Installation) -> None:
    from callvault import operators  # noqa: PLC0415

    op = _op(inst, OperatorRole.SUPPORT_READONLY)
    assert inst.client.get("/v1/operator/me", headers=auth(op.token)).status_code == 200
    with inst.rt.db.system_tx() as s:
        operators.revoke_operator_key(s, op.key_id)
    assert inst.client.get("/v1/operator/me", headers=auth(op.token)).status_code == 401
    other = _op(inst, OperatorRole.SUPPORT_READONLY)
    with inst.rt.db.system_tx() as s:
        assert operators.deactivate_operator(s, other.id) == [other.key_id]
    assert inst.client.get("/v1/operator/me", headers=auth(other.token)).status_code == 401


def test_operator_routes_do_not_exist_on_the_tenant_openapi_realm(inst: Installation) -> None:
    """Operators are created on the server (CLI), never through the API."""
    paths = inst.client.get("/v1/openapi.json").json()["paths"]
    operator_paths = [p for p in paths if p.startswith("/v1/operator")]
    assert operator_paths
    for p in operator_paths:
        methods = set(paths[p])
        assert not (methods & {"put", "patch", "delete"}), p
    assert not [p for p in paths if "operators" in p]
