"""The local object store: atomic writes, ranged reads, key checks, file modes.

Every attack on a key must be refused before the store touches the disk: the
store's root is never created by a refused call.
"""

from __future__ import annotations

import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callvault.crypto import SealContext
from callvault.crypto.stream import RangeReader, StreamHeader, StreamWriter, open_stream
from callvault.errors import (
    DecryptionError,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
)
from callvault.store import new_id
from callvault.store.objects import (
    MAX_KEY_BYTES,
    LocalObjectStore,
    ObjectStore,
    check_key,
    object_key,
)

TENANT = "ten_" + "a" * 26  # fixed: parametrize ids must match across xdist workers
DEPLOYMENT = "dep_" + "b" * 26


def key_of(name: str = "rec", kind: str = "recordings") -> str:
    return object_key(TENANT, DEPLOYMENT, kind, name)


def write_then_fail(store: ObjectStore, key: str, chunks: list[bytes], exc: BaseException) -> None:
    """Write ``chunks`` through a writer, then raise ``exc`` inside it (a caller failing)."""
    with store.writer(key) as sink:
        for chunk in chunks:
            sink.write(chunk)
        raise exc


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.is_file()] if root.exists() else []


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "objects"


@pytest.fixture
def store(root: Path) -> LocalObjectStore:
    return LocalObjectStore(root)


# -- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 4095, 65_536, 1_048_577])
def test_put_then_get_returns_the_same_bytes(store: LocalObjectStore, size: int) -> None:
    data = secrets.token_bytes(size)
    assert store.put(key_of(), data) == size
    assert store.get(key_of()) == data
    assert store.size(key_of()) == size
    assert store.exists(key_of())
    with store.reader(key_of()) as reader:
        assert reader.size == size
        assert reader.read_at(0, size) == data


def test_many_small_chunks_stream_into_one_object(store: LocalObjectStore) -> None:
    chunks = [secrets.token_bytes(n % 997 + 1) for n in range(2000)]
    with store.writer(key_of()) as sink:
        for chunk in chunks:
            assert sink.write(memoryview(chunk)) == len(chunk)
    assert sink.written == sum(map(len, chunks))
    assert store.get(key_of()) == b"".join(chunks)


def test_writer_sink_reused_buffer_is_copied(store: LocalObjectStore) -> None:
    buf = bytearray(b"a" * 1000)
    with store.writer(key_of()) as sink:
        sink.write(memoryview(buf))
        buf[:] = b"b" * 1000  # StreamWriter reuses its buffers the same way
        sink.write(memoryview(buf))
    assert store.get(key_of()) == b"a" * 1000 + b"b" * 1000


def test_delete_removes_the_object_and_is_idempotent(store: LocalObjectStore) -> None:
    store.put(key_of(), b"sealed")
    store.delete(key_of())
    assert not store.exists(key_of())
    store.delete(key_of())
    with pytest.raises(NotFoundError):
        store.get(key_of())


# -- atomicity --------------------------------------------------------------------------


def test_object_is_invisible_until_the_writer_closes(store: LocalObjectStore) -> None:
    with store.writer(key_of()) as sink:
        sink.write(b"x" * 100_000)
        assert not store.exists(key_of())
        with pytest.raises(NotFoundError):
            store.reader(key_of())
    assert store.get(key_of()) == b"x" * 100_000


def test_exception_inside_writer_leaves_no_object_and_no_temp_file(
    store: LocalObjectStore, root: Path
) -> None:
    with pytest.raises(RuntimeError, match="caller failed"):
        write_then_fail(store, key_of(), [b"partial" * 10_000], RuntimeError("caller failed"))
    assert not store.exists(key_of())
    assert temp_files(root) == []
    with pytest.raises(NotFoundError):
        store.size(key_of())


def test_exception_inside_writer_keeps_the_previous_version(
    store: LocalObjectStore, root: Path
) -> None:
    store.put(key_of(), b"version 1")
    with pytest.raises(KeyboardInterrupt):
        write_then_fail(store, key_of(), [b"version 2, half written"], KeyboardInterrupt())
    assert store.get(key_of()) == b"version 1"
    assert temp_files(root) == []


