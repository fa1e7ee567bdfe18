"""``X-Twilio-Signature`` on the Media Streams upgrade, for deployments with a Twilio auth token.

With a token configured, a stream whose upgrade the token did not sign (no
signature, a wrong one, one over another URL or scheme, one made with another
deployment's token) is refused with 1008 before any media is accepted: no
call, no recording, no data key. Without a token nothing changes, and a
deployment of another tenant is refused exactly as before, whatever it has.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.websockets import WebSocketDisconnect

from callvault.calls._twilio_frames import FrameWriter
from callvault.calls._twilio_signature import twilio_signature
from callvault.calls._twilio_token import AuthToken, TwilioAuthTokens
from callvault.runtime import Runtime
from callvault.store.models import Call, DataKey, Deployment, Recording
from tests.support.world import World
from tests.unit.api._harness import audit_entries, audit_size

TOKEN_A = "9f86d081884c7d659a2feaa0c55ad015"
TOKEN_B = "a3c1e5b7d9f1a3c5e7b9d1f3a5c7e9b1"
HOST = "testserver"


def _path(dep: str) -> str:
    return f"/v1/ingest/twilio/{dep}"


def _wss(dep: str) -> str:
    """The URL Twilio connects to (and signs): TLS, the host, the path."""
    return f"wss://{HOST}{_path(dep)}"


def _set_token(rt: Runtime, tenant: str, dep: str, token: str) -> None:
    with rt.db.tenant_tx(tenant) as s:
        row = s.get(Deployment, dep)
        assert row is not None
        TwilioAuthTokens(rt.keys, rt.sealer).set(s, row, AuthToken(token))


def _remove_token(rt: Runtime, tenant: str, dep: str) -> None:
    with rt.db.tenant_tx(tenant) as s:
        row = s.get(Deployment, dep)
        assert row is not None
        assert TwilioAuthTokens(rt.keys, rt.sealer).remove(s, row)


def _sealed(rt: Runtime, tenant: str) -> tuple[int, int, int]:
    """Calls, recordings and call data keys of the tenant: what a stream would leave."""
    with rt.db.tenant_tx(tenant) as s:
        calls = s.execute(select(func.count()).where(Call.tenant_id == tenant)).scalar_one()
        recs = s.execute(select(func.count()).where(Recording.tenant_id == tenant)).scalar_one()
        keys = s.execute(
            select(func.count()).where(DataKey.tenant_id == tenant, DataKey.owner_kind == "call")
        ).scalar_one()
    return int(calls), int(recs), int(keys)


def _stream(
    client: TestClient,
    url: str,
    params: dict[str, str],
    headers: dict[str, str] | None = None,
) -> WebSocketDisconnect:
    """Connect, start, send a frame of audio and stop; the server's close."""
    fw = FrameWriter()
    with client.websocket_connect(url, headers=headers or {}) as ws:
        for frame in (fw.connected(), fw.start(params), fw.media(b"\x7f" * 160), fw.stop()):
            ws.send_text(frame)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    return closed.value


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every log record in full: message, arguments and ``extra`` fields."""
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)


def _params(world: World, agent: int = 0) -> dict[str, str]:
    return {
        "agent_id": world.a.agents[agent],
        "callvault_key": world.a.tokens[("ingest", "tenant")],
    }


def _signature_entries(rt: Runtime, tenant: str, start: int) -> list[dict[str, Any]]:
    return [e for e in audit_entries(rt, tenant, start) if e["action"] == "ingest.twilio_signature"]


def _last_call(rt: Runtime, tenant: str) -> Call:
    with rt.db.tenant_tx(tenant) as s:
        stmt = select(Call).where(Call.tenant_id == tenant).order_by(Call.started_at.desc())
        return s.execute(stmt.limit(1)).scalar_one()


# -- accepted ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signed_url",
    [
        pytest.param(_wss, id="as-sent"),
        pytest.param(lambda dep: f"wss://{HOST}:443{_path(dep)}", id="with-default-port"),
    ],
)
def test_a_stream_signed_with_the_deployments_token_is_accepted(
    rt: Runtime, client: TestClient, world: World, signed_url: Any
) -> None:
    a = world.a
    dep = a.deployments[0]
    _set_token(rt, a.id, dep, TOKEN_A)
    before = _sealed(rt, a.id)
    signature = twilio_signature(TOKEN_A, signed_url(dep))
    closed = _stream(client, _wss(dep), _params(world), {"X-Twilio-Signature": signature})
    assert closed.code == 1000
    after = _sealed(rt, a.id)
    assert after[0] == before[0] + 1
    assert after[1] == before[1] + 1
    call = _last_call(rt, a.id)
    assert call.status == "completed"
    assert call.deployment_id == dep


def test_without_a_token_streams_need_no_signature_as_before(
    rt: Runtime, client: TestClient, world: World
) -> None:
    a = world.a
    # A token on the other deployment changes nothing for this one.
    _set_token(rt, a.id, a.deployments[1], TOKEN_B)
    before = _sealed(rt, a.id)
    closed = _stream(client, _path(a.deployments[0]), _params(world))
    assert closed.code == 1000
    assert _sealed(rt, a.id)[0] == before[0] + 1
    assert _last_call(rt, a.id).status == "completed"


def test_removing_the_token_lets_unsigned_streams_in_again(
    rt: Runtime, client: TestClient, world: World
) -> None:
    a = world.a
    dep = a.deployments[0]
    _set_token(rt, a.id, dep, TOKEN_A)
    assert _stream(client, _wss(dep), _params(world)).code == 1008
    _remove_token(rt, a.id, dep)
    assert _stream(client, _wss(dep), _params(world)).code == 1000


# -- refused -------------------------------------------------------------------------------------


def _wrong(kind: str, dep: str, other_dep: str) -> str | None:
    """An ``X-Twilio-Signature`` value that must not pass for ``dep`` (token A)."""
    return {
        "missing": None,
        "empty": "",
        "garbage": "not-a-signature",
        "other-token": twilio_signature(TOKEN_B, _wss(dep)),
        "plain-ws-scheme": twilio_signature(TOKEN_A, f"ws://{HOST}{_path(dep)}"),
        "other-host": twilio_signature(TOKEN_A, f"wss://evil.example{_path(dep)}"),
        "other-deployment-url": twilio_signature(TOKEN_A, _wss(other_dep)),
        "with-query": twilio_signature(TOKEN_A, _wss(dep) + "?x=1"),
        "truncated": twilio_signature(TOKEN_A, _wss(dep))[:-2],
        "overlong": twilio_signature(TOKEN_A, _wss(dep)) * 3,
    }[kind]


@pytest.mark.parametrize(
    "kind",
    [
        "missing",
        "empty",
        "garbage",
        "other-token",
        "plain-ws-scheme",
        "other-host",
        "other-deployment-url",
        "with-query",
        "truncated",
        "overlong",
    ],
)
def test_a_missing_or_wrong_signature_is_refused_with_1008_and_nothing_is_sealed(
    rt: Runtime,
    client: TestClient,
    world: World,
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    a = world.a
    dep = a.deployments[0]
    _set_token(rt, a.id, dep, TOKEN_A)
    before, start = _sealed(rt, a.id), audit_size(rt, a.id)
    signature = _wrong(kind, dep, a.deployments[1])
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    closed = _stream(client, _wss(dep), _params(world), headers)

    assert closed.code == 1008
    assert "X-Twilio-Signature" in closed.reason
    assert _sealed(rt, a.id) == before  # no call, no recording, no call key
    # Audited as a denial naming ids and the reason only; logged with ids only.
    (entry,) = _signature_entries(rt, a.id, start)
    assert entry["outcome"] == "denied"
    assert entry["resource"] == {"kind": "deployment", "id": dep}
    assert entry["actor"] == a.principals[("ingest", "tenant")]
    assert entry["detail"] == {"reason": "missing" if not signature else "mismatch"}
    everything = closed.reason + json.dumps(audit_entries(rt, a.id, start)) + _logged(caplog)
    assert TOKEN_A not in everything
    assert a.tokens[("ingest", "tenant")] not in everything
    if signature:
        assert signature not in everything
    (refused,) = [r for r in caplog.records if r.getMessage().startswith("twilio stream refused")]
    assert (getattr(refused, "tenant_id", None), getattr(refused, "deployment_id", None)) == (
        a.id,
        dep,
    )


def test_the_reason_distinguishes_a_missing_from_a_wrong_signature(
    rt: Runtime, client: TestClient, world: World
) -> None:
    a = world.a
    dep = a.deployments[0]
    _set_token(rt, a.id, dep, TOKEN_A)
    missing = _stream(client, _wss(dep), _params(world))
    wrong = _stream(
        client, _wss(dep), _params(world), {"X-Twilio-Signature": twilio_signature(TOKEN_B, "x")}
    )
    assert "required" in missing.reason
    assert "does not match" in wrong.reason


def test_a_bearer_key_on_the_upgrade_does_not_replace_the_signature(
    rt: Runtime, client: TestClient, world: World
) -> None:
    a = world.a
    dep = a.deployments[0]
    _set_token(rt, a.id, dep, TOKEN_A)
    before = _sealed(rt, a.id)
    headers = {"Authorization": f"Bearer {a.tokens[('ingest', 'tenant')]}"}
    closed = _stream(client, _wss(dep), {"agent_id": a.agents[0]}, headers)
    assert closed.code == 1008
    assert _sealed(rt, a.id) == before


def test_the_token_of_deployment_a_does_not_validate_deployment_b(
    rt: Runtime, client: TestClient, world: World
) -> None:
    a = world.a
    dep_a, dep_b = a.deployments
    _set_token(rt, a.id, dep_a, TOKEN_A)
    _set_token(rt, a.id, dep_b, TOKEN_B)
    before = _sealed(rt, a.id)
    # B's URL signed with A's token; and A's valid signature replayed on B's URL.
    for signature in (
        twilio_signature(TOKEN_A, _wss(dep_b)),
        twilio_signature(TOKEN_A, _wss(dep_a)),
    ):
        closed = _stream(
            client, _wss(dep_b), _params(world, agent=1), {"X-Twilio-Signature": signature}
        )
        assert closed.code == 1008
        assert "X-Twilio-Signature" in closed.reason
    assert _sealed(rt, a.id) == before
    # Each deployment's own signature still works.
    for dep, token, agent in ((dep_a, TOKEN_A, 0), (dep_b, TOKEN_B, 1)):
        headers = {"X-Twilio-Signature": twilio_signature(token, _wss(dep))}
        assert _stream(client, _wss(dep), _params(world, agent=agent), headers).code == 1000


def test_another_tenants_deployment_is_refused_as_before_whether_or_not_it_has_a_token(
    rt: Runtime, client: TestClient, world: World
) -> None:
    a, b = world.a, world.b
    dep_b = b.deployments[0]
    a_start, b_start = audit_size(rt, a.id), audit_size(rt, b.id)
    b_before = _sealed(rt, b.id)
    without = _stream(client, _wss(dep_b), _params(world))
    _set_token(rt, b.id, dep_b, TOKEN_B)
    unsigned = _stream(client, _wss(dep_b), _params(world))
    signed = _stream(
        client,
        _wss(dep_b),
        _params(world),
        {"X-Twilio-Signature": twilio_signature(TOKEN_B, _wss(dep_b))},
    )
    # Exactly the refusal of a deployment the caller cannot see: nothing about tokens.
    for closed in (without, unsigned, signed):
        assert (closed.code, closed.reason) == (without.code, without.reason)
        assert closed.code == 1008
        assert "agent not found" in closed.reason
    assert _signature_entries(rt, a.id, a_start) == []
    assert audit_size(rt, b.id) == b_start  # nothing lands in the other tenant's log
    assert _sealed(rt, b.id) == b_before


def test_a_signature_over_the_wss_url_does_not_pass_on_a_plain_connection(
    rt: Runtime, client: TestClient, world: World
) -> None:
    # Without TLS the upgrade is not the URL Twilio signed (wss://…): refused, not assumed.
    a = world.a
    dep = a.deployments[0]
    _set_token(rt, a.id, dep, TOKEN_A)
    before = _sealed(rt, a.id)
    headers = {"X-Twilio-Signature": twilio_signature(TOKEN_A, _wss(dep))}
    closed = _stream(client, f"ws://{HOST}{_path(dep)}", _params(world), headers)
    assert closed.code == 1008
    assert _sealed(rt, a.id) == before
