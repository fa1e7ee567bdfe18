"""Proofs from stored subtree hashes: the server side of RFC 9162 §2.1.3-2.1.4.

The log stores the hash of every *complete* perfect subtree as it appears
(node ``(level, idx)`` covers leaves ``[idx * 2**level, (idx + 1) * 2**level)``;
level 0 holds the leaf hashes). Any subtree hash a proof needs, perfect or
not, is the right fold of the perfect subtrees that decompose its range, so a
proof for any (index, size) or (size1, size2) up to the current size needs
O(log² n) stored hashes and one read.

Where they are stored: leaf ``i`` completes its own node at level 0 and one
more node per trailing 1 bit of ``i`` (the subtrees it closes), so the log
keeps them *in entry i's row*, lowest level first: node ``(level, idx)`` is
the 32 bytes at offset ``32 * level`` of the hashes of entry
``((idx + 1) << level) - 1`` (:func:`node_location`). One row per entry, no
separate node table to write on the append path.

Pure functions, no I/O: the caller fetches :func:`needed` nodes and passes
them to :func:`assemble`. Tested against the recursive definitions in
:mod:`callvault.audit.merkle` for every index of trees of sizes 1-64.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from callvault.audit.merkle import HASH_SIZE, CompactRange, node_hash
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


def append_leaves(state: CompactRange, leaves: Iterable[bytes]) -> tuple[CompactRange, list[bytes]]:
    """Extend ``state`` by ``leaves`` (leaf hashes); also return what each leaf's row keeps.

    For each leaf: its hash, then the hash of every perfect subtree it
    completes, lowest level first (32 bytes each; see the module docstring).
    """
    stack = list(state.hashes)
    size = state.size
    rows: list[bytes] = []
    for leaf in leaves:
        h = leaf
        row = [h]
        carry = size
        while carry & 1:
            h = node_hash(stack.pop(), h)
            carry >>= 1
            row.append(h)
        stack.append(h)
        rows.append(b"".join(row))
        size += 1
    return CompactRange(size, tuple(stack)), rows


def node_location(node: Node) -> tuple[int, int]:
    """(entry index, byte offset) of a stored node's hash."""
    level, idx = node
    return ((idx + 1) << level) - 1, HASH_SIZE * level


def nodes_from_rows(wanted: Iterable[Node], rows: Mapping[int, bytes]) -> dict[Node, bytes]:
    """The ``wanted`` nodes cut from entry rows' hashes (missing ones are left out)."""
    out: dict[Node, bytes] = {}
    for node in wanted:
        index, offset = node_location(node)
        blob = rows.get(index)
        if blob is not None and len(blob) >= offset + HASH_SIZE:
            out[node] = blob[offset : offset + HASH_SIZE]
    return out


def rows_needed(wanted: Iterable[Node]) -> set[int]:
    """The entry indices whose rows hold the ``wanted`` nodes."""
    return {node_location(node)[0] for node in wanted}
