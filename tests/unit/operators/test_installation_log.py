"""The installation audit log (docs/adr/0017): the operator realm's own tamper-evident history.

Every lifecycle change, refused operator key and break-glass step is an entry
(ids, roles, reason codes; never a secret); a change does not happen if its
entry cannot be written; the log exports as an ordinary audit bundle that the
unchanged ``callvault audit verify`` checks (and catches an edited entry); and
no tenant route, token, export or log ever reaches it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from callvault.audit._export import export_bundle
from callvault.audit.bundle import verify_bundle
from callvault.cli import app as cli
from callvault.config import Settings
from callvault.errors import AuditUnavailableError, InvalidInputError
from callvault.operators import (
    AUTH_FAILURE_REASONS,
    INSTALLATION_LOG,
    OperatorRole,
    _admin,
    _installation_log,
)
from callvault.runtime import Runtime
from callvault.store import is_id, new_id
from callvault.store.models import BreakGlassGrant, Operator, OperatorKey, Principal, utcnow
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
DOB = "twelfth of march"
#: Actions only the installation log holds.
INSTALLATION_ONLY = (
    "operator.create",
    "operator.role_change",
    "operator.deactivate",
    "operator.activate",
    "operator.key.issue",
    "operator.key.revoke",
    "authn.operator_key",
    "break_glass.use",
)
runner = CliRunner()


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    with installation(tmp_path_factory.mktemp("installation-log") / "data") as i:
        yield i


def _log(rt: Runtime, start: int = 0) -> list[dict[str, Any]]:
    return audit_entries(rt, INSTALLATION_LOG, start)


def _raw(rt: Runtime) -> bytes:
    with rt.db.tenant_tx(INSTALLATION_LOG) as s:
        return b"\n".join(e for _, e in rt.audit.read(s, INSTALLATION_LOG, start=0, limit=10**6))


def _size(rt: Runtime) -> int:
    return audit_size(rt, INSTALLATION_LOG)


def _engineer(inst: Installation) -> Op:
    return make_operator(inst.rt, f"eng-{uuid.uuid4().hex[:10]}", OperatorRole.SUPPORT_ENGINEER)


def _secret(token: str) -> str:
    return token.rsplit(".", 1)[1]


# -- lifecycle -----------------------------------------------------------------------------------


def test_every_lifecycle_change_is_an_entry_with_ids_and_roles_only(inst: Installation) -> None:
    rt = inst.rt
    start = _size(rt)
    name = f"lifecycle-{uuid.uuid4().hex[:8]}"
    made = _admin.create(
        rt, name=name, role=OperatorRole.SUPPORT_READONLY, key_ttl=timedelta(days=1), actor="cli:t"
    )
    second = _admin.issue_key(rt, made.id, ttl=timedelta(days=2), actor="cli:t")
    before = _admin.set_role(rt, made.id, OperatorRole.SUPPORT_ENGINEER, actor="cli:t")
    assert before == "support_readonly"
    assert _admin.revoke_key(rt, second.id, actor="cli:t") is True
    assert _admin.revoke_key(rt, second.id, actor="cli:t") is False
    assert _admin.deactivate(rt, made.id, actor="cli:t") == [made.key.id]
    assert _admin.activate(rt, made.id, actor="cli:t") is True

    entries = _log(rt, start)
    assert [(e["action"], e["resource"]["kind"], e["resource"]["id"]) for e in entries] == [
        ("operator.create", "operator", made.id),
        ("operator.key.issue", "operator_key", made.key.id),
        ("operator.key.issue", "operator_key", second.id),
        ("operator.role_change", "operator", made.id),
        ("operator.key.revoke", "operator_key", second.id),
        ("operator.key.revoke", "operator_key", second.id),
        ("operator.deactivate", "operator", made.id),
        ("operator.activate", "operator", made.id),
    ]
    for e in entries:
        assert e["tenant"] == INSTALLATION_LOG
        assert e["actor"] == "cli:t"
        assert e["outcome"] == "success"
        assert e["detail"]["realm"] == "operator"
    details = [e["detail"] for e in entries]
    assert details[0]["role"] == "support_readonly"
    assert details[1]["operator"] == made.id
    assert (details[3]["role_from"], details[3]["role_to"]) == (
        "support_readonly",
        "support_engineer",
    )
    assert [details[4]["already_revoked"], details[5]["already_revoked"]] == [False, True]
    assert details[6]["keys_revoked"] == [made.key.id]
    assert details[7]["was_disabled"] is True
    raw = _raw(rt)
    for secret in (made.key.token, second.token, _secret(made.key.token), _secret(second.token)):
        assert secret.encode() not in raw
    assert name.encode() not in raw, "an operator's name (a person's handle) stays out"
    with rt.db.system_tx() as s:
        row = s.get(Operator, made.id)
        assert row is not None
        assert (row.role, row.active) == ("support_engineer", True)


# -- authentication failures --------------------------------------------------------------------


def _refused_token(inst: Installation, reason: str) -> tuple[str, str, str | None]:
    """A well-formed operator key refused for ``reason``: (token, key id, operator id)."""
    op = make_operator(inst.rt, f"authn-{uuid.uuid4().hex[:10]}", OperatorRole.SUPPORT_READONLY)
    token, operator_id = op.token, op.id
    with inst.rt.db.system_tx() as s:
        key = s.get(OperatorKey, op.key_id)
        operator = s.get(Operator, op.id)
        assert key is not None
        assert operator is not None
        if reason == "unknown-key":
            token, operator_id = f"cvop1.opk_{'z' * 26}.{_secret(op.token)}", None
        elif reason == "bad-secret":
            token = op.token[:-4] + ("AAAA" if not op.token.endswith("AAAA") else "BBBB")
        elif reason == "revoked-key":
            key.revoked_at = utcnow()
        elif reason == "expired-key":
            key.expires_at = utcnow() - timedelta(seconds=1)
        elif reason == "operator-disabled":
            operator.active = False
        elif reason == "unknown-role":
            operator.role = "root"
    key_id = token.split(".")[1]
    return token, key_id, operator_id


@pytest.mark.parametrize("reason", AUTH_FAILURE_REASONS)
def test_each_refused_operator_key_is_an_entry_with_its_reason(
    inst: Installation, reason: str
) -> None:
    token, key_id, operator_id = _refused_token(inst, reason)
    start = _size(inst.rt)
    resp = inst.client.get("/v1/operator/me", headers=auth(token))
    assert resp.status_code == 401, resp.text
    assert problem_json(resp)["detail"] == "invalid operator key"  # the same for every reason
    [entry] = _log(inst.rt, start)
    assert entry["action"] == "authn.operator_key"
    assert entry["outcome"] == "failure"
    assert entry["actor"] == "anonymous"
    assert entry["resource"] == {"kind": "operator_key", "id": key_id}
    assert entry["request_id"]
    assert entry["detail"]["reason"] == reason
    assert entry["detail"].get("operator") == operator_id
    assert _secret(token).encode() not in _raw(inst.rt)


def test_a_malformed_or_missing_token_is_refused_without_an_entry(inst: Installation) -> None:
    start = _size(inst.rt)
    for header in ({}, auth("cvop1.garbage"), auth(f"cv1.{INSTALLATION_LOG}.key_x.y")):
        assert inst.client.get("/v1/operator/me", headers=header).status_code == 401
    assert _size(inst.rt) == start


def test_a_good_key_adds_nothing_to_the_installation_log(inst: Installation) -> None:
    op = _engineer(inst)
    start = _size(inst.rt)
    assert inst.client.get("/v1/operator/me", headers=auth(op.token)).status_code == 200
    assert _size(inst.rt) == start


# -- break-glass mirrors --------------------------------------------------------------------------


def _ask(inst: Installation, op: Op, dep: int = 0) -> str:
    a = inst.world.a
    resp = inst.client.post(
        f"/v1/operator/tenants/{a.id}/break-glass",
        headers=auth(op.token),
        json={
            "deployment_id": a.deployments[dep],
            "reason": REASON,
            "ticket_ref": "INC-17",
            "duration_minutes": 30,
        },
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _decide(inst: Installation, grant: str, verb: str) -> Any:
    admin = auth(inst.world.a.tokens[("admin", "tenant")])
    return inst.client.post(f"/v1/tenant/break-glass/{grant}/{verb}", headers=admin)


def _transcript(inst: Installation, op: Op) -> Any:
    a = inst.world.a
    return inst.client.get(
        f"/v1/operator/tenants/{a.id}/calls/{a.calls[0]}/transcript", headers=auth(op.token)
    )


def _mirrors(inst: Installation, start: int, grant: str) -> list[dict[str, Any]]:
    return [e for e in _log(inst.rt, start) if e["detail"].get("break_glass") == grant]


def test_every_break_glass_step_is_mirrored_and_the_tenant_entry_stays_as_it_was(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = inst.world.a
    op = _engineer(inst)
    start, tenant_start = _size(inst.rt), audit_size(inst.rt, a.id)
    used = _ask(inst, op)
    assert _decide(inst, used, "approve").status_code == 200
    read = _transcript(inst, op)
    assert read.status_code == 200, read.text
    assert _decide(inst, used, "revoke").status_code == 200
    denied = _ask(inst, op, dep=1)
    assert _decide(inst, denied, "deny").status_code == 200
    lapsed = _ask(inst, op)
    assert _decide(inst, lapsed, "approve").status_code == 200
    with moved_clock(monkeypatch) as clock:
        clock.advance(timedelta(minutes=31))
        listed = inst.client.get(f"/v1/operator/tenants/{a.id}/break-glass", headers=auth(op.token))
        assert listed.status_code == 200

    steps = {
        grant: [(e["action"], e["outcome"], e["actor"]) for e in _mirrors(inst, start, grant)]
        for grant in (used, denied, lapsed)
    }
    assert steps[used] == [
        ("break_glass.request", "success", op.id),
        ("break_glass.approve", "success", a.principals[("admin", "tenant")]),
        ("break_glass.use", "allowed", op.id),
        ("break_glass.revoke", "success", a.principals[("admin", "tenant")]),
    ]
    assert steps[denied] == [
        ("break_glass.request", "success", op.id),
        ("break_glass.deny", "success", a.principals[("admin", "tenant")]),
    ]
    assert steps[lapsed] == [
        ("break_glass.request", "success", op.id),
        ("break_glass.approve", "success", a.principals[("admin", "tenant")]),
        ("break_glass.expire", "success", "system:break-glass"),
    ]
    # Each mirror names the tenant and the request, and is otherwise the tenant's entry.
    tenant_entries = {
        (e["action"], e["resource"]["id"]): e
        for e in audit_entries(inst.rt, a.id, tenant_start)
        if e["action"].startswith("break_glass.")
    }
    for grant in (used, denied, lapsed):
        for m in _mirrors(inst, start, grant):
            assert m["tenant"] == INSTALLATION_LOG
            assert m["detail"]["tenant"] == a.id
            assert m["resource"] == {"kind": "break_glass", "id": grant}
            if m["action"] == "break_glass.use":
                assert m["detail"]["call"] == a.calls[0]
                assert m["detail"]["read"] == "transcript:read_redacted"
                continue
            mine = tenant_entries[(m["action"], grant)]
            assert "tenant" not in mine["detail"], "the tenant's entry is unchanged"
            assert {k: v for k, v in m["detail"].items() if k != "tenant"} == mine["detail"]
            assert (m["actor"], m["request_id"]) == (mine["actor"], mine["request_id"])
    raw = _raw(inst.rt)
    assert REASON.encode() not in raw, "the reason is sealed in the tenant, never logged"
    assert DOB.encode() not in raw


# -- fail closed -------------------------------------------------------------------------------


def _triggers(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        return {str(r[0]) for r in rows}


@pytest.fixture
def log_down(inst: Installation) -> Iterator[None]:
    """Every insert into the installation log aborts (tenants' logs still work)."""
    engine = inst.rt.db.engine
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TRIGGER IF NOT EXISTS installation_log_down BEFORE INSERT ON audit_entries"
                f" WHEN NEW.tenant_id = '{INSTALLATION_LOG}'"
                " BEGIN SELECT RAISE(ABORT, 'installation log down'); END"
            )
        )
    assert "installation_log_down" in _triggers(engine)
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS installation_log_down"))
        assert "installation_log_down" not in _triggers(engine)


