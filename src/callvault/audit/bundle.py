"""Offline audit bundles: the directory format, a streaming writer and a verifier.

A bundle is a directory a customer can verify with nothing but this module
(stdlib and `cryptography`): ``docs/formats/audit-bundle.md`` is the format.

::

    entries.ndjson   line i is exactly {"index":<i>,"entry":<entry i's canonical JSON>} + LF
    checkpoint.txt   the log's signed checkpoint (C2SP signed note, Ed25519)
    log-key.txt      the log's verifier key, <name>+<key id>+<base64 key>, one line
    manifest.json    format, origin, tenant, size, and the SHA-256 and length of the three files

The trust anchor is the signature on the checkpoint, checked under a key the
customer pins (``trusted_key``) or under the key of a checkpoint they pinned
earlier (``trusted_checkpoint``); the bundle's own key file and the manifest
are conveniences. Every entry is re-hashed from its exact bytes (sliced out of
its line, never re-serialised) into the RFC 9162 root in one streaming pass
with O(log n) memory, which also captures the root at the pinned
checkpoint's size: equal roots at both sizes prove the bundle's history
extends the pinned one.

:func:`verify_bundle` never raises for anything in the bundle: it returns a
:class:`Verdict` listing every failure it could establish. The writer and the
pure parsers raise :class:`BundleError`. Messages name files, line numbers,
indices, counts and hashes, never entry content.

Parsing the entries' JSON is most of the work, so for large files (a million
entries) it runs in forked helper processes while this one checks the
framing and builds the tree; ``workers=0`` keeps everything in-process.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import hmac
import json
import multiprocessing
import os
import re
import signal
import stat
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from callvault.audit.checkpoint import Checkpoint
from callvault.audit.merkle import EMPTY_ROOT, CompactRange
from callvault.audit.note import MAX_NOTE_BYTES, Verifier, is_key_name
from callvault.audit.verify import verify_checkpoint
from callvault.errors import Error, NoteError

FORMAT = "callvault-audit-bundle/1"
ENTRIES_FILE = "entries.ndjson"
CHECKPOINT_FILE = "checkpoint.txt"
KEY_FILE = "log-key.txt"
MANIFEST_FILE = "manifest.json"
#: The files a manifest describes, in the order they are written.
DATA_FILES = (ENTRIES_FILE, CHECKPOINT_FILE, KEY_FILE)

#: The largest entry the service can be configured to write (``audit_max_entry_bytes``).
MAX_ENTRY_BYTES = 1_048_576
MAX_MANIFEST_BYTES = 64 * 1024
MAX_KEY_FILE_BYTES = 4096
MAX_TENANT_CHARS = 255

Reason = Literal[
    "not-a-bundle",
    "missing-file",
    "not-a-regular-file",
    "file-too-large",
    "unreadable-file",
    "not-empty",
    "bad-manifest",
    "manifest-mismatch",
    "bad-key",
    "bad-trusted-key",
    "untrusted-key",
    "bad-checkpoint",
    "bad-trusted-checkpoint",
    "bad-entry",
    "index-mismatch",
    "truncated-file",
    "size-mismatch",
    "root-mismatch",
    "stale-bundle",
    "inconsistent",
    "internal-error",
]

KeySource = Literal["trusted-key", "trusted-checkpoint", "bundle"]

_READ_CHUNK = 4 * 1024 * 1024
# Entries files at least this big have their JSON checked by helper processes.
_PARALLEL_MIN_BYTES = 32 * 1024 * 1024
# Chunks handed to helpers and not yet settled; bounds memory to a few chunks.
_IN_FLIGHT = 4
# Leaves per perfect subtree hashed level by level; a power of two.
_BLOCK = 4096
# `{"index":` + 20 digits + `,"entry":` + `}`: a line's bytes besides its entry.
_LINE_OVERHEAD = 40
_INDEX_LINE = re.compile(rb'\{"index":([0-9]{1,20}),"entry":')
_SHA256_HEX = re.compile(r"[0-9a-f]{64}", re.ASCII)


class BundleError(Error):
    """A bundle, or the input to write one, is malformed or does not verify."""

    code = "bad-bundle"

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason


# --- results ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileDigest:
    """A file's SHA-256 (lowercase hex) and length, as the manifest records them."""

    sha256: str
    bytes: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed ``manifest.json``. Not trusted: it only checks the copy is complete."""

    origin: str
    tenant: str
    size: int
    files: dict[str, FileDigest]


@dataclass(frozen=True, slots=True)
class EntriesDigest:
    """What one pass over ``entries.ndjson`` establishes."""

    #: The number of entries (lines).
    size: int
    #: The RFC 9162 root of all entries.
    root_hash: bytes
    #: The root of the first ``prefix_size`` entries, when that many were read.
    prefix_root: bytes | None = None


@dataclass(frozen=True, slots=True)
class BundleSummary:
    """What :func:`write_bundle` wrote."""

    path: Path
    origin: str
    tenant: str
    size: int
    root_hash: bytes
    files: dict[str, FileDigest]

    @property
    def total_bytes(self) -> int:
        return sum(d.bytes for d in self.files.values())


@dataclass(frozen=True, slots=True)
class Failure:
    """One reason a bundle does not verify: a stable code and one line of explanation."""

    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of :func:`verify_bundle`: ``ok``, or the failures it found.

    ``checkpoint`` is the bundle's checkpoint once its signature verified
    (``None`` otherwise); ``key`` the key string it verified under;
    ``key_source`` where that key came from: the caller's ``trusted-key``,
    the bundle but also signing the caller's ``trusted-checkpoint``, or the
    ``bundle`` alone (which proves integrity, not who signed);
    ``trusted_size`` the size of the trusted checkpoint the bundle was proven
    consistent with.
    """

    failures: tuple[Failure, ...] = ()
    checkpoint: Checkpoint | None = None
    key: str | None = None
    key_source: KeySource = "bundle"
    trusted_size: int | None = None

    @property
    def key_pinned(self) -> bool:
        """Whether the key was vouched for by the caller rather than by the bundle alone."""
        return self.key_source != "bundle"

    @property
    def ok(self) -> bool:
        return not self.failures and self.checkpoint is not None

    def lines(self) -> list[str]:
        """One ``OK: ...`` line, or one ``FAILED: <reason>: <message>`` line per failure."""
        if not self.ok or self.checkpoint is None:
            failures = self.failures or (Failure("internal-error", "nothing was verified"),)
            return [f"FAILED: {f.reason}: {f.message}" for f in failures]
        cp = self.checkpoint
        root_b64 = base64.b64encode(cp.root_hash).decode("ascii")
        where = {
            "trusted-key": "the trusted key",
            "trusted-checkpoint": "the bundle's key, which signed the trusted checkpoint",
            "bundle": "the bundle's own key, not pinned",
        }[self.key_source]
        line = f"OK: {cp.origin} size {cp.size} root {root_b64} verified ({where} {self.key_id})"
        if self.trusted_size is not None:
            line += f"; consistent with trusted checkpoint at size {self.trusted_size}"
        return [line]

    @property
    def key_id(self) -> str:
        """``<name>+<key id>`` of the key the checkpoint verified under, or ``""``."""
        return "+".join(self.key.split("+", 2)[:2]) if self.key else ""

    def raise_for_failures(self) -> None:
        """Raise :class:`BundleError` for the first failure, if any."""
        if not self.ok:
            first = self.failures[0] if self.failures else Failure("internal-error", "failed")
            raise BundleError(first.reason, first.message)


