"""The key hierarchy in the service: a KEK per deployment, a data key per call or object."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from callvault import calls
from callvault.access import Action, Resource
from callvault.errors import DecryptionError, KeyUnavailableError
from callvault.keys import KeyOwner
from callvault.runtime import Runtime
from callvault.store.models import DataKey, Kek
from tests.support.world import World


def _grant(rt: Runtime, world: World, call_id: str) -> object:
    with rt.db.tenant_tx(world.a.id) as s:
        call = calls.get_call(s, world.a.id, call_id)
    officer = world.a.principals[("compliance_officer", "tenant")]
    from callvault.access import authenticate, parse_token  # noqa: PLC0415 - test-local helper

    with rt.db.tenant_tx(world.a.id) as s:
        principal = authenticate(s, parse_token(world.a.tokens[("compliance_officer", "tenant")]))
    assert principal.id == officer
    return rt.gate.enforce(
        principal,
        Action.TRANSCRIPT_READ,
        Resource.call(call.tenant_id, call.deployment_id, call.agent_id, call.id),
    )


def test_each_deployment_has_its_own_kek(rt: Runtime, world: World) -> None:
    with rt.db.tenant_tx(world.a.id) as s:
        keks = s.execute(select(Kek).where(Kek.state == "active")).scalars().all()
    by_scope = {k.deployment_id: k for k in keks}
    assert set(world.a.deployments) <= set(by_scope)
    refs = [by_scope[d].provider_ref for d in world.a.deployments]
    assert len(set(refs)) == len(refs)
    assert None in by_scope  # the tenant's own KEK for tenant-level settings


def test_call_content_is_sealed_under_one_key_wrapped_by_its_deployments_kek(
    rt: Runtime, world: World
) -> None:
    call_id = world.a.calls[0]
    with rt.db.tenant_tx(world.a.id) as s:
        row = s.execute(
            select(DataKey, Kek)
            .join(Kek, Kek.id == DataKey.kek_id)
            .where(DataKey.owner_kind == "call", DataKey.owner_id == call_id)
        ).one()
    key, kek = row
    assert kek.deployment_id == world.a.deployments[0]
    assert key.deployment_id == world.a.deployments[0]


def test_data_keys_never_reach_disk_in_the_clear(rt: Runtime, world: World) -> None:
    owner = KeyOwner(world.a.id, world.a.deployments[0], "call", world.a.calls[0])
    with rt.db.tenant_tx(world.a.id) as s:
        key = rt.keys.data_key(s, owner, create=False)
    data_dir = Path(rt.settings.data_dir)
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert key not in path.read_bytes(), path.name


def test_shredding_a_calls_key_makes_the_call_unreadable(rt: Runtime, world: World) -> None:
    call_id = world.a.calls[0]
    grant = _grant(rt, world, call_id)
    with rt.db.tenant_tx(world.a.id) as s:
        assert rt.keys.shred(s, world.a.id, "call", call_id) == 1
    with rt.db.tenant_tx(world.a.id) as s:
        call = calls.get_call(s, world.a.id, call_id)
        with pytest.raises(DecryptionError):
            calls.read_transcript(s, rt.sealer, grant, call)  # type: ignore[arg-type]
    # The other call, under another key, still opens.
    other = world.a.calls[1]
    grant2 = _grant(rt, world, other)
    with rt.db.tenant_tx(world.a.id) as s:
        view = calls.read_transcript(s, rt.sealer, grant2, calls.get_call(s, world.a.id, other))  # type: ignore[arg-type]
    assert "31926819" in view.segments[0].segment.text


def test_destroyed_kek_makes_its_deployment_unreadable(rt: Runtime, world: World) -> None:
    dep = world.a.deployments[1]
    with rt.db.tenant_tx(world.a.id) as s:
        kek = s.execute(select(Kek).where(Kek.deployment_id == dep)).scalar_one()
        rt.keys.provider(kek.provider).destroy_kek(kek.provider_ref)
    rt.keys.cache.clear()
    grant = _grant(rt, world, world.a.calls[1])
    with rt.db.tenant_tx(world.a.id) as s:
        call = calls.get_call(s, world.a.id, world.a.calls[1])
        with pytest.raises(KeyUnavailableError, match="local: key lkek_"):
            calls.read_transcript(s, rt.sealer, grant, call)  # type: ignore[arg-type]
