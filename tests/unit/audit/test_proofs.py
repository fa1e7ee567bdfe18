"""Proofs assembled from stored subtree hashes match RFC 9162's definitions and verify."""

from __future__ import annotations

import hashlib

import pytest

from callvault.audit import merkle, proofs
from callvault.errors import ProofError


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"entry {i}".encode()) for i in range(n)]


def _all_nodes(size: int) -> set[proofs.Node]:
    return {(level, idx) for level in range(size.bit_length()) for idx in range(size >> level)}


def _stored(leaves: list[bytes]) -> dict[proofs.Node, bytes]:
    state, rows = proofs.append_leaves(merkle.CompactRange(), leaves)
    assert state.root() == merkle.root(leaves)
    every = _all_nodes(len(leaves))
    stored = proofs.nodes_from_rows(every, dict(enumerate(rows)))
    assert stored.keys() == every  # every complete subtree is kept, in its closing leaf's row
    for (level, idx), h in stored.items():
        assert h == merkle.root(leaves[idx << level : (idx + 1) << level])
    return stored


def _proof(spans: list[proofs.Span], stored: dict[proofs.Node, bytes]) -> list[bytes]:
    need = proofs.needed(spans)
    assert need <= stored.keys()
    return proofs.assemble(spans, {n: stored[n] for n in need})


@pytest.mark.parametrize("size", range(1, 65))
def test_inclusion_proofs_for_every_index_match_the_rfc_and_verify(size: int) -> None:
    leaves = _leaves(size)
    stored = _stored(leaves)
    root = merkle.root(leaves)
    for index in range(size):
        proof = _proof(proofs.inclusion_spans(index, size), stored)
        assert proof == merkle.inclusion_proof(leaves, index)
        merkle.verify_inclusion(index, size, leaves[index], proof, root)


@pytest.mark.parametrize("size2", range(1, 65))
def test_consistency_proofs_for_every_earlier_size_match_the_rfc_and_verify(size2: int) -> None:
    leaves = _leaves(size2)
    stored = _stored(leaves)
    for size1 in range(1, size2 + 1):
        proof = _proof(proofs.consistency_spans(size1, size2), stored)
        assert proof == merkle.consistency_proof(leaves, size1)
        merkle.verify_consistency(
            size1, size2, merkle.root(leaves[:size1]), merkle.root(leaves), proof
        )


def test_proofs_at_an_older_size_use_only_nodes_that_existed_then() -> None:
    leaves = _leaves(37)
    for size in range(1, 38):
        then = _stored(leaves[:size])
        for index in range(size):
            assert proofs.needed(proofs.inclusion_spans(index, size)) <= then.keys()


def test_appending_in_batches_stores_the_same_rows_as_all_at_once() -> None:
    leaves = _leaves(100)
    state = merkle.CompactRange()
    batched: list[bytes] = []
    for chunk in (leaves[:1], leaves[1:7], leaves[7:64], leaves[64:100]):
        state, rows = proofs.append_leaves(state, chunk)
        batched.extend(rows)
    assert batched == proofs.append_leaves(merkle.CompactRange(), leaves)[1]
    # Leaf i's row holds 1 + (trailing one bits of i) hashes.
    assert [len(r) // 32 for r in batched[:8]] == [1, 2, 1, 3, 1, 2, 1, 4]
    assert state == merkle.CompactRange().extend(leaves)


def test_a_large_tree_needs_few_nodes_per_proof() -> None:
    size = 1_000_003
    need = proofs.needed(proofs.inclusion_spans(size - 2, size))
    assert len(need) <= 2 * 21
    assert proofs.decompose(0, size)[0] == (19, 0)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (5, 5), (6, 5), (-1, 3)])
def test_inclusion_spans_reject_an_index_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        proofs.inclusion_spans(index, size)


@pytest.mark.parametrize(("size1", "size2"), [(0, 4), (5, 4), (-1, 2), (0, 0)])
def test_consistency_spans_reject_sizes_out_of_range(size1: int, size2: int) -> None:
    with pytest.raises(ProofError):
        proofs.consistency_spans(size1, size2)


def test_a_missing_node_is_a_proof_error_not_a_key_error() -> None:
    with pytest.raises(ProofError):
        proofs.assemble([(0, 3)], {(0, 0): hashlib.sha256(b"x").digest()})