def _realm_rows(rt: Runtime) -> list[tuple[Any, ...]]:
    with rt.db.system_tx() as s:
        ops = s.execute(select(Operator.id, Operator.role, Operator.active)).all()
        keys = s.execute(select(OperatorKey.id, OperatorKey.revoked_at)).all()
    return sorted(tuple(r) for r in ops) + sorted(tuple(r) for r in keys)


@pytest.mark.usefixtures("log_down")
def test_no_lifecycle_change_happens_when_its_entry_cannot_be_written(
    inst: Installation,
) -> None:
    rt = inst.rt
    op = _engineer(inst)
    before, size = _realm_rows(rt), _size(rt)
    changes = [
        lambda: _admin.create(
            rt,
            name="never-made",
            role=OperatorRole.SUPPORT_READONLY,
            key_ttl=timedelta(days=1),
            actor="cli:t",
        ),
        lambda: _admin.issue_key(rt, op.id, ttl=timedelta(days=1), actor="cli:t"),
        lambda: _admin.revoke_key(rt, op.key_id, actor="cli:t"),
        lambda: _admin.set_role(rt, op.id, OperatorRole.SUPPORT_READONLY, actor="cli:t"),
        lambda: _admin.deactivate(rt, op.id, actor="cli:t"),
        lambda: _admin.activate(rt, op.id, actor="cli:t"),
    ]
    for change in changes:
        with pytest.raises(AuditUnavailableError):
            change()
        assert _realm_rows(rt) == before
    assert _size(rt) == size
    # The operator's key still works: nothing was revoked behind the log's back.
    assert inst.client.get("/v1/operator/me", headers=auth(op.token)).status_code == 200


