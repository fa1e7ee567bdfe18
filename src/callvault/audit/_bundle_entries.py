"""``entries.ndjson``: the line checks, the strict entry JSON, and the streaming tree digest."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable

from callvault.audit._bundle_format import (
    _ENTRY_SCAN,
    ENTRIES_FILE,
    MAX_ENTRY_BYTES,
    BundleError,
    EntriesDigest,
    _ConstantError,
    _DuplicateKeyError,
)
from callvault.audit.merkle import EMPTY_ROOT, CompactRange

# Leaves per perfect subtree hashed level by level; a power of two.
_BLOCK = 4096
# `{"index":` + 20 digits + `,"entry":` + `}`: a line's bytes besides its entry.
_LINE_OVERHEAD = 40
_INDEX_LINE = re.compile(rb'\{"index":([0-9]{1,20}),"entry":')


def entry_problem(  # noqa: PLR0911 - one return per rule reads as the list of rules
    entry: bytes, *, max_entry_bytes: int = MAX_ENTRY_BYTES
) -> str | None:
    """Why ``entry`` is not a valid bundle entry, or None when it is.

    An entry is at most ``max_entry_bytes`` of strict UTF-8 holding exactly
    one JSON object: no byte before or after it, no duplicate key (at any
    depth), no NaN or Infinity. Nesting deeper than Python's recursion limit
    (about 900 levels) is refused too.
    """
    if len(entry) > max_entry_bytes:
        return f"entry is {len(entry)} bytes, over the {max_entry_bytes}-byte limit"
    try:
        text = entry.decode("utf-8")
    except UnicodeDecodeError:
        return "entry is not valid UTF-8"
    if text[:1] != "{":
        return "entry is not a JSON object"
    try:
        _, end = _ENTRY_SCAN(text, 0)
    except _DuplicateKeyError:
        return "entry has a duplicate key"
    except _ConstantError:
        return "entry holds NaN or Infinity, which JSON does not allow"
    except json.JSONDecodeError as exc:
        return f"entry is not valid JSON (at character {exc.pos})"
    except RecursionError:
        return "entry is nested too deeply"
    except (ValueError, StopIteration):  # an integer too long to convert, for one
        return "entry is not valid JSON"
    if end != len(text):
        return "entry has bytes after its JSON object (trailing whitespace?)"
    return None


class EntryParser:
    """``entries.ndjson`` fed in chunks: checks every line, folds the leaves into a root.

    Memory is O(log n) plus one block of leaf hashes: leaves are hashed in
    perfect subtrees of ``block`` leaves, whose roots are folded into a
    :class:`~callvault.audit.merkle.CompactRange` (a compact range over
    subtree roots is the compact range of their leaves, shifted up). When
    ``prefix_size`` is given, the root of the first ``prefix_size`` entries is
    captured on the way. With ``check_json=False`` only the framing is
    checked, and the caller MUST check the entries with :func:`json_failure`.
    """

    __slots__ = (
        "_blocks",
        "_captured",
        "_check_json",
        "_max",
        "_next",
        "_pending",
        "_prefix",
        "_rest",
        "_size",
    )

    def __init__(
        self,
        *,
        prefix_size: int | None = None,
        max_entry_bytes: int = MAX_ENTRY_BYTES,
        block: int = _BLOCK,
        check_json: bool = True,
    ) -> None:
        if block < 1 or block & (block - 1):
            raise ValueError("block must be a power of two")
        self._check_json = check_json
        self._max = max_entry_bytes
        self._size = block
        self._prefix = prefix_size
        self._next = 0
        self._rest = b""
        self._pending: list[bytes] = []
        self._blocks = CompactRange()
        self._captured: bytes | None = EMPTY_ROOT if prefix_size == 0 else None

    @property
    def count(self) -> int:
        """Entries accepted so far."""
        return self._next

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the file; complete lines are checked now."""
        if self._rest:
            data = self._rest + data
        lines = data.split(b"\n")
        self._rest = lines.pop()
        self.feed_lines(lines)
        if len(self._rest) > self._max + _LINE_OVERHEAD:
            raise BundleError(
                "bad-entry",
                f"{ENTRIES_FILE} line {self._next + 1} is longer than any entry may be "
                f"({self._max} bytes)",
            )

    def feed_lines(self, lines: list[bytes]) -> None:
        """Take complete lines (without their newline)."""
        pos, n = 0, len(lines)
        while pos < n:
            room = self._size - len(self._pending)
            segment = lines[pos : pos + room] if pos or n > room else lines
            self._parse(segment)
            pos += len(segment)
            if len(self._pending) == self._size:
                self._flush()

    def finish(self) -> EntriesDigest:
        """The digest of everything fed; the data must end with a newline."""
        if self._rest:
            raise BundleError(
                "truncated-file",
                f"{ENTRIES_FILE} does not end with a newline (line {self._next + 1} is cut off)",
            )
        base = self._blocks.size * self._size
        if (
            self._prefix is not None
            and self._captured is None
            and base < self._prefix <= self._next
        ):
            self._captured = self._root_with(self._pending[: self._prefix - base])
        return EntriesDigest(self._next, self._root_with(self._pending), self._captured)

    def _parse(self, lines: list[bytes]) -> None:
        # The hot loop: a million entries must verify in seconds, so no call per line
        # on the good path. Anything unusual goes to _line_error for the exact reason.
        i = self._next
        max_bytes = self._max
        append = self._pending.append
        sha256 = hashlib.sha256
        scan = _ENTRY_SCAN
        check_json = self._check_json
        for line in lines:
            prefix = b'{"index":%d,"entry":' % i
            start = len(prefix)
            ok = False
            if (
                line.startswith(prefix)
                and line[-1:] == b"}"
                and len(line) - start - 1 <= max_bytes
                and line[start] == 0x7B  # "{"
            ):
                entry = line[start:-1]
                if check_json:
                    try:
                        text = entry.decode("utf-8")
                        ok = scan(text, 0)[1] == len(text)
                    except (ValueError, RecursionError, StopIteration):
                        ok = False
                else:
                    ok = True
            if not ok:
                self._next = i
                raise self._line_error(line, i)
            append(sha256(b"\x00" + entry).digest())
            i += 1
        self._next = i

    def _flush(self) -> None:
        base = self._blocks.size * self._size
        prefix = self._prefix
        if prefix is not None and base < prefix < base + self._size:
            self._captured = self._root_with(self._pending[: prefix - base])
        level = self._pending
        sha256 = hashlib.sha256
        while len(level) > 1:
            level = [
                sha256(b"\x01" + a + b).digest()
                for a, b in zip(level[::2], level[1::2], strict=True)
            ]
        self._blocks = self._blocks.extend(level)
        self._pending = []
        if prefix == base + self._size:
            self._captured = self._root_with([])

    def _root_with(self, tail: list[bytes]) -> bytes:
        # Block-level subtrees are all larger than any subtree of a partial block.
        rest = CompactRange().extend(tail)
        size = self._blocks.size * self._size + rest.size
        return CompactRange(size, self._blocks.hashes + rest.hashes).root()

    def _line_error(self, line: bytes, i: int) -> BundleError:
        where = f"{ENTRIES_FILE} line {i + 1}"
        if not line:
            return BundleError("bad-entry", f"{where} is empty")
        match = _INDEX_LINE.match(line)
        if match is None:
            return BundleError("bad-entry", f'{where} is not a {{"index":N,"entry":{{...}}}} line')
        digits = match.group(1)
        found = int(digits)
        if found != i:
            return BundleError(
                "index-mismatch",
                f"{where} holds index {found}, where index {i} belongs: "
                "entries were deleted, inserted or reordered",
            )
        if digits != b"%d" % i:
            return BundleError("bad-entry", f"{where}: the index is not in canonical decimal")
        if not line.endswith(b"}"):
            return BundleError(
                "bad-entry", f"{where} does not end with }} right before the newline"
            )
        problem = entry_problem(line[match.end() : -1], max_entry_bytes=self._max)
        return BundleError("bad-entry", f"{where}: {problem or 'malformed entry'}")


