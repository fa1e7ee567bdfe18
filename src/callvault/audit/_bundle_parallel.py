"""One pass over ``entries.ndjson``, its JSON checked by helper processes when it is big.

Parsing the entries' JSON is most of the work, so for large files (a million
entries) it runs in forked helper processes while this one checks the
framing and builds the tree; ``workers=0`` keeps everything in-process.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import sys
import threading
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor

from callvault.audit._bundle_entries import _LINE_OVERHEAD, EntryParser, json_failure
from callvault.audit._bundle_files import _chunks
from callvault.audit._bundle_format import ENTRIES_FILE, BundleError, EntriesDigest, FileDigest

# Entries files at least this big have their JSON checked by helper processes.
_PARALLEL_MIN_BYTES = 32 * 1024 * 1024
# Chunks handed to helpers and not yet settled; bounds memory to a few chunks.
_IN_FLIGHT = 4


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
