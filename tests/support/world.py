"""A small populated installation for API tests: two tenants, two deployments each,
an agent and a call in each deployment, and one principal per role per scope.

Every id and token a test needs is on the returned :class:`World`.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi.testclient import TestClient

from callvault import access, tenancy
from callvault.access import Role, ScopeKind
from callvault.bootstrap import create_tenant_with_owner
from callvault.runtime import Runtime

TRANSCRIPT = [
    {
        "speaker": "caller",
        "start_ms": 0,
        "end_ms": 4000,
        # No card number: cards are tokenized before a transcript is stored
        # (tests/unit/calls/test_card_text.py), so they never reach the world's transcripts.
        "text": "my account number is 31926819 and my date of birth is the "
        "twelfth of march nineteen eighty four",
        "words": [{"text": "my", "start_ms": 0, "end_ms": 200}],
    },
    {
        "speaker": "agent",
        "start_ms": 4000,
        "end_ms": 6000,
        "text": "thank you, I have that",
        "words": [],
    },
]
CALLER_NUMBER = "+44 7700 900123"
#: The card number keyed in each world call (tokenized; never in a transcript).
CARD = "4539148803436467"
PROMPT = "You are the booking assistant for Example NHS Trust."


@dataclass
class TenantWorld:
    id: str
    owner_token: str
    deployments: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    #: (role, scope) -> token; scope is "tenant" or "dep0"/"dep1" or "agent0"
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    principals: dict[tuple[str, str], str] = field(default_factory=dict)
    #: A card token (tokenization vault) in each call, as keypad capture would leave.
    card_tokens: list[str] = field(default_factory=list)


@dataclass
class World:
    a: TenantWorld
    b: TenantWorld


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _populate(rt: Runtime, client: TestClient, name: str) -> TenantWorld:
    init = create_tenant_with_owner(rt, tenant_name=name, owner_name=f"{name}-owner")
    tw = TenantWorld(id=init.tenant_id, owner_token=init.token)
    owner = _auth(init.token)
    for i in range(2):
        r = client.post("/v1/deployments", headers=owner, json={"name": f"{name}-dep{i}"})
        assert r.status_code == 201, r.text
        dep = r.json()["id"]
        tw.deployments.append(dep)
        r = client.post(
            f"/v1/deployments/{dep}/agents",
            headers=owner,
            json={"name": f"agent{i}", "prompt": PROMPT},
        )
        assert r.status_code == 201, r.text
        tw.agents.append(r.json()["id"])
    # Principals: one per role at tenant scope, at deployment 0, and at agent 0.
    scopes = {
        "tenant": (ScopeKind.TENANT, tw.id),
        "dep0": (ScopeKind.DEPLOYMENT, tw.deployments[0]),
        "agent0": (ScopeKind.AGENT, tw.agents[0]),
    }
    with rt.db.tenant_tx(tw.id) as s:
        for role in Role:
            for label, (kind, scope_id) in scopes.items():
                p = access.create_principal(s, tw.id, kind="user", name=f"{role}-{label}")
                access.bind_role(s, tw.id, p.id, role, kind, scope_id, created_by="test")
                key = access.issue_key(s, tw.id, p.id, label="t", ttl=timedelta(days=1))
                tw.tokens[(role.value, label)] = key.token
                tw.principals[(role.value, label)] = p.id
        tenancy.get_tenant(s, tw.id)
    # A call with a transcript in each deployment, fed by the tenant-wide ingest key.
    ingest = _auth(tw.tokens[("ingest", "tenant")])
    for agent in tw.agents:
        r = client.post(
            f"/v1/agents/{agent}/calls",
            headers=ingest,
            json={"direction": "inbound", "caller_number": CALLER_NUMBER},
        )
        assert r.status_code == 201, r.text
        call = r.json()["id"]
        tw.calls.append(call)
        r = client.post(f"/v1/calls/{call}/segments", headers=ingest, json={"segments": TRANSCRIPT})
        assert r.status_code == 201, r.text
        attach_recording(rt, tw.id, call)
    return tw


def add_card_tokens(rt: Runtime, tw: TenantWorld) -> None:
    """A card token in each of ``tw``'s calls (for tests of the hand-off route)."""
    for call in tw.calls:
        tw.card_tokens.append(card_token(rt, tw.id, call))


def card_token(rt: Runtime, tenant_id: str, call_id: str) -> str:
    from callvault.payments import TokenVault  # noqa: PLC0415
    from callvault.store.models import Call  # noqa: PLC0415

    with rt.db.tenant_tx(tenant_id) as s:
        call = s.get(Call, call_id)
        assert call is not None
        token = TokenVault(rt.keys, rt.audit).tokenize(
            s, tenant_id, call.deployment_id, call_id, CARD, source="dtmf"
        )
        return token.id


def attach_recording(rt: Runtime, tenant_id: str, call_id: str, seconds: float = 1.0) -> None:
    """Give ``call_id`` a sealed recording (a 300 Hz hum), as live ingest would store it."""
    from callvault.calls._recording import (  # noqa: PLC0415
        LiveRecording,
        recording_context,
        recording_row,
    )
    from callvault.keys import KeyOwner  # noqa: PLC0415
    from callvault.redact import mulaw_encode  # noqa: PLC0415
    from callvault.store.models import Call, Deployment  # noqa: PLC0415

    n = round(seconds * 8000)
    pcm = array("h", (round(5000 * math.sin(2 * math.pi * 300 * k / 8000)) for k in range(n)))
    with rt.db.tenant_tx(tenant_id) as s:
        call = s.get(Call, call_id)
        assert call is not None
        dep = s.get(Deployment, call.deployment_id)
        assert dep is not None
        owner = KeyOwner(tenant_id, call.deployment_id, "call", call_id)
        key = rt.keys.data_key(s, owner, create=True)
        ctx = recording_context(tenant_id, call.deployment_id, call_id)
        rec = LiveRecording.open(
            rt.objects.for_region(dep.region), key, ctx, codec="mulaw", sample_rate=8000
        )
        rec.write(mulaw_encode(pcm.tobytes()))
        result = rec.finish(complete=True)
        s.add(recording_row(tenant_id, call_id, result))


def build_world(rt: Runtime, client: TestClient) -> World:
    return World(a=_populate(rt, client, "acme"), b=_populate(rt, client, "globex"))
