"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys: parse, format, sign, open.

Pure functions, no I/O. A signed note is a text ending in a newline, a blank
line, then signature lines ``— <key name> base64(key id (4 bytes) || signature)``.
The signed bytes are the text including its final newline, without the blank
line. An Ed25519 key id is ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``
and a verifier key is written ``<name>+<key id as 8 lowercase hex>+base64(0x01 || public key)``
(the golang.org/x/mod/sumdb/note form).

Every failure raises :class:`NoteError` with a short fixed message.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from callvault.crypto.hazmat import (
    ED25519_PUBLIC_KEY_BYTES,
    Ed25519SigningKey,
    Ed25519VerifyingKey,
)
from callvault.errors import CryptoError, NoteError

#: A checkpoint with a few dozen cosignatures, even post-quantum ones, fits easily.
MAX_NOTE_BYTES = 128 * 1024
#: The spec requires accepting at least 16; golang.org/x/mod/sumdb/note stops at 100.
MAX_SIGNATURES = 100
#: The signature type byte the spec assigns to Ed25519.
ED25519_TYPE = 0x01

_SIG_PREFIX = "\u2014 "  # em dash, space
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}", re.ASCII)
_HEX8 = re.compile(r"[0-9a-f]{8}", re.ASCII)
# The Unicode White_Space property, spelled out so it does not drift with Python's tables.
_SPACES = frozenset(
    (
        *map(chr, range(0x09, 0x0E)),
        *" \x85\xa0\u1680",
        *map(chr, range(0x2000, 0x200B)),
        *"\u2028\u2029\u202f\u205f\u3000",
    )
)


def is_key_name(name: str) -> bool:
    """A key name: non-empty, no Unicode space, no ``+``, no control character."""
    return (
        bool(name)
        and "+" not in name
        and not any(c in _SPACES or c.isspace() or _is_control(c) for c in name)
        and _encodable(name)
    )


def b64decode_strict(text: str) -> bytes | None:
    """Standard base64 (RFC 4648 §4) in its one canonical spelling, or None."""
    if not text or len(text) % 4 or not _B64.fullmatch(text):
        return None
    raw = base64.b64decode(text, validate=True)
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def ed25519_key_id(name: str, public_key: bytes) -> int:
    """The key id the spec defines for an Ed25519 key, as an unsigned 32-bit integer."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ED25519_TYPE]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, key id, and the signature bytes after the id."""

    name: str
    key_id: int
    signature: bytes

    def __post_init__(self) -> None:
        if not is_key_name(self.name) or type(self.key_id) is not int:
            raise NoteError("malformed signature line")
        if not 0 <= self.key_id < 2**32 or not self.signature:
            raise NoteError("malformed signature line")

    def line(self) -> str:
        blob = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(blob).decode('ascii')}\n"


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A note text and its signatures (none of them checked yet)."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        _check_text(self.text)
        if not self.signatures:
            raise NoteError("note has no signature lines")

    def encode(self) -> bytes:
        """The note in its wire form."""
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()


