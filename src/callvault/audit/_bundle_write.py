"""Writing a bundle: :func:`write_bundle`, streaming, checked by the verifier's own parser."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from pathlib import Path

from callvault.audit._bundle_entries import _BLOCK, EntryParser
from callvault.audit._bundle_files import _file_digest, _os_reason
from callvault.audit._bundle_format import (
    _READ_CHUNK,
    CHECKPOINT_FILE,
    ENTRIES_FILE,
    FORMAT,
    KEY_FILE,
    MANIFEST_FILE,
    MAX_ENTRY_BYTES,
    BundleError,
    BundleSummary,
    FileDigest,
    _is_tenant,
)
from callvault.audit.checkpoint import Checkpoint
from callvault.audit.note import Verifier
from callvault.audit.verify import verify_checkpoint
from callvault.errors import NoteError


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
