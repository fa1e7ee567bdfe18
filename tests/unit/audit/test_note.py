"""C2SP signed notes: the reference example, round trips, every rejection, and a fuzzed parser.

The PeterNeumann and EnochRoot keys, texts and signatures are the published
example of golang.org/x/mod/sumdb/note (its package documentation and
``note_test.go``, BSD-3-Clause), the reference implementation of
c2sp.org/signed-note. The spec's own example notes (the Quasimodo poem in
``signed-note.md``) come without a verifier key, so they are parsed, not opened.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.audit.note import (
    MAX_NOTE_BYTES,
    MAX_SIGNATURES,
    NoteSignature,
    SignedNote,
    Signer,
    Verifier,
    ed25519_key_id,
    is_key_name,
    open_note,
    parse_note,
    sign,
)
from callvault.crypto.hazmat import Ed25519SigningKey
from callvault.errors import NoteError

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
# "PRIVATE+KEY+PeterNeumann+c74f20a3+" followed by base64(0x01 || seed).
PETER_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_B64 = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
PETER_SIG = f"\u2014 PeterNeumann {PETER_B64}\n"
ENOCH_SIG = (
    "\u2014 EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
NOTE = TEXT + "\n" + PETER_SIG

# c2sp.org/signed-note, the example at the top of signed-note.md.
SPEC_NOTE = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed \u00e8 subito sera.\n"
    "\n"
    "\u2014 quasimodo.example/salvatore "
    "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)

PETER = Verifier.from_key_string(PETER_VKEY)
ENOCH = Verifier.from_key_string(ENOCH_VKEY)


def _opened(note: bytes, verifiers: list[Verifier]) -> str | None:
    """The opened text, or None on NoteError; any other exception fails the test."""
    message = ""
    try:
        return open_note(note, verifiers)
    except NoteError as exc:
        message = exc.message
    # Short fixed messages: nothing from the input (here, the key name) leaks into them.
    assert len(message) < 60
    assert "Peter" not in message
    return None


# --- the reference example ---------------------------------------------------------------


def test_the_reference_example_note_verifies() -> None:
    assert open_note(NOTE.encode(), [PETER]) == TEXT


def test_the_reference_key_string_is_parsed_exactly() -> None:
    assert PETER.name == "PeterNeumann"
    assert PETER.key_id == 0xC74F20A3
    assert PETER.key_string() == PETER_VKEY
    assert ed25519_key_id("PeterNeumann", PETER.public_key) == 0xC74F20A3


def test_signing_with_the_reference_key_reproduces_the_note_byte_for_byte() -> None:
    signer = Signer("PeterNeumann", Ed25519SigningKey.from_seed(PETER_SEED))
    assert signer.key_id == PETER.key_id
    assert signer.verifier().key_string() == PETER_VKEY
    assert sign(TEXT, signer) == NOTE.encode()


def test_the_spec_example_note_parses() -> None:
    parsed = parse_note(SPEC_NOTE.encode())
    assert parsed.text.endswith("ed \u00e8 subito sera.\n")
    assert "\n\n" in parsed.text  # the text's own blank line stays in the text
    (sig,) = parsed.signatures
    assert sig.name == "quasimodo.example/salvatore"
    assert len(sig.signature) == 64
    assert parsed.encode() == SPEC_NOTE.encode()
    with pytest.raises(NoteError):  # signed by a key we do not know
        open_note(SPEC_NOTE.encode(), [PETER])


def test_verifier_key_manglings_are_rejected() -> None:
    # Every proper substring and every single-byte change (golang.org/x/mod TestNewVerifier).
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(NoteError):
                    Verifier.from_key_string(PETER_VKEY[i:j])
    for i in range(len(PETER_VKEY)):
        changed = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(NoteError):
            Verifier.from_key_string(changed)


@pytest.mark.parametrize(
    "vkey",
    [
        # Wrong key length and unknown algorithm, each with a matching key id.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+0xc74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "",
    ],
)
def test_malformed_verifier_keys_are_rejected(vkey: str) -> None:
    with pytest.raises(NoteError):
        Verifier.from_key_string(vkey)


# --- signatures from known and unknown keys -----------------------------------------------


def test_a_note_needs_one_signature_from_a_known_key() -> None:
    both = (TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode()
    assert open_note(both, [PETER]) == TEXT
    assert open_note(both, [ENOCH]) == TEXT
    assert open_note(both, [PETER, ENOCH]) == TEXT
    with pytest.raises(NoteError):
        open_note(both, [])


def test_signatures_sharing_only_a_name_or_only_an_id_are_ignored() -> None:
    forged = base64.b64encode((0xC74F20A4).to_bytes(4, "big") + bytes(64)).decode()
    same_name = f"\u2014 PeterNeumann {forged}\n"
    same_id = f"\u2014 PeterNeuman {PETER_B64}\n"
    note = (TEXT + "\n" + same_name + same_id + PETER_SIG).encode()
    assert open_note(note, [PETER]) == TEXT
    with pytest.raises(NoteError):  # and they never count as the known key's signature
        open_note((TEXT + "\n" + same_name + same_id).encode(), [PETER])


def test_a_bad_signature_from_a_known_key_rejects_the_whole_note() -> None:
    bad = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(NoteError):
        open_note((TEXT + "\n" + bad).encode(), [PETER])
    # Even next to a good one: a log's own key never signs wrongly, so this is tampering.
    with pytest.raises(NoteError):
        open_note((TEXT + "\n" + PETER_SIG + bad).encode(), [PETER])


def test_a_repeated_verifier_is_harmless() -> None:
    assert open_note(NOTE.encode(), [PETER, PETER, ENOCH]) == TEXT


def test_two_keys_under_one_name_and_key_id_are_refused() -> None:
    # Simulates a 32-bit key id collision: which key to trust would be ambiguous.
    twin = Verifier("PeterNeumann", ENOCH.public_key)
    object.__setattr__(twin, "_key_id", PETER.key_id)
    with pytest.raises(NoteError):
        open_note(NOTE.encode(), [PETER, twin])


def test_an_edited_text_does_not_verify() -> None:
    with pytest.raises(NoteError):
        open_note(NOTE.replace("cryptography", "cryptographY").encode(), [PETER])


# --- round trips ---------------------------------------------------------------------------


def test_sign_then_open_round_trips() -> None:
    a = Signer("log.example/a", Ed25519SigningKey.generate())
    b = Signer("witness.example/b", Ed25519SigningKey.generate())
    text = "line one\n\nline three after a blank line\n"
    note = sign(text, a, b)
    assert open_note(note, [a.verifier()]) == text
    assert open_note(note, [b.verifier()]) == text
    assert Verifier.from_key_string(a.verifier().key_string()).public_key == (
        a.verifier().public_key
    )
    parsed = parse_note(note)
    assert [s.name for s in parsed.signatures] == ["log.example/a", "witness.example/b"]
    assert parsed.encode() == note


def test_the_spec_minimum_of_16_and_our_maximum_of_signatures() -> None:
    assert MAX_SIGNATURES >= 16
    many = (TEXT + "\n" + PETER_SIG * MAX_SIGNATURES).encode()
    assert open_note(many, [PETER]) == TEXT
    with pytest.raises(NoteError):
        open_note((TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1)).encode(), [PETER])
    with pytest.raises(NoteError):
        parse_note((TEXT + "\n" + PETER_SIG * 3).encode(), max_signatures=2)


def test_oversized_notes_are_rejected() -> None:
    filler = ("x" * 99 + "\n") * (MAX_NOTE_BYTES // 100)
    with pytest.raises(NoteError):
        open_note((filler + TEXT + "\n" + PETER_SIG).encode(), [PETER])
    with pytest.raises(NoteError):
        parse_note(NOTE.encode(), max_bytes=len(NOTE.encode()) - 1)
    assert parse_note(NOTE.encode(), max_bytes=len(NOTE.encode())).text == TEXT


# --- malformed notes -------------------------------------------------------------------------

BAD_NOTES = {
    # golang.org/x/mod/sumdb/note TestOpen, "Invalid encoded message syntax".
    "text-only": TEXT.encode(),
    "no-signature-lines": (TEXT + "\n").encode(),
    "unterminated-signature": (TEXT + "\n" + PETER_SIG[:-1]).encode(),
    "control-character": ("\x01" + NOTE).encode(),
    "invalid-utf8": b"\xff" + NOTE.encode(),
    "space-in-key-name": (TEXT + "\n\u2014 Bad Name " + PETER_B64 + "\n").encode(),
    "line-after-signatures": (NOTE + "Unexpected line.\n").encode(),
    # Ours.
    "no-blank-line": (TEXT + PETER_SIG).encode(),
    "blank-line-after-signatures": (NOTE + "\n").encode(),
    "empty-text": ("\n\n" + PETER_SIG).encode(),
    "blank-text": ("\n\n\n" + PETER_SIG).encode(),
    "carriage-return": NOTE.replace("\n", "\r\n").encode(),
    "tab": ("\t" + NOTE).encode(),
    "nul": NOTE.replace("problem,", "problem\x00").encode(),
    "overlong-utf8": b"\xc0\xaf" + NOTE.encode(),
    "encoded-surrogate": b"\xed\xa0\x80" + NOTE.encode(),
    "truncated-utf8": NOTE.encode()[:-3] + b"\xe2\x80",
    "hyphen-not-em-dash": (TEXT + "\n- PeterNeumann " + PETER_B64 + "\n").encode(),
    "no-space-after-dash": (TEXT + "\n\u2014PeterNeumann " + PETER_B64 + "\n").encode(),
    "no-signature": (TEXT + "\n\u2014 PeterNeumann\n").encode(),
    "empty-signature": (TEXT + "\n\u2014 PeterNeumann \n").encode(),
    "two-spaces": (TEXT + "\n\u2014 PeterNeumann  " + PETER_B64 + "\n").encode(),
    "trailing-space": (TEXT + "\n\u2014 PeterNeumann " + PETER_B64 + " \n").encode(),
    "plus-in-name": (TEXT + "\n\u2014 Peter+Neumann " + PETER_B64 + "\n").encode(),
    "nbsp-in-name": (TEXT + "\n\u2014 Peter\u00a0Neumann " + PETER_B64 + "\n").encode(),
    "empty-name": (TEXT + "\n\u2014  " + PETER_B64 + "\n").encode(),
    "unpadded-base64": (TEXT + "\n\u2014 PeterNeumann " + PETER_B64[:-1] + "\n").encode(),
    # Same bytes, but a padding bit set: only one spelling of each signature is accepted.
    "non-canonical-base64": (TEXT + "\n\u2014 PeterNeumann " + PETER_B64[:-2] + "N=\n").encode(),
    "url-safe-base64": (
        TEXT + "\n\u2014 PeterNeumann " + PETER_B64.replace("/", "_") + "\n"
    ).encode(),
    "key-id-only": (TEXT + "\n\u2014 PeterNeumann x08gow==\n").encode(),
}


@pytest.mark.parametrize("note", BAD_NOTES.values(), ids=BAD_NOTES.keys())
def test_malformed_notes_are_rejected(note: bytes) -> None:
    with pytest.raises(NoteError):
        open_note(note, [PETER])


def test_the_padding_bits_case_really_decodes_to_the_same_bytes() -> None:
    assert base64.b64decode(PETER_B64[:-2] + "N=") == base64.b64decode(PETER_B64)


@pytest.mark.parametrize(
    "text", ["", "\n", "\n\n", "no newline", "ctrl\x07\n", "cr\r\n", "surrogate \ud800\n"]
)
def test_texts_that_cannot_be_signed_are_refused(text: str) -> None:
    signer = Signer("PeterNeumann", Ed25519SigningKey.from_seed(PETER_SEED))
    with pytest.raises(NoteError):
        sign(text, signer)


def test_sign_needs_a_signer() -> None:
    with pytest.raises(NoteError):
        sign(TEXT)


@pytest.mark.parametrize(
    "name", ["", "a b", "a+b", "a\u00a0b", "a\u2003b", "a\u3000b", "a\nb", "a\x01b", "\ud800"]
)
def test_bad_key_names_are_refused(name: str) -> None:
    assert not is_key_name(name)
    with pytest.raises(NoteError):
        Signer(name, Ed25519SigningKey.generate())
    with pytest.raises(NoteError):
        Verifier(name, PETER.public_key)


def test_malformed_values_cannot_be_built() -> None:
    with pytest.raises(NoteError):
        Verifier("PeterNeumann", PETER.public_key[:31])
    with pytest.raises(NoteError):
        NoteSignature("PeterNeumann", 2**32, b"sig")
    with pytest.raises(NoteError):
        NoteSignature("PeterNeumann", 1, b"")
    with pytest.raises(NoteError):
        SignedNote(TEXT, ())
    with pytest.raises(NoteError):
        SignedNote("no newline", (NoteSignature("PeterNeumann", 1, b"s"),))


def test_no_key_material_in_reprs() -> None:
    signer = Signer("PeterNeumann", Ed25519SigningKey.from_seed(PETER_SEED))
    assert PETER_SEED.hex() not in repr(signer)
    assert "c74f20a3" in repr(signer)


# --- fuzz -------------------------------------------------------------------------------------

FUZZ = settings(max_examples=1000, deadline=None)
VALID = (TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode()


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_raise_only_note_error(data: bytes) -> None:
    assert _opened(data, [PETER]) is None


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete"]), st.integers(0, 10**6), st.binary()
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_notes_open_to_the_signed_text_or_not_at_all(
    ops: list[tuple[str, int, bytes]],
) -> None:
    note = bytearray(VALID)
    for op, where, blob in ops:
        at = where % (len(note) + 1)
        if op == "flip" and at < len(note):
            note[at] ^= blob[0] if blob else 0x80
        elif op == "insert":
            note[at:at] = blob[:8]
        else:
            del note[at : at + 1 + len(blob) % 8]
    assert _opened(bytes(note), [PETER]) in (None, TEXT)


@FUZZ
@given(st.text(max_size=200))
def test_any_text_either_round_trips_or_is_refused(text: str) -> None:
    signer = Signer("PeterNeumann", Ed25519SigningKey.from_seed(PETER_SEED))
    try:
        note = sign(text, signer)
    except NoteError:
        return
    assert open_note(note, [PETER]) == text


@FUZZ
@given(st.text(max_size=120))
def test_verifier_key_parser_raises_only_note_error(vkey: str) -> None:
    try:
        verifier = Verifier.from_key_string(vkey)
    except NoteError:
        return
    assert verifier.key_string() == vkey
