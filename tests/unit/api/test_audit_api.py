"""The audit API: checkpoints, entries with their exact bytes, proofs, the public key."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from callvault.audit import merkle
from callvault.audit.note import Verifier
from callvault.audit.verify import verify_checkpoint
from tests.support.world import World


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _auditor(world: World) -> dict[str, str]:
    return _auth(world.a.tokens[("auditor", "tenant")])


def _verifier(client: TestClient, headers: dict[str, str]) -> tuple[str, Verifier]:
    r = client.get("/v1/audit/log-key", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["origin"], Verifier.from_key_string(r.json()["verifier_key"])


def _entries(client: TestClient, headers: dict[str, str]) -> list[bytes]:
    out: list[bytes] = []
    while True:
        r = client.get("/v1/audit/entries", headers=headers, params={"start": len(out)})
        assert r.status_code == 200, r.text
        page = r.json()["entries"]
        if not page:
            return out
        assert [e["index"] for e in page] == list(range(len(out), len(out) + len(page)))
        out.extend(e["canonical"].encode() for e in page)


def test_a_fresh_checkpoint_verifies_and_commits_to_the_entries(
    client: TestClient, world: World
) -> None:
    h = _auditor(world)
    origin, verifier = _verifier(client, h)
    r = client.post("/v1/audit/checkpoint", headers=h)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    cp = verify_checkpoint(r.content, verifier, origin=origin)
    assert client.get("/v1/audit/checkpoint", headers=h).content == r.content
    entries = _entries(client, h)[: cp.size]
    assert merkle.root([merkle.leaf_hash(e) for e in entries]) == cp.root_hash


def test_inclusion_and_consistency_proofs_verify(client: TestClient, world: World) -> None:
    h = _auditor(world)
    origin, verifier = _verifier(client, h)
    old = verify_checkpoint(client.post("/v1/audit/checkpoint", headers=h).content, verifier)
    for _ in range(3):  # grow the log: each denied request is an entry
        client.get(f"/v1/calls/{world.a.calls[0]}/transcript", headers=h)
    new = verify_checkpoint(client.post("/v1/audit/checkpoint", headers=h).content, verifier)
    assert new.size > old.size
    entries = _entries(client, h)
    for index in (0, old.size - 1, new.size - 1):
        r = client.get(
            "/v1/audit/proofs/inclusion", headers=h, params={"index": index, "size": new.size}
        )
        assert r.status_code == 200, r.text
        proof = [base64.b64decode(p) for p in r.json()["proof"]]
        merkle.verify_inclusion(
            index, new.size, merkle.leaf_hash(entries[index]), proof, new.root_hash
        )
    r = client.get(
        "/v1/audit/proofs/consistency",
        headers=h,
        params={"first": old.size, "second": new.size},
    )
    assert r.status_code == 200, r.text
    proof = [base64.b64decode(p) for p in r.json()["proof"]]
    merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    assert origin.endswith(world.a.id)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/audit/proofs/inclusion", {"index": "5", "size": "5"}, "index"),
        ("/v1/audit/proofs/inclusion", {"index": "0", "size": "0"}, "size"),
        ("/v1/audit/proofs/inclusion", {"index": "x", "size": "3"}, "index"),
        ("/v1/audit/proofs/inclusion", {"index": "1.5", "size": "3"}, "index"),
        ("/v1/audit/proofs/inclusion", {"index": "-1", "size": "3"}, "index"),
        ("/v1/audit/proofs/inclusion", {"index": "0", "size": str(2**64)}, "size"),
        ("/v1/audit/proofs/inclusion", {"index": "0", "size": "999999999"}, "size"),
        ("/v1/audit/proofs/inclusion", {"size": "3"}, "index"),
        ("/v1/audit/proofs/consistency", {"first": "3", "second": "2"}, "first"),
        ("/v1/audit/proofs/consistency", {"first": "0", "second": "2"}, "first"),
        ("/v1/audit/proofs/consistency", {"first": "1", "second": "999999999"}, "second"),
        ("/v1/audit/entries", {"start": "-1"}, "start"),
        ("/v1/audit/entries", {"limit": "100000"}, "limit"),
    ],
)
def test_malformed_proof_requests_get_a_problem_naming_the_field(
    client: TestClient, world: World, path: str, params: dict[str, str], field: str
) -> None:
    r = client.get(path, headers=_auditor(world), params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in r.text
    assert "Traceback" not in r.text


def test_the_log_key_is_the_same_for_every_reader_of_the_tenant(
    client: TestClient, world: World
) -> None:
    a1 = _verifier(client, _auditor(world))[1].key_string()
    a2 = _verifier(client, _auth(world.a.owner_token))[1].key_string()
    b = _verifier(client, _auth(world.b.owner_token))[1].key_string()
    assert a1 == a2 != b
