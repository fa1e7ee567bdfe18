"""Sealed objects as files under a directory (the embedded default).

A key ``t/d/k/n`` is the file ``<root>/t/d/k/n``: directories 0700, files
0600. A write goes to a temporary file beside the target
(``.<name>.<16 hex>.tmp``, never a valid key), which is then made durable and
renamed over the target:

1. Create the temporary file (``O_EXCL``, 0600) in the target's directory,
   so the rename below stays within one filesystem.
2. Write the bytes through a buffer.
3. Commit: flush, ``fsync`` the file, ``rename`` it over the target (atomic
   on POSIX: a reader opens the old file or the new one, never a torn one),
   then ``fsync`` the directory so the rename survives a crash.
4. On any failure before (3) completes, close and unlink the temporary file.

A reader holds the file open and reads with ``pread``, so it keeps the version
it opened even if the key is rewritten meanwhile. Files are opened with
``O_NOFOLLOW``: a symlink planted in the tree is refused, not followed.
Temporary files a killed process left are never visible and are removed by
:meth:`LocalObjectStore.sweep`.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import time
from pathlib import Path
from typing import IO, Final

from callvault.errors import NotFoundError
from callvault.store._objects_base import Buffer, ObjectReader, ObjectStore, PendingObject

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600
_TEMP_RE: Final = re.compile(r"\.[a-z0-9][a-z0-9_-]*\.[0-9a-f]{16}\.tmp")
_O_READ: Final = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
_O_CREATE: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _LocalPending(PendingObject):
    """Steps (1)-(4) of the module docstring."""

    def __init__(self, target: Path, buffer_bytes: int) -> None:
        self._target = target
        self._temp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
        # (1):
        fd = os.open(self._temp, _O_CREATE, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)  # exactly 0600, whatever the umask
            self._file: IO[bytes] = os.fdopen(fd, "wb", buffering=buffer_bytes)
        except BaseException:  # whatever failed, no descriptor or temp file may be left; re-raised
            os.close(fd)
            self._temp.unlink(missing_ok=True)
            raise

    def write(self, data: Buffer) -> None:
        # (2): a buffered writer takes the whole buffer or raises
        self._file.write(data)

    def commit(self) -> None:
        # (3):
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._temp.replace(self._target)
        _fsync_dir(self._target.parent)

    def abort(self) -> None:
        # (4):
        try:
            self._file.close()
        finally:
            self._temp.unlink(missing_ok=True)


class _LocalReader(ObjectReader):
    def __init__(self, store: LocalObjectStore, key: str, fd: int, size: int) -> None:
        super().__init__(store, key, size)
        self._fd = fd

    def _read_at(self, offset: int, size: int) -> bytes:
        if self._fd < 0:
            raise ValueError("reader is closed")
        parts: list[bytes] = []
        got = 0
        while got < size:
            chunk = os.pread(self._fd, size - got, offset + got)
            if not chunk:  # the file is shorter than it was: say so, never pad
                raise OSError("short read")
            parts.append(chunk)
            got += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


class LocalObjectStore(ObjectStore):
    """Sealed objects as files under ``root`` (created 0700 on first write)."""

    name = "local"

    def __init__(self, root: Path, *, buffer_bytes: int = 1_048_576) -> None:
        self.root = Path(root).absolute()
        self._buffer_bytes = buffer_bytes

    def _path(self, key: str) -> Path:
        # The key was checked: four dot-free segments of [a-z0-9_-], so this
        # cannot leave the root.
        return self.root.joinpath(*key.split("/"))

    def _make_dirs(self, directory: Path) -> None:
        """Create ``directory`` and its parents up to the root, each 0700 and made durable."""
        if directory.is_dir():
            return
        if not self.root.is_dir():
            self.root.mkdir(parents=True, mode=DIR_MODE, exist_ok=True)
        current = self.root
        for part in directory.relative_to(self.root).parts:
            parent, current = current, current / part
            try:
                current.mkdir(mode=DIR_MODE)
            except FileExistsError:
                continue
            current.chmod(DIR_MODE)  # exactly 0700, whatever the umask
            _fsync_dir(parent)

    def _begin(self, key: str) -> PendingObject:
        target = self._path(key)
        self._make_dirs(target.parent)
        return _LocalPending(target, self._buffer_bytes)

    def _open(self, key: str) -> ObjectReader:
        try:
            fd = os.open(self._path(key), _O_READ)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"object {key} not found") from None
        try:
            info = os.fstat(fd)
        except BaseException:  # release the descriptor on any failure; re-raised
            os.close(fd)
            raise
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise NotFoundError(f"object {key} not found")
        return _LocalReader(self, key, fd, info.st_size)

    def _stat(self, key: str) -> os.stat_result | None:
        try:
            info = os.lstat(self._path(key))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return info if stat.S_ISREG(info.st_mode) else None

    def _delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        _fsync_dir(path.parent)

    def _exists(self, key: str) -> bool:
        return self._stat(key) is not None

    def _size(self, key: str) -> int:
        info = self._stat(key)
        if info is None:
            raise NotFoundError(f"object {key} not found")
        return info.st_size

    def _check(self) -> None:
        """The root exists (or is created) and takes a write: a probe file, removed."""
        self.root.mkdir(parents=True, mode=DIR_MODE, exist_ok=True)
        probe = self.root / f".probe.{secrets.token_hex(8)}.tmp"
        fd = os.open(probe, _O_CREATE, FILE_MODE)
        os.close(fd)
        probe.unlink()

    def _sweep(self, older_than_seconds: float) -> int:
        cutoff = time.time() - older_than_seconds
        removed = 0
        if not self.root.is_dir():
            return 0
        for directory, _dirs, files in os.walk(self.root):
            for name in files:
                if _TEMP_RE.fullmatch(name) is None:
                    continue
                path = Path(directory, name)
                try:
                    if path.lstat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:  # its writer committed or aborted meanwhile
                    continue
        return removed