class Verifier:
    """One trusted Ed25519 key under a name."""

    __slots__ = ("_key", "_key_id", "_name")

    def __init__(self, name: str, public_key: bytes) -> None:
        if not is_key_name(name) or len(public_key) != ED25519_PUBLIC_KEY_BYTES:
            raise NoteError("malformed verifier key")
        try:
            self._key = Ed25519VerifyingKey(public_key)
        except CryptoError:
            raise NoteError("malformed verifier key") from None
        self._name = name
        self._key_id = ed25519_key_id(name, public_key)

    @classmethod
    def from_key_string(cls, vkey: str) -> Verifier:
        """Parse ``<name>+<8 lowercase hex>+base64(0x01 || 32-byte public key)``."""
        parts = vkey.split("+", 2)
        if len(parts) != 3 or not _HEX8.fullmatch(parts[1]):
            raise NoteError("malformed verifier key")
        name, hex_id, b64 = parts
        raw = b64decode_strict(b64)
        if raw is None or len(raw) != 1 + ED25519_PUBLIC_KEY_BYTES or raw[0] != ED25519_TYPE:
            raise NoteError("malformed verifier key")
        verifier = cls(name, raw[1:])
        if verifier.key_id != int(hex_id, 16):
            raise NoteError("verifier key id does not match its key")
        return verifier

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._key.public_bytes()

    def key_string(self) -> str:
        blob = base64.b64encode(bytes([ED25519_TYPE]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id:08x}+{blob}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        return self._key.verify(signature, message)

    def __repr__(self) -> str:
        return f"Verifier({self.key_string()!r})"


class Signer:
    """An Ed25519 signing key under a name. Its ``repr`` shows no key material."""

    __slots__ = ("_key", "_key_id", "_name")

    def __init__(self, name: str, key: Ed25519SigningKey) -> None:
        if not is_key_name(name):
            raise NoteError("malformed key name")
        self._name = name
        self._key = key
        self._key_id = ed25519_key_id(name, key.public_bytes())

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        return self._key_id

    def verifier(self) -> Verifier:
        return Verifier(self.name, self._key.public_bytes())

    def signature(self, message: bytes) -> NoteSignature:
        return NoteSignature(self.name, self.key_id, self._key.sign(message))

    def __repr__(self) -> str:
        return f"Signer({self.name!r}, key_id={self.key_id:08x})"


def sign(text: str, *signers: Signer) -> bytes:
    """The signed note: ``text`` (which MUST end in a newline) signed by every signer."""
    if not signers:
        raise NoteError("note has no signature lines")
    _check_text(text)
    message = text.encode()
    return SignedNote(text, tuple(s.signature(message) for s in signers)).encode()


def parse_note(
    note: bytes, *, max_bytes: int = MAX_NOTE_BYTES, max_signatures: int = MAX_SIGNATURES
) -> SignedNote:
    """Split a note into text and signature lines. Checks form only, no signature."""
    # (1): bound the work before looking at the bytes.
    if len(note) > max_bytes:
        raise NoteError("note is too large")
    # (2): strict UTF-8 (no overlong forms, no surrogates), no control character but newline.
    try:
        whole = note.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("note is not valid UTF-8") from None
    if any(_is_control(c) for c in whole):
        raise NoteError("note contains a control character")
    # (3): the text ends at the last blank line; signature lines follow it.
    split = whole.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = whole[: split + 1], whole[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("note does not end with a signature line")
    lines = block[:-1].split("\n")
    if len(lines) > max_signatures:
        raise NoteError("note has too many signatures")
    # (4): every signature line parses; the text rules are SignedNote's.
    return SignedNote(text, tuple(_parse_signature_line(line) for line in lines))


def open_note(
    note: bytes,
    verifiers: Iterable[Verifier],
    *,
    max_bytes: int = MAX_NOTE_BYTES,
    max_signatures: int = MAX_SIGNATURES,
) -> str:
    """The note's text, once at least one signature from a known key verifies.

    1. Parse the note (bounded size and signature count, strict form).
    2. Index the known keys by (name, key id); two different keys under one
       (name, key id) are a configuration error.
    3. Ignore signatures whose (name, key id) is unknown, as the spec
       requires, even if one of the two matches a known key.
    4. Verify every signature from a known key; any that fails rejects the
       whole note (the spec lets clients choose; a log's own key never
       produces a bad signature, so one means tampering).
    5. Reject the note unless at least one signature verified.
    """
    # (1):
    parsed = parse_note(note, max_bytes=max_bytes, max_signatures=max_signatures)
    # (2):
    known: dict[tuple[str, int], Verifier] = {}
    for v in verifiers:
        seen = known.setdefault((v.name, v.key_id), v)
        if seen.public_key != v.public_key:
            raise NoteError("ambiguous verifier keys")
    message = parsed.text.encode()
    verified = 0
    for sig in parsed.signatures:
        # (3):
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        # (4):
        if not verifier.verify(message, sig.signature):
            raise NoteError("invalid signature from a known key")
        verified += 1
    # (5):
    if not verified:
        raise NoteError("no signature from a known key")
    return parsed.text


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise NoteError("malformed signature line")
    name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    raw = b64decode_strict(b64) if sep else None
    # Four bytes of key id and at least one of signature; Ed25519 ones are checked on use.
    if raw is None or len(raw) < 5 or not is_key_name(name):
        raise NoteError("malformed signature line")
    return NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def _check_text(text: str) -> None:
    if not text.endswith("\n") or not text.strip("\n"):
        raise NoteError("note text is empty or does not end in a newline")
    if any(_is_control(c) for c in text) or not _encodable(text):
        raise NoteError("note text contains a forbidden character")


def _is_control(c: str) -> bool:
    return c < " " and c != "\n"


def _encodable(s: str) -> bool:
    # A str can hold lone surrogates, which have no UTF-8 form.
    try:
        s.encode()
    except UnicodeEncodeError:
        return False
    return True