# --- pure parsers ----------------------------------------------------------------------------


class _DuplicateKeyError(ValueError):
    pass


class _ConstantError(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> None:
    # Returns nothing: the verifier needs the verdict, not the value.
    if len(dict(pairs)) != len(pairs):
        raise _DuplicateKeyError


def _no_constants(_name: str) -> None:
    raise _ConstantError


def _strict_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKeyError
    return result


# Python's json accepts NaN/Infinity and keeps the last of duplicate keys; both are refused.
# The decoder's scanner is called directly: json.loads builds a decoder per call.
_ENTRY_SCAN: Callable[[str, int], tuple[object, int]] = json.JSONDecoder(
    object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants
).scan_once  # type: ignore[attr-defined]  # set by JSONDecoder.__init__, absent from the stubs
_STRICT_JSON = json.JSONDecoder(object_pairs_hook=_strict_pairs, parse_constant=_no_constants)


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


def parse_key_file(data: bytes) -> Verifier:
    """``log-key.txt``: one verifier key string and a newline, nothing else."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError("bad-key", f"{KEY_FILE} is not valid UTF-8") from None
    if not text.endswith("\n") or "\n" in text[:-1] or "\r" in text:
        raise BundleError("bad-key", f"{KEY_FILE} is not exactly one line ending in a newline")
    try:
        return Verifier.from_key_string(text[:-1])
    except NoteError as exc:
        raise BundleError("bad-key", f"{KEY_FILE}: {exc.message}") from None


def parse_manifest(data: bytes) -> Manifest:
    """``manifest.json``: strict JSON with exactly the keys the format defines."""

    def bad(why: str) -> BundleError:
        return BundleError("bad-manifest", f"{MANIFEST_FILE}: {why}")

    try:
        value = _STRICT_JSON.decode(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad("not valid UTF-8") from None
    except _DuplicateKeyError:
        raise bad("duplicate key") from None
    except (ValueError, RecursionError):
        raise bad("not valid JSON") from None
    top = {"format", "origin", "tenant", "size", "files"}
    if not isinstance(value, dict) or set(value) != top:
        raise bad(f"must be an object with exactly the keys {sorted(top)}")
    if value["format"] != FORMAT:
        raise bad(f"format is not {FORMAT!r}")
    origin, tenant, size, files = value["origin"], value["tenant"], value["size"], value["files"]
    if not isinstance(origin, str) or not is_key_name(origin):
        raise bad("origin is not a log name")
    if not _is_tenant(tenant):
        raise bad("tenant is not an id")
    if type(size) is not int or size < 0:
        raise bad("size is not a non-negative integer")
    if not isinstance(files, dict) or set(files) != set(DATA_FILES):
        raise bad(f"files must name exactly {list(DATA_FILES)}")
    digests = {name: _manifest_file(name, files[name]) for name in DATA_FILES}
    return Manifest(origin, tenant, size, digests)


def _manifest_file(name: str, value: object) -> FileDigest:
    where = f'{MANIFEST_FILE}: files["{name}"]'
    if not isinstance(value, dict) or set(value) != {"sha256", "bytes"}:
        raise BundleError("bad-manifest", f"{where} must have exactly the keys sha256 and bytes")
    sha, length = value["sha256"], value["bytes"]
    if not isinstance(sha, str) or not _SHA256_HEX.fullmatch(sha):
        raise BundleError("bad-manifest", f"{where}.sha256 is not 64 lowercase hex digits")
    if type(length) is not int or length < 0:
        raise BundleError("bad-manifest", f"{where}.bytes is not a non-negative integer")
    return FileDigest(sha, length)


def _is_tenant(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TENANT_CHARS and is_key_name(value)


# --- verifying a bundle directory -------------------------------------------------------------


def verify_bundle(
    path: Path | str,
    *,
    trusted_checkpoint: bytes | None = None,
    trusted_key: str | None = None,
    max_entry_bytes: int = MAX_ENTRY_BYTES,
    workers: int | None = None,
) -> Verdict:
    """Verify the bundle in directory ``path``; only reads files, never raises for their content.

    ``workers`` helper processes check the entries' JSON when the entries
    file is large (default :func:`default_workers`; 0 checks everything in
    this process).

    1. The four files are regular files (not symlinks), readable, of bounded size.
    2. ``log-key.txt`` holds one verifier key. With ``trusted_key`` it MUST
       be that key (else the history may have been re-signed with another key),
       and the trusted key is the one everything is checked under.
    3. ``checkpoint.txt`` is signed by that key and names that key's log.
    4. ``trusted_checkpoint``, if given, is signed by the same key for the
       same log, and is not larger than the bundle's checkpoint (else the
       bundle is stale or truncated).
    5. ``entries.ndjson``: each line is exactly ``{"index":i,"entry":E}`` for
       i = 0, 1, ... with E one strict JSON object; there are exactly as many
       lines as the checkpoint's size, and they hash to its root. The root of
       the first ``trusted_checkpoint.size`` entries MUST equal that
       checkpoint's root: the bundle's history extends the pinned one.
    6. ``manifest.json`` is well formed and matches the checkpoint and the
       three files' hashes and lengths.
    """
    try:
        helpers = default_workers() if workers is None else workers
        verification = _Verification(max_entry_bytes, helpers)
        return verification.run(Path(path), trusted_checkpoint, trusted_key)
    except MemoryError:
        return Verdict((Failure("internal-error", "out of memory while verifying"),))


@dataclass
class _Verification:
    max_entry_bytes: int
    workers: int
    failures: list[Failure] = field(default_factory=list)

    def fail(self, reason: Reason, message: str) -> None:
        self.failures.append(Failure(reason, message))

    def run(self, path: Path, trusted_checkpoint: bytes | None, trusted_key: str | None) -> Verdict:
        try:
            dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (OSError, ValueError):  # ValueError: a NUL in the path
            return Verdict(
                (Failure("not-a-bundle", "the bundle path is not a readable directory"),)
            )
        try:
            return self._run(dir_fd, trusted_checkpoint, trusted_key)
        finally:
            os.close(dir_fd)

    def _run(
        self, dir_fd: int, trusted_checkpoint: bytes | None, trusted_key: str | None
    ) -> Verdict:
        # (1): open everything before judging anything.
        small: dict[str, bytes] = {}
        for name, limit in (
            (MANIFEST_FILE, MAX_MANIFEST_BYTES),
            (KEY_FILE, MAX_KEY_FILE_BYTES),
            (CHECKPOINT_FILE, MAX_NOTE_BYTES),
        ):
            data = self._read_small(dir_fd, name, limit)
            if data is not None:
                small[name] = data
        entries_fd = self._open(dir_fd, ENTRIES_FILE)
        try:
            if self.failures or entries_fd is None:
                return Verdict(tuple(self.failures))
            return self._check(entries_fd, small, trusted_checkpoint, trusted_key)
        finally:
            if entries_fd is not None:
                os.close(entries_fd)

    def _check(
        self,
        entries_fd: int,
        small: dict[str, bytes],
        trusted_checkpoint: bytes | None,
        trusted_key: str | None,
    ) -> Verdict:
        # (2):
        anchor = self._anchor(small[KEY_FILE], trusted_key)
        under = "the trusted key" if trusted_key is not None else f"the key in {KEY_FILE}"
        # (3):
        checkpoint = self._checkpoint(
            small[CHECKPOINT_FILE],
            anchor,
            "bad-checkpoint",
            f"{CHECKPOINT_FILE} does not verify under {under}",
            "",
        )
        # (4):
        trusted = None
        if trusted_checkpoint is not None:
            trusted = self._checkpoint(
                trusted_checkpoint,
                anchor,
                "bad-trusted-checkpoint",
                f"the trusted checkpoint does not verify under {under}",
                " (a different log, or history re-signed with another key?)",
            )
        if trusted is not None and checkpoint is not None and trusted.size > checkpoint.size:
            self.fail(
                "stale-bundle",
                f"the bundle's checkpoint has size {checkpoint.size}, older than the trusted "
                f"checkpoint's {trusted.size}: the log you were given is stale or truncated",
            )
        # (5):
        digest, entries_file = self._digest(entries_fd, trusted)
        consistent = False
        if digest is not None:
            if checkpoint is not None:
                self._compare(digest, checkpoint)
            if trusted is not None and trusted.size <= digest.size:
                consistent = self._consistent(digest, trusted)
        # (6):
        self._check_manifest(small, entries_file, checkpoint)
        return Verdict(
            tuple(self.failures),
            checkpoint,
            anchor.key_string() if anchor is not None else None,
            key_source=(
                "trusted-key"
                if trusted_key is not None
                else "trusted-checkpoint"
                if trusted is not None
                else "bundle"
            ),
            trusted_size=trusted.size if consistent and trusted is not None else None,
        )

    def _anchor(self, key_file: bytes, trusted_key: str | None) -> Verifier | None:
        """The key signatures are checked under: the trusted key if given, else the bundle's."""
        bundle_key: Verifier | None = None
        try:
            bundle_key = parse_key_file(key_file)
        except BundleError as exc:
            self.fail(exc.reason, exc.message)
        if trusted_key is None:
            return bundle_key
        try:
            anchor = Verifier.from_key_string(trusted_key)
        except NoteError as exc:
            self.fail("bad-trusted-key", f"the trusted key: {exc.message}")
            return None
        if bundle_key is not None and bundle_key.key_string() != anchor.key_string():
            self.fail(
                "untrusted-key",
                f"{KEY_FILE} holds key {_key_id(bundle_key)}, not the trusted key "
                f"{_key_id(anchor)}: history re-signed with another key?",
            )
        return anchor

    def _checkpoint(
        self, note: bytes, anchor: Verifier | None, reason: Reason, what: str, hint: str
    ) -> Checkpoint | None:
        if anchor is None:
            return None
        try:
            return verify_checkpoint(note, anchor)
        except NoteError as exc:
            self.fail(reason, f"{what}: {exc.message}{hint}")
            return None

    def _compare(self, digest: EntriesDigest, checkpoint: Checkpoint) -> None:
        if digest.size != checkpoint.size:
            self.fail(
                "size-mismatch",
                f"{ENTRIES_FILE} has {digest.size} entries but the checkpoint commits to "
                f"{checkpoint.size}: the log was truncated or extended",
            )
        elif not hmac.compare_digest(digest.root_hash, checkpoint.root_hash):
            self.fail(
                "root-mismatch",
                f"the {digest.size} entries hash to {_b64(digest.root_hash)}, not the "
                f"checkpoint's root {_b64(checkpoint.root_hash)}: an entry was altered",
            )

    def _consistent(self, digest: EntriesDigest, trusted: Checkpoint) -> bool:
        prefix = digest.prefix_root
        if prefix is not None and hmac.compare_digest(prefix, trusted.root_hash):
            return True
        self.fail(
            "inconsistent",
            f"the first {trusted.size} entries do not hash to the trusted checkpoint's "
            f"root {_b64(trusted.root_hash)}: this history forks from the one you pinned",
        )
        return False

    def _digest(
        self, fd: int, trusted: Checkpoint | None
    ) -> tuple[EntriesDigest | None, FileDigest | None]:
        prefix = trusted.size if trusted is not None else None
        try:
            return _digest_file(fd, prefix, self.max_entry_bytes, self.workers)
        except BundleError as exc:
            self.fail(exc.reason, exc.message)
            return None, None
        except OSError as exc:
            self.fail("unreadable-file", f"{ENTRIES_FILE} could not be read ({_os_reason(exc)})")
            return None, None

    def _check_manifest(
        self, small: dict[str, bytes], entries: FileDigest | None, checkpoint: Checkpoint | None
    ) -> None:
        try:
            manifest = parse_manifest(small[MANIFEST_FILE])
        except BundleError as exc:
            self.fail(exc.reason, exc.message)
            return
        actual = {name: _file_digest(small[name]) for name in (CHECKPOINT_FILE, KEY_FILE)}
        if entries is not None:
            actual[ENTRIES_FILE] = entries
        for name in DATA_FILES:
            if name in actual and actual[name] != manifest.files[name]:
                self.fail(
                    "manifest-mismatch",
                    f"{name} does not match {MANIFEST_FILE} (sha256 {actual[name].sha256}, "
                    f"{actual[name].bytes} bytes): the copy is damaged or was altered",
                )
        if checkpoint is not None and (manifest.origin, manifest.size) != (
            checkpoint.origin,
            checkpoint.size,
        ):
            self.fail(
                "manifest-mismatch",
                f"{MANIFEST_FILE} names another log or size than {CHECKPOINT_FILE}",
            )

    def _open(self, dir_fd: int, name: str) -> int | None:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, dir_fd=dir_fd)
        except FileNotFoundError:
            self.fail("missing-file", f"{name} is missing")
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.fail("not-a-regular-file", f"{name} is a symbolic link")
            else:
                self.fail("unreadable-file", f"{name} could not be opened ({_os_reason(exc)})")
            return None
        try:
            mode = os.fstat(fd).st_mode
        except OSError as exc:
            os.close(fd)
            self.fail("unreadable-file", f"{name} could not be read ({_os_reason(exc)})")
            return None
        if not _is_regular(mode):
            os.close(fd)
            self.fail("not-a-regular-file", f"{name} is not a regular file")
            return None
        return fd

    def _read_small(self, dir_fd: int, name: str, limit: int) -> bytes | None:
        fd = self._open(dir_fd, name)
        if fd is None:
            return None
        try:
            data = _read_bounded(fd, limit)
        except OSError as exc:
            self.fail("unreadable-file", f"{name} could not be read ({_os_reason(exc)})")
            return None
        finally:
            os.close(fd)
        if data is None:
            self.fail("file-too-large", f"{name} is larger than {limit} bytes")
        return data


