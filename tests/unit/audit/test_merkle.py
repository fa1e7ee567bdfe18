"""RFC 9162 Merkle trees: known answers, every proof of small trees, the compact range, bit flips.

Known answers are the RFC 6962/9162 test tree used across implementations:
the eight leaf inputs, the root of every prefix and the compact-range hashes
from transparency-dev/merkle ``testonly/constants.go`` (``LeafInputs``,
``RootHashes``, ``CompactTrees``; the same tree as certificate-transparency-go's
merkle tests). The proofs those trees give are the happy-path cases of the
vectors in ``tests/vectors/rfc9162``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)
from callvault.errors import ProofError

# transparency-dev/merkle testonly/constants.go: LeafInputs().
CT_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
# ... RootHashes(): the root of each prefix, from the empty tree to all eight leaves.
CT_ROOTS = [
    bytes.fromhex(h)
    for h in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
# ... NodeHashes() and CompactTrees(): the perfect-subtree roots of each prefix.
_NH = {
    (0, 0): "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    (0, 2): "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    (0, 4): "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    (0, 6): "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    (1, 0): "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    (1, 2): "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    (2, 0): "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    (3, 0): "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
CT_COMPACT = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "rfc9162"

# Enough leaves that a flipped low bit of any size up to 300 still names a real tree.
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(2048)]


def _prefix_roots() -> list[bytes]:
    state, roots = CompactRange(), [EMPTY_ROOT]
    for h in LEAVES:
        state = state.append(h)
        roots.append(state.root())
    return roots


ROOTS = _prefix_roots()


def rfc_mth(leaves: list[bytes]) -> bytes:
    """MTH written straight from RFC 9162 §2.1.1 over already-hashed leaves, kept naive."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + rfc_mth(leaves[:k]) + rfc_mth(leaves[k:])).digest()


# --- known answers -----------------------------------------------------------------------


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert root([]) == EMPTY_ROOT == CT_ROOTS[0]
    assert CompactRange().root() == EMPTY_ROOT


def test_single_leaf_root_is_its_leaf_hash() -> None:
    assert leaf_hash(b"") == CT_ROOTS[1]
    assert root([leaf_hash(b"")]) == CT_ROOTS[1]


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert leaf_hash(b"a") == hashlib.sha256(b"\x00a").digest()
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert leaf_hash(a + b) != node_hash(a, b)


@pytest.mark.parametrize("n", range(9))
def test_known_answer_roots_of_the_rfc_test_tree(n: int) -> None:
    hashes = [leaf_hash(x) for x in CT_LEAVES[:n]]
    assert root(hashes) == CT_ROOTS[n]
    state = CompactRange().extend(hashes)
    assert state.root() == CT_ROOTS[n]
    assert [h.hex() for h in state.hashes] == [_NH[k] for k in CT_COMPACT[n]]


def test_the_eight_leaf_root_is_the_published_one() -> None:
    hashes = [leaf_hash(x) for x in CT_LEAVES]
    assert root(hashes).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


def _happy_paths(kind: str) -> list[dict[str, Any]]:
    paths = sorted((VECTORS / kind).glob("[0-9]/happy-path.json"))
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


def test_generators_reproduce_the_published_proofs() -> None:
    hashes = [leaf_hash(x) for x in CT_LEAVES]
    inclusion, consistency = _happy_paths("inclusion"), _happy_paths("consistency")
    assert len(inclusion) == len(consistency) == 5
    for case in inclusion:
        want = [base64.b64decode(p) for p in case["proof"] or []]
        assert inclusion_proof(hashes[: case["treeSize"]], case["leafIdx"]) == want
    for case in consistency:
        want = [base64.b64decode(p) for p in case["proof"] or []]
        assert consistency_proof(hashes[: case["size2"]], case["size1"]) == want


# --- every proof of every small tree ---------------------------------------------------


@pytest.mark.parametrize("n", range(1, 65))
def test_every_inclusion_proof_of_trees_up_to_64_verifies(n: int) -> None:
    leaves = LEAVES[:n]
    for i in range(n):
        proof = inclusion_proof(leaves, i)
        verify_inclusion(i, n, leaves[i], proof, ROOTS[n])
        assert root_from_inclusion(i, n, leaves[i], proof) == ROOTS[n]


@pytest.mark.parametrize("n", range(1, 65))
def test_every_consistency_proof_of_trees_up_to_64_verifies(n: int) -> None:
    leaves = LEAVES[:n]
    for m in range(1, n + 1):
        verify_consistency(m, n, ROOTS[m], ROOTS[n], consistency_proof(leaves, m))


