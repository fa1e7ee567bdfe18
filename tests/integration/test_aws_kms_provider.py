"""The ``aws-kms`` key provider against a real ``moto_server`` on loopback.

Moto differs from AWS in three ways these tests account for: it still
encrypts and decrypts with a disabled key (the provider's own state check
refuses it), it ignores ``SourceKeyId`` on ReEncrypt (the provider checks the
answer's source key), and it answers a pinned Decrypt with another key's
ciphertext with AccessDeniedException where AWS answers IncorrectKeyException.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callvault.config import load_settings
from callvault.errors import DecryptionError, InvalidInputError, KeyUnavailableError
from callvault.keys import DataKeyCache, KeyHierarchy, KeyOwner, WrapContext
from callvault.keys._aws_kms import AwsKmsKeyProvider
from callvault.store import Database, new_id
from callvault.store.models import DataKey, Deployment, Kek, Tenant, utcnow
from tests.integration.kms import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    MotoServer,
    MotoUnavailableError,
    free_port,
)

try:
    from botocore.exceptions import ClientError, EndpointConnectionError
except ImportError:  # the aws extra is not installed
    if os.environ.get("CV_TEST_REQUIRE_POSTGRES") == "1":
        raise
    pytest.skip("boto3 not installed (pip install 'callvault[aws]')", allow_module_level=True)

pytestmark = pytest.mark.kms

CTX = WrapContext("ten_a", "dep_a", "call", "call_a", "call-data-key")
DATA_KEY = bytes(range(32))


@pytest.fixture(scope="session")
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


class Clock:
    """A monotonic clock the test moves by hand (for the key-state cache)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kms(moto: MotoServer, clock: Clock) -> AwsKmsKeyProvider:
    return moto.provider(clock=clock)


@pytest.fixture
def admin(moto: MotoServer) -> Any:
    return moto.admin_client()


