"""Verifying a bundle directory: :func:`verify_bundle`.

The trust anchor is the signature on the checkpoint, checked under a key the
customer pins (``trusted_key``) or under the key of a checkpoint they pinned
earlier (``trusted_checkpoint``); the bundle's own key file and the manifest
are conveniences. Every entry is re-hashed from its exact bytes (sliced out of
its line, never re-serialised) into the RFC 9162 root in one streaming pass
with O(log n) memory, which also captures the root at the pinned
checkpoint's size: equal roots at both sizes prove the bundle's history
extends the pinned one.
"""

from __future__ import annotations

import base64
import errno
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

from callvault.audit._bundle_files import _file_digest, _is_regular, _os_reason, _read_bounded
from callvault.audit._bundle_format import (
    CHECKPOINT_FILE,
    DATA_FILES,
    ENTRIES_FILE,
    KEY_FILE,
    MANIFEST_FILE,
    MAX_ENTRY_BYTES,
    MAX_KEY_FILE_BYTES,
    MAX_MANIFEST_BYTES,
    BundleError,
    EntriesDigest,
    Failure,
    FileDigest,
    Reason,
    Verdict,
    parse_key_file,
    parse_manifest,
)
from callvault.audit._bundle_parallel import _digest_file, default_workers
from callvault.audit.checkpoint import Checkpoint
from callvault.audit.note import MAX_NOTE_BYTES, Verifier
from callvault.audit.verify import verify_checkpoint
from callvault.errors import NoteError


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


def _key_id(verifier: Verifier) -> str:
    return f"{verifier.name}+{verifier.key_id:08x}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