def test_root_matches_the_rfc_definition_for_sizes_0_to_300() -> None:
    for n in range(301):
        assert root(LEAVES[:n]) == rfc_mth(LEAVES[:n]) == ROOTS[n]


def test_index_outside_the_tree_is_rejected() -> None:
    with pytest.raises(ProofError):
        inclusion_proof(LEAVES[:4], 4)
    with pytest.raises(ProofError):
        verify_inclusion(4, 4, LEAVES[0], inclusion_proof(LEAVES[:4], 0), ROOTS[4])
    with pytest.raises(ProofError):
        verify_inclusion(0, 0, LEAVES[0], [], EMPTY_ROOT)


@pytest.mark.parametrize("bad", [-1, True, 2**64, 1.0])
def test_non_integer_or_negative_sizes_are_rejected(bad: object) -> None:
    with pytest.raises(ProofError):
        verify_inclusion(bad, 4, LEAVES[0], [], ROOTS[4])  # type: ignore[arg-type]
    with pytest.raises(ProofError):
        verify_consistency(1, bad, ROOTS[1], ROOTS[4], [])  # type: ignore[arg-type]


def test_consistency_from_the_empty_tree_is_not_a_proof() -> None:
    # RFC 9162 defines PROOF(m, D[n]) for 0 < m; callers handle m = 0 without one.
    with pytest.raises(ProofError):
        consistency_proof(LEAVES[:4], 0)
    with pytest.raises(ProofError):
        verify_consistency(0, 4, EMPTY_ROOT, ROOTS[4], [])


def test_proof_elements_must_be_hashes() -> None:
    proof = inclusion_proof(LEAVES[:8], 3)
    with pytest.raises(ProofError):
        verify_inclusion(3, 8, LEAVES[3], [*proof[:-1], proof[-1][:31]], ROOTS[8])
    with pytest.raises(ProofError):
        verify_consistency(3, 8, ROOTS[3], ROOTS[8], [b"", *consistency_proof(LEAVES[:8], 3)])


def test_overlong_proofs_are_rejected_without_hashing_them_all() -> None:
    with pytest.raises(ProofError):
        verify_consistency(3, 8, ROOTS[3], ROOTS[8], [LEAVES[0]] * 10_000)
    with pytest.raises(ProofError):
        verify_inclusion(3, 8, LEAVES[3], [LEAVES[0]] * 10_000, ROOTS[8])


def test_a_proof_alone_does_not_pin_the_tree_size() -> None:
    """RFC 9162 verification binds a leaf to a (size, root) pair, not to a size alone.

    The proof for leaf 0 of a 5-leaf tree also "verifies" for size 7 against
    the 5-leaf root, because for index 0 only the bit length of ``size - 1``
    steers the algorithm. No honest size-7 checkpoint carries that root, so
    callers MUST take the size and the root from one signed checkpoint, which
    is what :func:`callvault.audit.verify.verify_entry` does.
    """
    proof = inclusion_proof(LEAVES[:5], 0)
    verify_inclusion(0, 7, LEAVES[0], proof, ROOTS[5])
    with pytest.raises(ProofError):
        verify_inclusion(0, 7, LEAVES[0], proof, ROOTS[7])


# --- the compact range -----------------------------------------------------------------


def test_compact_range_matches_the_reference_root_for_sizes_0_to_300() -> None:
    state = CompactRange()
    for n in range(301):
        assert state.size == n
        assert len(state.hashes) == n.bit_count()
        assert state.root() == rfc_mth(LEAVES[:n])
        assert CompactRange.from_bytes(state.to_bytes()) == state
        state = state.append(LEAVES[n])


def test_compact_range_extend_equals_repeated_append() -> None:
    one_by_one = CompactRange()
    for h in LEAVES[:100]:
        one_by_one = one_by_one.append(h)
    assert CompactRange().extend(LEAVES[:100]) == one_by_one
    assert CompactRange().extend(LEAVES[:37]).extend(LEAVES[37:100]) == one_by_one