def _digest_file(
    fd: int, prefix_size: int | None, max_entry_bytes: int, workers: int
) -> tuple[EntriesDigest, FileDigest]:
    """One pass over ``entries.ndjson``; raises :class:`BundleError` or :exc:`OSError`.

    Big files have their JSON checked by helper processes while this one
    checks the framing and builds the tree (the JSON parse is most of the
    work). Helpers are forked, so only on Linux and from a single-threaded
    process (forking a threaded one can deadlock; spawning would re-import
    the caller's main module). If they cannot start or die, the file is
    checked again here.
    """
    pool = None
    if workers > 0 and _can_fork() and os.fstat(fd).st_size >= _PARALLEL_MIN_BYTES:
        try:
            pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_helper_init,
            )
        except (OSError, ValueError, NotImplementedError):  # no semaphores, for one
            pool = None
        if pool is not None:
            try:
                return _digest_parallel(fd, pool, prefix_size, max_entry_bytes)
            except _HelperLostError:
                os.lseek(fd, 0, os.SEEK_SET)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    parser = EntryParser(prefix_size=prefix_size, max_entry_bytes=max_entry_bytes)
    file_hash = hashlib.sha256()
    length = 0
    for chunk in _chunks(fd):
        file_hash.update(chunk)
        length += len(chunk)
        parser.feed(chunk)
    return parser.finish(), FileDigest(file_hash.hexdigest(), length)