def _key_id(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


# -- round trips ----------------------------------------------------------------------


def test_wrap_unwrap_and_generate_round_trip(kms: AwsKmsKeyProvider, admin: Any) -> None:
    ref = kms.create_kek("ten_a/dep_a")
    assert ref.startswith(f"arn:aws:kms:{REGION}:")
    meta = admin.describe_key(KeyId=ref)["KeyMetadata"]
    assert meta["Description"] == "ten_a/dep_a"
    assert (meta["KeySpec"], meta["KeyUsage"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")

    wrapped = kms.wrap(ref, DATA_KEY, CTX)
    assert DATA_KEY not in wrapped
    assert kms.unwrap(ref, wrapped, CTX) == DATA_KEY

    key, generated = kms.generate(ref, CTX)
    assert len(key) == 32
    assert key != DATA_KEY
    assert key not in generated
    assert kms.unwrap(ref, generated, CTX) == key


def test_ready_and_check_pass_against_a_live_endpoint(kms: AwsKmsKeyProvider) -> None:
    kms.ready()
    kms.check(kms.create_kek("x"))


# -- binding: context, key id, bytes ----------------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        WrapContext("ten_b", "dep_a", "call", "call_a", "call-data-key"),
        WrapContext("ten_a", "dep_b", "call", "call_a", "call-data-key"),
        WrapContext("ten_a", "dep_a", "call", "call_b", "call-data-key"),
        WrapContext("ten_a", "dep_a", "object", "call_a", "call-data-key"),
        WrapContext("ten_a", "dep_a", "call", "call_a", "other-purpose"),
    ],
)
def test_wrapped_key_under_another_context_does_not_unwrap(
    kms: AwsKmsKeyProvider, other: WrapContext
) -> None:
    ref = kms.create_kek("x")
    _, generated = kms.generate(ref, CTX)
    for wrapped in (kms.wrap(ref, DATA_KEY, CTX), generated):
        with pytest.raises(DecryptionError):
            kms.unwrap(ref, wrapped, other)


def test_tampered_wrapped_key_is_a_decryption_error(kms: AwsKmsKeyProvider) -> None:
    ref = kms.create_kek("x")
    wrapped = bytearray(kms.wrap(ref, DATA_KEY, CTX))
    wrapped[-1] ^= 1
    with pytest.raises(DecryptionError):
        kms.unwrap(ref, bytes(wrapped), CTX)


def test_ciphertext_of_one_key_presented_as_another_is_refused(kms: AwsKmsKeyProvider) -> None:
    a, b = kms.create_kek("a"), kms.create_kek("b")
    wrapped = kms.wrap(a, DATA_KEY, CTX)
    # AWS: IncorrectKeyException (DecryptionError); moto: AccessDeniedException.
    with pytest.raises((DecryptionError, KeyUnavailableError)) as info:
        kms.unwrap(b, wrapped, CTX)
    assert "ciphertext" not in str(info.value)  # moto's message never reaches ours
    assert kms.unwrap(a, wrapped, CTX) == DATA_KEY


def test_rewrap_from_the_wrong_source_key_is_refused(kms: AwsKmsKeyProvider) -> None:
    a, b, c = kms.create_kek("a"), kms.create_kek("b"), kms.create_kek("c")
    wrapped = kms.wrap(a, DATA_KEY, CTX)
    with pytest.raises(DecryptionError):
        kms.rewrap(b, c, wrapped, CTX)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("InvalidCiphertextException", DecryptionError),
        ("IncorrectKeyException", DecryptionError),
        ("NotFoundException", KeyUnavailableError),
        ("DisabledException", KeyUnavailableError),
        ("KMSInvalidStateException", KeyUnavailableError),
        ("AccessDeniedException", KeyUnavailableError),
        ("ThrottlingException", KeyUnavailableError),
        ("UnrecognizedClientException", KeyUnavailableError),
    ],
)
def test_kms_error_codes_map_to_the_two_provider_errors(
    kms: AwsKmsKeyProvider, code: str, expected: type[Exception]
) -> None:
    exc = ClientError({"Error": {"Code": code, "Message": "arn:aws:kms:..."}}, "Decrypt")
    assert kms._classify(exc) is expected
    endpoint = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    assert kms._classify(endpoint) is KeyUnavailableError
    assert kms._classify(ValueError("a bug")) is None


def test_unknown_key_is_unavailable_without_the_sdk_message(kms: AwsKmsKeyProvider) -> None:
    ref = kms.create_kek("x")
    missing = ref.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    with pytest.raises(KeyUnavailableError) as info:
        kms.unwrap(missing, kms.wrap(ref, DATA_KEY, CTX), CTX)
    assert str(info.value) == f"aws-kms: cannot unwrap with key {missing}"
    assert info.value.__cause__ is None


# -- rotation, disabling, destruction --------------------------------------------------


def test_rewrap_moves_a_key_to_another_kek_and_the_old_one_can_be_disabled(
    kms: AwsKmsKeyProvider, admin: Any, clock: Clock
) -> None:
    old, new = kms.create_kek("v1"), kms.create_kek("v2")
    wrapped = kms.wrap(old, DATA_KEY, CTX)
    moved = kms.rewrap(old, new, wrapped, CTX)
    assert moved != wrapped
    admin.disable_key(KeyId=_key_id(old))
    clock.now += 60
    assert kms.unwrap(new, moved, CTX) == DATA_KEY
    with pytest.raises(KeyUnavailableError):
        kms.unwrap(old, wrapped, CTX)
    with pytest.raises(DecryptionError):  # bound to its context on the new key too
        kms.unwrap(new, moved, WrapContext("ten_b", "dep_a", "call", "call_a", "call-data-key"))


