"""The ``gcp-kms`` key provider: KEKs are Google Cloud KMS CryptoKeys, which never leave KMS.

Refs are CryptoKey resource names
(``projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>``), and every ref
MUST name the provider's location (data residency): another is refused before
any request. Data keys are made here (the base class's default: 256 bits from
the OS's CSPRNG) and wrapped with ``Encrypt``, the RFC 8785 wrap context
(:meth:`WrapContext.associated_data`) as ``additional_authenticated_data``:
``Decrypt`` with any other context, or of another key's ciphertext, fails.
Google Cloud KMS has no ReEncrypt, so ``rewrap`` is the base class's decrypt
then encrypt, the data key passing through this process as on every unwrap.

Integrity in transit, on every wrap and unwrap (Google's CRC32C protocol):

1. ``Encrypt`` sends the CRC32C of the plaintext and of the AAD; the answer
   MUST say KMS verified both (``verified_*_crc32c``), MUST carry the
   CRC32C of the ciphertext, which MUST match the bytes received, and MUST
   name a version of the requested key.
2. ``Decrypt`` sends the CRC32C of the ciphertext and of the AAD (KMS refuses
   a mismatch); the answer's ``plaintext_crc32c`` MUST match the plaintext.

A failed check is a :class:`KeyUnavailableError` (the bytes were corrupted on
the way; retrying may succeed), never a silently accepted key.

Key state is enforced by KMS itself (a disabled or destroyed version answers
FAILED_PRECONDITION), so no state is cached here. Google Cloud KMS never
deletes a CryptoKey: destroying a KEK schedules destruction of each of its
ENABLED or DISABLED versions (a disabled version could be enabled again). From
then on KMS refuses every operation with them; keys created here set the
shortest scheduled-destruction window KMS allows (1 day), during which a
Google Cloud administrator can still restore a version.

A customer's own key is used with :meth:`GcpKmsKeyProvider.adopt_kek`.

Calls are bounded: each RPC has a deadline of ``timeout_seconds``, the client
library's own retry (up to 60 s) is off, and idempotent calls are retried on
UNAVAILABLE or DEADLINE_EXCEEDED up to ``max_attempts`` in all.

Tests: no Google Cloud KMS emulator exists, so ``tests/integration`` drives
this provider through the real ``google-cloud-kms`` client library against an
in-process gRPC fake of the KeyManagementService
(``tests/integration/gcp_kms_fake.py``), which does real AES-256-GCM with
AAD, real CRC32C values and version states. It is a fake, not Google: the
error codes it answers with follow Google's documentation.

Needs the ``gcp`` extra (``pip install 'callvault[gcp]'``).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import Any, Literal, TypeVar

from callvault.errors import (
    ConfigError,
    DecryptionError,
    Error,
    InvalidInputError,
    KeyUnavailableError,
)
from callvault.keys._context import WrapContext
from callvault.keys._provider import KeyProvider

try:
    from google.api_core import exceptions as api_exceptions
    from google.api_core.client_options import ClientOptions
    from google.auth import exceptions as auth_exceptions
    from google.cloud import kms_v1
    from google.cloud.kms_v1.services.key_management_service.transports import (
        KeyManagementServiceGrpcTransport,
    )
except ImportError:  # the gcp extra is not installed: the constructor says so
    _HAVE_SDK = False
else:
    _HAVE_SDK = True

T = TypeVar("T")

#: The shortest scheduled-destruction window Google Cloud KMS allows.
DESTROY_SCHEDULED_DURATION = timedelta(days=1)
_BACKOFF_SECONDS = 0.2
_PROJECT = r"[a-z][a-z0-9.:-]{0,99}"
_LOCATION = r"[a-z][a-z0-9-]{0,62}"
_ID = r"[A-Za-z0-9_-]{1,63}"
_KEY_NAME = re.compile(
    rf"projects/({_PROJECT})/locations/({_LOCATION})/keyRings/({_ID})/cryptoKeys/({_ID})"
)
_LABEL_VALUE = re.compile(r"[^a-z0-9_-]")


# -- CRC32C (Castagnoli), as Google's checksum fields use ------------------------------


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (RFC 3720 appendix B.4), as an unsigned int.

    In pure Python: the checksummed values are data keys, contexts and their
    wraps (well under a kilobyte), so a C implementation buys nothing here.
    """
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class _RefusedError(Exception):
    """KMS refused a request other than Decrypt as invalid: the key cannot serve."""


