"""An in-process fake of Google Cloud KMS (KeyManagementService), served over real gRPC.

This is a fake, not Google: no Google Cloud KMS emulator exists (Google ships
none, and nothing on this machine reaches Google), so the ``gcp-kms`` provider
tests drive the real ``google-cloud-kms`` client library, through a real
``grpc.insecure_channel``, against this server on a free loopback port.
``google-cloud-kms`` ships no generated servicer class (its GAPIC layer has
proto-plus messages and client stubs only), so the methods are registered with
grpc's generic handler under the paths the client's gRPC transport calls
(``/google.cloud.kms.v1.KeyManagementService/<Method>``) and (de)serialised
with the same proto-plus message classes.

Like the real service (as Google documents it):

- ``Encrypt``/``Decrypt`` do real authenticated encryption: AES-256-GCM under a
  random 256-bit key per CryptoKeyVersion, the request's additional
  authenticated data bound. A ciphertext names its version (a random 16-byte
  tag), so ``Decrypt`` with the CryptoKey name finds it; one that does not
  open under the named key, or with this AAD, is INVALID_ARGUMENT.
- CRC32C (computed here bit by bit, independently of the provider's table):
  request checksums are checked (INVALID_ARGUMENT on mismatch) and reported
  as ``verified_*_crc32c``; answers carry ``ciphertext_crc32c`` /
  ``plaintext_crc32c``.
- Versions have states: ENABLED, DISABLED, DESTROY_SCHEDULED, DESTROYED; using
  one that is not enabled is FAILED_PRECONDITION. A missing key ring, key or
  version is NOT_FOUND. CryptoKeys are never deleted, only their versions
  destroyed (scheduled, then :meth:`FakeKms.finish_destruction`).
- Purposes and algorithms: ENCRYPT_DECRYPT keys are GOOGLE_SYMMETRIC_ENCRYPTION
  and have a primary version; other purposes (asymmetric, MAC, raw) are
  stored so they can be refused, and Encrypt/Decrypt with them is
  INVALID_ARGUMENT.

Not modelled: IAM, Autokey, import jobs, rotation schedules, EKM, persistence.

Test hooks on :class:`FakeKms`: ``corrupt`` (a :class:`Corruption` damages an
answer *after* its checksum was computed, as a bit flip on the way would),
:meth:`~FakeKms.fail` (the next calls of a method fail with a status code),
``calls`` (method names in order).
"""

from __future__ import annotations

import enum
import secrets
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import grpc
from google.cloud import kms_v1
from google.cloud.kms_v1.services.key_management_service.transports import (
    KeyManagementServiceGrpcTransport,
)

from callvault.crypto.hazmat import aes_gcm_open, aes_gcm_seal
from callvault.errors import DecryptionError
from callvault.keys._gcp_kms import GcpKmsKeyProvider

PROJECT = "callvault-test"
LOCATION = "europe-west1"
KEY_RING_ID = "callvault"
KEY_RING = f"projects/{PROJECT}/locations/{LOCATION}/keyRings/{KEY_RING_ID}"
SERVICE = "google.cloud.kms.v1.KeyManagementService"

State = kms_v1.CryptoKeyVersion.CryptoKeyVersionState
Algorithm = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm
Purpose = kms_v1.CryptoKey.CryptoKeyPurpose

_MAGIC = b"FKMS1"  # this fake's ciphertext: magic | version tag (16) | nonce (12) | GCM
_TAG = 16
_NONCE = 12
_MAX_DATA = 64 * 1024  # Encrypt's documented limit for plaintext and for AAD
_DEFAULT_DESTROY = timedelta(days=30)
_MIN_DESTROY = timedelta(days=1)


