"""The ``gcp-kms`` provider through the real google-cloud-kms client library.

No Google Cloud KMS emulator exists, so the peer is an in-process gRPC fake of
the KeyManagementService (:mod:`tests.integration.gcp_kms_fake`) reached over
a real ``grpc.insecure_channel`` on loopback. It does real AES-256-GCM with
the AAD bound, real CRC32C and key version states, and answers with the error
codes Google documents, so what is pinned here is the provider's side: what it
sends, what it checks in the answers, and how it maps the library's errors.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callvault.config import load_settings
from callvault.errors import DecryptionError, InvalidInputError, KeyUnavailableError
from callvault.keys import DataKeyCache, KeyHierarchy, KeyOwner, WrapContext
from callvault.store import Database, new_id
from callvault.store.models import DataKey, Deployment, Kek, Tenant, utcnow

try:
    import grpc
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions
    from google.cloud import kms_v1
    from google.protobuf import field_mask_pb2

    from callvault.keys._gcp_kms import GcpKmsKeyProvider, crc32c
    from tests.integration.gcp_kms_fake import (
        KEY_RING,
        LOCATION,
        PROJECT,
        Algorithm,
        Corruption,
        FakeKms,
        FakeKmsServer,
        Purpose,
        State,
    )
    from tests.integration.gcp_kms_fake import crc32c as bitwise_crc32c
except ImportError:  # the gcp extra is not installed
    if os.environ.get("CV_TEST_REQUIRE_POSTGRES") == "1":
        raise
    pytest.skip(
        "google-cloud-kms not installed (pip install 'callvault[gcp]')", allow_module_level=True
    )

pytestmark = pytest.mark.kms

REGION = "eu-west-1"  # our region whose Google Cloud location is europe-west1
CTX = WrapContext("ten_a", "dep_a", "call", "call_a", "call-data-key")
DATA_KEY = bytes(range(32))


@pytest.fixture(scope="session")
def server() -> Iterator[FakeKmsServer]:
    fake = FakeKmsServer.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake(server: FakeKmsServer) -> Iterator[FakeKms]:
    server.kms.reset_hooks()
    yield server.kms
    server.kms.reset_hooks()


@pytest.fixture
def kms(server: FakeKmsServer, fake: FakeKms) -> Iterator[GcpKmsKeyProvider]:
    with server.provider(timeout_seconds=5.0) as provider:
        yield provider


@pytest.fixture
def admin(server: FakeKmsServer) -> kms_v1.KeyManagementServiceClient:
    return server.admin_client()


def _set_state(admin: kms_v1.KeyManagementServiceClient, version: str, state: State) -> None:
    admin.update_crypto_key_version(
        crypto_key_version=kms_v1.CryptoKeyVersion(name=version, state=state),
        update_mask=field_mask_pb2.FieldMask(paths=["state"]),
    )


def _customer_key(
    admin: kms_v1.KeyManagementServiceClient,
    *,
    key_ring: str = KEY_RING,
    purpose: Purpose = Purpose.ENCRYPT_DECRYPT,
    algorithm: Algorithm | None = None,
) -> kms_v1.CryptoKey:
    template = kms_v1.CryptoKeyVersionTemplate(algorithm=algorithm) if algorithm else None
    return admin.create_crypto_key(
        parent=key_ring,
        crypto_key_id=f"customer-{secrets.token_hex(8)}",
        crypto_key=kms_v1.CryptoKey(purpose=purpose, version_template=template),
    )


# -- CRC32C ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [  # RFC 3720 appendix B.4, and the customary "123456789" check value
        (bytes(32), 0x8A9136AA),
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
        (b"123456789", 0xE3069283),
        (b"", 0),
    ],
)
def test_crc32c_matches_known_answers(data: bytes, expected: int) -> None:
    assert crc32c(data) == expected
    assert bitwise_crc32c(data) == expected  # the fake's own, independent implementation


# -- round trips -------------------------------------------------------------------------


def test_wrap_unwrap_and_generate_round_trip(
    kms: GcpKmsKeyProvider, admin: kms_v1.KeyManagementServiceClient
) -> None:
    ref = kms.create_kek("ten_a/dep_a")
    assert ref.startswith(f"{KEY_RING}/cryptoKeys/callvault-")
    key = admin.get_crypto_key(name=ref)
    assert key.purpose == Purpose.ENCRYPT_DECRYPT
    assert key.primary.algorithm == Algorithm.GOOGLE_SYMMETRIC_ENCRYPTION
    assert key.primary.state == State.ENABLED
    assert dict(key.labels) == {"managed-by": "callvault", "owner": "ten_a-dep_a"}
    assert key.destroy_scheduled_duration == timedelta(days=1)

    wrapped = kms.wrap(ref, DATA_KEY, CTX)
    assert DATA_KEY not in wrapped
    assert kms.unwrap(ref, wrapped, CTX) == DATA_KEY

    key_bytes, generated = kms.generate(ref, CTX)  # a local data key, wrapped by Encrypt
    assert len(key_bytes) == 32
    assert key_bytes != DATA_KEY
    assert key_bytes not in generated
    assert kms.unwrap(ref, generated, CTX) == key_bytes


def test_ready_and_check_pass_against_a_live_server(kms: GcpKmsKeyProvider, fake: FakeKms) -> None:
    kms.ready()
    assert fake.calls == ["GetKeyRing"]
    kms.check(kms.create_kek("x"))


def test_hsm_protection_level_is_requested_when_configured(
    server: FakeKmsServer, admin: kms_v1.KeyManagementServiceClient
) -> None:
    with server.provider(protection_level="HSM") as hsm:
        ref = hsm.create_kek("x")
        assert admin.get_crypto_key(name=ref).primary.protection_level == kms_v1.ProtectionLevel.HSM
        assert hsm.unwrap(ref, hsm.wrap(ref, DATA_KEY, CTX), CTX) == DATA_KEY


# -- binding: context, key, bytes ---------------------------------------------------------


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
    kms: GcpKmsKeyProvider, other: WrapContext
) -> None:
    ref = kms.create_kek("x")
    _, generated = kms.generate(ref, CTX)
    for wrapped in (kms.wrap(ref, DATA_KEY, CTX), generated):
        with pytest.raises(DecryptionError):
            kms.unwrap(ref, wrapped, other)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda w: w[:-1] + bytes([w[-1] ^ 1]), id="last-byte"),
        pytest.param(lambda w: bytes([w[0] ^ 1]) + w[1:], id="first-byte"),
        pytest.param(lambda w: w[:8] + bytes([w[8] ^ 0x80]) + w[9:], id="version-tag"),
        pytest.param(lambda w: w[:-1], id="truncated"),
        pytest.param(lambda w: w + b"\x00", id="trailing-byte"),
    ],
)
def test_tampered_wrapped_key_is_a_decryption_error(
    kms: GcpKmsKeyProvider, tamper: Callable[[bytes], bytes]
) -> None:
    ref = kms.create_kek("x")
    wrapped = kms.wrap(ref, DATA_KEY, CTX)
    with pytest.raises(DecryptionError) as info:
        kms.unwrap(ref, tamper(wrapped), CTX)
    assert str(info.value) == str(DecryptionError())  # the one message, nothing added
    assert info.value.__cause__ is None


def test_ciphertext_of_one_key_presented_as_another_is_refused(kms: GcpKmsKeyProvider) -> None:
    a, b = kms.create_kek("a"), kms.create_kek("b")
    wrapped = kms.wrap(a, DATA_KEY, CTX)
    with pytest.raises(DecryptionError):
        kms.unwrap(b, wrapped, CTX)
    assert kms.unwrap(a, wrapped, CTX) == DATA_KEY


def test_rewrap_moves_a_key_to_another_kek_whose_old_kek_can_then_be_destroyed(
    kms: GcpKmsKeyProvider,
) -> None:
    old, new = kms.create_kek("v1"), kms.create_kek("v2")
    wrapped = kms.wrap(old, DATA_KEY, CTX)
    moved = kms.rewrap(old, new, wrapped, CTX)
    assert moved != wrapped
    kms.destroy_kek(old)
    assert kms.unwrap(new, moved, CTX) == DATA_KEY
    with pytest.raises(KeyUnavailableError):
        kms.unwrap(old, wrapped, CTX)
    with pytest.raises(DecryptionError):  # bound to its context on the new key too
        kms.unwrap(new, moved, WrapContext("ten_b", "dep_a", "call", "call_a", "call-data-key"))
    with pytest.raises(DecryptionError):  # and from the wrong source key
        kms.rewrap(new, old, wrapped, CTX)


def test_rotated_key_unwraps_old_wraps_and_rewrap_moves_them_to_the_new_primary(
    kms: GcpKmsKeyProvider, admin: kms_v1.KeyManagementServiceClient
) -> None:
    ref = kms.create_kek("x")
    wrapped = kms.wrap(ref, DATA_KEY, CTX)
    v2 = admin.create_crypto_key_version(parent=ref, crypto_key_version=kms_v1.CryptoKeyVersion())
    admin.update_crypto_key_primary_version(name=ref, crypto_key_version_id="2")
    moved = kms.rewrap(ref, ref, wrapped, CTX)
    _set_state(admin, f"{ref}/cryptoKeyVersions/1", State.DISABLED)
    assert kms.unwrap(ref, moved, CTX) == DATA_KEY  # under version 2
    with pytest.raises(KeyUnavailableError):
        kms.unwrap(ref, wrapped, CTX)  # version 1 is disabled
    assert v2.name == f"{ref}/cryptoKeyVersions/2"


# -- integrity in transit (CRC32C) -----------------------------------------------------------


@pytest.mark.parametrize("corruption", list(Corruption), ids=lambda c: c.name.lower())
def test_an_answer_failing_its_crc32c_check_is_unavailable_not_accepted(
    kms: GcpKmsKeyProvider, fake: FakeKms, corruption: Corruption
) -> None:
    ref = kms.create_kek("x")
    wrapped = kms.wrap(ref, DATA_KEY, CTX)
    fake.corrupt = corruption
    if corruption.value.startswith("Encrypt"):
        attempts = [("wrap", lambda: kms.wrap(ref, DATA_KEY, CTX))]
        attempts.append(("generate", lambda: kms.generate(ref, CTX)))
    else:
        attempts = [("unwrap", lambda: kms.unwrap(ref, wrapped, CTX))]
    for _, attempt in attempts:
        with pytest.raises(KeyUnavailableError) as info:
            attempt()
        if corruption is Corruption.OTHER_KEY:
            assert str(info.value) == f"gcp-kms: key {ref} answered for another key"
        else:
            assert str(info.value) == f"gcp-kms: key {ref} answered with a bad CRC32C checksum"
    fake.corrupt = None
    assert kms.unwrap(ref, kms.wrap(ref, DATA_KEY, CTX), CTX) == DATA_KEY


def test_checksums_are_sent_with_every_request(
    kms: GcpKmsKeyProvider, server: FakeKmsServer, admin: kms_v1.KeyManagementServiceClient
) -> None:
    """The fake reports verified_* only for checksums it received and checked."""
    ref = kms.create_kek("x")
    plain = admin.encrypt(
        request=kms_v1.EncryptRequest(
            name=ref, plaintext=DATA_KEY, additional_authenticated_data=b"a"
        )
    )
    assert not plain.verified_plaintext_crc32c  # sent none: not verified
    assert plain.ciphertext_crc32c == crc32c(plain.ciphertext)
    with pytest.raises(api_exceptions.InvalidArgument):  # a wrong checksum is refused
        admin.decrypt(
            request=kms_v1.DecryptRequest(
                name=ref,
                ciphertext=plain.ciphertext,
                additional_authenticated_data=b"a",
                ciphertext_crc32c=crc32c(plain.ciphertext) ^ 1,
            )
        )
    kms.wrap(ref, DATA_KEY, CTX)  # verified both, or this would raise


# -- key state, destruction, unknown keys ------------------------------------------------------


@pytest.mark.parametrize("state", [State.DISABLED, "destroy-scheduled", "destroyed"])
def test_unusable_version_is_unavailable_naming_only_provider_and_key(
    kms: GcpKmsKeyProvider,
    admin: kms_v1.KeyManagementServiceClient,
    fake: FakeKms,
    state: object,
) -> None:
    ref = kms.create_kek("x")
    wrapped = kms.wrap(ref, DATA_KEY, CTX)
    version = f"{ref}/cryptoKeyVersions/1"
    if state is State.DISABLED:
        _set_state(admin, version, State.DISABLED)
    else:
        admin.destroy_crypto_key_version(name=version)
        if state == "destroyed":
            fake.finish_destruction()
    for what, attempt in (
        ("unwrap", lambda: kms.unwrap(ref, wrapped, CTX)),
        ("wrap", lambda: kms.wrap(ref, DATA_KEY, CTX)),
        ("generate", lambda: kms.generate(ref, CTX)),
        ("check", lambda: kms.check(ref)),
    ):
        with pytest.raises(KeyUnavailableError) as info:
            attempt()
        assert str(info.value) == f"gcp-kms: cannot {what} with key {ref}"
        assert info.value.__cause__ is None
    if state is State.DISABLED:
        _set_state(admin, version, State.ENABLED)
        assert kms.unwrap(ref, wrapped, CTX) == DATA_KEY


def test_destroying_a_kek_schedules_destruction_of_every_live_version(
    kms: GcpKmsKeyProvider, admin: kms_v1.KeyManagementServiceClient, fake: FakeKms
) -> None:
    ref = kms.create_kek("x")
    wrapped = kms.wrap(ref, DATA_KEY, CTX)
    for _ in range(3):  # more versions than one page of the fake's listing
        admin.create_crypto_key_version(parent=ref, crypto_key_version=kms_v1.CryptoKeyVersion())
    _set_state(admin, f"{ref}/cryptoKeyVersions/3", State.DISABLED)  # could be re-enabled
    kms.destroy_kek(ref)
    listed = list(admin.list_crypto_key_versions(parent=ref))
    assert [v.state for v in listed] == [State.DESTROY_SCHEDULED] * 4
    in_a_day = datetime.now(UTC) + timedelta(days=1)
    assert all(abs(v.destroy_time - in_a_day) < timedelta(minutes=5) for v in listed)
    with pytest.raises(KeyUnavailableError, match=f"^gcp-kms: cannot unwrap with key {ref}$"):
        kms.unwrap(ref, wrapped, CTX)
    fake.calls.clear()
    kms.destroy_kek(ref)  # again: nothing left to destroy
    assert "DestroyCryptoKeyVersion" not in fake.calls
    assert admin.get_crypto_key(name=ref).name == ref  # GCP never deletes the key itself


def test_unknown_key_is_unavailable_without_the_sdk_message(kms: GcpKmsKeyProvider) -> None:
    ref = kms.create_kek("x")
    missing = f"{KEY_RING}/cryptoKeys/never-made"
    with pytest.raises(KeyUnavailableError) as info:
        kms.unwrap(missing, kms.wrap(ref, DATA_KEY, CTX), CTX)
    assert str(info.value) == f"gcp-kms: cannot unwrap with key {missing}"
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__  # the library's exception is not shown either


def test_a_key_outside_the_location_is_refused_before_any_request(
    kms: GcpKmsKeyProvider, fake: FakeKms
) -> None:
    foreign = f"projects/{PROJECT}/locations/us-east1/keyRings/r/cryptoKeys/k"
    for ref in (foreign, "not-a-resource-name"):
        with pytest.raises(KeyUnavailableError) as info:
            kms.wrap(ref, DATA_KEY, CTX)
        assert str(info.value) == f"gcp-kms: {ref} is not a key in location {LOCATION}"
    assert fake.calls == []


def test_encrypt_refused_as_invalid_is_unavailable_not_a_decryption_error(
    kms: GcpKmsKeyProvider, admin: kms_v1.KeyManagementServiceClient
) -> None:
    asymmetric = _customer_key(
        admin,
        purpose=Purpose.ASYMMETRIC_DECRYPT,
        algorithm=Algorithm.RSA_DECRYPT_OAEP_2048_SHA256,
    ).name
    with pytest.raises(KeyUnavailableError, match=f"^gcp-kms: cannot wrap with key {asymmetric}$"):
        kms.wrap(asymmetric, DATA_KEY, CTX)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (api_exceptions.InvalidArgument("Decryption failed"), DecryptionError),
        (api_exceptions.NotFound("projects/p/..."), KeyUnavailableError),
        (api_exceptions.PermissionDenied("projects/p/..."), KeyUnavailableError),
        (api_exceptions.FailedPrecondition("... DESTROYED"), KeyUnavailableError),
        (api_exceptions.ServiceUnavailable("down"), KeyUnavailableError),
        (api_exceptions.DeadlineExceeded("slow"), KeyUnavailableError),
        (api_exceptions.Unauthenticated("bad token"), KeyUnavailableError),
        (api_exceptions.ResourceExhausted("quota"), KeyUnavailableError),
        (api_exceptions.RetryError("gave up", None), KeyUnavailableError),
        (auth_exceptions.RefreshError("expired"), KeyUnavailableError),
        (ValueError("a bug"), None),
    ],
)
def test_library_errors_map_to_the_two_provider_errors(
    kms: GcpKmsKeyProvider, exc: Exception, expected: type[Exception] | None
) -> None:
    assert kms._classify(exc) is expected


# -- bounded calls: retries, unreachable servers ------------------------------------------------


def test_one_unavailable_answer_is_retried_and_no_more_than_max_attempts(
    kms: GcpKmsKeyProvider, fake: FakeKms
) -> None:
    ref = kms.create_kek("x")
    wrapped = kms.wrap(ref, DATA_KEY, CTX)
    fake.calls.clear()
    fake.fail("Decrypt", grpc.StatusCode.UNAVAILABLE)
    assert kms.unwrap(ref, wrapped, CTX) == DATA_KEY
    assert fake.calls == ["Decrypt", "Decrypt"]

    fake.calls.clear()
    fake.fail("Decrypt", grpc.StatusCode.UNAVAILABLE, times=2)
    with pytest.raises(KeyUnavailableError):
        kms.unwrap(ref, wrapped, CTX)
    assert fake.calls == ["Decrypt", "Decrypt"]  # max_attempts=2, not the library's 60 s


def test_creating_a_key_is_not_retried(kms: GcpKmsKeyProvider, fake: FakeKms) -> None:
    fake.fail("CreateCryptoKey", grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(KeyUnavailableError, match=r"^gcp-kms: cannot create a key with key -$"):
        kms.create_kek("x")
    assert fake.calls == ["CreateCryptoKey"]


def test_ready_accepts_permission_denied_but_not_a_missing_key_ring(
    kms: GcpKmsKeyProvider, server: FakeKmsServer, fake: FakeKms
) -> None:
    fake.fail("GetKeyRing", grpc.StatusCode.PERMISSION_DENIED)
    kms.ready()  # the server answered and took the credentials
    missing = GcpKmsKeyProvider(
        project=PROJECT, location=LOCATION, key_ring="missing", channel=server.channel()
    )
    with pytest.raises(
        KeyUnavailableError, match=r"^gcp-kms: cannot reach the provider with key -$"
    ):
        missing.ready()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("endpoint", ["closed", "silent"])
def test_unreachable_server_is_unavailable_within_the_timeout(
    request: pytest.FixtureRequest, endpoint: str
) -> None:
    port = _closed_port() if endpoint == "closed" else request.getfixturevalue("silent_port")
    ref = f"{KEY_RING}/cryptoKeys/k"
    started = time.monotonic()
    with GcpKmsKeyProvider(
        project=PROJECT,
        location=LOCATION,
        key_ring="callvault",
        channel=grpc.insecure_channel(f"127.0.0.1:{port}"),
        timeout_seconds=0.5,
        max_attempts=2,
    ) as kms:
        with pytest.raises(KeyUnavailableError) as info:
            kms.ready()
        assert str(info.value) == "gcp-kms: cannot reach the provider with key -"
        with pytest.raises(KeyUnavailableError, match=f"^gcp-kms: cannot unwrap with key {ref}$"):
            kms.unwrap(ref, b"\x01" * 64, CTX)
    assert time.monotonic() - started < 8  # two calls, two attempts each, 0.5 s deadlines


# -- bring your own key -------------------------------------------------------------------------


def test_adopting_a_customer_key_returns_its_name_and_it_wraps(
    kms: GcpKmsKeyProvider, admin: kms_v1.KeyManagementServiceClient, server: FakeKmsServer
) -> None:
    key = _customer_key(admin)
    ref = kms.adopt_kek(key.name)
    assert ref == key.name
    assert kms.unwrap(ref, kms.wrap(ref, DATA_KEY, CTX), CTX) == DATA_KEY
    assert kms.adopt_kek(key.name.rsplit("/", 1)[1]) == ref  # a bare id: in the key ring
    other_ring = f"projects/customer-project/locations/{LOCATION}/keyRings/theirs"
    server.kms.add_key_ring(other_ring)
    theirs = _customer_key(admin, key_ring=other_ring)
    assert kms.adopt_kek(theirs.name) == theirs.name  # their project, our location


def test_adopting_a_key_in_another_location_is_refused(
    kms: GcpKmsKeyProvider, admin: kms_v1.KeyManagementServiceClient, server: FakeKmsServer
) -> None:
    ring = f"projects/{PROJECT}/locations/us-east1/keyRings/callvault"
    server.kms.add_key_ring(ring)
    foreign = _customer_key(admin, key_ring=ring).name
    server.kms.calls.clear()
    with pytest.raises(InvalidInputError) as info:
        kms.adopt_kek(foreign)
    assert str(info.value) == (
        f"gcp-kms: key {foreign} is not in location {LOCATION} (data residency)"
    )
    assert info.value.field == "key_ref"
    assert server.kms.calls == []  # refused before asking
    missing = f"{KEY_RING}/cryptoKeys/never-made"
    with pytest.raises(InvalidInputError, match=f"was not found in location {LOCATION}$"):
        kms.adopt_kek(missing)
    with pytest.raises(InvalidInputError, match=r"is not a CryptoKey resource name$"):
        kms.adopt_kek("projects/p/keyRings/r")


@pytest.mark.parametrize(
    ("purpose", "algorithm", "why"),
    [
        (
            Purpose.ASYMMETRIC_DECRYPT,
            Algorithm.RSA_DECRYPT_OAEP_2048_SHA256,
            "is not a symmetric encrypt/decrypt key",
        ),
        (Purpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256, "is not a symmetric"),
        (Purpose.MAC, Algorithm.HMAC_SHA256, "is not a symmetric"),
        (Purpose.RAW_ENCRYPT_DECRYPT, Algorithm.AES_256_GCM, "is not a symmetric"),
        (Purpose.ENCRYPT_DECRYPT, "disabled", "has no enabled primary version"),
    ],
)
def test_adopting_an_unsuitable_key_is_refused(
    kms: GcpKmsKeyProvider,
    admin: kms_v1.KeyManagementServiceClient,
    purpose: Purpose,
    algorithm: object,
    why: str,
) -> None:
    if algorithm == "disabled":
        key = _customer_key(admin)
        _set_state(admin, key.primary.name, State.DISABLED)
    else:
        key = _customer_key(admin, purpose=purpose, algorithm=algorithm)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=f"^gcp-kms: key {key.name} {why}"):
        kms.adopt_kek(key.name)


# -- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"project": "Bad Project"},
        {"location": ""},
        {"key_ring": "a/b"},
        {"timeout_seconds": 0},
        {"timeout_seconds": 301},
        {"max_attempts": 0},
    ],
)
def test_invalid_settings_are_config_errors(options: dict[str, object]) -> None:
    from callvault.errors import ConfigError  # noqa: PLC0415 - only this test needs it

    base: dict[str, object] = {"project": PROJECT, "location": LOCATION, "key_ring": "r"}
    with pytest.raises(ConfigError, match=r"^gcp-kms: "):
        GcpKmsKeyProvider(**{**base, **options}, channel=object())  # type: ignore[arg-type]


# -- the key hierarchy on this provider ----------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(load_settings({}, data_dir=tmp_path / "data"))
    database.migrate()
    yield database
    database.dispose()


def _deployment(db: Database, *, key_ref: str | None = None) -> tuple[str, str]:
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
                key_provider="gcp-kms",
                key_ref=key_ref,
                created_at=utcnow(),
            )
        )
    return tenant, dep


def _hierarchy(kms: GcpKmsKeyProvider) -> tuple[KeyHierarchy, DataKeyCache, str]:
    from callvault.keys._registry import instance_name  # noqa: PLC0415 - the hierarchy's naming

    name = instance_name("gcp-kms", REGION)
    cache = DataKeyCache(max_keys=100, ttl_seconds=300)
    return KeyHierarchy({name: kms}, cache, default_provider=name), cache, name


def test_key_hierarchy_end_to_end_with_gcp_kms(
    db: Database, kms: GcpKmsKeyProvider, admin: kms_v1.KeyManagementServiceClient
) -> None:
    tenant, dep = _deployment(db)
    keys, cache, name = _hierarchy(kms)
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
    assert kek.provider_ref.startswith(f"projects/{PROJECT}/locations/{LOCATION}/")
    owner = f"{tenant}-{dep}".lower()
    assert admin.get_crypto_key(name=kek.provider_ref).labels["owner"] == owner
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
    # the hierarchy may add the deployment; the provider's part names provider and key only
    assert str(info.value).startswith(f"gcp-kms: cannot unwrap with key {kek.provider_ref}")


def test_key_hierarchy_adopts_the_deployments_own_key(
    db: Database, kms: GcpKmsKeyProvider, admin: kms_v1.KeyManagementServiceClient
) -> None:
    customer = _customer_key(admin).name
    tenant, dep = _deployment(db, key_ref=customer)
    keys, cache, _ = _hierarchy(kms)
    with db.tenant_tx(tenant) as s:
        key = keys.data_key(s, KeyOwner(tenant, dep, "call", "call_a"), create=True)
        kek = s.execute(select(Kek).where(Kek.deployment_id == dep)).scalar_one()
    assert kek.provider_ref == customer
    cache.clear()
    with db.tenant_tx(tenant) as s:
        assert keys.data_key(s, KeyOwner(tenant, dep, "call", "call_a"), create=False) == key
