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
    assert r.headers["content-range"] == f"bytes */{total}"  # type: ignore[attr-defined]


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


def test_calls_are_listed_by_status_and_start_time_without_content(
    client: TestClient, world: World, call_id: str
) -> None:
    token = world.a.tokens[("qa_reviewer", "tenant")]
    h = {"Authorization": f"Bearer {token}"}
    done = client.get("/v1/calls", headers=h, params={"status": "completed"}).json()
    assert [c["id"] for c in done] == [call_id]  # the world's own calls are still active
    active = client.get("/v1/calls", headers=h, params={"status": "active"}).json()
    assert {c["id"] for c in active} == set(world.a.calls)
    started = done[0]["started_at"]
    after = client.get("/v1/calls", headers=h, params={"started_after": started}).json()
    assert call_id in {c["id"] for c in after}
    before = client.get("/v1/calls", headers=h, params={"started_before": started}).json()
    assert call_id not in {c["id"] for c in before}
    r = client.get("/v1/calls", headers=h, params={"started_after": "2026-01-01T00:00:00"})
    assert r.status_code == 422  # a time without a zone is refused
    r = client.get("/v1/calls", headers=h, params={"status": "deleted"})
    assert r.status_code == 422
    assert "4111" not in str(done)
    assert "caller_number" not in done[0] or done[0]["caller_number"] is None


def _mint(client: TestClient, world: World, call: str, role: str, **params: str) -> object:
    token = world.a.tokens[(role, "tenant")]
    return client.post(
        f"/v1/calls/{call}/recording/url",
        headers={"Authorization": f"Bearer {token}"},
        params=params,
    )


def test_a_signed_url_plays_the_minted_view_without_a_key(
    rt: Runtime, client: TestClient, world: World, call_id: str
) -> None:
    whole = _get(client, world, call_id, "compliance_officer").content  # type: ignore[attr-defined]
    r = _mint(client, world, call_id, "compliance_officer")
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["view"] == "full"
    assert body["url"].startswith("/v1/playback/pb1.")
    played = client.get(body["url"])
    assert played.status_code == 200
    assert played.content == whole
    ranged = client.get(body["url"], headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206
    assert ranged.content == whole[100:200]
    # A QA reviewer's URL is the masked view, and it cannot be minted for the full one.
    qa = _mint(client, world, call_id, "qa_reviewer").json()  # type: ignore[attr-defined]
    assert qa["view"] == "masked"
    assert client.get(qa["url"]).headers["x-callvault-view"] == "masked"
    assert _mint(client, world, call_id, "qa_reviewer", view="full").status_code == 403  # type: ignore[attr-defined]
    assert _mint(client, world, call_id, "developer").status_code == 403  # type: ignore[attr-defined]


def test_edited_expired_and_revoked_urls_stop_working(
    rt: Runtime,
    client: TestClient,
    world: World,
    call_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = _mint(client, world, call_id, "compliance_officer").json()["url"]  # type: ignore[attr-defined]
    prefix, payload, mac = url.rsplit("/", 1)[1].split(".")
    flip = "A" if payload[-2] != "A" else "B"
    edited = f"/v1/playback/{prefix}.{payload[:-2]}{flip}{payload[-1]}.{mac}"
    for bad in (edited, url[:-3], "/v1/playback/pb1.e30.AAAA"):
        r = client.get(bad)
        assert r.status_code in (401, 422), bad
        assert b"RIFF" not in r.content
    # Expired: the clock moves past the URL's lifetime.
    import callvault.calls._listen as listen  # noqa: PLC0415

    real = listen.time.time
    monkeypatch.setattr(listen.time, "time", lambda: real() + 301)
    assert client.get(url).status_code == 401
    monkeypatch.setattr(listen.time, "time", real)
    assert client.get(url).status_code == 200
    # The minting principal deactivated: the URL stops at once.
    from callvault.store.models import Principal as PrincipalRow  # noqa: PLC0415

    with rt.db.tenant_tx(world.a.id) as s:
        row = s.get(PrincipalRow, world.a.principals[("compliance_officer", "tenant")])
        assert row is not None
        row.active = False
    assert client.get(url).status_code == 401
