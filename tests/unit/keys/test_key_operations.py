"""Operator key operations: rotation (resumable, rewrap only), shredding, destruction."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from callvault import calls
from callvault.access import Action, Resource, authenticate, parse_token
from callvault.access.gate import Grant
from callvault.cli import app
from callvault.errors import DecryptionError, KeyUnavailableError
from callvault.keys import rotate
from callvault.keys._local import LocalKeyProvider
from callvault.runtime import Runtime
from callvault.store.models import DataKey, Kek, TranscriptSegment
from tests.support.world import World

runner = CliRunner()


def _env(rt: Runtime) -> dict[str, str]:
    return {"CALLVAULT_DATA_DIR": str(rt.settings.data_dir)}


def _read(rt: Runtime, world: World, index: int) -> str:
    token = world.a.tokens[("compliance_officer", "tenant")]
    with rt.db.tenant_tx(world.a.id) as s:
        principal = authenticate(s, parse_token(token))
        call = calls.get_call(s, world.a.id, world.a.calls[index])
    grant: Grant = rt.gate.enforce(
        principal,
        Action.TRANSCRIPT_READ,
        Resource.call(call.tenant_id, call.deployment_id, call.agent_id, call.id),
    )
    with rt.db.tenant_tx(world.a.id) as s:
        call = calls.get_call(s, world.a.id, world.a.calls[index])
        return calls.read_transcript(s, rt.sealer, grant, call).segments[0].segment.text


def _keks(rt: Runtime, world: World, dep: str) -> dict[int, str]:
    with rt.db.tenant_tx(world.a.id) as s:
        rows = s.execute(select(Kek).where(Kek.deployment_id == dep)).scalars().all()
        return {k.version: k.state for k in rows}


def _audit_actions(rt: Runtime, tenant: str) -> list[str]:
    with rt.db.tenant_tx(tenant) as s:
        return [json.loads(e)["action"] for _, e in rt.audit.read(s, tenant, start=0, limit=10_000)]


def test_rotation_rewraps_key_records_not_data(rt: Runtime, world: World) -> None:
    dep = world.a.deployments[0]
    with rt.db.tenant_tx(world.a.id) as s:
        sealed_before = [r.sealed for r in s.execute(select(TranscriptSegment)).scalars()]
    result = rotate(rt.db, rt.keys, rt.audit, world.a.id, dep, actor="test")
    assert result.new_version == 2
    assert result.rewrapped >= 2  # the deployment's config versions and its call
    assert _keks(rt, world, dep) == {1: "retired", 2: "active"}
    with rt.db.tenant_tx(world.a.id) as s:
        sealed_after = [r.sealed for r in s.execute(select(TranscriptSegment)).scalars()]
        on_old = s.execute(
            select(DataKey).join(Kek, Kek.id == DataKey.kek_id).where(Kek.state != "active")
        ).all()
    assert sealed_after == sealed_before  # the data itself was not touched
    assert on_old == []
    rt.keys.cache.clear()
    assert "31926819" in _read(rt, world, 0)
    actions = _audit_actions(rt, world.a.id)
    assert "keys.rotate.start" in actions
    assert "keys.rotate.finish" in actions


def test_interrupted_rotation_resumes_without_a_new_version(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep = world.a.deployments[0]
    original = LocalKeyProvider._rewrap
    calls_made = {"n": 0}

    def flaky(self: LocalKeyProvider, *args: object) -> bytes:
        calls_made["n"] += 1
        if calls_made["n"] > 1:
            raise KeyUnavailableError("local: simulated outage")
        return original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalKeyProvider, "_rewrap", flaky)
    with pytest.raises(KeyUnavailableError):
        rotate(rt.db, rt.keys, rt.audit, world.a.id, dep, actor="test", batch=1)
    assert _keks(rt, world, dep) == {1: "retiring", 2: "active"}
    rt.keys.cache.clear()
    assert "31926819" in _read(rt, world, 0)  # half-rotated data still opens
    monkeypatch.setattr(LocalKeyProvider, "_rewrap", original)
    result = rotate(rt.db, rt.keys, rt.audit, world.a.id, dep, actor="test", batch=1)
    assert result.new_version == 2
    assert _keks(rt, world, dep) == {1: "retired", 2: "active"}


def test_cli_rotate_prints_the_new_version(rt: Runtime, world: World) -> None:
    dep = world.a.deployments[1]
    result = runner.invoke(app, ["keys", "rotate", "--deployment", dep], env=_env(rt))
    assert result.exit_code == 0, result.output
    assert "KEK version 2 active" in result.stdout


def test_cli_shred_makes_the_call_unreadable_and_is_audited(rt: Runtime, world: World) -> None:
    call = world.a.calls[0]
    refused = runner.invoke(app, ["keys", "shred", "--call", call], env=_env(rt))
    assert refused.exit_code == 64
    assert "--yes" in refused.stderr
    done = runner.invoke(app, ["keys", "shred", "--call", call, "--yes"], env=_env(rt))
    assert done.exit_code == 0, done.output
    rt.keys.cache.clear()
    with pytest.raises(DecryptionError):
        _read(rt, world, 0)
    assert "31926819" in _read(rt, world, 1)
    assert "keys.shred" in _audit_actions(rt, world.a.id)
    again = runner.invoke(app, ["keys", "shred", "--call", call, "--yes"], env=_env(rt))
    assert again.exit_code == 66


def test_cli_destroy_makes_the_deployment_unrecoverable(rt: Runtime, world: World) -> None:
    dep = world.a.deployments[1]
    done = runner.invoke(app, ["keys", "destroy", "--deployment", dep, "--yes"], env=_env(rt))
    assert done.exit_code == 0, done.output
    assert set(_keks(rt, world, dep).values()) == {"destroyed"}
    rt.keys.cache.clear()
    with pytest.raises((DecryptionError, KeyUnavailableError)):
        _read(rt, world, 1)
    assert "31926819" in _read(rt, world, 0)  # the other deployment is untouched
    assert "keys.destroy" in _audit_actions(rt, world.a.id)


def test_unknown_deployment_is_one_line(rt: Runtime) -> None:
    result = runner.invoke(app, ["keys", "rotate", "--deployment", "dep_" + "z" * 26], env=_env(rt))
    assert result.exit_code == 66
    assert len(result.stderr.strip().splitlines()) == 1
