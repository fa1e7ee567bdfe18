"""Versioned configuration: immutable, content-addressed, sealed, revertible."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import rfc8785
from sqlalchemy import func, select

from callvault import tenancy
from callvault.crypto import SealContext
from callvault.errors import ConflictError, DecryptionError, InvalidInputError
from callvault.runtime import Runtime
from callvault.store.models import Agent, ConfigVersion
from callvault.tenancy import versions_of
from tests.support.world import PROMPT, World

ACTOR = tenancy.Change(actor_id="prn_" + "t" * 26)


def test_version_id_is_the_sha256_of_its_canonical_document(rt: Runtime, world: World) -> None:
    with rt.db.tenant_tx(world.a.id) as s:
        agent = tenancy.get_agent(s, world.a.id, world.a.agents[0])
        row = s.get_one(ConfigVersion, agent.current_version_id)
        ctx_doc = rt.sealer.open(
            s,
            row.sealed,
            SealContext(
                tenant_id=world.a.id,
                deployment_id=agent.deployment_id,
                purpose="config-version",
                object_id=row.id,
                owner_kind="config-version",
            ),
        )
    doc = json.loads(ctx_doc)
    assert rfc8785.dumps(doc) == ctx_doc  # stored canonical
    assert hashlib.sha256(ctx_doc).hexdigest() == row.id
    assert doc["subject"] == {"kind": "agent", "id": world.a.agents[0]}
    assert doc["content"]["prompt"] == PROMPT
    assert len(doc["salt"]) == 32


def test_prompt_is_not_stored_in_plain_anywhere(rt: Runtime, world: World) -> None:
    raw = rt.db.engine.url.database
    assert raw is not None
    for path in Path(raw).parent.glob("callvault.db*"):  # the database and its WAL
        assert PROMPT.encode() not in path.read_bytes()


def test_update_then_revert_restores_content_as_a_new_version(rt: Runtime, world: World) -> None:
    with rt.db.tenant_tx(world.a.id) as s:
        agent = tenancy.get_agent(s, world.a.id, world.a.agents[0])
        first = agent.current_version_id
        assert first is not None
        tenancy.update(s, rt.sealer, rt.audit, agent, {"prompt": "new prompt"}, ACTOR)
        second = agent.current_version_id
        info = tenancy.revert(s, rt.sealer, rt.audit, agent, first, ACTOR)
        chain = versions_of(s, agent)
        assert [v.op for v in chain] == ["create", "update", "revert"]
        assert [v.parent_id for v in chain] == [None, first, second]
        assert info.id not in {first, second}
        assert tenancy.version_content(s, rt.sealer, agent, info.id) == tenancy.version_content(
            s, rt.sealer, agent, first
        )
        assert tenancy.diff(
            tenancy.version_content(s, rt.sealer, agent, first),
            tenancy.version_content(s, rt.sealer, agent, second),
        ) == [{"op": "replace", "path": "/prompt", "value": "new prompt"}]


def test_update_that_changes_nothing_writes_no_version(rt: Runtime, world: World) -> None:
    with rt.db.tenant_tx(world.a.id) as s:
        agent = tenancy.get_agent(s, world.a.id, world.a.agents[0])
        before = len(versions_of(s, agent))
        assert tenancy.update(s, rt.sealer, rt.audit, agent, {"prompt": PROMPT}, ACTOR) is None
        assert len(versions_of(s, agent)) == before


def test_sealed_document_swapped_between_versions_is_refused(rt: Runtime, world: World) -> None:
    with rt.db.tenant_tx(world.a.id) as s:
        agent = tenancy.get_agent(s, world.a.id, world.a.agents[0])
        tenancy.update(s, rt.sealer, rt.audit, agent, {"prompt": "v2"}, ACTOR)
        v1, v2 = versions_of(s, agent)
        r1, r2 = s.get_one(ConfigVersion, v1.id), s.get_one(ConfigVersion, v2.id)
        r1.sealed, r2.sealed = r2.sealed, r1.sealed
        s.flush()
        with pytest.raises(DecryptionError):
            tenancy.version_content(s, rt.sealer, agent, v1.id)


def test_invalid_update_leaves_no_version_and_no_change(rt: Runtime, world: World) -> None:
    agent_id = world.a.agents[0]
    with rt.db.tenant_tx(world.a.id) as s:
        count = s.execute(select(func.count()).select_from(ConfigVersion)).scalar_one()
    with rt.db.tenant_tx(world.a.id) as s:
        agent = tenancy.get_agent(s, world.a.id, agent_id)
        with pytest.raises(InvalidInputError):
            tenancy.update(s, rt.sealer, rt.audit, agent, {"tools": [{"name": "bad name!"}]}, ACTOR)
    with rt.db.tenant_tx(world.a.id) as s:
        assert s.execute(select(func.count()).select_from(ConfigVersion)).scalar_one() == count
        assert (
            tenancy.current_settings(s, rt.sealer, s.get_one(Agent, agent_id))["prompt"] == PROMPT
        )


def test_region_of_a_deployment_cannot_change(rt: Runtime, world: World) -> None:
    with rt.db.tenant_tx(world.a.id) as s:
        dep = tenancy.get_deployment(s, world.a.id, world.a.deployments[0])
        with pytest.raises(ConflictError, match="region"):
            tenancy.update(s, rt.sealer, rt.audit, dep, {"region": "us-east-1"}, ACTOR)


def test_duplicate_deployment_name_is_a_conflict(rt: Runtime, world: World) -> None:
    with pytest.raises(ConflictError, match="name"), rt.db.tenant_tx(world.a.id) as s:
        tenancy.create_deployment(
            s, rt.sealer, rt.audit, world.a.id, tenancy.DeploymentSettings(name="acme-dep0"), ACTOR
        )


def test_every_change_is_an_audit_entry_naming_the_version(rt: Runtime, world: World) -> None:
    with rt.db.tenant_tx(world.a.id) as s:
        agent = tenancy.get_agent(s, world.a.id, world.a.agents[0])
        info = tenancy.update(s, rt.sealer, rt.audit, agent, {"prompt": "audited"}, ACTOR)
        assert info is not None
        entries = [json.loads(e) for _, e in rt.audit.read(s, world.a.id, start=0, limit=1000)]
    last = [e for e in entries if e["action"] == "agent.update"][-1]
    assert last["detail"]["version"] == info.id
    assert last["actor"] == ACTOR.actor_id
    assert "audited" not in json.dumps(entries)