def test_compact_range_serialisation_is_fixed() -> None:
    state = CompactRange().extend(LEAVES[:3])
    assert state.to_bytes() == b"\x01" + (3).to_bytes(8, "big") + b"".join(state.hashes)
    assert CompactRange().to_bytes() == b"\x01" + bytes(8)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b[:0],
        lambda b: b[:8],
        lambda b: b"\x02" + b[1:],
        lambda b: b[:-1],
        lambda b: b + b"\x00",
        lambda b: b + bytes(32),
        lambda b: b[:1] + (4).to_bytes(8, "big") + b[9:],
        lambda b: b[:1] + (2**64 - 1).to_bytes(8, "big") + b[9:],
    ],
    ids=["empty", "header-only", "version", "short", "trailing", "extra-hash", "size", "huge"],
)
def test_malformed_compact_range_bytes_are_rejected(mangle: Callable[[bytes], bytes]) -> None:
    good = CompactRange().extend(LEAVES[:3]).to_bytes()
    with pytest.raises(ProofError):
        CompactRange.from_bytes(mangle(good))


def test_a_compact_range_cannot_be_built_inconsistent() -> None:
    with pytest.raises(ProofError):
        CompactRange(3, (LEAVES[0],))
    with pytest.raises(ProofError):
        CompactRange(1, (b"short",))
    with pytest.raises(ProofError):
        CompactRange(-1, ())
    with pytest.raises(ProofError):
        CompactRange().append(b"not a hash")


# --- bit flips -------------------------------------------------------------------------

FLIPS = settings(max_examples=500, deadline=None)


def _flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _rejected(check: Callable[..., None], *args: Any) -> bool:
    try:
        check(*args)
    except ProofError:
        return True
    return False


@FLIPS
@given(n=st.integers(1, 300), data=st.data())
def test_a_flipped_bit_in_an_inclusion_proof_is_rejected(n: int, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, n - 1), label="index")
    proof = inclusion_proof(LEAVES[:n], i)
    where = data.draw(st.sampled_from(["proof", "leaf", "root", "index", "size"]), label="where")
    if where == "proof" and proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:k], _flip(proof[k], data.draw(st.integers(0, 255))), *proof[k + 1 :]]
        assert _rejected(verify_inclusion, i, n, LEAVES[i], bad, ROOTS[n])
    elif where == "leaf":
        leaf = _flip(LEAVES[i], data.draw(st.integers(0, 255)))
        assert _rejected(verify_inclusion, i, n, leaf, proof, ROOTS[n])
    elif where == "root":
        bad_root = _flip(ROOTS[n], data.draw(st.integers(0, 255)))
        assert _rejected(verify_inclusion, i, n, LEAVES[i], proof, bad_root)
    elif where == "index":
        j = i ^ (1 << data.draw(st.integers(0, 63)))
        assert _rejected(verify_inclusion, j, n, LEAVES[i], proof, ROOTS[n])
    else:
        # A different size names a different tree: check against that tree's root.
        m = n ^ (1 << data.draw(st.integers(0, 10)))
        same = i < m and inclusion_proof(LEAVES[:m], i) == proof
        assert _rejected(verify_inclusion, i, m, LEAVES[i], proof, ROOTS[m]) is not same


@FLIPS
@given(n=st.integers(2, 300), data=st.data())
def test_a_flipped_bit_in_a_consistency_proof_is_rejected(n: int, data: st.DataObject) -> None:
    m = data.draw(st.integers(1, n - 1), label="size1")
    proof = consistency_proof(LEAVES[:n], m)
    where = data.draw(st.sampled_from(["proof", "root1", "root2", "size1", "size2"]))
    if where == "proof":
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:k], _flip(proof[k], data.draw(st.integers(0, 255))), *proof[k + 1 :]]
        assert _rejected(verify_consistency, m, n, ROOTS[m], ROOTS[n], bad)
    elif where == "root1":
        bad_root = _flip(ROOTS[m], data.draw(st.integers(0, 255)))
        assert _rejected(verify_consistency, m, n, bad_root, ROOTS[n], proof)
    elif where == "root2":
        bad_root = _flip(ROOTS[n], data.draw(st.integers(0, 255)))
        assert _rejected(verify_consistency, m, n, ROOTS[m], bad_root, proof)
    elif where == "size1":
        m2 = m ^ (1 << data.draw(st.integers(0, 10)))
        same = 0 < m2 <= n and consistency_proof(LEAVES[:n], m2) == proof
        assert _rejected(verify_consistency, m2, n, ROOTS[m2], ROOTS[n], proof) is not same
    else:
        n2 = n ^ (1 << data.draw(st.integers(0, 10)))
        same = m <= n2 and consistency_proof(LEAVES[:n2], m) == proof
        assert _rejected(verify_consistency, m, n2, ROOTS[m], ROOTS[n2], proof) is not same
