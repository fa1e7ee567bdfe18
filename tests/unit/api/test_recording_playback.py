"""Recording playback: WAV by range, full for compliance, masked for QA, audited first."""

from __future__ import annotations

import math
import struct
from array import array

import pytest
from fastapi.testclient import TestClient

from callvault.calls import Segment, Word, append_segments, get_call
from callvault.calls._ingest import CallIngest
from callvault.errors import AuditUnavailableError
from callvault.redact import mulaw_decode, mulaw_encode
from callvault.runtime import Runtime
from tests.support.world import World

RATE = 8000
SECONDS = 6
# Said between 1.0 s and 3.2 s; the card digits from 1.6 s.
CARD_WORDS = [
    ("my", 1000, 1200),
    ("card", 1200, 1400),
    ("is", 1400, 1600),
    *[(d, 1600 + 100 * i, 1690 + 100 * i) for i, d in enumerate("4111111111111111")],
]
TEXT = " ".join(w for w, _, _ in CARD_WORDS)
# A second segment, no PII, 4.0-5.0 s.
PLAIN = [("thank", 4000, 4400), ("you", 4400, 5000)]


def _audio() -> bytes:
    pcm = array(
        "h",
        (round(6000 * math.sin(2 * math.pi * 300 * k / RATE)) for k in range(SECONDS * RATE)),
    )
    return mulaw_encode(pcm.tobytes())


@pytest.fixture
def call_id(rt: Runtime, world: World) -> str:
    ingest = CallIngest.start(
        rt,
        tenant_id=world.a.id,
        agent_id=world.a.agents[0],
        actor_id="prn_test",
        request_id=None,
        codec="mulaw",
        sample_rate=RATE,
    )
    audio = _audio()
    for i in range(0, len(audio), 160):
        ingest.audio(audio[i : i + 160], i)
    with rt.db.tenant_tx(world.a.id) as s:
        call = get_call(s, world.a.id, ingest.call_id)
        segments = [
            Segment(
                "caller",
                1000,
                3200,
                is_final=True,
                text=TEXT,
                words=tuple(Word(*w) for w in CARD_WORDS),
            ),
            Segment(
                "caller",
                4000,
                5000,
                is_final=True,
                text="thank you",
                words=tuple(Word(*w) for w in PLAIN),
            ),
        ]
        append_segments(s, rt.sealer, call, segments)
    ingest.close("stop")
    return ingest.call_id


def _get(client: TestClient, world: World, call: str, role: str, **kw: object) -> object:
    token = world.a.tokens[(role, "tenant")]
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}  # type: ignore[dict-item]
    return client.get(f"/v1/calls/{call}/recording", headers=headers, **kw)  # type: ignore[arg-type]


def _pcm(wav: bytes) -> array[int]:
    assert wav[:4] == b"RIFF"
    assert wav[8:16] == b"WAVEfmt "
    channels, rate, bits = struct.unpack("<HI6xH", wav[22:36])
    assert (channels, rate, bits) == (1, RATE, 16)
    return array("h", wav[44:])


def test_compliance_officer_hears_the_full_recording(
    client: TestClient, world: World, call_id: str
) -> None:
    r = _get(client, world, call_id, "compliance_officer")
    assert r.status_code == 200  # type: ignore[attr-defined]
    assert r.headers["content-type"] == "audio/wav"  # type: ignore[attr-defined]
    assert r.headers["x-callvault-view"] == "full"  # type: ignore[attr-defined]
    assert r.headers["cache-control"] == "no-store"  # type: ignore[attr-defined]
    pcm = _pcm(r.content)  # type: ignore[attr-defined]
    assert pcm.tobytes() == mulaw_decode(_audio())


def test_ranges_decrypt_what_they_touch_and_match_the_whole(
    client: TestClient, world: World, call_id: str
) -> None:
    whole = _get(client, world, call_id, "compliance_officer").content  # type: ignore[attr-defined]
    total = len(whole)
    for rng, start, end in (
        ("bytes=0-99", 0, 100),
        ("bytes=45-20044", 45, 20045),
        ("bytes=70001-", 70001, total),
        ("bytes=-1000", total - 1000, total),
    ):
        r = _get(client, world, call_id, "compliance_officer", headers={"Range": rng})
        assert r.status_code == 206, rng  # type: ignore[attr-defined]
        assert r.headers["content-range"] == f"bytes {start}-{end - 1}/{total}"  # type: ignore[attr-defined]
        assert r.content == whole[start:end], rng  # type: ignore[attr-defined]
    r = _get(client, world, call_id, "compliance_officer", headers={"Range": f"bytes={total}-"})
    assert r.status_code == 416  # type: ignore[attr-defined]
    assert r.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]


def test_qa_reviewer_hears_the_masked_view_only(
    client: TestClient, world: World, call_id: str
) -> None:
    r = _get(client, world, call_id, "qa_reviewer")
    assert r.status_code == 200  # type: ignore[attr-defined]
    assert r.headers["x-callvault-view"] == "masked"  # type: ignore[attr-defined]
    masked = _pcm(r.content)  # type: ignore[attr-defined]
    original = array("h", mulaw_decode(_audio()))
    assert len(masked) == len(original)

    def span(a_ms: int, b_ms: int) -> slice:
        return slice(a_ms * RATE // 1000, b_ms * RATE // 1000)

    # Outside every transcript segment: silence.
    assert max(map(abs, masked[span(0, 900)])) == 0
    assert max(map(abs, masked[span(5300, 6000)])) == 0
    # The card number's words: not the original audio (beeped).
    card = span(1700, 3100)
    assert masked[card] != original[card]
    # Words without PII, inside a segment: as recorded.
    assert masked[span(4300, 4900)] == original[span(4300, 4900)]
    # A QA reviewer may not ask for the full view; a developer hears nothing.
    assert _get(client, world, call_id, "qa_reviewer", params={"view": "full"}).status_code == 403  # type: ignore[attr-defined]
    assert _get(client, world, call_id, "developer").status_code == 403  # type: ignore[attr-defined]


def test_another_tenant_gets_not_found(client: TestClient, world: World, call_id: str) -> None:
    token = world.b.tokens[("compliance_officer", "tenant")]
    r = client.get(f"/v1/calls/{call_id}/recording", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404


def test_a_call_without_recording_is_not_found(client: TestClient, world: World) -> None:
    ingest = {"Authorization": f"Bearer {world.a.tokens[('ingest', 'tenant')]}"}
    body = {"direction": "inbound"}
    r = client.post(f"/v1/agents/{world.a.agents[0]}/calls", headers=ingest, json=body)
    assert r.status_code == 201, r.text
    r = _get(client, world, r.json()["id"], "compliance_officer")
    assert r.status_code == 404  # type: ignore[attr-defined]


def test_playback_fails_closed_when_the_audit_log_cannot_be_written(
    rt: Runtime, client: TestClient, world: World, call_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_a: object, **_k: object) -> list[int]:
        raise AuditUnavailableError("audit log is not writable")

    monkeypatch.setattr(rt.audit, "append", down)
    r = _get(client, world, call_id, "compliance_officer")
    assert r.status_code == 503  # type: ignore[attr-defined]
    assert b"RIFF" not in r.content  # type: ignore[attr-defined]