@pytest.mark.usefixtures("log_down")
def test_an_unauditable_failed_sign_in_still_fails_with_503(inst: Installation) -> None:
    token, _key, _op = _refused_token(inst, "bad-secret")
    resp = inst.client.get("/v1/operator/me", headers=auth(token))
    assert resp.status_code == 503, resp.text
    assert problem_json(resp)["status"] == 503


def _grants(inst: Installation) -> list[tuple[str, str]]:
    with inst.rt.db.tenant_tx(inst.world.a.id) as s:
        return sorted((r.id, r.status) for r in s.execute(select(BreakGlassGrant)).scalars().all())


def test_no_break_glass_step_happens_when_its_mirror_cannot_be_written(
    inst: Installation, request: pytest.FixtureRequest
) -> None:
    a = inst.world.a
    op = _engineer(inst)
    pending = _ask(inst, op)
    live = _ask(inst, op)
    assert _decide(inst, live, "approve").status_code == 200
    before, tenant_size, size = _grants(inst), audit_size(inst.rt, a.id), _size(inst.rt)
    request.getfixturevalue("log_down")
    body = {
        "deployment_id": a.deployments[0],
        "reason": REASON,
        "ticket_ref": "INC-18",
        "duration_minutes": 30,
    }
    refused = [
        inst.client.post(
            f"/v1/operator/tenants/{a.id}/break-glass", headers=auth(op.token), json=body
        ),
        _decide(inst, pending, "approve"),
        _decide(inst, pending, "deny"),
        _decide(inst, live, "revoke"),
        inst.client.post(
            f"/v1/operator/tenants/{a.id}/break-glass/{pending}/revoke", headers=auth(op.token)
        ),
    ]
    for resp in refused:
        assert resp.status_code == 503, resp.text
        problem_json(resp)
    # A read under the live grant: the gate's tenant entry commits, but no content leaves
    # without its installation mirror.
    read = _transcript(inst, op)
    assert read.status_code == 503, read.text
    assert DOB not in read.text
    assert "segments" not in read.text
    assert _grants(inst) == before
    assert _size(inst.rt) == size
    tenant_steps = [
        e["action"]
        for e in audit_entries(inst.rt, a.id, tenant_size)
        if e["action"].startswith("break_glass.")
    ]
    assert tenant_steps == [], "no tenant entry for a step that did not happen"