def test_disk_failure_on_commit_is_unavailable_and_leaves_nothing(
    store: LocalObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    with store.writer(key_of()) as sink:  # creates the directories
        sink.write(b"ok")
    store.delete(key_of())
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(UnavailableError) as info, store.writer(key_of()) as sink:
        sink.write(b"sealed bytes")
    assert str(info.value) == f"local object store: cannot write {key_of()}"
    monkeypatch.undo()
    assert not store.exists(key_of())
    assert temp_files(root) == []


def test_sink_refuses_writes_after_the_writer_closed(store: LocalObjectStore) -> None:
    with store.writer(key_of()) as sink:
        sink.write(b"a")
    with pytest.raises(UnavailableError):
        sink.write(b"b")
    assert store.get(key_of()) == b"a"


def test_concurrent_writers_last_rename_wins_and_readers_never_see_a_torn_object(
    store: LocalObjectStore,
) -> None:
    versions = [bytes([n]) * 300_000 for n in range(8)]
    store.put(key_of(), versions[0])
    stop = threading.Event()
    seen: list[bytes] = []
    errors: list[BaseException] = []

    def write(version: bytes) -> None:
        try:
            for _ in range(5):
                with store.writer(key_of()) as sink:
                    for i in range(0, len(version), 7000):
                        sink.write(version[i : i + 7000])
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread below
            errors.append(exc)

    def read() -> None:
        while not stop.is_set():
            seen.append(store.get(key_of()))

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(v,)) for v in versions[1:]]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert seen
    assert all(data in versions for data in seen)
    assert store.get(key_of()) in versions[1:]


def test_reader_keeps_the_version_it_opened(store: LocalObjectStore) -> None:
    store.put(key_of(), b"A" * 1000)
    with store.reader(key_of()) as reader:
        store.put(key_of(), b"B" * 2000)
        assert reader.size == 1000
        assert reader.read_at(500, 1000) == b"A" * 500
    assert store.get(key_of()) == b"B" * 2000


# -- files on disk ----------------------------------------------------------------------


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o002)
    yield
    os.umask(old)


def test_files_are_0600_and_directories_0700(
    store: LocalObjectStore, root: Path, loose_umask: None
) -> None:
    store.put(key_of(), b"sealed")
    path = root / key_of()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    directory = path.parent
    while directory != root.parent:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
        directory = directory.parent


def test_a_planted_symlink_is_not_followed(store: LocalObjectStore, root: Path) -> None:
    store.put(key_of("other"), b"sealed")
    secret = root.parent / "elsewhere"
    secret.write_bytes(b"not an object")
    (root / key_of()).symlink_to(secret)
    with pytest.raises(UnavailableError):  # O_NOFOLLOW: ELOOP
        store.get(key_of())
    assert not store.exists(key_of())


def test_sweep_removes_only_stale_temporary_files(store: LocalObjectStore, root: Path) -> None:
    store.put(key_of(), b"sealed")
    directory = (root / key_of()).parent
    stale = directory / f".rec.{secrets.token_hex(8)}.tmp"
    young = directory / f".rec2.{secrets.token_hex(8)}.tmp"
    stale.write_bytes(b"left by a crash")
    young.write_bytes(b"being written")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    assert store.sweep(600) == 1
    assert not stale.exists()
    assert young.exists()
    assert store.get(key_of()) == b"sealed"


def test_check_creates_the_root_and_leaves_no_probe(store: LocalObjectStore, root: Path) -> None:
    store.check()
    assert root.is_dir()
    assert list(root.iterdir()) == []


# -- ranged reads -----------------------------------------------------------------------

OBJECT = secrets.token_bytes(70_001)


@pytest.fixture(scope="module")
def ranged(tmp_path_factory: pytest.TempPathFactory) -> ObjectStore:
    store = LocalObjectStore(tmp_path_factory.mktemp("ranged"))
    store.put(key_of(), OBJECT)
    return store


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(offset=st.integers(0, len(OBJECT) + 10), size=st.integers(0, len(OBJECT) + 10))
def test_read_at_equals_slicing_the_whole_object(
    ranged: ObjectStore, offset: int, size: int
) -> None:
    with ranged.reader(key_of()) as reader:
        assert reader.read_at(offset, size) == OBJECT[offset : offset + size]


@pytest.mark.parametrize(("offset", "size"), [(-1, 1), (0, -1), (True, 1)])
def test_read_at_refuses_negative_ranges(ranged: ObjectStore, offset: int, size: int) -> None:
    with ranged.reader(key_of()) as reader, pytest.raises(InvalidInputError) as info:
        reader.read_at(offset, size)
    assert info.value.field == "range"


# -- the real sealed-stream format, end to end ------------------------------------------

CTX = SealContext(
    tenant_id=TENANT, purpose="recording", object_id=new_id("rec"), deployment_id=DEPLOYMENT
)
HEADER = StreamHeader.for_context(CTX, key_ref="dk_1/v1", segment_size=4096)


def test_sealed_stream_written_live_reads_back_by_range(store: LocalObjectStore) -> None:
    key = secrets.token_bytes(32)
    audio = secrets.token_bytes(300_000)
    with store.writer(key_of()) as sink, StreamWriter(key, HEADER, sink) as w:
        for i in range(0, len(audio), 1234):
            w.write(audio[i : i + 1234])
    assert open_stream(key, store.get(key_of()), CTX) == audio
    reads: list[tuple[int, int]] = []
    with store.reader(key_of()) as reader:

        def read_at(offset: int, size: int) -> bytes:
            reads.append((offset, size))
            return reader.read_at(offset, size)

        ranges = RangeReader(key, read_at, reader.size, CTX)
        assert ranges.plaintext_length == len(audio)
        reads.clear()
        assert ranges.read_range(150_000, 150_100) == audio[150_000:150_100]
        assert sum(size for _, size in reads) <= 2 * 4096  # one or two segments, not the object
        assert ranges.read_range(0, len(audio)) == audio


