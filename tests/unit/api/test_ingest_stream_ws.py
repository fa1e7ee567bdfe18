"""Generic live ingest: audio, transcript and events over one WebSocket; card audio never stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.websockets import WebSocketDisconnect

from callvault.runtime import Runtime
from callvault.store.models import Call, PaymentToken, TranscriptSegment
from tests.support.world import World
from tests.unit.calls.test_ingest import _hum, _is_silent, _mulaw, _stored_audio

RATE = 8000
FRAME = 160  # 20 ms


def _audio(seconds: float) -> bytes:
    return _mulaw(_hum(round(seconds * RATE), 0))


def _url(world: World, agent: int = 0) -> str:
    return f"/v1/ingest/stream/{world.a.agents[agent]}"


def _headers(world: World, role: str = "ingest") -> dict[str, str]:
    return {"Authorization": f"Bearer {world.a.tokens[(role, 'tenant')]}"}


def _words(text: str, start: float, step: float = 0.3) -> list[dict[str, Any]]:
    return [
        {
            "text": w,
            "start_ms": round((start + i * step) * 1000),
            "end_ms": round((start + i * step + step * 0.9) * 1000),
        }
        for i, w in enumerate(text.split())
    ]


class Stream:
    """A client of the generic stream: sends audio at a moving offset, collects replies."""

    def __init__(self, ws: Any, audio: bytes) -> None:
        self.ws = ws
        self.audio = audio
        self.sent = 0
        self.replies: list[dict[str, Any]] = []

    def send(self, msg: dict[str, Any]) -> None:
        self.ws.send_text(json.dumps(msg))

    def call(self, msg: dict[str, Any], expect: str) -> dict[str, Any]:
        """Send ``msg`` and read replies until one of type ``expect``."""
        self.send(msg)
        while True:
            reply = json.loads(self.ws.receive_text())
            self.replies.append(reply)
            if reply["type"] == expect:
                return reply

    def until(self, seconds: float) -> None:
        end = round(seconds * RATE)
        while self.sent < end:
            chunk = self.audio[self.sent : min(end, self.sent + FRAME)]
            self.ws.send_bytes(chunk)
            self.sent += len(chunk)

    def stop(self) -> dict[str, Any]:
        return self.call({"type": "stop"}, "stopped")


def _start(ws: Any) -> str:
    ws.send_text(json.dumps({"type": "start", "codec": "mulaw", "sample_rate": RATE}))
    reply = json.loads(ws.receive_text())
    assert reply["type"] == "started"
    return str(reply["call_id"])


def _span(stored: bytes, a: float, b: float) -> bytes:
    return stored[round(a * RATE) : round(b * RATE)]


def _full_transcript(client: TestClient, world: World, call_id: str) -> str:
    headers = {"Authorization": f"Bearer {world.a.tokens[('compliance_officer', 'tenant')]}"}
    r = client.get(f"/v1/calls/{call_id}/transcript", headers=headers, params={"view": "full"})
    assert r.status_code == 200, r.text
    return " ".join(s["text"] for s in r.json()["segments"])


def _count(rt: Runtime, tenant: str, model: Any, call_id: str) -> int:
    with rt.db.tenant_tx(tenant) as s:
        return int(
            s.execute(
                select(func.count()).select_from(model).where(model.call_id == call_id)
            ).scalar_one()
        )


def test_a_card_said_aloud_is_silenced_before_sealing_and_tokenized_in_the_text(
    rt: Runtime, client: TestClient, world: World
) -> None:
    with client.websocket_connect(_url(world), headers=_headers(world)) as ws:
        call_id = _start(ws)
        st = Stream(ws, _audio(6.0))
        st.until(3.2)
        said = st.call(
            {
                "type": "segment",
                "id": "s1",
                "words": _words("my card number is 4111 1111 1111 1111", 0.3),
            },
            "segment",
        )
        st.until(4.5)
        st.call({"type": "segment", "id": "s2", "words": _words("thank you", 4.0)}, "segment")
        st.until(6.0)
        stopped = st.stop()
    assert stopped == {"type": "stopped", "call_id": call_id, "status": "completed"}
    assert "[CARD tok_" in said["text"]
    assert "4111" not in said["text"]
    assert not any(r["type"] == "warning" for r in st.replies)
    stored, rec = _stored_audio(rt, world.a.id, call_id)
    assert len(stored) == 6 * RATE
    assert rec.complete
    # The card's words (1.5 s to 2.4 s) padded, and nothing before the announcement.
    assert _is_silent(_span(stored, 1.5, 2.4))
    assert not _is_silent(_span(stored, 0.0, 0.9))
    assert not _is_silent(_span(stored, 3.0, 6.0))
    text = _full_transcript(client, world, call_id)
    assert "[CARD tok_" in text
    assert "4111" not in text
    assert "thank you" in text
    assert _count(rt, world.a.id, PaymentToken, call_id) == 1


def test_an_announced_card_opens_a_capture_so_a_late_final_cannot_let_it_through(
    rt: Runtime, client: TestClient, world: World
) -> None:
    digits = " ".join(["four"] + ["one"] * 15)
    with client.websocket_connect(_url(world), headers=_headers(world)) as ws:
        call_id = _start(ws)
        st = Stream(ws, _audio(10.0))
        st.until(2.6)
        st.send(
            {
                "type": "segment",
                "id": "s1",
                "final": False,
                "words": _words("my card number is four one one one", 0.3),
            }
        )
        # Far past the hold: without the capture the digits would be sealed by now.
        st.until(8.0)
        st.call(
            {"type": "segment", "id": "s1", "words": _words(f"my card number is {digits}", 0.3)},
            "segment",
        )
        st.call({"type": "segment", "id": "s2", "words": _words("thanks", 8.5)}, "segment")
        st.until(10.0)
        assert st.stop()["status"] == "completed"
    stored, _ = _stored_audio(rt, world.a.id, call_id)
    card_end = 0.3 + (4 + 16) * 0.3  # the last digit word ends by 6.3 s
    assert _is_silent(_span(stored, 1.5, card_end))
    assert not _is_silent(_span(stored, 0.0, 0.9))
    assert not _is_silent(_span(stored, card_end + 0.4, 10.0))
    assert "one one one" not in _full_transcript(client, world, call_id)


def test_keypad_digits_are_captured_tokenized_and_their_audio_silenced(
    rt: Runtime, client: TestClient, world: World
) -> None:
    with client.websocket_connect(_url(world), headers=_headers(world)) as ws:
        call_id = _start(ws)
        st = Stream(ws, _audio(8.0))
        st.until(2.5)
        for i, d in enumerate("4111111111111111"):
            st.until(2.5 + i * 0.2)
            st.send({"type": "dtmf", "digit": d, "at_ms": round((2.5 + i * 0.2) * 1000)})
        card = st.call({"type": "dtmf", "digit": "#", "at_ms": 5800}, "card")
        st.until(8.0)
        st.stop()
    assert card["source"] == "dtmf"
    assert card["token"].startswith("[CARD tok_")
    assert card["token"].endswith("ending 1111]")
    stored, _ = _stored_audio(rt, world.a.id, call_id)
    assert _is_silent(_span(stored, 1.5, 5.8))  # from a second before the first key
    assert not _is_silent(_span(stored, 0.0, 1.4))
    assert not _is_silent(_span(stored, 6.0, 8.0))
    assert _count(rt, world.a.id, PaymentToken, call_id) == 1


def test_an_agent_requested_capture_silences_from_begin_to_end(
    rt: Runtime, client: TestClient, world: World
) -> None:
    with client.websocket_connect(_url(world), headers=_headers(world)) as ws:
        call_id = _start(ws)
        st = Stream(ws, _audio(6.0))
        st.until(1.0)
        st.send({"type": "capture", "action": "begin", "at_ms": 1000})
        st.until(3.0)
        st.send({"type": "capture", "action": "end", "at_ms": 3000})
        st.until(6.0)
        st.stop()
    stored, _ = _stored_audio(rt, world.a.id, call_id)
    assert _is_silent(_span(stored, 1.0, 3.0))
    assert not _is_silent(_span(stored, 0.0, 0.95))
    assert not _is_silent(_span(stored, 3.05, 6.0))


def test_interims_are_never_stored_finals_and_events_are(
    rt: Runtime, client: TestClient, world: World
) -> None:
    with client.websocket_connect(_url(world), headers=_headers(world)) as ws:
        call_id = _start(ws)
        st = Stream(ws, _audio(3.0))
        st.until(1.0)
        st.send({"type": "segment", "id": "a", "final": False, "words": _words("hello the", 0.1)})
        st.call({"type": "segment", "id": "a", "words": _words("hello there", 0.1)}, "segment")
        st.send({"type": "event", "kind": "tool_call", "at_ms": 900, "detail": {"tool": "x"}})
        st.until(3.0)
        st.stop()
    assert _count(rt, world.a.id, TranscriptSegment, call_id) == 1
    assert _full_transcript(client, world, call_id) == "hello there"
    headers = {"Authorization": f"Bearer {world.a.tokens[('compliance_officer', 'tenant')]}"}
    with rt.db.tenant_tx(world.a.id) as s:
        assert s.get(Call, call_id) is not None
    assert client.get(f"/v1/calls/{call_id}", headers=headers).json()["status"] == "completed"


def test_a_dropped_connection_leaves_the_call_incomplete_with_its_audio(
    rt: Runtime, client: TestClient, world: World
) -> None:
    with client.websocket_connect(_url(world), headers=_headers(world)) as ws:
        call_id = _start(ws)
        Stream(ws, _audio(2.0)).until(2.0)
    with rt.db.tenant_tx(world.a.id) as s:
        call = s.get(Call, call_id)
        assert call is not None
        assert call.status == "incomplete"
    stored, rec = _stored_audio(rt, world.a.id, call_id)
    assert len(stored) == 2 * RATE
    assert not rec.complete


@pytest.mark.parametrize(
    ("role", "agent"),
    [(None, 0), ("qa_reviewer", 0), ("ingest", None)],
    ids=["no-key", "role-without-call-create", "agent-of-another-tenant"],
)
def test_a_stream_that_may_not_open_is_refused_before_the_upgrade(
    rt: Runtime, client: TestClient, world: World, role: str | None, agent: int | None
) -> None:
    url = _url(world) if agent is not None else f"/v1/ingest/stream/{world.b.agents[0]}"
    headers = _headers(world, role) if role else {}
    before = _calls(rt, world.a.id)
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(url, headers=headers) as ws,
    ):
        ws.receive_text()
    assert refused.value.code == 1008
    assert _calls(rt, world.a.id) == before


def _drain(ws: Any) -> None:
    while True:
        ws.receive_text()


def _calls(rt: Runtime, tenant: str) -> int:
    with rt.db.tenant_tx(tenant) as s:
        return int(s.execute(select(func.count()).select_from(Call)).scalar_one())


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        (["{not json"], 1007),
        (['{"type": "teleport"}'], 1008),
        (['{"type": "segment", "id": "x", "words": "nope"}'], 1008),
        ([b"\xff" * 160], 1008),  # audio before start
        (['{"type": "capture", "action": "maybe", "at_ms": 1}'], 1008),
        ([b"\xff" * (3 * RATE)], 1009),  # more than two seconds in one frame
        (['{"type": "start", "codec": "mulaw", "sample_rate": 8000}'], 1008),  # twice
    ],
    ids=[
        "bad-json",
        "unknown-type",
        "bad-field",
        "audio-before-start",
        "bad-action",
        "oversized-audio",
        "duplicate-start",
    ],
)
def test_bad_frames_close_the_stream_and_keep_what_was_sealed(
    rt: Runtime, client: TestClient, world: World, frames: list[str | bytes], code: int
) -> None:
    before_start = frames[0] == b"\xff" * 160
    call_id = None
    with client.websocket_connect(_url(world), headers=_headers(world)) as ws:
        if not before_start:
            call_id = _start(ws)
            Stream(ws, _audio(1.0)).until(1.0)
        for f in frames:
            if isinstance(f, bytes):
                ws.send_bytes(f)
            else:
                ws.send_text(f)
        with pytest.raises(WebSocketDisconnect) as closed:
            _drain(ws)
    assert closed.value.code == code
    assert "4111" not in (closed.value.reason or "")
    if call_id is not None:
        with rt.db.tenant_tx(world.a.id) as s:
            call = s.get(Call, call_id)
            assert call is not None
            assert call.status == "incomplete"
        stored, _ = _stored_audio(rt, world.a.id, call_id)
        assert len(stored) == RATE


def test_keys_without_a_hash_are_captured_when_the_keypad_goes_idle(
    rt: Runtime, client: TestClient, world: World
) -> None:
    with client.websocket_connect(_url(world), headers=_headers(world)) as ws:
        call_id = _start(ws)
        st = Stream(ws, _audio(10.0))
        st.until(1.5)
        for i, d in enumerate("4111111111111111"):
            st.until(1.5 + i * 0.1)
            st.send({"type": "dtmf", "digit": d, "at_ms": round((1.5 + i * 0.1) * 1000)})
        st.until(9.0)  # five seconds without a key end the capture
        st.stop()
    cards = [r for r in st.replies if r["type"] == "card"]
    assert len(cards) == 1
    assert cards[0]["token"].endswith("ending 1111]")
    assert _count(rt, world.a.id, PaymentToken, call_id) == 1