# -- export, verify, tamper ------------------------------------------------------------------------


def test_the_installation_log_exports_as_a_bundle_the_unchanged_verifier_checks(
    inst: Installation, tmp_path: Path
) -> None:
    rt = inst.rt
    _engineer(inst)  # something to export besides the export itself
    _admin.create(
        rt,
        name=f"export-{uuid.uuid4().hex[:8]}",
        role=OperatorRole.SUPPORT_READONLY,
        key_ttl=timedelta(days=1),
        actor="cli:t",
    )
    key = _installation_log.log_key(rt)
    assert key.startswith(f"{rt.settings.audit_origin_prefix}/{INSTALLATION_LOG}+")
    pinned = _installation_log.checkpoint(rt)
    summary = _installation_log.export(rt, tmp_path / "bundle", actor="cli:t")
    assert summary.origin == f"{rt.settings.audit_origin_prefix}/{INSTALLATION_LOG}"
    verdict = verify_bundle(tmp_path / "bundle", trusted_key=key, trusted_checkpoint=pinned)
    assert verdict.ok, verdict.lines()
    lines = (tmp_path / "bundle" / "entries.ndjson").read_bytes().splitlines()
    assert json.loads(lines[-1])["entry"]["action"] == "audit.export"
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["tenant"] == INSTALLATION_LOG
    # One entry edited: caught.
    entries = tmp_path / "bundle" / "entries.ndjson"
    data = entries.read_bytes()
    assert b'"support_readonly"' in data
    entries.write_bytes(data.replace(b'"support_readonly"', b'"support_engineer"', 1))
    tampered = verify_bundle(tmp_path / "bundle", trusted_key=key)
    assert not tampered.ok
    assert any("root-mismatch" in line for line in tampered.lines())


