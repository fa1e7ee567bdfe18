"""C2SP tlog-checkpoint note texts (c2sp.org/tlog-checkpoint): a log's signed tree head.

::

    <origin>
    <tree size in decimal, no leading zeros>
    <base64 of the 32-byte RFC 9162 root hash>
    [<extension line>...]

every line ending in a newline. Pure, no I/O; a malformed text raises
:class:`NoteError`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from callvault.audit.merkle import EMPTY_ROOT, HASH_SIZE, MAX_TREE_SIZE
from callvault.audit.note import b64decode_strict, is_key_name
from callvault.errors import NoteError

#: Longer origins are refused; the spec sets no limit, ours are short URLs.
MAX_ORIGIN_CHARS = 255
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: which log, how many leaves, which root. Cannot be built invalid.

    - ``origin`` follows the key-name rules (non-empty, no Unicode space, no
      ``+``, no control character), since callvault's log signs under a key
      named after its origin; at most :data:`MAX_ORIGIN_CHARS`.
    - ``size`` is an unsigned 64-bit integer.
    - ``root_hash`` is 32 bytes, and for the empty tree it is SHA-256 of nothing.
    - ``extensions`` are opaque non-empty lines.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not is_key_name(self.origin) or len(self.origin) > MAX_ORIGIN_CHARS:
            raise NoteError("malformed checkpoint origin")
        if type(self.size) is not int or not 0 <= self.size <= MAX_TREE_SIZE:
            raise NoteError("malformed checkpoint size")
        if type(self.root_hash) is not bytes or len(self.root_hash) != HASH_SIZE:
            raise NoteError("malformed checkpoint root hash")
        if self.size == 0 and self.root_hash != EMPTY_ROOT:
            raise NoteError("malformed checkpoint root hash")
        if type(self.extensions) is not tuple:
            raise NoteError("malformed checkpoint extension")
        for line in self.extensions:
            if type(line) is not str or not _is_extension_line(line):
                raise NoteError("malformed checkpoint extension")

    def encode(self) -> str:
        """The note text, ready for :func:`callvault.audit.note.sign`."""
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root_hash).decode("ascii"),
            *self.extensions,
        ]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a note text; any deviation from the format raises :class:`NoteError`."""
        if not text.endswith("\n"):
            raise NoteError("malformed checkpoint")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise NoteError("malformed checkpoint")
        origin, size, root_b64, *extensions = lines
        if not _DECIMAL.fullmatch(size):
            raise NoteError("malformed checkpoint size")
        root_hash = b64decode_strict(root_b64)
        if root_hash is None:
            raise NoteError("malformed checkpoint root hash")
        return cls(origin, int(size), root_hash, tuple(extensions))


def _is_extension_line(line: str) -> bool:
    return bool(line) and not any(c < " " for c in line) and _encodable(line)


def _encodable(s: str) -> bool:
    try:
        s.encode()
    except UnicodeEncodeError:
        return False
    return True