def _can_fork() -> bool:
    return sys.platform == "linux" and threading.active_count() == 1


def _helper_init() -> None:
    # Ctrl-C is the parent's to handle; a helper just stops when the pool shuts down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _HelperLostError(Exception):
    pass


class _HelperFoundError(BundleError):
    pass


def _digest_parallel(
    fd: int, pool: ProcessPoolExecutor, prefix_size: int | None, max_entry_bytes: int
) -> tuple[EntriesDigest, FileDigest]:
    parser = EntryParser(prefix_size=prefix_size, max_entry_bytes=max_entry_bytes, check_json=False)
    file_hash = hashlib.sha256()
    length = 0
    rest = b""
    pending: deque[Future[tuple[int, str] | None]] = deque()

    def settle(before: int | None = None, *, keep: int = 0) -> None:
        # A helper's verdict on an earlier line wins over this process's on a later one.
        while len(pending) > keep:
            try:
                failure = pending.popleft().result()
            except Exception:  # noqa: BLE001 - any helper failure means: check here instead
                raise _HelperLostError from None
            if failure is not None and (before is None or failure[0] < before):
                index, problem = failure
                raise _HelperFoundError("bad-entry", f"{ENTRIES_FILE} line {index + 1}: {problem}")

    try:
        for chunk in _chunks(fd):
            file_hash.update(chunk)
            length += len(chunk)
            data = rest + chunk if rest else chunk
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                complete = data[:cut]
                pending.append(
                    pool.submit(
                        json_failure, complete, parser.count, max_entry_bytes=max_entry_bytes
                    )
                )
                parser.feed(complete)
            if len(rest) > max_entry_bytes + _LINE_OVERHEAD:
                parser.feed(rest)  # raises: the line is too long
            settle(keep=_IN_FLIGHT)
        parser.feed(rest)
        digest = parser.finish()
    except _HelperFoundError:
        raise
    except BundleError:
        # This process found a framing error: a helper may know of an earlier line.
        settle(before=parser.count)
        raise
    settle()
    return digest, FileDigest(file_hash.hexdigest(), length)