def test_a_live_recording_that_fails_leaves_nothing_to_open(
    store: LocalObjectStore, root: Path
) -> None:
    key = secrets.token_bytes(32)

    def record() -> None:
        with store.writer(key_of()) as sink, StreamWriter(key, HEADER, sink) as w:
            w.write(secrets.token_bytes(50_000))
            raise ConnectionResetError  # the carrier hung up mid-stream

    with pytest.raises(ConnectionResetError):
        record()
    assert not store.exists(key_of())
    assert temp_files(root) == []


def test_a_stream_of_another_object_does_not_open_through_the_store(
    store: LocalObjectStore,
) -> None:
    key = secrets.token_bytes(32)
    with store.writer(key_of()) as sink, StreamWriter(key, HEADER, sink) as w:
        w.write(b"audio")
    other = SealContext(
        tenant_id=TENANT, purpose="recording", object_id=new_id("rec"), deployment_id=DEPLOYMENT
    )
    with store.reader(key_of()) as reader, pytest.raises(DecryptionError):
        RangeReader(key, reader.read_at, reader.size, other)


# -- keys -------------------------------------------------------------------------------

BAD_KEYS = [
    "",
    "../x",
    f"{TENANT}/{DEPLOYMENT}/recordings/../../../etc/passwd",
    f"{TENANT}/{DEPLOYMENT}/../rec",
    f"{TENANT}/{DEPLOYMENT}/recordings/..",
    f"/{TENANT}/{DEPLOYMENT}/recordings/rec",
    f"/etc/{DEPLOYMENT}/recordings/rec",
    f"{TENANT}/{DEPLOYMENT}/recordings/" + "a" * 129,
    f"{TENANT}/{DEPLOYMENT}/recordings/" + "a" * MAX_KEY_BYTES,
    f"{TENANT}/{DEPLOYMENT}/recordings/rec.tmp",
    f"{TENANT}/{DEPLOYMENT}/recordings/.rec",
    f"{TENANT}/{DEPLOYMENT}/recordings/Rec",
    f"{TENANT}/{DEPLOYMENT}/recordings/rec\n",
    f"{TENANT}/{DEPLOYMENT}/recordings/rec\x00",
    f"{TENANT}/{DEPLOYMENT}/recordings/réc",
    f"{TENANT}/{DEPLOYMENT}/recordings/a b",
    f"{TENANT}/{DEPLOYMENT}/recordings/a\\b",
    f"{TENANT}/{DEPLOYMENT}/recordings/rec/extra",
    f"{TENANT}/{DEPLOYMENT}/recordings",
    f"{TENANT}//recordings/rec",
    f"{DEPLOYMENT}/{TENANT}/recordings/rec",
    f"ten_a/{DEPLOYMENT}/recordings/rec",
]


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_bad_keys_are_refused_before_the_disk_is_touched(
    store: LocalObjectStore, root: Path, bad: str
) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.put(bad, b"sealed"),
        lambda: store.writer(bad).__enter__(),
        lambda: store.reader(bad),
        lambda: store.get(bad),
        lambda: store.delete(bad),
        lambda: store.exists(bad),
        lambda: store.size(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidInputError) as info:
            call()
        assert info.value.field == "key"
        assert bad not in str(info.value) or not bad
    assert not root.exists()


def test_a_key_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        check_key(b"ten_x/dep_y/recordings/rec")


@pytest.mark.parametrize(
    ("field", "args"),
    [
        ("tenant_id", ("ten_a", DEPLOYMENT, "recordings", "rec")),
        ("deployment_id", (TENANT, "..", "recordings", "rec")),
        ("kind", (TENANT, DEPLOYMENT, "Recordings", "rec")),
        ("name", (TENANT, DEPLOYMENT, "recordings", "../rec")),
    ],
)
def test_object_key_names_the_bad_part(field: str, args: tuple[str, str, str, str]) -> None:
    with pytest.raises(InvalidInputError) as info:
        object_key(*args)
    assert info.value.field == field


def test_object_key_builds_a_valid_key() -> None:
    assert check_key(key_of("rec_1-audio")) == f"{TENANT}/{DEPLOYMENT}/recordings/rec_1-audio"


# -- missing objects --------------------------------------------------------------------


def test_missing_object_is_not_found(store: LocalObjectStore) -> None:
    for call in (store.reader, store.get, store.size):
        with pytest.raises(NotFoundError) as info:
            call(key_of())
        assert str(info.value) == f"object {key_of()} not found"
    assert not store.exists(key_of())