def json_failure(
    data: bytes, first_index: int, *, max_entry_bytes: int = MAX_ENTRY_BYTES
) -> tuple[int, str] | None:
    """The first entry in ``data`` (complete lines from ``first_index`` on) that is not JSON.

    The JSON half of :class:`EntryParser`'s checks, so it can run in another
    process: ``(index, problem)`` for the first line whose entry fails
    :func:`entry_problem`, or None. Lines whose framing is wrong are the
    parser's to report, so a line is sliced as if its framing were right.
    """
    scan = _ENTRY_SCAN
    lines = data.split(b"\n")
    lines.pop()
    i = first_index
    for line in lines:
        entry = line[len(b'{"index":%d,"entry":' % i) : -1]
        try:
            text = entry.decode("utf-8")
            ok = scan(text, 0)[1] == len(text)
        except (ValueError, RecursionError, StopIteration):
            ok = False
        if not ok:
            problem = entry_problem(entry, max_entry_bytes=max_entry_bytes)
            if problem is not None:
                return i, problem
        i += 1
    return None


def digest_entries(
    chunks: Iterable[bytes],
    *,
    prefix_size: int | None = None,
    max_entry_bytes: int = MAX_ENTRY_BYTES,
) -> EntriesDigest:
    """Check ``entries.ndjson`` given as consecutive chunks; raise :class:`BundleError`."""
    parser = EntryParser(prefix_size=prefix_size, max_entry_bytes=max_entry_bytes)
    for chunk in chunks:
        parser.feed(chunk)
    return parser.finish()