def default_workers() -> int:
    """Helper processes :func:`verify_bundle` uses by default: 2 with two CPUs or more.

    The JSON parse is about two thirds of the work, so two helpers and this
    process share two CPUs about evenly; on one CPU helpers only add overhead.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return 2 if cpus >= 2 else 0


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def _chunks(fd: int) -> Iterator[bytes]:
    while chunk := os.read(fd, _READ_CHUNK):
        yield chunk


def _read_bounded(fd: int, limit: int) -> bytes | None:
    """At most ``limit`` bytes from ``fd``, or None if there are more."""
    parts: list[bytes] = []
    total = 0
    while chunk := os.read(fd, limit + 1 - total):
        parts.append(chunk)
        total += len(chunk)
        if total > limit:
            return None
    return b"".join(parts)


def read_trusted_file(path: Path | str, *, max_bytes: int = MAX_NOTE_BYTES) -> bytes:
    """A pinned checkpoint or key file from the caller's side, bounded; :class:`BundleError`.

    Messages do not repeat the path (the caller knows which file it named).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise BundleError("unreadable-file", f"cannot open the file ({_os_reason(exc)})") from None
    except ValueError:
        raise BundleError("unreadable-file", "cannot open the file (NUL in its name)") from None
    try:
        if not _is_regular(os.fstat(fd).st_mode):
            raise BundleError("not-a-regular-file", "the file is not a regular file")
        data = _read_bounded(fd, max_bytes)
    except OSError as exc:
        raise BundleError("unreadable-file", f"cannot read the file ({_os_reason(exc)})") from None
    finally:
        os.close(fd)
    if data is None:
        raise BundleError("file-too-large", f"the file is larger than {max_bytes} bytes")
    return data


