"""The S3 object store against a real ``moto_server`` speaking S3 on loopback.

Moto enforces what matters here as S3 does: parts under 5 MiB (but the last)
fail CompleteMultipartUpload, an incomplete multipart upload is not an
object, GetBucketLocation answers the bucket's region, and ``If-Match``
fails with 412 once an object was replaced. It stamps every upload with the
same old ``Initiated`` date, so the sweep test only shows pending uploads go.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callvault.crypto import SealContext
from callvault.crypto.stream import RangeReader, StreamHeader, StreamWriter, open_stream
from callvault.errors import (
    ConfigError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
)
from callvault.store import new_id
from callvault.store.objects import (
    ObjectStores,
    S3ObjectStore,
    object_key,
    parse_object_stores,
)
from tests.integration.kms import REGION, MotoServer, MotoUnavailableError, free_port

try:
    import botocore  # noqa: F401 - only to learn whether the aws extra is installed
except ImportError:
    if os.environ.get("CV_TEST_REQUIRE_POSTGRES") == "1":
        raise
    pytest.skip("boto3 not installed (pip install 'callvault[aws]')", allow_module_level=True)

pytestmark = pytest.mark.kms

MiB = 1024 * 1024
PART = 5 * MiB
TENANT = "ten_" + "a" * 26  # fixed: parametrize ids must match across xdist workers
DEPLOYMENT = "dep_" + "b" * 26
KEY = object_key(TENANT, DEPLOYMENT, "recordings", "rec")


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    try:
        server = MotoServer.start()
    except MotoUnavailableError as exc:
        if os.environ.get("CV_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CV_TEST_REQUIRE_POSTGRES=1 but {exc}")
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


def s3_admin(moto: MotoServer, region: str = REGION) -> Any:
    """A plain boto3 client: what an operator (or a test) sees of the bucket."""
    return moto.session().client("s3", region_name=region, endpoint_url=moto.url)


def new_bucket(moto: MotoServer, region: str = REGION) -> str:
    name = f"cv-{secrets.token_hex(6)}"
    s3_admin(moto, region).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
    )
    return name


class Requests:
    """Counts the S3 operations a store sends (and the bytes its GETs ask for)."""

    def __init__(self, store: S3ObjectStore) -> None:
        self.ops: Counter[str] = Counter()
        self.ranges: list[str] = []
        store._s3.meta.events.register("before-call.s3", self._seen)

    def _seen(self, model: Any, params: Any, **_: Any) -> None:
        self.ops[model.name] += 1
        if model.name == "GetObject":
            self.ranges.append(params.get("headers", {}).get("Range", "all"))

    def clear(self) -> None:
        self.ops.clear()
        self.ranges.clear()


def write_then_fail(
    store: S3ObjectStore, chunks: list[bytes], exc: BaseException, during: Callable[[], None]
) -> None:
    """Write ``chunks`` through a writer, run ``during``, then raise ``exc`` inside it."""
    with store.writer(KEY) as sink:
        for chunk in chunks:
            sink.write(chunk)
        during()
        raise exc


def make_store(moto: MotoServer, bucket: str, **options: Any) -> S3ObjectStore:
    return S3ObjectStore(
        bucket=bucket,
        region=options.pop("region", REGION),
        endpoint_url=options.pop("endpoint_url", moto.url),
        session=moto.session(),
        part_size_bytes=options.pop("part_size_bytes", PART),
        connect_timeout_seconds=2,
        read_timeout_seconds=10,
        max_attempts=1,
        **options,
    )


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    return new_bucket(moto)


@pytest.fixture
def store(moto: MotoServer, bucket: str) -> S3ObjectStore:
    return make_store(moto, bucket)


def pending_uploads(moto: MotoServer, bucket: str) -> list[Any]:
    uploads: list[Any] = s3_admin(moto).list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return uploads


def object_keys(moto: MotoServer, bucket: str) -> list[str]:
    listing = s3_admin(moto).list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in listing.get("Contents", [])]


# -- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 100_000])
def test_small_objects_are_one_put(store: S3ObjectStore, moto: MotoServer, size: int) -> None:
    requests = Requests(store)
    data = secrets.token_bytes(size)
    with store.writer(KEY) as sink:
        for i in range(0, size, 4096):
            sink.write(data[i : i + 4096])
    assert requests.ops["PutObject"] == 1
    assert requests.ops["CreateMultipartUpload"] == 0
    assert store.get(KEY) == data
    assert store.size(KEY) == size
    assert store.exists(KEY)
    with store.reader(KEY) as reader:
        assert reader.size == size
        assert reader.read_at(0, size) == data


def test_large_object_streams_as_a_multipart_upload_visible_only_at_the_end(
    store: S3ObjectStore, moto: MotoServer, bucket: str
) -> None:
    data = secrets.token_bytes(2 * PART + 123_457)
    requests = Requests(store)
    with store.writer(KEY) as sink:
        for i in range(0, len(data), 64 * 1024):
            sink.write(memoryview(data)[i : i + 64 * 1024])
            if i == PART + 64 * 1024:  # one part sent, the upload pending
                assert len(pending_uploads(moto, bucket)) == 1
                assert not store.exists(KEY)
    assert requests.ops["CreateMultipartUpload"] == 1
    assert requests.ops["UploadPart"] == 3  # 5 MiB, 5 MiB, the rest
    assert requests.ops["CompleteMultipartUpload"] == 1
    assert requests.ops["PutObject"] == 0
    assert pending_uploads(moto, bucket) == []
    assert store.get(KEY) == data


def test_delete_is_idempotent(store: S3ObjectStore) -> None:
    store.put(KEY, b"sealed")
    store.delete(KEY)
    store.delete(KEY)
    assert not store.exists(KEY)


def test_server_side_encryption_is_asked_for_when_configured(moto: MotoServer, bucket: str) -> None:
    store = make_store(moto, bucket, server_side_encryption="AES256")
    store.put(KEY, b"sealed")
    head = s3_admin(moto).head_object(Bucket=bucket, Key=KEY)
    assert head["ServerSideEncryption"] == "AES256"


# -- atomicity --------------------------------------------------------------------------


def test_exception_mid_upload_aborts_it_and_leaves_no_object(
    store: S3ObjectStore, moto: MotoServer, bucket: str
) -> None:
    def one_upload_pending() -> None:
        assert len(pending_uploads(moto, bucket)) == 1

    chunks = [secrets.token_bytes(MiB) for _ in range(2 * PART // MiB + 1)]
    with pytest.raises(RuntimeError, match="caller failed"):
        write_then_fail(store, chunks, RuntimeError("caller failed"), one_upload_pending)
    assert pending_uploads(moto, bucket) == []
    assert object_keys(moto, bucket) == []
    assert not store.exists(KEY)


def test_exception_mid_upload_keeps_the_previous_version(
    store: S3ObjectStore, moto: MotoServer, bucket: str
) -> None:
    store.put(KEY, b"version 1")
    with pytest.raises(KeyboardInterrupt):
        write_then_fail(store, [secrets.token_bytes(PART + 1)], KeyboardInterrupt(), lambda: None)
    assert store.get(KEY) == b"version 1"
    assert pending_uploads(moto, bucket) == []


def test_exception_before_any_part_sends_nothing(
    store: S3ObjectStore, moto: MotoServer, bucket: str
) -> None:
    requests = Requests(store)
    with pytest.raises(RuntimeError):
        write_then_fail(store, [b"partial"], RuntimeError(), lambda: None)
    assert set(requests.ops) <= {"GetBucketLocation"}
    assert object_keys(moto, bucket) == []


def test_a_failing_part_upload_is_unavailable_and_aborted(
    store: S3ObjectStore, moto: MotoServer, bucket: str
) -> None:
    def refuse_second_part(params: Any, **_: Any) -> None:
        if params.get("PartNumber") == 2:
            raise OSError("connection reset")

    store._s3.meta.events.register("provide-client-params.s3.UploadPart", refuse_second_part)
    with pytest.raises(UnavailableError) as info:
        store.put(KEY, secrets.token_bytes(3 * PART))
    assert str(info.value) == f"s3 object store: cannot write {KEY}"
    assert pending_uploads(moto, bucket) == []
    assert not store.exists(KEY)


def test_a_reader_never_splices_two_versions(store: S3ObjectStore) -> None:
    store.put(KEY, b"A" * 1000)
    with store.reader(KEY) as reader:
        assert reader.read_at(0, 10) == b"A" * 10
        store.put(KEY, b"B" * 1000)
        with pytest.raises(ConflictError):
            reader.read_at(10, 10)
        store.delete(KEY)
        with pytest.raises((ConflictError, NotFoundError)):
            reader.read_at(10, 10)


# -- ranged reads -----------------------------------------------------------------------

OBJECT = secrets.token_bytes(50_001)


@pytest.fixture(scope="module")
def ranged(moto: MotoServer) -> S3ObjectStore:
    store = make_store(moto, new_bucket(moto))
    store.put(KEY, OBJECT)
    return store


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(offset=st.integers(0, len(OBJECT) + 5), size=st.integers(0, len(OBJECT) + 5))
def test_read_at_equals_slicing_the_whole_object(
    ranged: S3ObjectStore, offset: int, size: int
) -> None:
    with ranged.reader(KEY) as reader:
        assert reader.read_at(offset, size) == OBJECT[offset : offset + size]


def test_sealed_stream_over_multipart_reads_only_the_segments_a_range_needs(
    store: S3ObjectStore,
) -> None:
    ctx = SealContext(
        tenant_id=TENANT, purpose="recording", object_id=new_id("rec"), deployment_id=DEPLOYMENT
    )
    header = StreamHeader.for_context(ctx, key_ref="dk_1/v1")  # 64 KiB segments
    key = secrets.token_bytes(32)
    audio = secrets.token_bytes(PART + 300_000)
    with store.writer(KEY) as sink, StreamWriter(key, header, sink) as w:
        for i in range(0, len(audio), 20_000):
            w.write(audio[i : i + 20_000])
    assert open_stream(key, store.get(KEY), ctx) == audio
    requests = Requests(store)
    with store.reader(KEY) as reader:
        ranges = RangeReader(key, reader.read_at, reader.size, ctx)
        requests.clear()
        start = len(audio) // 2
        assert ranges.read_range(start, start + 1000) == audio[start : start + 1000]
    assert requests.ops["GetObject"] <= 2  # one or two 64 KiB segments, never the object
    assert all(r.startswith("bytes=") for r in requests.ranges)


# -- keys, absence, residency, outages --------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["../x", f"/{TENANT}/{DEPLOYMENT}/recordings/rec", KEY + "/" + "a" * 300, KEY + "?acl"],
)
def test_bad_keys_are_refused_before_any_request(
    store: S3ObjectStore, moto: MotoServer, bad: str
) -> None:
    unreachable = make_store(moto, "cv-nowhere", endpoint_url=f"http://127.0.0.1:{free_port()}")
    requests = Requests(store)
    for target in (store, unreachable):
        for call in (target.get, target.reader, target.size, target.exists, target.delete):
            with pytest.raises(InvalidInputError):
                call(bad)
        with pytest.raises(InvalidInputError):
            target.put(bad, b"sealed")
    assert not requests.ops


def test_missing_object_is_not_found(store: S3ObjectStore) -> None:
    for call in (store.reader, store.get, store.size):
        with pytest.raises(NotFoundError) as info:
            call(KEY)
        assert str(info.value) == f"object {KEY} not found"
    assert not store.exists(KEY)


def test_a_bucket_in_another_region_is_refused(moto: MotoServer) -> None:
    elsewhere = new_bucket(moto, "us-west-2")
    store = make_store(moto, elsewhere)
    for call in (lambda: store.put(KEY, b"sealed"), store.check, lambda: store.exists(KEY)):
        with pytest.raises(ConfigError) as info:
            call()
        assert "is in region us-west-2, not eu-west-1 (data residency)" in str(info.value)
    assert object_keys(moto, elsewhere) == []


def test_a_missing_bucket_is_unavailable(moto: MotoServer) -> None:
    store = make_store(moto, "cv-never-created")
    with pytest.raises(UnavailableError, match="bucket cv-never-created does not exist"):
        store.put(KEY, b"sealed")


def test_an_unreachable_endpoint_is_unavailable_quickly(moto: MotoServer) -> None:
    store = make_store(moto, "cv-any", endpoint_url=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    for call in (lambda: store.put(KEY, b"sealed"), lambda: store.get(KEY), store.check):
        with pytest.raises(UnavailableError) as info:
            call()
        assert "127.0.0.1" not in str(info.value)
    assert time.monotonic() - started < 10


def test_sweep_aborts_uploads_a_crash_left(
    store: S3ObjectStore, moto: MotoServer, bucket: str
) -> None:
    admin = s3_admin(moto)
    admin.create_multipart_upload(Bucket=bucket, Key=KEY)
    admin.create_multipart_upload(Bucket=bucket, Key="not/one/of/ours")
    assert store.sweep(3600) == 1
    assert [u["Key"] for u in pending_uploads(moto, bucket)] == ["not/one/of/ours"]


def test_the_region_setting_chooses_s3_for_its_region(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    raw = json.dumps(
        {REGION: {"kind": "s3", "bucket": bucket, "endpoint_url": moto.url, "max_attempts": 1}}
    )
    stores = ObjectStores(parse_object_stores(raw), data_dir=tmp_path, session=moto.session())
    stores.check()
    s3 = stores.for_region(REGION)
    assert isinstance(s3, S3ObjectStore)
    s3.put(KEY, b"sealed")
    assert object_keys(moto, bucket) == [KEY]
    stores.for_region("eu-west-2").put(KEY, b"local")
    assert (tmp_path / "objects" / "eu-west-2" / KEY).read_bytes() == b"local"
