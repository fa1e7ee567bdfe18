"""Offline verification of a tenant's audit log: pure functions, usable as a library.

Values in, values out, no I/O: the caller reads the bundle (entries, signed
checkpoint, verifier key) and passes the bytes. Failures raise
:class:`NoteError` (signature or format) or :class:`ProofError` (the Merkle
tree does not match), each with a short fixed message.

A typical check of an exported bundle, given a pinned earlier checkpoint::

    verifier = Verifier.from_key_string(published_key)
    cp = verify_checkpoint(note_bytes, verifier)
    verify_entries(entries, cp)
    verify_consistent(pinned, cp, proof)
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence

from callvault.audit.checkpoint import Checkpoint
from callvault.audit.merkle import (
    CompactRange,
    leaf_hash,
    root_from_inclusion,
    verify_consistency,
)
from callvault.audit.note import MAX_NOTE_BYTES, Verifier, open_note
from callvault.errors import NoteError, ProofError


def verify_checkpoint(
    note: bytes,
    verifier: Verifier,
    *,
    origin: str | None = None,
    max_bytes: int = MAX_NOTE_BYTES,
) -> Checkpoint:
    """The checkpoint in ``note``, once it is signed by ``verifier`` for the expected log.

    1. Open the signed note: at least one signature MUST verify under
       ``verifier``; a bad signature under it rejects the note; signatures
       of other keys (witnesses, a rotated key) are ignored.
    2. Parse the text as a checkpoint (strict form).
    3. The origin MUST equal ``origin``, or the verifier's key name when
       ``origin`` is not given, so one log's checkpoint cannot stand in for
       another's even when one key signs both.
    """
    # (1):
    text = open_note(note, [verifier], max_bytes=max_bytes)
    # (2):
    checkpoint = Checkpoint.parse(text)
    # (3):
    expected = verifier.name if origin is None else origin
    if checkpoint.origin != expected:
        raise NoteError("checkpoint is for another log")
    return checkpoint


def verify_entries(entries: Iterable[bytes], checkpoint: Checkpoint) -> None:
    """Raise :class:`ProofError` unless ``entries`` are exactly the log the checkpoint commits to.

    ``entries`` are the raw entries in index order: entry ``i`` of the
    caller's sequence is leaf ``i``, so a gap, a reordering, a deletion, an
    edit or an extra entry changes the root or the count.

    1. Hash every entry as an RFC 9162 leaf and fold it into a compact range
       (O(log n) memory, so a million-entry bundle streams).
    2. The number of entries MUST equal the checkpoint's tree size.
    3. The re-derived root MUST equal the checkpoint's root hash.
    """
    # (1):
    state = CompactRange().extend(leaf_hash(e) for e in entries)
    # (2):
    if state.size != checkpoint.size:
        raise ProofError("entry count does not match the checkpoint")
    # (3):
    if not hmac.compare_digest(state.root(), checkpoint.root_hash):
        raise ProofError("entries do not match the checkpoint root")


def verify_entry(entry: bytes, index: int, checkpoint: Checkpoint, proof: Sequence[bytes]) -> None:
    """Raise :class:`ProofError` unless ``proof`` puts ``entry`` at ``index`` in the checkpoint.

    1. Hash the entry as an RFC 9162 leaf.
    2. Run the inclusion-proof algorithm with the checkpoint's own size (a
       size from anywhere else proves nothing).
    3. The result MUST equal the checkpoint's root hash.
    """
    # (1), (2):
    derived = root_from_inclusion(index, checkpoint.size, leaf_hash(entry), proof)
    # (3):
    if not hmac.compare_digest(derived, checkpoint.root_hash):
        raise ProofError("inclusion proof does not verify")


def verify_consistent(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Raise :class:`ProofError` unless ``new`` is an append-only extension of ``old``.

    Both checkpoints MUST already have passed :func:`verify_checkpoint`.

    1. Both MUST be of the same log (same origin).
    2. The new tree MUST NOT be smaller (a rollback or a stale checkpoint
       presented as newer).
    3. The empty tree is a prefix of every tree: nothing to prove, and the
       proof MUST be empty.
    4. Otherwise the RFC 9162 consistency proof MUST verify between the two
       (size, root) pairs; equal sizes with different roots are a fork.
    """
    # (1):
    if old.origin != new.origin:
        raise ProofError("checkpoints are of different logs")
    # (2):
    if new.size < old.size:
        raise ProofError("the newer checkpoint has fewer entries")
    # (3):
    if old.size == 0:
        if proof:
            raise ProofError("consistency proof does not verify")
        return
    # (4):
    verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
