"""Masked playback over the API: ranges open only the transcript segments they need, give
the bytes of the whole masked view, and still fail closed (audit first, tampering, limits)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from fastapi.testclient import TestClient

import callvault.calls._listen as listen
from callvault.calls import Segment, append_segments, get_call
from callvault.errors import AuditUnavailableError
from callvault.runtime import Runtime
from callvault.store.models import TranscriptSegment
from tests.support.world import World, attach_recording

RATE = 8000
SECONDS = 60
PII = (
    "my NHS number is 943 476 5919",
    "my date of birth is the twelfth of march nineteen eighty four",
    "my account number is 31926819 please",
)
PLAIN = ("thank you I have that", "one moment please", "yes that is right")


def _segments() -> list[dict[str, Any]]:
    """Fifteen turns of ~3 s with pauses between, every other one saying PII."""
    out = []
    at = 1000
    for n in range(15):
        text = PII[n % 3] if n % 2 else PLAIN[n % 3]
        words = []
        t = at
        for w in text.split():
            words.append({"text": w, "start_ms": t, "end_ms": t + 250})
            t += 280
        out.append({"speaker": "caller", "start_ms": at, "end_ms": t, "text": text, "words": words})
        at = t + 800
    return out


def _auth(world: World, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.a.tokens[(role, 'tenant')]}"}


def _new_call(rt: Runtime, client: TestClient, world: World) -> str:
    """A call with the transcript above (through the API) and a 60 s sealed recording."""
    ingest = _auth(world, "ingest")
    r = client.post(
        f"/v1/agents/{world.a.agents[0]}/calls", headers=ingest, json={"direction": "inbound"}
    )
    assert r.status_code == 201, r.text
    call = str(r.json()["id"])
    r = client.post(f"/v1/calls/{call}/segments", headers=ingest, json={"segments": _segments()})
    assert r.status_code == 201, r.text
    attach_recording(rt, world.a.id, call, seconds=SECONDS)
    return call


@pytest.fixture
def call_id(rt: Runtime, client: TestClient, world: World) -> str:
    return _new_call(rt, client, world)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the transcript segments playback opens (one entry per segment opened)."""
    count: list[int] = []
    real = listen.open_value

    def counting(key: bytes, blob: bytes, context: Any) -> bytes:
        count.append(1)
        return real(key, blob, context)

    monkeypatch.setattr(listen, "open_value", counting)
    return count


def _offset(ms: int) -> int:
    return 44 + 2 * ms * RATE // 1000


def test_masked_ranges_equal_the_whole_masked_view(
    client: TestClient, world: World, call_id: str
) -> None:
    path = f"/v1/calls/{call_id}/recording"
    qa = _auth(world, "qa_reviewer")
    whole = client.get(path, headers=qa)
    assert whole.status_code == 200
    assert whole.headers["x-callvault-view"] == "masked"
    body = whole.content
    full = client.get(path, headers=_auth(world, "compliance_officer")).content
    assert body != full  # something was beeped or silenced
    total = len(body)
    rng = random.Random(9)  # noqa: S311 - reproducible offsets, not a secret
    asks = ["bytes=0-", "bytes=-5000", f"bytes={_offset(30_000)}-"]
    for _ in range(12):
        start = rng.randrange(0, total - 1)
        asks.append(f"bytes={start}-{start + rng.choice((1, 999, 40_000))}")
    url = client.post(f"{path}/url", headers=qa).json()["url"]
    for ask in asks:
        for got in (
            client.get(path, headers={**qa, "Range": ask}),
            client.get(url, headers={"Range": ask}),
        ):
            assert got.status_code == 206, ask
            first, last = map(int, got.headers["content-range"].split()[1].split("/")[0].split("-"))
            assert got.content == body[first : last + 1], ask


def test_a_masked_range_opens_only_the_segments_near_it(
    client: TestClient, world: World, call_id: str, opened: list[int]
) -> None:
    at = _offset(30_000)
    r = client.get(
        f"/v1/calls/{call_id}/recording",
        headers={**_auth(world, "qa_reviewer"), "Range": f"bytes={at}-{at + 999}"},
    )
    assert r.status_code == 206
    assert 0 < len(opened) <= 4  # of 15
    opened.clear()
    r = client.get(f"/v1/calls/{call_id}/recording", headers=_auth(world, "qa_reviewer"))
    assert r.status_code == 200
    assert len(opened) == 15  # the whole view: every segment, once


def test_a_masked_read_opens_no_segment_when_the_audit_write_fails(
    rt: Runtime,
    client: TestClient,
    world: World,
    call_id: str,
    opened: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def down(*_a: object, **_k: object) -> list[int]:
        raise AuditUnavailableError("audit log is not writable")

    monkeypatch.setattr(rt.audit, "append", down)
    at = _offset(30_000)
    r = client.get(
        f"/v1/calls/{call_id}/recording",
        headers={**_auth(world, "qa_reviewer"), "Range": f"bytes={at}-{at + 999}"},
    )
    assert r.status_code == 503
    assert opened == []


def test_a_tampered_segment_fails_the_masked_read_that_needs_it(
    rt: Runtime, client: TestClient, world: World, call_id: str
) -> None:
    segments = _segments()
    seq = 7
    with rt.db.tenant_tx(world.a.id) as s:
        row = s.get(TranscriptSegment, (call_id, seq))
        assert row is not None
        row.sealed = row.sealed[:-1] + bytes([row.sealed[-1] ^ 1])
    at = _offset(segments[seq]["start_ms"] + 200)
    r = client.get(
        f"/v1/calls/{call_id}/recording",
        headers={**_auth(world, "qa_reviewer"), "Range": f"bytes={at}-{at + 999}"},
    )
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    # The full view does not read the transcript: it still plays.
    r = client.get(
        f"/v1/calls/{call_id}/recording",
        headers={**_auth(world, "compliance_officer"), "Range": f"bytes={at}-{at + 999}"},
    )
    assert r.status_code == 206


def test_a_segment_too_long_to_redact_refuses_every_masked_read_as_before(
    rt: Runtime, client: TestClient, world: World, call_id: str
) -> None:
    # Stored behind the API's limits (the API refuses such text): 70,000 characters,
    # at the end of the call, far from the range read.
    with rt.db.tenant_tx(world.a.id) as s:
        call = get_call(s, world.a.id, call_id)
        text = "word " * 14_000
        append_segments(
            s, rt.sealer, call, [Segment("caller", 55_000, 59_000, is_final=True, text=text)]
        )
    r = client.get(
        f"/v1/calls/{call_id}/recording",
        headers={**_auth(world, "qa_reviewer"), "Range": f"bytes={_offset(2000)}-{_offset(3000)}"},
    )
    assert r.status_code == 413
    assert b"word" not in r.content