def test_disabled_key_is_unavailable_naming_only_provider_and_key(
    kms: AwsKmsKeyProvider, admin: Any, clock: Clock
) -> None:
    ref = kms.create_kek("x")
    wrapped = kms.wrap(ref, DATA_KEY, CTX)
    admin.disable_key(KeyId=_key_id(ref))
    clock.now += 60
    for attempt in (
        lambda: kms.unwrap(ref, wrapped, CTX),
        lambda: kms.wrap(ref, DATA_KEY, CTX),
        lambda: kms.generate(ref, CTX),
        lambda: kms.check(ref),
    ):
        with pytest.raises(KeyUnavailableError) as info:
            attempt()
        assert str(info.value) == f"aws-kms: key {ref} is not enabled (state Disabled)"


def test_key_state_is_cached_for_its_ttl_only(
    kms: AwsKmsKeyProvider, admin: Any, clock: Clock
) -> None:
    ref = kms.create_kek("x")
    wrapped = kms.wrap(ref, DATA_KEY, CTX)
    admin.disable_key(KeyId=_key_id(ref))
    clock.now += 4  # within the 5 s TTL the cached "Enabled" stands (and moto still decrypts)
    assert kms.unwrap(ref, wrapped, CTX) == DATA_KEY
    clock.now += 2
    with pytest.raises(KeyUnavailableError, match="not enabled"):
        kms.unwrap(ref, wrapped, CTX)
    admin.enable_key(KeyId=_key_id(ref))
    kms.forget_state(ref)
    assert kms.unwrap(ref, wrapped, CTX) == DATA_KEY


def test_destroyed_key_is_pending_deletion_for_the_minimum_window_and_unavailable(
    kms: AwsKmsKeyProvider, admin: Any
) -> None:
    ref = kms.create_kek("x")
    wrapped = kms.wrap(ref, DATA_KEY, CTX)
    kms.destroy_kek(ref)  # takes effect at once: no cache wait
    meta = admin.describe_key(KeyId=ref)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion"
    in_a_week = datetime.now(UTC) + timedelta(days=7)
    assert abs(meta["DeletionDate"] - in_a_week) < timedelta(minutes=5)
    with pytest.raises(KeyUnavailableError) as info:
        kms.unwrap(ref, wrapped, CTX)
    assert str(info.value) == f"aws-kms: key {ref} is not enabled (state PendingDeletion)"
    kms.destroy_kek(ref)  # again: nothing more to do


# -- reachability -------------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


@pytest.mark.parametrize("endpoint", ["closed", "silent"])
def test_unreachable_endpoint_is_unavailable_within_the_timeout(
    request: pytest.FixtureRequest, endpoint: str
) -> None:
    port = free_port() if endpoint == "closed" else request.getfixturevalue("silent_port")
    kms = AwsKmsKeyProvider(
        region=REGION,
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        connect_timeout_seconds=0.5,
        read_timeout_seconds=0.5,
        max_attempts=2,
    )
    ref = f"arn:aws:kms:{REGION}:123456789012:key/00000000-0000-0000-0000-000000000000"
    started = time.monotonic()
    with pytest.raises(KeyUnavailableError) as info:
        kms.ready()
    assert str(info.value) == "aws-kms: cannot reach the provider with key -"
    with pytest.raises(KeyUnavailableError, match=f"^aws-kms: cannot unwrap with key {ref}$"):
        kms.unwrap(ref, b"\x01" * 64, CTX)
    assert time.monotonic() - started < 8  # two calls, two attempts each, 0.5 s timeouts


# -- bring your own key ----------------------------------------------------------------------


def test_adopting_a_customer_key_returns_its_arn_and_it_wraps(
    kms: AwsKmsKeyProvider, admin: Any
) -> None:
    meta = admin.create_key(Description="customer key")["KeyMetadata"]
    ref = kms.adopt_kek(meta["KeyId"])
    assert ref == meta["Arn"]
    assert kms.unwrap(ref, kms.wrap(ref, DATA_KEY, CTX), CTX) == DATA_KEY
    assert kms.adopt_kek(meta["Arn"]) == ref


