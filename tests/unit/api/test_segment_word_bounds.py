"""A segment's words must lie within it: playback masks a range from the segments near it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support.world import World


@pytest.mark.parametrize(
    ("word", "status"),
    [((1000, 1400), 201), ((6800, 7000), 201), ((9000, 9400), 422), ((0, 200), 201)],
    ids=["inside", "within-slack", "seconds-outside", "at-the-start"],
)
def test_words_far_outside_their_segment_are_refused_and_nothing_is_stored(
    client: TestClient, world: World, word: tuple[int, int], status: int
) -> None:
    ingest = {"Authorization": f"Bearer {world.a.tokens[('ingest', 'tenant')]}"}
    r = client.post(
        f"/v1/agents/{world.a.agents[0]}/calls", headers=ingest, json={"direction": "inbound"}
    )
    call = r.json()["id"]
    seg = {
        "speaker": "caller",
        "start_ms": 500,
        "end_ms": 6000,
        "text": "hello",
        "words": [{"text": "hello", "start_ms": word[0], "end_ms": word[1]}],
    }
    r = client.post(f"/v1/calls/{call}/segments", headers=ingest, json={"segments": [seg]})
    assert r.status_code == status, r.text
    if status == 422:
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "hello" not in r.text
    co = {"Authorization": f"Bearer {world.a.tokens[('compliance_officer', 'tenant')]}"}
    segments = client.get(f"/v1/calls/{call}/transcript", headers=co).json()["segments"]
    assert len(segments) == (1 if status == 201 else 0)