def crc32c(data: bytes) -> int:
    """CRC-32C, bit by bit (an implementation independent of the provider's)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


class Corruption(enum.Enum):
    """A damaged answer, for the provider's integrity checks."""

    CIPHERTEXT = "Encrypt: one ciphertext bit flips after its CRC32C was computed"
    CIPHERTEXT_CRC32C = "Encrypt: ciphertext_crc32c is wrong"
    NO_CIPHERTEXT_CRC32C = "Encrypt: ciphertext_crc32c is missing"
    UNVERIFIED_PLAINTEXT = "Encrypt: verified_plaintext_crc32c is false"
    UNVERIFIED_AAD = "Encrypt: verified_additional_authenticated_data_crc32c is false"
    OTHER_KEY = "Encrypt: the answer names a version of another key"
    PLAINTEXT = "Decrypt: one plaintext bit flips after its CRC32C was computed"
    PLAINTEXT_CRC32C = "Decrypt: plaintext_crc32c is wrong"
    NO_PLAINTEXT_CRC32C = "Decrypt: plaintext_crc32c is missing"


class _AbortError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _abort(code: grpc.StatusCode, message: str) -> NoReturn:
    raise _AbortError(code, message)


def _flip(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1]) if data else b"\x01"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Version:
    name: str
    algorithm: Any
    protection_level: Any
    material: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    tag: bytes = field(default_factory=lambda: secrets.token_bytes(_TAG))
    state: Any = State.ENABLED
    created: datetime = field(default_factory=_now)
    destroy_time: datetime | None = None

    def proto(self) -> kms_v1.CryptoKeyVersion:
        return kms_v1.CryptoKeyVersion(
            name=self.name,
            state=self.state,
            algorithm=self.algorithm,
            protection_level=self.protection_level,
            create_time=self.created,
            generate_time=self.created,
            destroy_time=self.destroy_time,
        )


@dataclass
class _Key:
    name: str
    purpose: Any
    algorithm: Any
    protection_level: Any
    labels: dict[str, str]
    destroy_scheduled_duration: timedelta
    created: datetime = field(default_factory=_now)
    versions: list[_Version] = field(default_factory=list)
    primary: _Version | None = None

    def proto(self) -> kms_v1.CryptoKey:
        return kms_v1.CryptoKey(
            name=self.name,
            purpose=self.purpose,
            primary=self.primary.proto() if self.primary else None,
            create_time=self.created,
            labels=self.labels,
            destroy_scheduled_duration=self.destroy_scheduled_duration,
            version_template=kms_v1.CryptoKeyVersionTemplate(
                algorithm=self.algorithm, protection_level=self.protection_level
            ),
        )

    def new_version(self) -> _Version:
        version = _Version(
            name=f"{self.name}/cryptoKeyVersions/{len(self.versions) + 1}",
            algorithm=self.algorithm,
            protection_level=self.protection_level,
        )
        self.versions.append(version)
        return version