# -- the CLI -------------------------------------------------------------------------------------


def test_cli_changes_are_logged_and_the_log_exports_and_verifies(
    rt: Runtime, settings: Settings, tmp_path: Path
) -> None:
    env = {"CALLVAULT_DATA_DIR": str(settings.data_dir)}

    def run(*args: str) -> Any:
        return runner.invoke(cli, ["operators", *args], env=env)

    created = run("create", "--name", "gina", "--role", "support_readonly")
    assert created.exit_code == 0, created.output
    operator_id = next(w for w in created.stdout.split() if w.startswith("opr_"))
    assert run("set-role", operator_id, "--role", "support_engineer").exit_code == 0
    issued = run("issue-key", operator_id)
    assert issued.exit_code == 0, issued.output
    key_id = next(w for w in issued.stdout.split() if w.startswith("opk_"))
    assert run("revoke-key", key_id).exit_code == 0
    assert run("deactivate", operator_id).exit_code == 0
    assert run("activate", operator_id).exit_code == 0
    actions = [e["action"] for e in _log(rt)]
    assert actions == [
        "operator.create",
        "operator.key.issue",
        "operator.role_change",
        "operator.key.issue",
        "operator.key.revoke",
        "operator.deactivate",
        "operator.activate",
    ]
    assert {e["actor"] for e in _log(rt)} == {_log(rt)[0]["actor"]}
    assert _log(rt)[0]["actor"].startswith("cli:")

    key = run("audit", "log-key")
    assert key.exit_code == 0, key.output
    pinned = key.stdout.strip()
    assert pinned.startswith(f"callvault.localhost/audit/{INSTALLATION_LOG}+")
    checkpoint = run("audit", "checkpoint")
    assert checkpoint.exit_code == 0, checkpoint.output
    assert checkpoint.stdout.startswith(f"callvault.localhost/audit/{INSTALLATION_LOG}\n")
    (tmp_path / "pinned.txt").write_text(checkpoint.stdout)
    out = tmp_path / "bundle"
    exported = run("audit", "export", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    assert "callvault audit verify" in exported.stdout
    ok = runner.invoke(
        cli,
        [
            "audit",
            "verify",
            str(out),
            "--trusted-key",
            pinned,
            "--trusted-checkpoint",
            str(tmp_path / "pinned.txt"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("OK:")
    data = (out / "entries.ndjson").read_bytes()
    (out / "entries.ndjson").write_bytes(
        data.replace(b'"operator.activate"', b'"operator.activatE"')
    )
    bad = runner.invoke(cli, ["audit", "verify", str(out), "--trusted-key", pinned])
    assert bad.exit_code == 1
    assert "FAILED" in bad.stdout
    assert "Traceback" not in bad.output


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["audit", "export", "--out", "{full}"], 64),
        (["audit", "export", "--out", "{missing}/deeper/bundle"], 64),
        (["audit", "export", "--out", "{file}"], 64),
        (["set-role", "opr_" + "q" * 26, "--role", "support_readonly"], 66),
        (["activate", "opr_" + "q" * 26], 66),
        (["issue-key", "opr_" + "q" * 26], 66),
        (["set-role", "opr_" + "q" * 26, "--role", "owner"], 2),
    ],
)
def test_cli_bad_input_is_one_line_and_a_nonzero_exit(
    rt: Runtime, settings: Settings, tmp_path: Path, args: list[str], code: int
) -> None:
    env = {"CALLVAULT_DATA_DIR": str(settings.data_dir)}
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "file").write_text("x")
    paths = {k: str(tmp_path / k) for k in ("full", "missing", "file")}
    result = runner.invoke(cli, ["operators", *[a.format(**paths) for a in args]], env=env)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    if code != 2:  # usage errors are typer's own box
        assert len(result.stderr.strip().splitlines()) == 1
    assert _size(rt) == 0, "refused input is not an audited change"
    assert (tmp_path / "full" / "x").read_text() == "x"


