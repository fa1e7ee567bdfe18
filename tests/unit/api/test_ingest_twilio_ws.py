"""The Twilio Media Streams WebSocket: a stream becomes a sealed call; bad streams are refused."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from callvault.calls._twilio_frames import FrameWriter
from callvault.runtime import Runtime
from callvault.store.models import Call, Recording
from tests.support.world import World
from tests.unit.calls.test_ingest import _call_audio, _hum, _is_silent, _mulaw, _stored_audio


def _url(world: World, dep: int = 0) -> str:
    return f"/v1/ingest/twilio/{world.a.deployments[dep]}"


def _ingest_token(world: World) -> str:
    return world.a.tokens[("ingest", "tenant")]


def _calls(rt: Runtime, tenant: str) -> list[Call]:
    with rt.db.tenant_tx(tenant) as s:
        return list(s.execute(select(Call).order_by(Call.started_at)).scalars())


def _stream(ws: object, frames: list[str]) -> None:
    for f in frames:
        ws.send_text(f)  # type: ignore[attr-defined]


def test_a_twilio_stream_is_stored_as_a_completed_call_with_tones_silenced(
    rt: Runtime, client: TestClient, world: World
) -> None:
    audio, spans = _call_audio()
    fw = FrameWriter()
    before = {c.id for c in _calls(rt, world.a.id)}
    params = {"agent_id": world.a.agents[0], "callvault_key": _ingest_token(world)}
    with client.websocket_connect(_url(world)) as ws:
        _stream(ws, [fw.connected(), fw.start(params), *fw.audio(audio), fw.dtmf("4"), fw.stop()])
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1000
    new = [c for c in _calls(rt, world.a.id) if c.id not in before]
    assert len(new) == 1
    call = new[0]
    assert call.status == "completed"
    assert call.agent_id == world.a.agents[0]
    stored, rec = _stored_audio(rt, world.a.id, call.id)
    assert rec.complete
    assert len(stored) == len(audio)
    for start, end in spans:
        assert _is_silent(stored[start:end])


def test_the_key_may_come_as_a_bearer_header_instead(
    rt: Runtime, client: TestClient, world: World
) -> None:
    fw = FrameWriter()
    headers = {"Authorization": f"Bearer {_ingest_token(world)}"}
    with client.websocket_connect(_url(world), headers=headers) as ws:
        _stream(ws, [fw.start({"agent_id": world.a.agents[0]}), fw.media(b"\x7f" * 160), fw.stop()])
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()
    assert _calls(rt, world.a.id)[-1].status == "completed"


def _wait_for_call(rt: Runtime, tenant: str, before: int) -> Call:
    deadline = time.monotonic() + 10
    while len(calls := _calls(rt, tenant)) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(calls) == before + 1
    return calls[-1]


def _wait_until_ended(rt: Runtime, tenant: str) -> Call:
    # The server ends the call off the event loop after the socket closed: wait for it.
    deadline = time.monotonic() + 10
    while (call := _calls(rt, tenant)[-1]).status == "active" and time.monotonic() < deadline:
        time.sleep(0.02)
    return call


def test_a_dropped_connection_leaves_the_call_incomplete_with_its_audio(
    rt: Runtime, client: TestClient, world: World
) -> None:
    audio, _ = _call_audio()
    fw = FrameWriter()
    params = {"agent_id": world.a.agents[0], "callvault_key": _ingest_token(world)}
    before = len(_calls(rt, world.a.id))
    with client.websocket_connect(_url(world)) as ws:
        ws.send_text(fw.start(params))
        _wait_for_call(rt, world.a.id, before)
        _stream(ws, list(fw.audio(audio[: 40 * 160])))
        time.sleep(0.3)
    call = _wait_until_ended(rt, world.a.id)
    assert call.status == "incomplete"
    with rt.db.tenant_tx(world.a.id) as s:
        rec = s.execute(select(Recording).where(Recording.call_id == call.id)).scalar_one()
    assert not rec.complete
    assert 0 < rec.duration_ms <= 40 * 20  # what arrived before the drop, sealed and whole


def test_a_bad_frame_mid_call_ends_it_incomplete_keeping_everything_before(
    rt: Runtime, client: TestClient, world: World
) -> None:
    audio, _ = _call_audio()
    fw = FrameWriter()
    params = {"agent_id": world.a.agents[0], "callvault_key": _ingest_token(world)}
    before = len(_calls(rt, world.a.id))
    with client.websocket_connect(_url(world)) as ws:
        ws.send_text(fw.start(params))
        _wait_for_call(rt, world.a.id, before)
        _stream(ws, [*fw.audio(audio[: 40 * 160]), '{"event": "media", "oops"'])
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1007
    call = _wait_until_ended(rt, world.a.id)
    assert call.status == "incomplete"
    with rt.db.tenant_tx(world.a.id) as s:
        rec = s.execute(select(Recording).where(Recording.call_id == call.id)).scalar_one()
    assert not rec.complete
    assert rec.duration_ms == 40 * 20


@pytest.mark.parametrize(
    ("frames", "code", "reason"),
    [
        (lambda _fw, _p: ["{not json"], 1007, "bad-json"),
        (lambda fw, _p: [fw.connected(), fw.media(b"\x7f" * 160)], 1008, "before-start"),
        (lambda fw, p: [fw.start({**p, "callvault_key": "cv1.x.y.z"})], 1008, "invalid API key"),
        (lambda fw, p: [fw.start({"agent_id": p["agent_id"]})], 1008, "API key is required"),
        (lambda fw, p: [fw.start({**p, "agent_id": "agt_nope"})], 1008, "agent not found"),
    ],
)
def test_bad_streams_are_refused_with_a_reason_and_make_no_call(
    rt: Runtime, client: TestClient, world: World, frames: object, code: int, reason: str
) -> None:
    fw = FrameWriter()
    params = {"agent_id": world.a.agents[0], "callvault_key": _ingest_token(world)}
    before = len(_calls(rt, world.a.id))
    with client.websocket_connect(_url(world)) as ws:
        _stream(ws, frames(fw, params))  # type: ignore[operator]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == code
    assert reason in closed.value.reason
    assert len(_calls(rt, world.a.id)) == before


def test_an_agent_of_another_deployment_or_tenant_is_refused(
    rt: Runtime, client: TestClient, world: World
) -> None:
    for agent in (world.a.agents[1], world.b.agents[0]):
        fw = FrameWriter()
        params = {"agent_id": agent, "callvault_key": _ingest_token(world)}
        with client.websocket_connect(_url(world, 0)) as ws:
            ws.send_text(fw.start(params))
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
        assert closed.value.code == 1008
        assert "agent not found" in closed.value.reason


def test_a_principal_without_call_create_is_refused(
    rt: Runtime, client: TestClient, world: World
) -> None:
    fw = FrameWriter()
    params = {"agent_id": world.a.agents[0], "callvault_key": world.a.tokens[("auditor", "tenant")]}
    with client.websocket_connect(_url(world)) as ws:
        ws.send_text(fw.start(params))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1008
    assert "not allowed" in closed.value.reason


def test_keyed_card_digits_are_tokenized_and_their_audio_is_not_stored(
    rt: Runtime, client: TestClient, world: World
) -> None:
    from callvault.calls._replay import DtmfAt, overlay_dtmf  # noqa: PLC0415
    from callvault.payments import TokenVault  # noqa: PLC0415
    from callvault.store.models import CallEvent, PaymentToken  # noqa: PLC0415

    pan = "4111111111111111"
    keyed = overlay_dtmf(_mulaw(_hum(8 * 8000, 0)), [DtmfAt(2.0, pan)])  # 8 s, keys from 2 s
    fw = FrameWriter()
    frames = [fw.start({"agent_id": world.a.agents[0], "callvault_key": _ingest_token(world)})]
    press_end = {round((2.0 * 8000 + (i + 1) * 1440) / 160): d for i, d in enumerate(pan + "#")}
    for n, frame in enumerate(fw.audio(keyed)):
        frames.append(frame)
        if n + 1 in press_end:
            frames.append(fw.dtmf(press_end[n + 1]))
    frames.append(fw.stop())
    with client.websocket_connect(_url(world)) as ws:
        _stream(ws, frames)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1000
    call = _calls(rt, world.a.id)[-1]
    assert call.status == "completed"
    with rt.db.tenant_tx(world.a.id) as s:
        tokens = list(
            s.execute(select(PaymentToken).where(PaymentToken.call_id == call.id)).scalars()
        )
        kinds = [
            k for (k,) in s.execute(select(CallEvent.kind).where(CallEvent.call_id == call.id))
        ]
    assert len(tokens) == 1
    assert (tokens[0].last4, tokens[0].digits, tokens[0].luhn_valid) == ("1111", 16, True)
    assert sorted(kinds) == ["card_token", "dtmf"]
    with rt.db.tenant_tx(world.a.id) as s:
        assert (
            TokenVault(rt.keys, rt.audit)
            .get(s, world.a.id, tokens[0].id)
            .display.endswith("ending 1111]")
        )
    stored, _rec = _stored_audio(rt, world.a.id, call.id)
    # From a second before the first key to the end of the capture: silent.
    first_key_end = 2 * 8000 + 1440
    last = 2 * 8000 + 17 * 1440
    assert _is_silent(stored[first_key_end - 8000 + 400 : last])
    # The hum before and well after is kept.
    assert stored[:8000] == keyed[:8000]
    assert stored[-8000:] == keyed[-8000:]


def test_a_stop_held_behind_a_gap_ends_the_call_while_the_client_stays_connected(
    rt: Runtime, client: TestClient, world: World
) -> None:
    """Issue 6: the poller releases a ``stop`` held behind a missing sequence number.

    The client sends nothing more and keeps the socket open; the server must
    still end the call (incomplete: a frame was lost) and close the socket,
    within the reorder window and a poll (waited for here with a wide margin).
    """
    audio, _ = _call_audio()
    fw = FrameWriter()
    params = {"agent_id": world.a.agents[0], "callvault_key": _ingest_token(world)}
    before = len(_calls(rt, world.a.id))
    start = fw.start(params)
    frames = list(fw.audio(audio[: 20 * 160]))
    del frames[10]  # never sent: a hole in the sequence numbers, the stop waits behind it
    with client.websocket_connect(_url(world)) as ws:
        ws.send_text(start)
        _wait_for_call(rt, world.a.id, before)
        _stream(ws, [*frames, fw.stop()])
        call = _wait_until_ended(rt, world.a.id)  # while the client is still connected
        assert call.status == "incomplete"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (1000, "stream ended")
    with rt.db.tenant_tx(world.a.id) as s:
        rec = s.execute(select(Recording).where(Recording.call_id == call.id)).scalar_one()
    assert not rec.complete
    assert rec.duration_ms == 20 * 20  # every frame's time; the lost one's as silence


def test_a_failed_release_of_held_frames_ends_the_stream_while_the_client_stays_connected(
    rt: Runtime, client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: the poller cannot release what is held (e.g. storage failed), so the
    call ends incomplete and the socket closes (1011, naming no value), without a frame."""
    from callvault.calls._twilio_ingest import TwilioCall  # noqa: PLC0415
    from callvault.errors import UnavailableError  # noqa: PLC0415

    def broken_poll(self: TwilioCall) -> None:
        raise UnavailableError("object store unavailable")

    monkeypatch.setattr(TwilioCall, "poll", broken_poll)
    audio, _ = _call_audio()
    fw = FrameWriter()
    params = {"agent_id": world.a.agents[0], "callvault_key": _ingest_token(world)}
    before = len(_calls(rt, world.a.id))
    start = fw.start(params)
    frames = list(fw.audio(audio[: 20 * 160]))
    del frames[10]  # the frames after the hole are held; only the poller could release them
    with client.websocket_connect(_url(world)) as ws:
        ws.send_text(start)
        _wait_for_call(rt, world.a.id, before)
        _stream(ws, frames)
        call = _wait_until_ended(rt, world.a.id)
        assert call.status == "incomplete"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (1011, "UnavailableError")


def test_a_binary_frame_is_refused(rt: Runtime, client: TestClient, world: World) -> None:
    fw = FrameWriter()
    params = {"agent_id": world.a.agents[0], "callvault_key": _ingest_token(world)}
    before = len(_calls(rt, world.a.id))
    with client.websocket_connect(_url(world)) as ws:
        ws.send_text(fw.start(params))
        _wait_for_call(rt, world.a.id, before)
        ws.send_bytes(fw.media(b"\x7f" * 160).encode())
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1007
    assert "not a text frame" in closed.value.reason
    assert _wait_until_ended(rt, world.a.id).status == "incomplete"