class GcpKmsKeyProvider(KeyProvider):
    """KEKs in Google Cloud KMS, in one location (one instance per deployment region)."""

    name = "gcp-kms"

    def __init__(
        self,
        *,
        project: str,
        location: str,
        key_ring: str,
        client: Any = None,
        channel: Any = None,
        credentials: Any = None,
        endpoint: str | None = None,
        protection_level: Literal["SOFTWARE", "HSM"] = "SOFTWARE",
        timeout_seconds: float = 10.0,
        max_attempts: int = 2,
    ) -> None:
        """``key_ring`` is the key ring's id in ``location`` (KEKs are created there).

        Without ``client``, ``channel`` or ``credentials``, Google's application
        default credentials are used. ``client`` (a ``KeyManagementServiceClient``)
        or ``channel`` (a ``grpc.Channel``, for a test server) replace the
        connection that would otherwise be made to ``endpoint`` (default: Google's).
        """
        if not _HAVE_SDK:
            raise ConfigError("gcp-kms needs google-cloud-kms: pip install 'callvault[gcp]'")
        if not re.fullmatch(_PROJECT, project or ""):
            raise ConfigError("gcp-kms: the project id is not valid")
        if not re.fullmatch(_LOCATION, location or ""):
            raise ConfigError("gcp-kms: the location is not valid")
        if not re.fullmatch(_ID, key_ring or ""):
            raise ConfigError("gcp-kms: the key ring id is not valid")
        if sum(x is not None for x in (client, channel, credentials)) > 1:
            raise ValueError("pass at most one of client, channel and credentials")
        if not 0 < timeout_seconds <= 300:
            raise ConfigError("gcp-kms: the timeout must be within (0, 300] seconds")
        if not 1 <= max_attempts <= 10:
            raise ConfigError("gcp-kms: max_attempts must be within [1, 10]")
        self.project = project
        self.location = location
        self.key_ring = f"projects/{project}/locations/{location}/keyRings/{key_ring}"
        levels = kms_v1.ProtectionLevel
        self._protection = levels.HSM if protection_level == "HSM" else levels.SOFTWARE
        self._timeout = timeout_seconds
        self._attempts = max_attempts
        self._kms: kms_v1.KeyManagementServiceClient = client or self._client(
            channel, credentials, endpoint
        )

    @staticmethod
    def _client(channel: Any, credentials: Any, endpoint: str | None) -> Any:
        if channel is not None:
            transport = KeyManagementServiceGrpcTransport(channel=channel)
            return kms_v1.KeyManagementServiceClient(transport=transport)
        options = ClientOptions(api_endpoint=endpoint) if endpoint else None
        try:
            return kms_v1.KeyManagementServiceClient(
                credentials=credentials, client_options=options
            )
        except auth_exceptions.GoogleAuthError:
            raise ConfigError(
                "gcp-kms: no Google credentials (set application default credentials)"
            ) from None

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Close the client's transport (and so a ``channel`` passed in)."""
        transport: Any = self._kms.transport  # the library leaves close() untyped
        transport.close()

    def __enter__(self) -> GcpKmsKeyProvider:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------------------

    def _call(
        self,
        rpc: Callable[..., T],
        request: Any,
        *,
        idempotent: bool = True,
        decrypting: bool = False,
    ) -> T:
        """One RPC, bounded by the deadline and the attempts.

        INVALID_ARGUMENT means "these bytes or this context do not open" for
        Decrypt only (:meth:`_classify`); for any other call the key cannot serve.
        """
        attempts = self._attempts if idempotent else 1
        for attempt in range(1, attempts + 1):
            try:
                return rpc(request=request, retry=None, timeout=self._timeout)
            except api_exceptions.InvalidArgument:
                if decrypting:
                    raise
                raise _RefusedError from None
            except (api_exceptions.ServiceUnavailable, api_exceptions.DeadlineExceeded):
                if attempt == attempts:
                    raise
                time.sleep(_BACKOFF_SECONDS * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _key_name(self, ref: str) -> str:
        """``ref`` if it is a CryptoKey name in the provider's location (residency)."""
        match = _KEY_NAME.fullmatch(ref)
        if match is None or match.group(2) != self.location:
            raise KeyUnavailableError(
                f"{self.name}: {ref} is not a key in location {self.location}"
            )
        return ref

    def _corrupt(self, ref: str) -> KeyUnavailableError:
        return KeyUnavailableError(f"{self.name}: key {ref} answered with a bad CRC32C checksum")

    # -- bring your own key -------------------------------------------------------------

    def adopt_kek(self, key_ref: str) -> str:
        """Check a customer's existing CryptoKey and return its name, the ref to store.

        ``key_ref`` is a CryptoKey resource name, or a key id in the provider's key ring.

        1. The name MUST be in the provider's location (data residency):
           refused before any request otherwise.
        2. GetCryptoKey; a key not found is refused.
        3. Its purpose MUST be ENCRYPT_DECRYPT and its primary version MUST be
           GOOGLE_SYMMETRIC_ENCRYPTION and ENABLED.
        4. A wrap/unwrap self-check proves our credentials may use it.

        Raises :class:`InvalidInputError` for an unsuitable key and
        :class:`KeyUnavailableError` when KMS cannot be asked.
        """
        return self._guard("adopt", key_ref, lambda: self._adopt(key_ref))

    def _adopt(self, key_ref: str) -> str:
        def refuse(why: str) -> InvalidInputError:
            return InvalidInputError(f"{self.name}: key {key_ref} {why}", field="key_ref")

        # (1)
        ref = f"{self.key_ring}/cryptoKeys/{key_ref}" if re.fullmatch(_ID, key_ref) else key_ref
        match = _KEY_NAME.fullmatch(ref)
        if match is None:
            raise refuse("is not a CryptoKey resource name")
        if match.group(2) != self.location:
            raise refuse(f"is not in location {self.location} (data residency)")
        # (2)
        try:
            key = self._call(self._kms.get_crypto_key, kms_v1.GetCryptoKeyRequest(name=ref))
        except api_exceptions.NotFound:
            raise refuse(f"was not found in location {self.location}") from None
        # (3)
        if key.name != ref:
            raise KeyUnavailableError(f"{self.name}: key {key_ref} answered for another key")
        symmetric = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm.GOOGLE_SYMMETRIC_ENCRYPTION
        if key.purpose != kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT:
            raise refuse("is not a symmetric encrypt/decrypt key")
        if key.primary.algorithm != symmetric:
            raise refuse("is not a symmetric encrypt/decrypt key")
        if key.primary.state != kms_v1.CryptoKeyVersion.CryptoKeyVersionState.ENABLED:
            raise refuse("has no enabled primary version")
        # (4)
        self._check(ref)
        return ref

    # -- provider hooks -------------------------------------------------------------------

    def _create_kek(self, label: str) -> str:
        """A new CryptoKey with a random id in the key ring; ``label`` becomes a label."""
        key_id = "callvault-" + secrets.token_hex(16)
        owner = _LABEL_VALUE.sub("-", label.lower())[:63]
        key = kms_v1.CryptoKey(
            purpose=kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT,
            version_template=kms_v1.CryptoKeyVersionTemplate(
                algorithm=kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm.GOOGLE_SYMMETRIC_ENCRYPTION,
                protection_level=self._protection,
            ),
            labels={"managed-by": "callvault", "owner": owner},
            destroy_scheduled_duration=DESTROY_SCHEDULED_DURATION,
        )
        request = kms_v1.CreateCryptoKeyRequest(
            parent=self.key_ring, crypto_key_id=key_id, crypto_key=key
        )
        # Not retried: a lost answer would leave one orphan key per attempt.
        created = self._call(self._kms.create_crypto_key, request, idempotent=False)
        ref = f"{self.key_ring}/cryptoKeys/{key_id}"
        if created.name != ref:
            raise KeyUnavailableError(f"{self.name}: key {ref} answered for another key")
        return ref

    def _wrap(self, kek_ref: str, data_key: bytes, context: WrapContext) -> bytes:
        """Step 1 of the module docstring."""
        name = self._key_name(kek_ref)
        aad = context.associated_data()
        request = kms_v1.EncryptRequest(
            name=name,
            plaintext=data_key,
            additional_authenticated_data=aad,
            plaintext_crc32c=crc32c(data_key),
            additional_authenticated_data_crc32c=crc32c(aad),
        )
        out = self._call(self._kms.encrypt, request)
        if not (
            out.verified_plaintext_crc32c and out.verified_additional_authenticated_data_crc32c
        ):
            raise self._corrupt(kek_ref)
        ciphertext = bytes(out.ciphertext)
        if out.ciphertext_crc32c is None or out.ciphertext_crc32c != crc32c(ciphertext):
            raise self._corrupt(kek_ref)
        if not out.name.startswith(f"{name}/cryptoKeyVersions/"):
            raise KeyUnavailableError(f"{self.name}: key {kek_ref} answered for another key")
        return ciphertext

    def _unwrap(self, kek_ref: str, wrapped: bytes, context: WrapContext) -> bytes:
        """Step 2 of the module docstring."""
        name = self._key_name(kek_ref)
        aad = context.associated_data()
        request = kms_v1.DecryptRequest(
            name=name,
            ciphertext=wrapped,
            additional_authenticated_data=aad,
            ciphertext_crc32c=crc32c(wrapped),
            additional_authenticated_data_crc32c=crc32c(aad),
        )
        out = self._call(self._kms.decrypt, request, decrypting=True)
        plaintext = bytes(out.plaintext)
        if out.plaintext_crc32c is None or out.plaintext_crc32c != crc32c(plaintext):
            raise self._corrupt(kek_ref)
        return plaintext

    def _destroy_kek(self, kek_ref: str) -> None:
        """Schedule destruction of every ENABLED or DISABLED version (idempotent)."""
        name = self._key_name(kek_ref)
        states = kms_v1.CryptoKeyVersion.CryptoKeyVersionState
        request = kms_v1.ListCryptoKeyVersionsRequest(parent=name)
        versions = list(self._call(self._kms.list_crypto_key_versions, request))
        for version in versions:
            if not version.name.startswith(f"{name}/cryptoKeyVersions/"):
                raise KeyUnavailableError(f"{self.name}: key {kek_ref} answered for another key")
            if version.state in (states.ENABLED, states.DISABLED):
                self._call(
                    self._kms.destroy_crypto_key_version,
                    kms_v1.DestroyCryptoKeyVersionRequest(name=version.name),
                )

    def _ready(self) -> None:
        """One cheap request (GetKeyRing): KMS answers and accepts the credentials.

        PERMISSION_DENIED still proves both (the account may be allowed only its
        keys); :meth:`check` proves a given key works.
        """
        with contextlib.suppress(api_exceptions.PermissionDenied):
            self._call(self._kms.get_key_ring, kms_v1.GetKeyRingRequest(name=self.key_ring))

    def _classify(self, exc: Exception) -> type[Error] | None:
        """INVALID_ARGUMENT from Decrypt (bad ciphertext, AAD or key): DecryptionError;
        any other Google API or auth error (NOT_FOUND, PERMISSION_DENIED,
        FAILED_PRECONDITION for a disabled or destroyed version, UNAVAILABLE,
        DEADLINE_EXCEEDED...): KeyUnavailableError.

        The base class logs the exception type only, never the message (it
        names projects and keys).
        """
        if isinstance(exc, _RefusedError):
            return KeyUnavailableError
        if isinstance(exc, api_exceptions.InvalidArgument):
            return DecryptionError
        if isinstance(exc, api_exceptions.GoogleAPIError | auth_exceptions.GoogleAuthError):
            return KeyUnavailableError
        return None