def _os_reason(exc: OSError | ValueError) -> str:
    errno_ = getattr(exc, "errno", None)
    return os.strerror(errno_) if errno_ else type(exc).__name__


def _file_digest(data: bytes) -> FileDigest:
    return FileDigest(hashlib.sha256(data).hexdigest(), len(data))


def _key_id(verifier: Verifier) -> str:
    return f"{verifier.name}+{verifier.key_id:08x}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- writing a bundle -------------------------------------------------------------------------


def write_bundle(
    out_dir: Path,
    *,
    tenant: str,
    entries: Iterable[tuple[int, bytes]],
    checkpoint_note: bytes,
    verifier_key: str,
    max_entry_bytes: int = MAX_ENTRY_BYTES,
) -> BundleSummary:
    """Write a bundle of ``entries`` (``(index, canonical JSON)`` in order) into ``out_dir``.

    1. The key parses and signs ``checkpoint_note`` for the log it names.
    2. ``out_dir`` is created (0700) or is an existing empty directory
       (not a symlink); its parent must exist.
    3. Entries stream into ``entries.ndjson`` (0600, like every file): the
       indices MUST be 0, 1, 2, ...; each entry passes the verifier's own
       checks; their number and root MUST equal the checkpoint's, so the
       bundle holds exactly the checkpointed prefix of the log.
    4. ``checkpoint.txt`` and ``log-key.txt``, then ``manifest.json`` last,
       every file fsynced, then the directory.

    Any failure raises :class:`BundleError` and removes what was written.
    """
    # (1):
    try:
        verifier = Verifier.from_key_string(verifier_key)
    except NoteError as exc:
        raise BundleError("bad-key", f"verifier key: {exc.message}") from None
    try:
        checkpoint = verify_checkpoint(checkpoint_note, verifier)
    except NoteError as exc:
        raise BundleError("bad-checkpoint", f"checkpoint: {exc.message}") from None
    if not _is_tenant(tenant):
        raise BundleError("bad-manifest", "tenant is not an id")
    # (2):
    out_dir = Path(out_dir)
    dir_fd, created_dir = _open_out_dir(out_dir)
    written: list[str] = []
    try:
        # (3):
        written.append(ENTRIES_FILE)
        files = {ENTRIES_FILE: _write_entries(dir_fd, entries, checkpoint, max_entry_bytes)}
        # (4):
        for name, data in (
            (CHECKPOINT_FILE, checkpoint_note),
            (KEY_FILE, (verifier.key_string() + "\n").encode()),
        ):
            written.append(name)
            files[name] = _write_file(dir_fd, name, data)
        manifest = {
            "format": FORMAT,
            "origin": checkpoint.origin,
            "tenant": tenant,
            "size": checkpoint.size,
            "files": {n: {"sha256": d.sha256, "bytes": d.bytes} for n, d in files.items()},
        }
        written.append(MANIFEST_FILE)
        body = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("ascii")
        files[MANIFEST_FILE] = _write_file(dir_fd, MANIFEST_FILE, body)
        os.fsync(dir_fd)
    except BaseException:
        _remove(out_dir, dir_fd, written, created_dir=created_dir)
        raise
    finally:
        os.close(dir_fd)
    return BundleSummary(
        out_dir, checkpoint.origin, tenant, checkpoint.size, checkpoint.root_hash, files
    )


