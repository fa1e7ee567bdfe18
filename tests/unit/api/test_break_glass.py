"""Break-glass end to end: request, tenant decision, redacted access to one deployment,
expiry by the clock, revocation; every step in the tenant's audit log with the grant id."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from callvault.operators import OperatorRole
from callvault.store.models import BreakGlassGrant
from tests.support.world import TRANSCRIPT
from tests.unit.api._harness import (
    Installation,
    audit_entries,
    audit_size,
    auth,
    installation,
    problem_json,
)
from tests.unit.operators._support import Op, make_operator, moved_clock

REASON = "caller reports garbled transcript after agent update"
DOB = "twelfth of march"  # in the world's transcripts; redacted views never show it


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    with installation(tmp_path_factory.mktemp("break-glass") / "data") as i:
        yield i


def _engineer(inst: Installation) -> Op:
    return make_operator(inst.rt, f"eng-{uuid.uuid4().hex[:10]}", OperatorRole.SUPPORT_ENGINEER)


def _ask(inst: Installation, op: Op, dep_index: int = 0, **over: Any) -> Any:
    a = inst.world.a
    body = {
        "deployment_id": a.deployments[dep_index],
        "reason": REASON,
        "ticket_ref": "INC-4242",
        "duration_minutes": 60,
        **over,
    }
    return inst.client.post(
        f"/v1/operator/tenants/{a.id}/break-glass", headers=auth(op.token), json=body
    )


def _request(inst: Installation, op: Op, **over: Any) -> str:
    resp = _ask(inst, op, **over)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _admin(inst: Installation) -> dict[str, str]:
    return auth(inst.world.a.tokens[("admin", "tenant")])


def _decide(inst: Installation, grant: str, verb: str, **body: Any) -> Any:
    return inst.client.post(
        f"/v1/tenant/break-glass/{grant}/{verb}", headers=_admin(inst), json=body or None
    )


def _transcript(inst: Installation, op: Op, call: str, view: str | None = None) -> Any:
    a = inst.world.a
    q = f"?view={view}" if view else ""
    return inst.client.get(
        f"/v1/operator/tenants/{a.id}/calls/{call}/transcript{q}", headers=auth(op.token)
    )


def _grants(inst: Installation) -> int:
    with inst.rt.db.system_tx() as s:
        return int(s.execute(select(func.count()).select_from(BreakGlassGrant)).scalar_one())


def test_a_request_changes_nothing_until_approved(inst: Installation) -> None:
    op = _engineer(inst)
    a = inst.world.a
    start = audit_size(inst.rt, a.id)
    grant = _request(inst, op)
    # The tenant is told: an audit entry (which reaches its SIEM sinks) and a pending item.
    entries = audit_entries(inst.rt, a.id, start)
    assert [(e["action"], e["actor"], e["resource"]["id"]) for e in entries] == [
        ("break_glass.request", op.id, grant)
    ]
    assert entries[0]["detail"]["break_glass"] == grant
    assert entries[0]["detail"]["deployment"] == a.deployments[0]
    assert entries[0]["detail"]["ticket"] == "INC-4242"
    assert REASON not in str(entries[0]), "the reason is sealed, never in the log"
    pending = inst.client.get("/v1/tenant/break-glass?status=pending", headers=_admin(inst))
    assert pending.status_code == 200
    mine = [p for p in pending.json() if p["id"] == grant]
    assert len(mine) == 1
    assert mine[0]["reason"] == REASON
    assert mine[0]["operator_id"] == op.id
    assert mine[0]["status"] == "pending"
    # Still no content.
    resp = _transcript(inst, op, a.calls[0])
    assert resp.status_code == 403
    problem_json(resp)


def test_approved_grant_opens_redacted_content_of_that_deployment_only(
    inst: Installation,
) -> None:
    op = _engineer(inst)
    a, b = inst.world.a, inst.world.b
    grant = _request(inst, op)
    approved = _decide(inst, grant, "approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"

    start = audit_size(inst.rt, a.id)
    resp = _transcript(inst, op, a.calls[0])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["view"] == "redacted"
    text = " ".join(s["text"] for s in body["segments"])
    assert DOB not in text
    assert "31926819" not in text
    assert TRANSCRIPT[1]["text"] in text  # the rest is there
    assert body["caller_number"] != "+44 7700 900123"
    # The gate's read entry: the operator, realm operator, the grant id.
    reads = [e for e in audit_entries(inst.rt, a.id, start) if e["outcome"] == "allowed"]
    assert len(reads) == 1
    assert reads[0]["actor"] == op.id
    assert reads[0]["action"] == "transcript:read_redacted"
    assert reads[0]["detail"]["realm"] == "operator"
    assert reads[0]["detail"]["break_glass"] == grant
    assert reads[0]["detail"]["key"] == op.key_id

    # Masked playback too.
    rec = inst.client.get(
        f"/v1/operator/tenants/{a.id}/calls/{a.calls[0]}/recording", headers=auth(op.token)
    )
    assert rec.status_code == 200
    assert rec.headers["x-callvault-view"] == "masked"

    # Never the full views, never another deployment, never another tenant.
    for resp, why in (
        (_transcript(inst, op, a.calls[0], "full"), "full transcript"),
        (
            inst.client.get(
                f"/v1/operator/tenants/{a.id}/calls/{a.calls[0]}/recording?view=full",
                headers=auth(op.token),
            ),
            "full recording",
        ),
        (_transcript(inst, op, a.calls[1]), "deployment 1"),
        (
            inst.client.get(
                f"/v1/operator/tenants/{b.id}/calls/{b.calls[0]}/transcript",
                headers=auth(op.token),
            ),
            "tenant b",
        ),
    ):
        assert resp.status_code == 403, (why, resp.text)
        problem_json(resp)
        assert DOB not in resp.text
    # Another engineer holds nothing from this grant.
    assert _transcript(inst, _engineer(inst), a.calls[0]).status_code == 403


def test_the_grant_ends_by_the_clock_and_its_expiry_is_audited_once(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = _engineer(inst)
    a = inst.world.a
    with moved_clock(monkeypatch) as clock:
        grant = _request(inst, op, duration_minutes=30)
        assert _decide(inst, grant, "approve").status_code == 200
        clock.advance(timedelta(minutes=29))
        assert _transcript(inst, op, a.calls[0]).status_code == 200
        start = audit_size(inst.rt, a.id)
        clock.advance(timedelta(minutes=1, seconds=1))
        resp = _transcript(inst, op, a.calls[0])
        assert resp.status_code == 403
        problem_json(resp)
        assert _transcript(inst, op, a.calls[0]).status_code == 403
        entries = audit_entries(inst.rt, a.id, start)
        expired = [e for e in entries if e["action"] == "break_glass.expire"]
        assert [e["resource"]["id"] for e in expired] == [grant]
        assert expired[0]["detail"]["break_glass"] == grant
        mine = inst.client.get(
            f"/v1/operator/tenants/{a.id}/break-glass", headers=auth(op.token)
        ).json()
        assert [(g["id"], g["status"]) for g in mine] == [(grant, "expired")]


def test_an_undecided_request_lapses(inst: Installation, monkeypatch: pytest.MonkeyPatch) -> None:
    op = _engineer(inst)
    with moved_clock(monkeypatch) as clock:
        grant = _request(inst, op)
        clock.advance(timedelta(hours=25))
        resp = _decide(inst, grant, "approve")
        assert resp.status_code == 409
        problem_json(resp)


@pytest.mark.parametrize("by", ["tenant", "operator"])
def test_revocation_ends_access_at_once(inst: Installation, by: str) -> None:
    op = _engineer(inst)
    a = inst.world.a
    grant = _request(inst, op)
    assert _decide(inst, grant, "approve").status_code == 200
    assert _transcript(inst, op, a.calls[0]).status_code == 200
    start = audit_size(inst.rt, a.id)
    if by == "tenant":
        resp = _decide(inst, grant, "revoke")
        actor = inst.world.a.principals[("admin", "tenant")]
    else:
        resp = inst.client.post(
            f"/v1/operator/tenants/{a.id}/break-glass/{grant}/revoke", headers=auth(op.token)
        )
        actor = op.id
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "revoked"
    assert _transcript(inst, op, a.calls[0]).status_code == 403
    entries = audit_entries(inst.rt, a.id, start)
    revoked = [e for e in entries if e["action"] == "break_glass.revoke"]
    assert [(e["actor"], e["detail"]["break_glass"]) for e in revoked] == [(actor, grant)]
    # Closed is closed.
    assert _decide(inst, grant, "approve").status_code == 409


def test_every_step_is_in_the_tenant_log_with_the_grant_id(inst: Installation) -> None:
    op = _engineer(inst)
    a, b = inst.world.a, inst.world.b
    start_a, start_b = audit_size(inst.rt, a.id), audit_size(inst.rt, b.id)
    grant = _request(inst, op)
    assert _decide(inst, grant, "approve").status_code == 200
    assert _transcript(inst, op, a.calls[0]).status_code == 200
    assert _transcript(inst, op, a.calls[0], "full").status_code == 403
    assert _decide(inst, grant, "revoke").status_code == 200
    denied_grant = _request(inst, op)
    assert _decide(inst, denied_grant, "deny").status_code == 200
    steps = [
        (e["action"], e["outcome"], e["detail"].get("break_glass"))
        for e in audit_entries(inst.rt, a.id, start_a)
        if e["actor"] in (op.id, a.principals[("admin", "tenant")])
    ]
    assert steps == [
        ("break_glass.request", "success", grant),
        ("break_glass.approve", "success", grant),
        ("transcript:read_redacted", "allowed", grant),
        ("transcript:read", "denied", None),
        ("break_glass.revoke", "success", grant),
        ("break_glass.request", "success", denied_grant),
        ("break_glass.deny", "success", denied_grant),
    ]
    assert audit_size(inst.rt, b.id) == start_b


def test_denied_request_grants_nothing(inst: Installation) -> None:
    op = _engineer(inst)
    grant = _request(inst, op)
    assert _decide(inst, grant, "deny").json()["status"] == "denied"
    assert _transcript(inst, op, inst.world.a.calls[0]).status_code == 403
    assert _decide(inst, grant, "approve").status_code == 409


def test_approver_can_shorten_but_never_lengthen_or_move(inst: Installation) -> None:
    op = _engineer(inst)
    grant = _request(inst, op, duration_minutes=60)
    for body, field in (
        ({"duration_minutes": 61}, "duration_minutes"),
        ({"duration_minutes": 241}, "duration_minutes"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"deployment_id": inst.world.a.deployments[1]}, "deployment_id"),
    ):
        resp = _decide(inst, grant, "approve", **body)
        assert resp.status_code == 422, (body, resp.text)
        assert field in problem_json(resp)["errors"][0]["field"]
    ok = _decide(inst, grant, "approve", duration_minutes=15)
    assert ok.status_code == 200
    approved = ok.json()
    lasted = datetime.fromisoformat(approved["expires_at"]) - datetime.fromisoformat(
        approved["decided_at"]
    )
    assert lasted == timedelta(minutes=15)
    assert approved["deployment_id"] == inst.world.a.deployments[0]


@pytest.mark.parametrize(
    ("role", "scope", "status"),
    [
        ("qa_reviewer", "tenant", 403),
        ("compliance_officer", "tenant", 403),
        ("auditor", "tenant", 403),
        ("admin", "dep0", 404),
        ("owner", "tenant", 200),
    ],
)
def test_only_tenant_admins_decide(inst: Installation, role: str, scope: str, status: int) -> None:
    op = _engineer(inst)
    grant = _request(inst, op)
    resp = inst.client.post(
        f"/v1/tenant/break-glass/{grant}/approve",
        headers=auth(inst.world.a.tokens[(role, scope)]),
        json={},
    )
    assert resp.status_code == status, resp.text


def test_another_tenants_admin_cannot_see_or_decide(inst: Installation) -> None:
    op = _engineer(inst)
    grant = _request(inst, op)
    other = auth(inst.world.b.tokens[("admin", "tenant")])
    assert inst.client.get(f"/v1/tenant/break-glass/{grant}", headers=other).status_code == 404
    assert (
        inst.client.post(
            f"/v1/tenant/break-glass/{grant}/approve", headers=other, json={}
        ).status_code
        == 404
    )
    listed = inst.client.get("/v1/tenant/break-glass", headers=other).json()
    assert grant not in {g["id"] for g in listed}


def test_an_operator_cannot_revoke_another_operators_grant(inst: Installation) -> None:
    op, other = _engineer(inst), _engineer(inst)
    grant = _request(inst, op)
    resp = inst.client.post(
        f"/v1/operator/tenants/{inst.world.a.id}/break-glass/{grant}/revoke",
        headers=auth(other.token),
    )
    assert resp.status_code == 404
    problem_json(resp)


@pytest.mark.parametrize(
    ("over", "status", "field"),
    [
        ({"duration_minutes": 241}, 422, "duration_minutes"),
        ({"duration_minutes": 0}, 422, "duration_minutes"),
        ({"duration_minutes": "60"}, 422, "duration_minutes"),
        ({"reason": None}, 422, "reason"),
        ({"reason": "short"}, 422, "reason"),
        ({"ticket_ref": None}, 422, "ticket_ref"),
        ({"ticket_ref": "INC 42; drop"}, 422, "ticket_ref"),
        ({"deployment_id": "not-an-id"}, 422, "deployment_id"),
        ({"deployment_id": "dep_" + "a" * 26}, 404, "deployment_id"),
        ({"tenant": "other"}, 422, "tenant"),
    ],
)
def test_bad_requests_are_clear_4xx_and_create_nothing(
    inst: Installation, over: dict[str, Any], status: int, field: str
) -> None:
    op = _engineer(inst)
    body = {k: v for k, v in over.items() if v is not None}
    missing = [k for k, v in over.items() if v is None]
    before, log = _grants(inst), audit_size(inst.rt, inst.world.a.id)
    a = inst.world.a
    full = {
        "deployment_id": a.deployments[0],
        "reason": REASON,
        "ticket_ref": "INC-4242",
        "duration_minutes": 60,
        **body,
    }
    for k in missing:
        full.pop(k)
    resp = inst.client.post(
        f"/v1/operator/tenants/{a.id}/break-glass", headers=auth(op.token), json=full
    )
    assert resp.status_code == status, resp.text
    problem = problem_json(resp)
    assert field in str(problem.get("errors", problem.get("detail")))
    assert _grants(inst) == before
    assert audit_size(inst.rt, a.id) == log


def test_another_tenants_deployment_or_an_unknown_tenant_is_404(inst: Installation) -> None:
    op = _engineer(inst)
    a, b = inst.world.a, inst.world.b
    before = _grants(inst)
    body = {"reason": REASON, "ticket_ref": "INC-1", "duration_minutes": 10}
    for tenant, dep in ((a.id, b.deployments[0]), ("ten_" + "z" * 26, a.deployments[0])):
        resp = inst.client.post(
            f"/v1/operator/tenants/{tenant}/break-glass",
            headers=auth(op.token),
            json={"deployment_id": dep, **body},
        )
        assert resp.status_code == 404, resp.text
        problem_json(resp)
    assert _grants(inst) == before
