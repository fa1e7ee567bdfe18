"""RFC 9162 Merkle trees: hashes, proofs, proof verification and the compact range.

Pure functions over bytes, no I/O (RFC 9162 §2.1, SHA-256):

- ``leaf_hash(d) = SHA-256(0x00 || d)``, ``node_hash(l, r) = SHA-256(0x01 || l || r)``;
  the root of the empty tree is ``SHA-256()`` (:data:`EMPTY_ROOT`).
- :func:`inclusion_proof` and :func:`consistency_proof` are the RFC's recursive
  definitions (§2.1.3.1, §2.1.4.1), meant for tests and small trees.
- :func:`verify_inclusion` (§2.1.3.2) and :func:`verify_consistency` (§2.1.4.2)
  follow the RFC's numbered algorithms; every failure is one :class:`ProofError`.
- :class:`CompactRange` is the O(log n) append state: the roots of the perfect
  subtrees that cover leaves ``[0, n)``, largest first.

A proof binds a leaf to a (size, root) pair only when that pair comes from the
same signed checkpoint: the verifiers here never trust a size on its own.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from callvault.errors import ProofError

HASH_SIZE = 32
#: MTH({}) = SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()
#: Sizes and indices are unsigned 64-bit integers, as in RFC 9162's TLS structures.
MAX_TREE_SIZE = 2**64 - 1

_COMPACT_RANGE_VERSION = 1
_COMPACT_RANGE_HEADER = 9  # version byte, then the size as a big-endian uint64
# Two nodes per level of a 64-bit tree bound any consistency proof.
_MAX_CONSISTENCY_PATH = 2 * 64


def leaf_hash(entry: bytes) -> bytes:
    """The RFC 9162 hash of one log entry."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the tree with these leaf hashes (any size, including 0)."""
    level = [_hash_arg(h) for h in leaf_hashes]
    if not level:
        return EMPTY_ROOT
    # Pairing level by level and carrying an odd last node up unchanged builds
    # exactly the left-heavy RFC 9162 tree (split at the largest power of 2 < n).
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) from RFC 9162 §2.1.3.1. O(n log n): for tests and small trees."""
    if not 0 <= _int_arg(index) < len(leaf_hashes):
        raise ProofError("leaf index is not in the tree")
    return _path(index, leaf_hashes)


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int) -> list[bytes]:
    """PROOF(size1, D[n]) from RFC 9162 §2.1.4.1, for ``0 < size1 <= n``.

    O(n log n): for tests and small trees.
    """
    if not 0 < _int_arg(size1) <= len(leaf_hashes):
        raise ProofError("consistency proof sizes are out of range")
    return _subproof(size1, leaf_hashes, complete=True)


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` yields for ``leaf`` at ``index`` in a tree of ``size`` leaves.

    RFC 9162 §2.1.3.2, steps 1-5 (the comparison with a trusted root is left
    to the caller, who MUST take ``size`` and that root from one checkpoint).
    """
    # (1): the leaf must be in the tree.
    if not _int_arg(index) < _int_arg(size):
        raise ProofError("leaf index is not in the tree")
    # (2): fn is the leaf's index, sn the index of the tree's last leaf.
    fn, sn = index, size - 1
    # (3): start from the leaf hash.
    r = _hash_arg(leaf)
    # (4): climb one level per proof element.
    for element in proof:
        p = _hash_arg(element)
        if sn == 0:
            raise ProofError("inclusion proof does not verify")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # (5): the proof must have reached the top of the tree.
    if sn != 0:
        raise ProofError("inclusion proof does not verify")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes
) -> None:
    """Raise :class:`ProofError` unless ``proof`` puts ``leaf`` at ``index`` under ``root_hash``."""
    if not hmac.compare_digest(root_from_inclusion(index, size, leaf, proof), root_hash):
        raise ProofError("inclusion proof does not verify")


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless the ``size2`` tree extends the ``size1`` tree.

    RFC 9162 §2.1.4.2. A proof is defined for ``0 < size1 <= size2``; equal
    sizes need an empty proof and equal roots. The empty tree is a prefix of
    every tree, so callers decide that case without a proof (as
    :func:`callvault.audit.verify.verify_consistent` does).
    """
    if not _int_arg(size1) <= _int_arg(size2):
        raise ProofError("consistency proof sizes are out of range")
    if size1 == 0:
        raise ProofError("consistency proof sizes are out of range")
    if size1 == size2:
        if proof or not hmac.compare_digest(root1, root2):
            raise ProofError("consistency proof does not verify")
        return
    fr, sr, sn = _roots_from_consistency(size1, size2, root1, proof)
    # (7): both roots must match and the path must have reached the top.
    ok_old = hmac.compare_digest(fr, root1)
    ok_new = hmac.compare_digest(sr, root2)
    if sn != 0 or not (ok_old and ok_new):
        raise ProofError("consistency proof does not verify")


def _roots_from_consistency(
    size1: int, size2: int, root1: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes, int]:
    """Steps 1-6 of RFC 9162 §2.1.4.2 for ``0 < size1 < size2``: (fr, sr, sn)."""
    # (1): an empty proof proves nothing; a longer one than 64-bit sizes allow is junk.
    if not proof or len(proof) > _MAX_CONSISTENCY_PATH:
        raise ProofError("consistency proof does not verify")
    path = [_hash_arg(p) for p in proof]
    # (2): when size1 is a power of 2 its root is a node of the path itself.
    if size1 & (size1 - 1) == 0:
        path.insert(0, _hash_arg(root1))
    # (3), (4): skip the levels where the old tree's last node is a right child.
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # (5): both roots start from the first path node.
    fr = sr = path[0]
    # (6): rebuild the old root and the new root side by side.
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof does not verify")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr, sr, sn


@dataclass(frozen=True, slots=True)
class CompactRange:
    """The roots of the perfect subtrees covering leaves ``[0, size)``, largest first.

    One hash per set bit of ``size``, so appending is O(log n) and the state
    is at most 64 hashes. Cannot be built inconsistent with its size.
    """

    size: int = 0
    hashes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= _int_arg(self.size) <= MAX_TREE_SIZE:
            raise ProofError("malformed compact range")
        if len(self.hashes) != self.size.bit_count():
            raise ProofError("malformed compact range")
        for h in self.hashes:
            if type(h) is not bytes or len(h) != HASH_SIZE:
                raise ProofError("malformed compact range")

    def append(self, leaf: bytes) -> CompactRange:
        """The range after one more leaf (given by its leaf hash)."""
        return self.extend((leaf,))

    def extend(self, leaves: Iterable[bytes]) -> CompactRange:
        """The range after appending these leaf hashes in order."""
        stack = list(self.hashes)
        size = self.size
        for leaf in leaves:
            if size == MAX_TREE_SIZE:
                raise ProofError("the tree is full")
            h = _hash_arg(leaf)
            # Merge with the subtrees of equal size: one per trailing 1 bit.
            carry = size
            while carry & 1:
                h = node_hash(stack.pop(), h)
                carry >>= 1
            stack.append(h)
            size += 1
        return CompactRange(size, tuple(stack))

    def root(self) -> bytes:
        """MTH of the first ``size`` leaves."""
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = node_hash(h, r)
        return r

    def to_bytes(self) -> bytes:
        """``0x01 || uint64 size (big-endian) || hashes``."""
        header = bytes([_COMPACT_RANGE_VERSION]) + self.size.to_bytes(8, "big")
        return header + b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactRange:
        """Parse :meth:`to_bytes` output; anything else raises :class:`ProofError`."""
        if len(data) < _COMPACT_RANGE_HEADER or data[0] != _COMPACT_RANGE_VERSION:
            raise ProofError("malformed compact range")
        size = int.from_bytes(data[1:_COMPACT_RANGE_HEADER], "big")
        body = data[_COMPACT_RANGE_HEADER:]
        if len(body) != HASH_SIZE * size.bit_count():
            raise ProofError("malformed compact range")
        hashes = tuple(bytes(body[i : i + HASH_SIZE]) for i in range(0, len(body), HASH_SIZE))
        return cls(size, hashes)


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) <= 1:
        return []
    k = _largest_power_of_two_below(len(d))
    if m < k:
        return [*_path(m, d[:k]), root(d[k:])]
    return [*_path(m - k, d[k:]), root(d[:k])]


def _subproof(m: int, d: Sequence[bytes], *, complete: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if complete else [root(d)]
    k = _largest_power_of_two_below(n)
    if m <= k:
        return [*_subproof(m, d[:k], complete=complete), root(d[k:])]
    return [*_subproof(m - k, d[k:], complete=False), root(d[:k])]


def _int_arg(value: int) -> int:
    # bool is an int subclass; neither it nor a negative or over-wide value is a size.
    if type(value) is not int or not 0 <= value <= MAX_TREE_SIZE:
        raise ProofError("index or size is not an unsigned 64-bit integer")
    return value


def _hash_arg(value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise ProofError("a hash is not 32 bytes")
    return bytes(value)