def test_adopting_a_key_in_another_region_is_refused(
    kms: AwsKmsKeyProvider, moto: MotoServer
) -> None:
    foreign = moto.admin_client("us-east-1").create_key()["KeyMetadata"]
    with pytest.raises(InvalidInputError, match=f"is not in region {REGION} \\(data residency\\)"):
        kms.adopt_kek(foreign["Arn"])
    with pytest.raises(InvalidInputError, match=f"was not found in region {REGION}"):
        kms.adopt_kek(foreign["KeyId"])


@pytest.mark.parametrize(
    ("create", "why"),
    [
        ({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}, "not a symmetric"),
        ({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, "not a symmetric"),
        ({"MultiRegion": True}, "multi-region"),
        ({"disable": True}, "not enabled"),
    ],
)
def test_adopting_an_unsuitable_key_is_refused(
    kms: AwsKmsKeyProvider, admin: Any, create: dict[str, Any], why: str
) -> None:
    disable = create.pop("disable", False)
    meta = admin.create_key(**create)["KeyMetadata"]
    if disable:
        admin.disable_key(KeyId=meta["KeyId"])
    with pytest.raises(InvalidInputError, match=why):
        kms.adopt_kek(meta["Arn"])


# -- the key hierarchy on this provider ----------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(load_settings({}, data_dir=tmp_path / "data"))
    database.migrate()
    yield database
    database.dispose()


def test_key_hierarchy_end_to_end_with_aws_kms(
    db: Database, kms: AwsKmsKeyProvider, admin: Any
) -> None:
    tenant, dep = new_id("ten"), new_id("dep")
    with db.tenant_tx(tenant) as s:
        s.add(Tenant(id=tenant, name="acme", created_at=utcnow()))
        s.flush()
        s.add(
            Deployment(
                id=dep,
                tenant_id=tenant,
                name="eu",
                region=REGION,
                recording_retention_days=30,
                transcript_retention_days=30,
                key_provider="aws-kms",
                created_at=utcnow(),
            )
        )
    cache = DataKeyCache(max_keys=100, ttl_seconds=300)
    # Regional providers are registered per region ("aws-kms:<region>").
    name = f"aws-kms:{REGION}"
    keys = KeyHierarchy({name: kms}, cache, default_provider=name)
    keys.check()
    call_a = KeyOwner(tenant, dep, "call", "call_a")
    call_b = KeyOwner(tenant, dep, "call", "call_b")

    with db.tenant_tx(tenant) as s:
        key_a = keys.data_key(s, call_a, create=True)
        key_b = keys.data_key(s, call_b, create=True)
    assert key_a != key_b
    with db.tenant_tx(tenant) as s:
        kek = s.execute(select(Kek).where(Kek.deployment_id == dep)).scalar_one()
        rows = s.execute(select(DataKey).where(DataKey.tenant_id == tenant)).scalars().all()
    assert (kek.provider, kek.state) == (name, "active")
    assert admin.describe_key(KeyId=kek.provider_ref)["KeyMetadata"]["Description"] == (
        f"{tenant}/{dep}"
    )
    assert {r.kek_id for r in rows} == {kek.id}
    assert all(key_a not in r.wrapped and key_b not in r.wrapped for r in rows)

    cache.clear()  # now through KMS Decrypt
    with db.tenant_tx(tenant) as s:
        assert keys.data_key(s, call_a, create=False) == key_a
        with pytest.raises(DecryptionError):  # never made
            keys.data_key(s, KeyOwner(tenant, dep, "call", "call_c"), create=False)

    kms.destroy_kek(kek.provider_ref)
    cache.clear()
    with db.tenant_tx(tenant) as s, pytest.raises(KeyUnavailableError) as info:
        keys.data_key(s, call_b, create=False)
    assert str(info.value) == (
        f"aws-kms: key {kek.provider_ref} is not enabled (state PendingDeletion) (deployment {dep})"
    )