def _open_out_dir(out_dir: Path) -> tuple[int, bool]:
    created = False
    name = repr(os.fspath(out_dir))
    try:
        out_dir.mkdir(mode=0o700)
        created = True
    except FileExistsError:
        pass
    except (OSError, ValueError) as exc:
        raise BundleError("unreadable-file", f"cannot create {name} ({_os_reason(exc)})") from None
    try:
        fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise BundleError(
            "not-a-bundle", f"{name} is not a directory ({_os_reason(exc)})"
        ) from None
    try:
        if created:
            os.fchmod(fd, 0o700)
        # Listed through the descriptor: the directory checked is the one written to.
        empty = created or not os.listdir(fd)  # noqa: PTH208 - pathlib cannot list a descriptor
    except BaseException:
        os.close(fd)
        raise
    if not empty:
        os.close(fd)
        raise BundleError("not-empty", f"{name} is not empty")
    return fd, created


def _create(dir_fd: int, name: str) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
    os.fchmod(fd, 0o600)
    return fd


def _write_file(dir_fd: int, name: str, data: bytes) -> FileDigest:
    with open(_create(dir_fd, name), "wb", closefd=True) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return _file_digest(data)


def _write_entries(
    dir_fd: int, entries: Iterable[tuple[int, bytes]], checkpoint: Checkpoint, max_entry_bytes: int
) -> FileDigest:
    # The verifier's own parser checks every line before it is written, and
    # rebuilds the root the checkpoint must have.
    parser = EntryParser(max_entry_bytes=max_entry_bytes)
    file_hash = hashlib.sha256()
    length = 0
    batch: list[bytes] = []
    batch_bytes = 0
    expected = 0

    with open(_create(dir_fd, ENTRIES_FILE), "wb", buffering=1 << 20, closefd=True) as f:

        def flush() -> None:
            nonlocal length, batch_bytes
            parser.feed_lines(batch)
            data = b"\n".join(batch) + b"\n"
            f.write(data)
            file_hash.update(data)
            length += len(data)
            batch.clear()
            batch_bytes = 0

        for index, entry in entries:
            if type(index) is not int or index != expected:
                raise BundleError(
                    "index-mismatch",
                    f"entry {expected}: indices must be contiguous from 0"
                    + (f", got {index}" if type(index) is int else ""),
                )
            if expected >= checkpoint.size:
                raise BundleError(
                    "size-mismatch",
                    f"more entries than the checkpoint's size {checkpoint.size}",
                )
            if type(entry) is not bytes or b"\n" in entry:
                raise BundleError("bad-entry", f"entry {expected} is not bytes without a newline")
            batch.append(b'{"index":%d,"entry":%b}' % (index, entry))
            batch_bytes += len(entry)
            expected += 1
            # Bounded in entries and in bytes: memory stays flat for any log.
            if len(batch) == _BLOCK or batch_bytes >= _READ_CHUNK:
                flush()
        if batch:
            flush()
        f.flush()
        os.fsync(f.fileno())
    digest = parser.finish()
    if digest.size != checkpoint.size:
        raise BundleError(
            "size-mismatch",
            f"{digest.size} entries for a checkpoint of size {checkpoint.size}",
        )
    if not hmac.compare_digest(digest.root_hash, checkpoint.root_hash):
        raise BundleError("root-mismatch", "the entries do not hash to the checkpoint's root")
    return FileDigest(file_hash.hexdigest(), length)


def _remove(out_dir: Path, dir_fd: int, names: list[str], *, created_dir: bool) -> None:
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
    if created_dir:
        with contextlib.suppress(OSError):
            out_dir.rmdir()


__all__ = [
    "CHECKPOINT_FILE",
    "DATA_FILES",
    "ENTRIES_FILE",
    "FORMAT",
    "KEY_FILE",
    "MANIFEST_FILE",
    "MAX_ENTRY_BYTES",
    "BundleError",
    "BundleSummary",
    "EntriesDigest",
    "EntryParser",
    "Failure",
    "FileDigest",
    "Manifest",
    "Verdict",
    "default_workers",
    "digest_entries",
    "entry_problem",
    "json_failure",
    "parse_key_file",
    "parse_manifest",
    "read_trusted_file",
    "verify_bundle",
    "write_bundle",
]
