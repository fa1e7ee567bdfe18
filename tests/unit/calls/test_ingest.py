"""CallIngest: a live call's audio guarded, sealed, stored; counts and status at the end."""

from __future__ import annotations

import math
import os
from array import array
from pathlib import Path

import pytest
from sqlalchemy import select, text

from callvault.calls._ingest import CallIngest
from callvault.calls._recording import open_recording, recording_context
from callvault.errors import NotFoundError
from callvault.keys import KeyOwner
from callvault.redact import mulaw_encode
from callvault.runtime import Runtime
from callvault.store.models import Call, CallEvent, Recording
from tests.support.world import World

RATE = 8000
FRAME = 160  # 20 ms of 8 kHz μ-law
ROW = {"1": 697, "5": 770, "9": 852, "0": 941}
COL = {"1": 1209, "5": 1336, "9": 1477, "0": 1336}


def _hum(n: int, start: int) -> list[float]:
    """Speech-like, non-DTMF audio: a 220 Hz hum with a slow wobble."""
    return [
        6000 * math.sin(2 * math.pi * 220 * (start + k) / RATE)
        + 2000 * math.sin(2 * math.pi * 3.3 * (start + k) / RATE)
        for k in range(n)
    ]


def _key(digit: str, n: int) -> list[float]:
    r, c = ROW[digit], COL[digit]
    return [
        7000 * (math.sin(2 * math.pi * r * k / RATE) + math.sin(2 * math.pi * c * k / RATE))
        for k in range(n)
    ]


def _mulaw(samples: list[float]) -> bytes:
    pcm = array("h", (max(-32768, min(32767, round(v))) for v in samples)).tobytes()
    return mulaw_encode(pcm)


def _call_audio() -> tuple[bytes, list[tuple[int, int]]]:
    """2 s of hum with three 100 ms key presses; returns μ-law and the tone spans."""
    samples: list[float] = []
    spans = []
    samples += _hum(4000, 0)
    for digit in "159":
        spans.append((len(samples), len(samples) + 800))
        samples += _key(digit, 800)
        samples += _hum(1600, len(samples))
    samples += _hum(RATE * 2 - len(samples), len(samples))
    return _mulaw(samples), spans


def _stored_audio(rt: Runtime, tenant: str, call_id: str) -> tuple[bytes, Recording]:
    with rt.db.tenant_tx(tenant) as s:
        call = s.get(Call, call_id)
        assert call is not None
        rec = s.execute(select(Recording).where(Recording.call_id == call_id)).scalar_one()
        key = rt.keys.data_key(
            s, KeyOwner(tenant, call.deployment_id, "call", call_id), create=False
        )
        ctx = recording_context(tenant, call.deployment_id, call_id)
    region_store = rt.objects.for_region("eu-west-2")
    return bytes(open_recording(key, region_store.get(rec.object_ref), ctx)), rec


def _start(rt: Runtime, world: World) -> CallIngest:
    return CallIngest.start(
        rt,
        tenant_id=world.a.id,
        agent_id=world.a.agents[0],
        actor_id="prn_test",
        request_id=None,
        codec="mulaw",
        sample_rate=RATE,
    )


def _is_silent(mulaw: bytes) -> bool:
    return set(mulaw) <= {0xFF, 0x7F}  # μ-law zero (positive or negative)


def test_keypad_tones_are_silenced_before_sealing_and_counted(rt: Runtime, world: World) -> None:
    audio, spans = _call_audio()
    ingest = _start(rt, world)
    for i in range(0, len(audio), FRAME):
        ingest.audio(audio[i : i + FRAME], i)
    summary = ingest.close("stop")
    assert summary.status == "completed"
    assert summary.dtmf_tones == 3
    stored, rec = _stored_audio(rt, world.a.id, ingest.call_id)
    assert rec.complete
    assert len(stored) == len(audio)
    assert rec.duration_ms == 2000
    for start, end in spans:
        assert _is_silent(stored[start:end]), (start, end)
    # Hum away from the tones is kept as it was.
    assert stored[:3000] == audio[:3000]
    assert stored[-2000:] == audio[-2000:]
    with rt.db.tenant_tx(world.a.id) as s:
        call = s.get(Call, ingest.call_id)
        assert call is not None
        assert call.status == "completed"
        kinds = s.execute(select(CallEvent.kind).where(CallEvent.call_id == call.id)).all()
        assert [k for (k,) in kinds] == ["dtmf"]


def test_a_dropped_connection_keeps_the_audio_and_marks_the_call_incomplete(
    rt: Runtime, world: World
) -> None:
    audio, _ = _call_audio()
    ingest = _start(rt, world)
    half = len(audio) // 2 // FRAME * FRAME
    for i in range(0, half, FRAME):
        ingest.audio(audio[i : i + FRAME], i)
    summary = ingest.close("disconnect")
    assert summary.status == "incomplete"
    assert ingest.close("stop") is summary  # idempotent: the first reason wins
    stored, rec = _stored_audio(rt, world.a.id, ingest.call_id)
    assert not rec.complete
    assert len(stored) == half


def test_secure_capture_silences_everything_between_begin_and_end(
    rt: Runtime, world: World
) -> None:
    audio = _mulaw(_hum(RATE, 0))
    ingest = _start(rt, world)
    ingest.audio(audio[:2000], 0)
    ingest.begin_capture(2000)
    assert ingest.capturing
    ingest.audio(audio[2000:6000], 2000)
    ingest.end_capture(6000)
    ingest.audio(audio[6000:], 6000)
    ingest.close("stop")
    stored, _ = _stored_audio(rt, world.a.id, ingest.call_id)
    assert _is_silent(stored[2000:6000])
    assert stored[:1900] == audio[:1900]
    assert stored[6100:] == audio[6100:]


def test_no_plaintext_audio_reaches_disk(rt: Runtime, world: World) -> None:
    marker = b"\x11\x22\x33\x44\x55\x66\x77\x88" * 64  # not silence, not a tone
    ingest = _start(rt, world)
    offset = 0
    for _ in range(40):
        ingest.audio(marker, offset)
        offset += len(marker)
    on_disk = bytearray()
    for dirpath, _dirs, files in os.walk(rt.settings.data_dir):
        for name in files:
            on_disk += (Path(dirpath) / name).read_bytes()
    assert marker[:32] not in on_disk
    ingest.close("stop")


def test_an_agent_of_another_tenant_is_not_found_and_no_call_is_made(
    rt: Runtime, world: World
) -> None:
    with rt.db.tenant_tx(world.a.id) as s:
        before = s.execute(text("SELECT count(*) FROM calls")).scalar_one()
    with pytest.raises(NotFoundError):
        CallIngest.start(
            rt,
            tenant_id=world.a.id,
            agent_id=world.b.agents[0],
            actor_id="prn_test",
            request_id=None,
            codec="mulaw",
            sample_rate=RATE,
        )
    with rt.db.tenant_tx(world.a.id) as s:
        assert s.execute(text("SELECT count(*) FROM calls")).scalar_one() == before


def test_a_store_that_fails_at_the_end_marks_the_call_failed(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest = _start(rt, world)
    ingest.audio(_mulaw(_hum(1600, 0)), 0)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(ingest._recording, "finish", broken)
    summary = ingest.close("stop")
    assert summary.status == "failed"
    assert summary.recording is None
    with rt.db.tenant_tx(world.a.id) as s:
        call = s.get(Call, ingest.call_id)
        assert call is not None
        assert call.status == "failed"
        assert s.execute(select(Recording).where(Recording.call_id == call.id)).first() is None
