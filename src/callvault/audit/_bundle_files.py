"""Reading files for bundles: regular files only, in bounded sizes or chunks."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from callvault.audit._bundle_format import _READ_CHUNK, BundleError, FileDigest
from callvault.audit.note import MAX_NOTE_BYTES


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