def test_cli_change_is_refused_when_the_log_is_unwritable(rt: Runtime, settings: Settings) -> None:
    with rt.db.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TRIGGER IF NOT EXISTS installation_log_down BEFORE INSERT ON audit_entries"
                " BEGIN SELECT RAISE(ABORT, 'installation log down'); END"
            )
        )
    env = {"CALLVAULT_DATA_DIR": str(settings.data_dir)}
    result = runner.invoke(
        cli, ["operators", "create", "--name", "hal", "--role", "support_readonly"], env=env
    )
    assert result.exit_code == 69, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cvop1." not in result.output
    with rt.db.system_tx() as s:
        assert s.execute(select(func.count()).select_from(Operator)).scalar_one() == 0


# -- never a tenant's ---------------------------------------------------------------------------


def test_the_reserved_id_is_no_id_and_sorts_before_every_tenant() -> None:
    assert not is_id(INSTALLATION_LOG)
    # The group committer locks logs in id order; a break-glass step locks the installation
    # log first, then the tenant's: the same order, so the two never deadlock.
    assert new_id("ten") > INSTALLATION_LOG


def test_no_tenant_route_token_or_export_reaches_the_installation_log(
    inst: Installation, tmp_path: Path
) -> None:
    rt, a = inst.rt, inst.world.a
    _installation_log.log_key(rt)  # the log exists
    op = _engineer(inst)
    grant = _ask(inst, op)  # and holds a mirror of tenant a's break-glass request
    assert any(e["detail"].get("break_glass") == grant for e in _log(rt))
    start = _size(rt)
    # Operator routes: the id is not an id (422); the tenant listing leaves it out.
    resp = inst.client.get(f"/v1/operator/tenants/{INSTALLATION_LOG}", headers=auth(op.token))
    assert resp.status_code == 422, resp.text
    listed = inst.client.get("/v1/operator/tenants", headers=auth(op.token)).json()
    assert INSTALLATION_LOG not in {t["id"] for t in listed}
    assert {a.id, inst.world.b.id} <= {t["id"] for t in listed}
    # Tenant credentials cannot name it, SSO and SCIM paths neither.
    fake = "A" * 43
    for path, token in (
        ("/v1/audit/entries", f"cv1.{INSTALLATION_LOG}.key_{'a' * 26}.{fake}"),
        (f"/scim/v2/{INSTALLATION_LOG}/Users", f"cvscim1.{INSTALLATION_LOG}.sct_{'a' * 26}.{fake}"),
        (f"/sso/{INSTALLATION_LOG}/sso_{'a' * 26}/login", None),
    ):
        resp = inst.client.get(path, headers=auth(token) if token else {})
        assert resp.status_code in (401, 404), (path, resp.text)
    # A tenant's own audit routes show its own log only.
    owner = auth(a.owner_token)
    key = inst.client.get("/v1/audit/log-key", headers=owner).json()
    assert key["origin"].endswith(f"/{a.id}")
    entries: list[dict[str, Any]] = []
    while True:
        page = inst.client.get(
            f"/v1/audit/entries?start={len(entries)}&limit=1000", headers=owner
        ).json()
        entries += [e["entry"] for e in page["entries"]]
        if len(entries) >= page["size"]:
            break
    assert {e["tenant"] for e in entries} == {a.id}
    assert not [e for e in entries if e["action"] in INSTALLATION_ONLY]
    assert not [e for e in entries if e["detail"].get("tenant")]
    # The tenant export refuses the reserved id (the CLI says so in one line).
    with pytest.raises(InvalidInputError, match="operators audit export"):
        export_bundle(rt.db, rt.audit, INSTALLATION_LOG, tmp_path / "b", actor="cli:t")
    assert not (tmp_path / "b").exists()
    assert _size(rt) == start


def _insert(tx: AbstractContextManager[Session], row: object) -> None:
    with tx as s:
        s.add(row)
        s.flush()


def test_the_installation_row_can_never_hold_a_principal(inst: Installation) -> None:
    _installation_log.log_key(inst.rt)  # the row exists
    intruder = Principal(
        id=new_id("prn"),
        tenant_id=INSTALLATION_LOG,
        kind="user",
        name="intruder",
        active=True,
        created_at=utcnow(),
    )
    with pytest.raises(DBAPIError, match="holds no principals"):
        _insert(inst.rt.db.tenant_tx(INSTALLATION_LOG), intruder)
    with inst.rt.db.system_tx() as s:
        found = s.execute(select(Principal).where(Principal.tenant_id == INSTALLATION_LOG))
        assert found.first() is None


def test_the_tenant_cli_export_refuses_the_installation_log(
    rt: Runtime, settings: Settings, tmp_path: Path
) -> None:
    env = {"CALLVAULT_DATA_DIR": str(settings.data_dir)}
    result = runner.invoke(
        cli,
        ["audit", "export", "--tenant", INSTALLATION_LOG, "--out", str(tmp_path / "b")],
        env=env,
    )
    assert result.exit_code == 65, result.output
    assert "callvault operators audit export" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()
