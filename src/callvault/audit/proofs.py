"""Proofs from stored subtree hashes: the server side of RFC 9162 §2.1.3-2.1.4.

The log stores the hash of every *complete* perfect subtree as it appears
(node ``(level, idx)`` covers leaves ``[idx * 2**level, (idx + 1) * 2**level)``;
level 0 holds the leaf hashes). Any subtree hash a proof needs, perfect or
not, is the right fold of the perfect subtrees that decompose its range, so a
proof for any (index, size) or (size1, size2) up to the current size needs
O(log² n) stored hashes and one read.

Pure functions, no I/O: the caller fetches :func:`needed` nodes and passes
them to :func:`assemble`. Tested against the recursive definitions in
:mod:`callvault.audit.merkle` for every index of trees of sizes 1-64.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from callvault.audit.merkle import CompactRange, node_hash
from callvault.errors import ProofError

#: (level, idx) of a perfect subtree.
Node = tuple[int, int]
#: Leaves [begin, end) of a subtree of the RFC 9162 tree.
Span = tuple[int, int]


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def decompose(begin: int, end: int) -> list[Node]:
    """The maximal aligned perfect subtrees covering ``[begin, end)``, left to right."""
    out: list[Node] = []
    while begin < end:
        level = (begin & -begin).bit_length() - 1 if begin else (end - begin).bit_length()
        while 1 << level > end - begin:
            level -= 1
        out.append((level, begin >> level))
        begin += 1 << level
    return out


def inclusion_spans(index: int, size: int) -> list[Span]:
    """The subtrees whose hashes form PATH(index, D[size]), in proof order (leaf up)."""
    if not 0 <= index < size:
        raise ProofError("leaf index is not in the tree")
    spans: list[Span] = []
    offset, n, m = 0, size, index
    while n > 1:
        k = _split(n)
        if m < k:
            spans.append((offset + k, offset + n))
            n = k
        else:
            spans.append((offset, offset + k))
            offset, m, n = offset + k, m - k, n - k
    spans.reverse()
    return spans


def consistency_spans(size1: int, size2: int) -> list[Span]:
    """The subtrees whose hashes form PROOF(size1, D[size2]), in proof order."""
    if not 0 < size1 <= size2:
        raise ProofError("consistency proof sizes are out of range")
    spans: list[Span] = []
    offset, m, n, complete = 0, size1, size2, True
    while m != n:
        k = _split(n)
        if m <= k:
            spans.append((offset + k, offset + n))
            n = k
        else:
            spans.append((offset, offset + k))
            offset, m, n, complete = offset + k, m - k, n - k, False
    if not complete:
        spans.append((offset, offset + n))
    spans.reverse()
    return spans


def needed(spans: Iterable[Span]) -> set[Node]:
    """Every stored node the hashes of ``spans`` are folded from."""
    return {node for begin, end in spans for node in decompose(begin, end)}


def span_hash(span: Span, nodes: Mapping[Node, bytes]) -> bytes:
    """MTH of the leaves in ``span``: the right fold of its perfect subtrees."""
    parts = decompose(*span)
    try:
        r = nodes[parts[-1]]
        for node in reversed(parts[:-1]):
            r = node_hash(nodes[node], r)
    except KeyError:
        raise ProofError("a subtree hash the proof needs is not stored") from None
    return r


def assemble(spans: Sequence[Span], nodes: Mapping[Node, bytes]) -> list[bytes]:
    """The proof: the hash of each span, in order."""
    return [span_hash(span, nodes) for span in spans]


def append_leaves(
    state: CompactRange, leaves: Iterable[bytes]
) -> tuple[CompactRange, list[tuple[int, int, bytes]]]:
    """Extend ``state`` by ``leaves`` (leaf hashes); also return every subtree it completes.

    The nodes are ``(level, idx, hash)``: one leaf node per leaf, plus one per
    perfect subtree the leaf closes (on average one), which is what the log
    stores so later proofs need no re-hashing.
    """
    stack = list(state.hashes)
    size = state.size
    nodes: list[tuple[int, int, bytes]] = []
    for leaf in leaves:
        h = leaf
        nodes.append((0, size, h))
        carry, level = size, 0
        while carry & 1:
            h = node_hash(stack.pop(), h)
            carry >>= 1
            level += 1
            nodes.append((level, size >> level, h))
        stack.append(h)
        size += 1
    return CompactRange(size, tuple(stack)), nodes
