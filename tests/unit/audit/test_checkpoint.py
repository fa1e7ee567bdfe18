"""Checkpoints (c2sp.org/tlog-checkpoint) and the offline verifier built on them.

The first half pins the checkpoint text format: round trips, the spec's own
example, every malformed form we know of, and a fuzzed parser that may only
raise :class:`NoteError`. The second half drives :mod:`callvault.audit.verify`
through the tampering a verifier exists to catch, each test named for the attack.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.audit.checkpoint import MAX_ORIGIN_CHARS, Checkpoint
from callvault.audit.merkle import (
    EMPTY_ROOT,
    MAX_TREE_SIZE,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
)
from callvault.audit.note import Signer, parse_note, sign
from callvault.audit.verify import (
    verify_checkpoint,
    verify_consistent,
    verify_entries,
    verify_entry,
)
from callvault.crypto.hazmat import Ed25519SigningKey
from callvault.errors import NoteError, ProofError

# c2sp.org/tlog-checkpoint, the example at the top of tlog-checkpoint.md.
SPEC_CHECKPOINT_NOTE = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "\u2014 example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)

ORIGIN = "audit.callvault.example/tenant/ten_a"
HASH = leaf_hash(b"some entry")
HASH_B64 = base64.b64encode(HASH).decode()


def _text(origin: str = ORIGIN, size: str = "5", root_b64: str = HASH_B64, *ext: str) -> str:
    return "".join(line + "\n" for line in (origin, size, root_b64, *ext))


# --- the format -------------------------------------------------------------------------------


def test_round_trip() -> None:
    cp = Checkpoint(ORIGIN, 5, HASH, ("ext one", "ext \u00e9 two"))
    assert cp.encode() == _text(ORIGIN, "5", HASH_B64, "ext one", "ext \u00e9 two")
    assert Checkpoint.parse(cp.encode()) == cp


def test_the_spec_example_checkpoint_parses() -> None:
    note = parse_note(SPEC_CHECKPOINT_NOTE.encode())
    cp = Checkpoint.parse(note.text)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert cp.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.extensions == ()
    assert cp.encode() == note.text
    assert note.signatures[0].name == cp.origin


def test_the_empty_tree_has_exactly_one_root() -> None:
    empty = Checkpoint(ORIGIN, 0, EMPTY_ROOT)
    assert Checkpoint.parse(empty.encode()) == empty
    with pytest.raises(NoteError):
        Checkpoint(ORIGIN, 0, HASH)
    with pytest.raises(NoteError):
        Checkpoint.parse(_text(ORIGIN, "0", HASH_B64))


def test_the_largest_size_is_2_to_the_64_minus_1() -> None:
    assert Checkpoint.parse(_text(size=str(MAX_TREE_SIZE))).size == MAX_TREE_SIZE
    with pytest.raises(NoteError):
        Checkpoint.parse(_text(size=str(MAX_TREE_SIZE + 1)))


def _noncanonical(b64: str) -> str:
    # 32 bytes leave two padding bits in the last character before "="; set one.
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".index(b64[-2])
    return (
        b64[:-2]
        + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[last | 1]
        + "="
    )


BAD_TEXTS = {
    "no-final-newline": _text()[:-1],
    "two-lines": f"{ORIGIN}\n5\n",
    "blank-line-first": "\n" + _text(),
    "blank-line-inside": f"{ORIGIN}\n\n5\n{HASH_B64}\n",
    "blank-extension": _text(ORIGIN, "5", HASH_B64, "", "ext"),
    "trailing-blank-line": _text() + "\n",
    "crlf": _text().replace("\n", "\r\n"),
    "control-in-extension": _text(ORIGIN, "5", HASH_B64, "ext\x01"),
    "size-leading-zero": _text(size="05"),
    "size-double-zero": _text(size="00"),
    "size-plus": _text(size="+5"),
    "size-minus": _text(size="-5"),
    "size-space": _text(size=" 5"),
    "size-hex": _text(size="0x5"),
    "size-underscore": _text(size="5_0"),
    "size-decimal-point": _text(size="5.0"),
    "size-arabic-indic-digit": _text(size="\u0665"),
    "size-fullwidth-digit": _text(size="\uff15"),
    "size-empty": f"{ORIGIN}\n\n{HASH_B64}\n",
    "size-21-digits": _text(size="1" + "0" * 20),
    "root-not-base64": _text(root_b64="!" * 44),
    "root-unpadded": _text(root_b64=HASH_B64.rstrip("=")),
    "root-url-safe": _text(root_b64=base64.urlsafe_b64encode(b"\xff" * 32).decode()),
    "root-non-canonical": _text(root_b64=_noncanonical(HASH_B64)),
    "root-31-bytes": _text(root_b64=base64.b64encode(HASH[:31]).decode()),
    "root-33-bytes": _text(root_b64=base64.b64encode(HASH + b"\x00").decode()),
    "root-hex": _text(root_b64=HASH.hex()),
    "origin-space": _text(origin="example.com/a log"),
    "origin-plus": _text(origin="example.com/a+log"),
    "origin-tab": _text(origin="example.com/a\tlog"),
    "origin-nbsp": _text(origin="example.com/a\u00a0log"),
    "origin-ideographic-space": _text(origin="example.com/a\u3000log"),
    "origin-too-long": _text(origin="a" * (MAX_ORIGIN_CHARS + 1)),
}


@pytest.mark.parametrize("text", BAD_TEXTS.values(), ids=BAD_TEXTS.keys())
def test_malformed_checkpoints_are_rejected(text: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


def test_the_non_canonical_root_really_decodes_to_the_same_hash() -> None:
    assert base64.b64decode(_noncanonical(HASH_B64)) == HASH


@pytest.mark.parametrize(
    ("origin", "size", "root_hash", "extensions"),
    [
        ("", 1, HASH, ()),
        ("a b", 1, HASH, ()),
        (ORIGIN, -1, HASH, ()),
        (ORIGIN, True, HASH, ()),
        (ORIGIN, MAX_TREE_SIZE + 1, HASH, ()),
        (ORIGIN, 1, HASH[:31], ()),
        (ORIGIN, 1, bytearray(HASH), ()),
        (ORIGIN, 1, HASH, ("",)),
        (ORIGIN, 1, HASH, ("two\nlines",)),
        (ORIGIN, 1, HASH, ["a list"]),
    ],
)
def test_a_checkpoint_cannot_be_built_invalid(
    origin: str, size: int, root_hash: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(NoteError):
        Checkpoint(origin, size, root_hash, extensions)


FUZZ = settings(max_examples=1000, deadline=None)


@FUZZ
@given(st.text(max_size=200))
def test_the_parser_raises_only_note_error_and_accepts_one_spelling(text: str) -> None:
    try:
        cp = Checkpoint.parse(text)
    except NoteError:
        return
    assert cp.encode() == text


@FUZZ
@given(
    size=st.integers(1, MAX_TREE_SIZE),
    root_hash=st.binary(min_size=32, max_size=32),
    extensions=st.lists(st.text(min_size=1).filter(lambda s: all(c >= " " for c in s))),
)
def test_any_valid_checkpoint_round_trips(
    size: int, root_hash: bytes, extensions: list[str]
) -> None:
    try:
        cp = Checkpoint(ORIGIN, size, root_hash, tuple(extensions))
    except NoteError:  # an extension with a lone surrogate has no UTF-8 form
        return
    assert Checkpoint.parse(cp.encode()) == cp


# --- the verifier, attack by attack --------------------------------------------------------

LOG_KEY = Signer(ORIGIN, Ed25519SigningKey.generate())
LOG = LOG_KEY.verifier()
ENTRIES = [f'{{"v":1,"idx":{i},"action":"read"}}'.encode() for i in range(40)]


def _checkpoint(entries: list[bytes]) -> Checkpoint:
    return Checkpoint(ORIGIN, len(entries), root([leaf_hash(e) for e in entries]))


def _signed(cp: Checkpoint, signer: Signer = LOG_KEY) -> bytes:
    return sign(cp.encode(), signer)


def test_an_honest_bundle_verifies() -> None:
    cp = verify_checkpoint(_signed(_checkpoint(ENTRIES)), LOG)
    verify_entries(ENTRIES, cp)
    for i in range(len(ENTRIES)):
        verify_entry(ENTRIES[i], i, cp, inclusion_proof([leaf_hash(e) for e in ENTRIES], i))


def test_an_empty_log_verifies() -> None:
    cp = verify_checkpoint(_signed(Checkpoint(ORIGIN, 0, EMPTY_ROOT)), LOG)
    verify_entries([], cp)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda es: [*es[:7], b'{"v":1,"idx":7,"action":"none"}', *es[8:]],
        lambda es: es[:7] + es[8:],
        lambda es: [*es[:7], es[8], es[7], *es[9:]],
        lambda es: es[:-1],
        lambda es: [*es, es[-1]],
        lambda es: list(reversed(es)),
    ],
    ids=[
        "edited-entry",
        "deleted-entry",
        "reordered-entries",
        "truncated-log",
        "extra-entry",
        "reversed",
    ],
)
def test_tampered_entries_are_detected(tamper: Callable[[list[bytes]], list[bytes]]) -> None:
    cp = verify_checkpoint(_signed(_checkpoint(ENTRIES)), LOG)
    with pytest.raises(ProofError):
        verify_entries(tamper(ENTRIES), cp)


def test_forked_history_re_signed_with_another_key_is_rejected() -> None:
    forked = [*ENTRIES[:10], b'{"v":1,"idx":10,"action":"forged"}', *ENTRIES[11:]]
    impostor = Signer(ORIGIN, Ed25519SigningKey.generate())
    with pytest.raises(NoteError):
        verify_checkpoint(_signed(_checkpoint(forked), impostor), LOG)


def test_forked_history_signed_by_the_log_key_is_inconsistent() -> None:
    old = _checkpoint(ENTRIES[:20])
    forked = [*ENTRIES[:10], b'{"v":1,"idx":10,"action":"forged"}', *ENTRIES[11:]]
    new = _checkpoint(forked)
    with pytest.raises(ProofError):
        verify_consistent(old, new, consistency_proof([leaf_hash(e) for e in forked], 20))
    with pytest.raises(ProofError):  # same size, different root: a split view
        verify_consistent(old, _checkpoint(forked[:20]), [])


def test_a_stale_checkpoint_presented_as_newer_is_rejected() -> None:
    hashes = [leaf_hash(e) for e in ENTRIES]
    new, stale = _checkpoint(ENTRIES), _checkpoint(ENTRIES[:20])
    with pytest.raises(ProofError):
        verify_consistent(new, stale, consistency_proof(hashes, 20))


def test_consistent_checkpoints_verify() -> None:
    hashes = [leaf_hash(e) for e in ENTRIES]
    for m in range(len(ENTRIES) + 1):
        old = _checkpoint(ENTRIES[:m])
        proof = consistency_proof(hashes, m) if m else []
        verify_consistent(old, _checkpoint(ENTRIES), proof)
    with pytest.raises(ProofError):  # the empty tree needs no proof, so none is accepted
        verify_consistent(_checkpoint([]), _checkpoint(ENTRIES), [hashes[0]])


def test_a_proof_for_a_wrong_size_is_rejected() -> None:
    hashes = [leaf_hash(e) for e in ENTRIES]
    cp = _checkpoint(ENTRIES)
    with pytest.raises(ProofError):
        verify_entry(ENTRIES[3], 3, cp, inclusion_proof(hashes[:33], 3))
    with pytest.raises(ProofError):
        verify_consistent(_checkpoint(ENTRIES[:20]), cp, consistency_proof(hashes[:39], 20))
    with pytest.raises(ProofError):
        verify_consistent(_checkpoint(ENTRIES[:20]), cp, consistency_proof(hashes, 21))


def test_an_entry_at_the_wrong_index_is_rejected() -> None:
    hashes = [leaf_hash(e) for e in ENTRIES]
    cp = _checkpoint(ENTRIES)
    with pytest.raises(ProofError):
        verify_entry(ENTRIES[4], 3, cp, inclusion_proof(hashes, 3))
    with pytest.raises(ProofError):
        verify_entry(ENTRIES[3], 40, cp, inclusion_proof(hashes, 3))


def test_another_logs_checkpoint_is_rejected() -> None:
    # One key, two logs: the origin binds a checkpoint to its log.
    other = Checkpoint("audit.callvault.example/tenant/ten_b", 40, _checkpoint(ENTRIES).root_hash)
    with pytest.raises(NoteError):
        verify_checkpoint(_signed(other), LOG)
    assert verify_checkpoint(_signed(other), LOG, origin=other.origin) == other
    with pytest.raises(ProofError):
        verify_consistent(_checkpoint(ENTRIES[:5]), other, [])


def test_signatures_appended_after_a_blank_line_do_not_verify() -> None:
    note = _signed(_checkpoint(ENTRIES))
    evil = Signer("evil.example", Ed25519SigningKey.generate())
    appended = note + b"\n" + sign("x\n", evil).split(b"\n\n")[1]
    with pytest.raises(NoteError):
        verify_checkpoint(appended, LOG)
    with pytest.raises(NoteError):
        verify_checkpoint(appended, evil.verifier(), origin=ORIGIN)


def test_a_flipped_signature_bit_is_rejected() -> None:
    note = bytearray(_signed(_checkpoint(ENTRIES)))
    note[-10] ^= 0x01
    with pytest.raises(NoteError):
        verify_checkpoint(bytes(note), LOG)


def test_witness_cosignatures_are_ignored() -> None:
    witness = Signer("witness.example/w1", Ed25519SigningKey.generate())
    note = sign(_checkpoint(ENTRIES).encode(), LOG_KEY, witness)
    assert verify_checkpoint(note, LOG) == _checkpoint(ENTRIES)