class FakeKms:
    """The service's state and methods (each takes a request, returns the answer)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.key_rings: dict[str, datetime] = {}
        self.keys: dict[str, _Key] = {}
        self._by_tag: dict[bytes, tuple[_Key, _Version]] = {}
        self._failures: dict[str, list[grpc.StatusCode]] = {}
        self.corrupt: Corruption | None = None
        self.calls: list[str] = []

    # -- test hooks ------------------------------------------------------------------

    def fail(self, method: str, code: grpc.StatusCode, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` (``"Decrypt"``...) fail with ``code``."""
        with self._lock:
            self._failures.setdefault(method, []).extend([code] * times)

    def reset_hooks(self) -> None:
        with self._lock:
            self._failures.clear()
            self.corrupt = None
            self.calls.clear()

    def add_key_ring(self, name: str) -> None:
        with self._lock:
            self.key_rings.setdefault(name, _now())

    def version(self, name: str) -> _Version:
        with self._lock:
            key = self.keys[name.split("/cryptoKeyVersions/", maxsplit=1)[0]]
            return next(v for v in key.versions if v.name == name)

    def finish_destruction(self) -> None:
        """Every DESTROY_SCHEDULED version's window ends now: material gone, DESTROYED."""
        with self._lock:
            for key in self.keys.values():
                for version in key.versions:
                    if version.state == State.DESTROY_SCHEDULED:
                        version.state, version.material = State.DESTROYED, b""

    # -- lookups ------------------------------------------------------------------------

    def _key(self, name: str) -> _Key:
        key = self.keys.get(name)
        if key is None:
            _abort(grpc.StatusCode.NOT_FOUND, f"CryptoKey {name} not found.")
        return key

    def _version(self, name: str) -> tuple[_Key, _Version]:
        key_name, _, _ = name.partition("/cryptoKeyVersions/")
        key = self.keys.get(key_name)
        version = next((v for v in key.versions if v.name == name), None) if key else None
        if key is None or version is None:
            _abort(grpc.StatusCode.NOT_FOUND, f"CryptoKeyVersion {name} not found.")
        return key, version

    @staticmethod
    def _enabled(version: _Version) -> None:
        if version.state != State.ENABLED:
            _abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{version.name} is not enabled, current state is: {version.state.name}.",
            )

    @staticmethod
    def _checksum(data: bytes, crc: int | None, field_name: str, data_name: str) -> bool:
        if crc is None:
            return False
        if crc != crc32c(data):
            _abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"The checksum in field {field_name} did not match the data in field {data_name}.",
            )
        return True

    # -- key rings and keys ----------------------------------------------------------------

    def GetKeyRing(self, request: kms_v1.GetKeyRingRequest) -> kms_v1.KeyRing:  # noqa: N802 - the RPC's name
        created = self.key_rings.get(request.name)
        if created is None:
            _abort(grpc.StatusCode.NOT_FOUND, f"KeyRing {request.name} not found.")
        return kms_v1.KeyRing(name=request.name, create_time=created)

    def CreateKeyRing(self, request: kms_v1.CreateKeyRingRequest) -> kms_v1.KeyRing:  # noqa: N802 - the RPC's name
        name = f"{request.parent}/keyRings/{request.key_ring_id}"
        if name in self.key_rings:
            _abort(grpc.StatusCode.ALREADY_EXISTS, f"KeyRing {name} already exists.")
        self.key_rings[name] = _now()
        return kms_v1.KeyRing(name=name, create_time=self.key_rings[name])

    def GetCryptoKey(self, request: kms_v1.GetCryptoKeyRequest) -> kms_v1.CryptoKey:  # noqa: N802 - the RPC's name
        return self._key(request.name).proto()

    def CreateCryptoKey(self, request: kms_v1.CreateCryptoKeyRequest) -> kms_v1.CryptoKey:  # noqa: N802 - the RPC's name
        if request.parent not in self.key_rings:
            _abort(grpc.StatusCode.NOT_FOUND, f"KeyRing {request.parent} not found.")
        key_id = request.crypto_key_id
        if not key_id or len(key_id) > 63 or not key_id.replace("-", "").replace("_", "").isalnum():
            _abort(grpc.StatusCode.INVALID_ARGUMENT, "Invalid crypto_key_id.")
        name = f"{request.parent}/cryptoKeys/{key_id}"
        if name in self.keys:
            _abort(grpc.StatusCode.ALREADY_EXISTS, f"CryptoKey {name} already exists.")
        spec = request.crypto_key
        algorithm = spec.version_template.algorithm
        if spec.purpose == Purpose.ENCRYPT_DECRYPT:
            algorithm = algorithm or Algorithm.GOOGLE_SYMMETRIC_ENCRYPTION
            valid = algorithm == Algorithm.GOOGLE_SYMMETRIC_ENCRYPTION
        else:
            valid = bool(spec.purpose) and algorithm not in (
                0,
                Algorithm.GOOGLE_SYMMETRIC_ENCRYPTION,
            )
        if not valid:
            _abort(grpc.StatusCode.INVALID_ARGUMENT, "Invalid purpose and algorithm.")
        duration = spec.destroy_scheduled_duration or _DEFAULT_DESTROY
        if duration < _MIN_DESTROY:
            _abort(grpc.StatusCode.INVALID_ARGUMENT, "destroy_scheduled_duration is too short.")
        key = _Key(
            name=name,
            purpose=spec.purpose,
            algorithm=algorithm,
            protection_level=spec.version_template.protection_level
            or kms_v1.ProtectionLevel.SOFTWARE,
            labels=dict(spec.labels),
            destroy_scheduled_duration=duration,
        )
        self.keys[name] = key
        if not request.skip_initial_version_creation:
            self._add_version(key, primary=spec.purpose == Purpose.ENCRYPT_DECRYPT)
        return key.proto()

    def _add_version(self, key: _Key, *, primary: bool) -> _Version:
        version = key.new_version()
        self._by_tag[version.tag] = (key, version)
        if primary:
            key.primary = version
        return version

    # -- versions ------------------------------------------------------------------------

    def CreateCryptoKeyVersion(  # noqa: N802 - the RPC's name
        self, request: kms_v1.CreateCryptoKeyVersionRequest
    ) -> kms_v1.CryptoKeyVersion:
        return self._add_version(self._key(request.parent), primary=False).proto()

    def UpdateCryptoKeyPrimaryVersion(  # noqa: N802 - the RPC's name
        self, request: kms_v1.UpdateCryptoKeyPrimaryVersionRequest
    ) -> kms_v1.CryptoKey:
        key, version = self._version(
            f"{request.name}/cryptoKeyVersions/{request.crypto_key_version_id}"
        )
        if key.purpose != Purpose.ENCRYPT_DECRYPT:
            _abort(grpc.StatusCode.FAILED_PRECONDITION, "Only ENCRYPT_DECRYPT keys have a primary.")
        self._enabled(version)
        key.primary = version
        return key.proto()

    def UpdateCryptoKeyVersion(  # noqa: N802 - the RPC's name
        self, request: kms_v1.UpdateCryptoKeyVersionRequest
    ) -> kms_v1.CryptoKeyVersion:
        _, version = self._version(request.crypto_key_version.name)
        new_state = request.crypto_key_version.state
        if list(request.update_mask.paths) != ["state"]:
            _abort(grpc.StatusCode.INVALID_ARGUMENT, "Only the state can be updated here.")
        if new_state not in (State.ENABLED, State.DISABLED):
            _abort(grpc.StatusCode.INVALID_ARGUMENT, "The state must be ENABLED or DISABLED.")
        if version.state not in (State.ENABLED, State.DISABLED):
            _abort(grpc.StatusCode.FAILED_PRECONDITION, f"{version.name} cannot change state.")
        version.state = new_state
        return version.proto()

    def ListCryptoKeyVersions(  # noqa: N802 - the RPC's name
        self, request: kms_v1.ListCryptoKeyVersionsRequest
    ) -> kms_v1.ListCryptoKeyVersionsResponse:
        versions = self._key(request.parent).versions
        start = int(request.page_token or 0)
        size = request.page_size or 2  # small pages, so the client's pager pages
        page = versions[start : start + size]
        after = start + size
        return kms_v1.ListCryptoKeyVersionsResponse(
            crypto_key_versions=[v.proto() for v in page],
            next_page_token=str(after) if after < len(versions) else "",
            total_size=len(versions),
        )

    def DestroyCryptoKeyVersion(  # noqa: N802 - the RPC's name
        self, request: kms_v1.DestroyCryptoKeyVersionRequest
    ) -> kms_v1.CryptoKeyVersion:
        key, version = self._version(request.name)
        if version.state not in (State.ENABLED, State.DISABLED):
            _abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{version.name} is not ENABLED or DISABLED: {version.state.name}.",
            )
        version.state = State.DESTROY_SCHEDULED
        version.destroy_time = _now() + key.destroy_scheduled_duration
        return version.proto()

    # -- Encrypt / Decrypt -------------------------------------------------------------------

    def Encrypt(self, request: kms_v1.EncryptRequest) -> kms_v1.EncryptResponse:  # noqa: N802 - the RPC's name
        key_name, _, _ = request.name.partition("/cryptoKeyVersions/")
        key = self._key(key_name)
        if key.purpose != Purpose.ENCRYPT_DECRYPT:
            _abort(grpc.StatusCode.INVALID_ARGUMENT, f"{key.name} is not ENCRYPT_DECRYPT.")
        version = key.primary if key_name == request.name else self._version(request.name)[1]
        if version is None:
            _abort(grpc.StatusCode.FAILED_PRECONDITION, f"{key.name} has no primary version.")
        plaintext, aad = bytes(request.plaintext), bytes(request.additional_authenticated_data)
        if len(plaintext) > _MAX_DATA or len(aad) > _MAX_DATA:
            _abort(grpc.StatusCode.INVALID_ARGUMENT, "The plaintext or AAD is too large.")
        verified_plaintext = self._checksum(
            plaintext, request.plaintext_crc32c, "plaintext_crc32c", "plaintext"
        )
        verified_aad = self._checksum(
            aad,
            request.additional_authenticated_data_crc32c,
            "additional_authenticated_data_crc32c",
            "additional_authenticated_data",
        )
        self._enabled(version)
        nonce = secrets.token_bytes(_NONCE)
        sealed = aes_gcm_seal(version.material, nonce, plaintext, version.tag + aad)
        ciphertext = _MAGIC + version.tag + nonce + sealed
        crc: int | None = crc32c(ciphertext)
        name = version.name
        match self.corrupt:
            case Corruption.CIPHERTEXT:
                ciphertext = _flip(ciphertext)
            case Corruption.CIPHERTEXT_CRC32C:
                crc = (crc or 0) ^ 0x1
            case Corruption.NO_CIPHERTEXT_CRC32C:
                crc = None
            case Corruption.UNVERIFIED_PLAINTEXT:
                verified_plaintext = False
            case Corruption.UNVERIFIED_AAD:
                verified_aad = False
            case Corruption.OTHER_KEY:
                name = f"{key.name}-other/cryptoKeyVersions/1"
        return kms_v1.EncryptResponse(
            name=name,
            ciphertext=ciphertext,
            ciphertext_crc32c=crc,
            verified_plaintext_crc32c=verified_plaintext,
            verified_additional_authenticated_data_crc32c=verified_aad,
            protection_level=version.protection_level,
        )

    def Decrypt(self, request: kms_v1.DecryptRequest) -> kms_v1.DecryptResponse:  # noqa: N802 - the RPC's name
        key = self._key(request.name)
        if key.purpose != Purpose.ENCRYPT_DECRYPT:
            _abort(grpc.StatusCode.INVALID_ARGUMENT, f"{key.name} is not ENCRYPT_DECRYPT.")
        ciphertext, aad = bytes(request.ciphertext), bytes(request.additional_authenticated_data)
        self._checksum(ciphertext, request.ciphertext_crc32c, "ciphertext_crc32c", "ciphertext")
        self._checksum(
            aad,
            request.additional_authenticated_data_crc32c,
            "additional_authenticated_data_crc32c",
            "additional_authenticated_data",
        )
        wrong = (
            f"Decryption failed: verify that 'name' refers to the correct CryptoKey ({key.name})."
        )
        head = len(_MAGIC) + _TAG + _NONCE
        if not ciphertext.startswith(_MAGIC) or len(ciphertext) < head + 16:
            _abort(
                grpc.StatusCode.INVALID_ARGUMENT, "Decryption failed: the ciphertext is invalid."
            )
        tag = ciphertext[len(_MAGIC) : len(_MAGIC) + _TAG]
        owner, version = self._by_tag.get(tag, (None, None))
        if owner is not key or version is None:
            _abort(grpc.StatusCode.INVALID_ARGUMENT, wrong)
        self._enabled(version)
        nonce = ciphertext[len(_MAGIC) + _TAG : head]
        try:
            plaintext = aes_gcm_open(version.material, nonce, ciphertext[head:], tag + aad)
        except DecryptionError:
            _abort(grpc.StatusCode.INVALID_ARGUMENT, wrong)
        crc: int | None = crc32c(plaintext)
        match self.corrupt:
            case Corruption.PLAINTEXT:
                plaintext = _flip(plaintext)
            case Corruption.PLAINTEXT_CRC32C:
                crc = (crc or 0) ^ 0x1
            case Corruption.NO_PLAINTEXT_CRC32C:
                crc = None
        return kms_v1.DecryptResponse(
            plaintext=plaintext,
            plaintext_crc32c=crc,
            used_primary=version is key.primary,
            protection_level=version.protection_level,
        )

    # -- gRPC plumbing ------------------------------------------------------------------------

    _METHODS: dict[str, tuple[Any, Any]] = {  # noqa: RUF012 - a fixed table, never mutated
        "GetKeyRing": (kms_v1.GetKeyRingRequest, kms_v1.KeyRing),
        "CreateKeyRing": (kms_v1.CreateKeyRingRequest, kms_v1.KeyRing),
        "GetCryptoKey": (kms_v1.GetCryptoKeyRequest, kms_v1.CryptoKey),
        "CreateCryptoKey": (kms_v1.CreateCryptoKeyRequest, kms_v1.CryptoKey),
        "CreateCryptoKeyVersion": (kms_v1.CreateCryptoKeyVersionRequest, kms_v1.CryptoKeyVersion),
        "UpdateCryptoKeyPrimaryVersion": (
            kms_v1.UpdateCryptoKeyPrimaryVersionRequest,
            kms_v1.CryptoKey,
        ),
        "UpdateCryptoKeyVersion": (kms_v1.UpdateCryptoKeyVersionRequest, kms_v1.CryptoKeyVersion),
        "ListCryptoKeyVersions": (
            kms_v1.ListCryptoKeyVersionsRequest,
            kms_v1.ListCryptoKeyVersionsResponse,
        ),
        "DestroyCryptoKeyVersion": (
            kms_v1.DestroyCryptoKeyVersionRequest,
            kms_v1.CryptoKeyVersion,
        ),
        "Encrypt": (kms_v1.EncryptRequest, kms_v1.EncryptResponse),
        "Decrypt": (kms_v1.DecryptRequest, kms_v1.DecryptResponse),
    }

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler serving every method above under the real service name."""

        def serve(method: str) -> Callable[[Any, grpc.ServicerContext], Any]:
            impl = getattr(self, method)

            def call(request: Any, context: grpc.ServicerContext) -> Any:
                with self._lock:
                    self.calls.append(method)
                    queued = self._failures.get(method)
                    failure = queued.pop(0) if queued else None
                    try:
                        if failure is not None:
                            _abort(failure, f"injected {failure.name}")
                        return impl(request)
                    except _AbortError as exc:
                        context.abort(exc.code, exc.message)

            return call

        handlers = {
            method: grpc.unary_unary_rpc_method_handler(
                serve(method),
                request_deserializer=request_type.deserialize,
                response_serializer=response_type.serialize,
            )
            for method, (request_type, response_type) in self._METHODS.items()
        }
        return grpc.method_handlers_generic_handler(SERVICE, handlers)


class FakeKmsServer:
    """:class:`FakeKms` on a free loopback port. Use :meth:`start`; always :meth:`stop` it."""

    def __init__(self) -> None:
        self.kms = FakeKms()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((self.kms.handler(),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")  # the OS picks a free port
        self._channels: list[grpc.Channel] = []

    @classmethod
    def start(cls) -> FakeKmsServer:
        server = cls()
        server._server.start()
        server.kms.add_key_ring(KEY_RING)
        return server

    def stop(self) -> None:
        for channel in self._channels:
            channel.close()
        self._server.stop(grace=None).wait(10)

    def channel(self) -> grpc.Channel:
        """A new insecure channel to the server (closed by :meth:`stop`)."""
        channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self._channels.append(channel)
        return channel

    def provider(self, location: str = LOCATION, **options: Any) -> GcpKmsKeyProvider:
        """A ``gcp-kms`` provider whose real client library talks to this server."""
        return GcpKmsKeyProvider(
            project=PROJECT,
            location=location,
            key_ring=KEY_RING_ID,
            channel=self.channel(),
            **options,
        )

    def admin_client(self) -> kms_v1.KeyManagementServiceClient:
        """A plain client, for what a customer does in their own project."""
        transport = KeyManagementServiceGrpcTransport(channel=self.channel())
        return kms_v1.KeyManagementServiceClient(transport=transport)
