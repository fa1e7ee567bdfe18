"""The audit bundle's directory format: names, limits, results, and its small files' parsers.

A bundle is a directory; ``docs/formats/audit-bundle.md`` is the format.

::

    entries.ndjson   line i is exactly {"index":<i>,"entry":<entry i's canonical JSON>} + LF
    checkpoint.txt   the log's signed checkpoint (C2SP signed note, Ed25519)
    log-key.txt      the log's verifier key, <name>+<key id>+<base64 key>, one line
    manifest.json    format, origin, tenant, size, and the SHA-256 and length of the three files

:func:`~callvault.audit.bundle.verify_bundle` never raises for anything in
the bundle: it returns a :class:`Verdict` listing every failure it could
establish. The writer and the pure parsers raise :class:`BundleError`.
Messages name files, line numbers, indices, counts and hashes, never entry
content.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from callvault.audit.checkpoint import Checkpoint
from callvault.audit.note import Verifier, is_key_name
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
