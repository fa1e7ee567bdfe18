"""The ``aws-kms`` key provider: KEKs are AWS KMS keys, which never leave KMS.

Refs are key ARNs. Data keys come from GenerateDataKey (AES_256); every wrap,
unwrap and rewrap passes the :class:`WrapContext` as the KMS
EncryptionContext (values as strings: KMS binds it as associated data and
writes it to CloudTrail, so it holds ids only), and pins the KeyId, so a
ciphertext made under another key, or moved to another row, is refused.

Key state: before using a key the provider reads its ``KeyState``
(DescribeKey) and refuses anything but ``Enabled`` with a
:class:`KeyUnavailableError` naming the provider and the key. AWS refuses a
disabled key by itself; moto (the test peer) still decrypts with one, and the
check gives one clear message either way. The state is cached in memory per
key for ``state_ttl_seconds`` (default 5 s) so a call does not cost two
requests; a key disabled in KMS is refused here within that time.

Destroying a key disables it and schedules its deletion with the minimum
pending window (7 days): from then on KMS refuses every operation with it;
until the window ends an AWS administrator can still cancel the deletion.

A customer's own key is used with :meth:`AwsKmsKeyProvider.adopt_kek`, which
checks it is usable for this and in the provider's region (data residency).

Needs the ``aws`` extra (``pip install 'callvault[aws]'``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr

from callvault import _boto
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
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # the aws extra is not installed: the constructor says so
    boto3 = None

log = logging.getLogger(__name__)

PENDING_WINDOW_DAYS = 7  # the minimum AWS allows
_DECRYPTION_CODES = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})
_KEK_SPEC = {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"}


def _encryption_context(context: WrapContext) -> dict[str, str]:
    return {k: str(v) for k, v in context.as_dict().items()}


def _arn_region(ref: str) -> str | None:
    """The region of a KMS key or alias ARN; None for a bare key id or alias name."""
    parts = ref.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[2] == "kms":
        return parts[3]
    return None


class AwsKmsKeyProvider(KeyProvider):
    """KEKs in AWS KMS (or an endpoint speaking its API: a VPC endpoint, moto)."""

    name = "aws-kms"

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None = None,
        session: Any = None,
        access_key_id: str | None = None,
        secret_access_key: SecretStr | None = None,
        session_token: SecretStr | None = None,
        connect_timeout_seconds: float = 3.0,
        read_timeout_seconds: float = 10.0,
        max_attempts: int = 2,
        state_ttl_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Without ``session`` or keys, boto3's default credential chain is used
        (instance or task role, environment, config files)."""
        if boto3 is None:
            raise ConfigError("aws-kms needs boto3: pip install 'callvault[aws]'")
        if not region:
            raise ConfigError("aws-kms: a region is required")
        if (access_key_id is None) != (secret_access_key is None):
            raise ConfigError("aws-kms: an access key id needs its secret access key")
        self.region = region
        self._kms: Any = _boto.client(
            "kms",
            region=region,
            endpoint_url=endpoint_url,
            session=session,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=session_token,
            connect_timeout_seconds=connect_timeout_seconds,
            read_timeout_seconds=read_timeout_seconds,
            max_attempts=max_attempts,
        )
        self._ttl = state_ttl_seconds
        self._clock = clock
        self._states: dict[str, tuple[float, Mapping[str, Any]]] = {}
        self._lock = threading.Lock()

    # -- key state ------------------------------------------------------------------

    def _describe(self, ref: str, *, fresh: bool = False) -> Mapping[str, Any]:
        """The key's metadata (``Arn``, ``KeyId``, ``KeyState``...), cached for the TTL
        (``fresh``: asked afresh and not cached)."""
        now = self._clock()
        with self._lock:
            item = None if fresh else self._states.get(ref)
        if item is not None and item[0] > now:
            return item[1]
        meta: Mapping[str, Any] = self._kms.describe_key(KeyId=ref)["KeyMetadata"]
        if not fresh:
            with self._lock:
                self._states[ref] = (now + self._ttl, meta)
        return meta

    def _enabled(self, ref: str) -> str:
        """(1) Read the key's state (cached). (2) Refuse all but Enabled. Returns the ARN."""
        # (1)
        meta = self._describe(ref)
        # (2)
        state = meta.get("KeyState")
        if state != "Enabled":
            raise KeyUnavailableError(f"{self.name}: key {ref} is not enabled (state {state})")
        arn: str = meta["Arn"]
        return arn

    def forget_state(self, ref: str | None = None) -> None:
        """Drop the cached state of ``ref`` (of every key when None)."""
        with self._lock:
            if ref is None:
                self._states.clear()
            else:
                self._states.pop(ref, None)

    # -- bring your own key ---------------------------------------------------------

    def adopt_kek(self, key_id: str) -> str:
        """Check a customer's existing key and return its ARN, the ref to store.

        1. An ARN MUST name the provider's region (data residency): refused
           before any request otherwise.
        2. DescribeKey in the provider's region; a key not found there is refused.
        3. The key MUST be enabled, customer managed, single-region (a
           multi-region key has replicas elsewhere), SYMMETRIC_DEFAULT and
           ENCRYPT_DECRYPT, and its ARN MUST name the provider's region.
        4. A wrap/unwrap self-check proves the key policy lets us use it.

        Raises :class:`InvalidInputError` for an unsuitable key and
        :class:`KeyUnavailableError` when KMS cannot be asked.
        """
        return self._guard("adopt", key_id, lambda: self._adopt(key_id))

    def _adopt(self, key_id: str) -> str:
        def refuse(why: str) -> InvalidInputError:
            return InvalidInputError(f"{self.name}: key {key_id} {why}", field="key_id")

        # (1)
        if _arn_region(key_id) not in (None, self.region):
            raise refuse(f"is not in region {self.region} (data residency)")
        # (2)
        try:
            meta = self._describe(key_id, fresh=True)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NotFoundException":
                raise refuse(f"was not found in region {self.region}") from None
            raise
        # (3)
        arn = str(meta.get("Arn", ""))
        if _arn_region(arn) != self.region:
            raise refuse(f"is not in region {self.region} (data residency)")
        if meta.get("KeyState") != "Enabled":
            raise refuse("is not enabled")
        if meta.get("KeyManager") != "CUSTOMER":
            raise refuse("is not a customer managed key")
        if meta.get("MultiRegion"):
            raise refuse("is a multi-region key (its replicas may leave the region)")
        # KeyUsage: the only one of SYMMETRIC_DEFAULT keys; moto leaves it out when defaulted
        usage = meta.get("KeyUsage", "ENCRYPT_DECRYPT")
        if meta.get("KeySpec") != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
            raise refuse("is not a symmetric encrypt/decrypt key")
        # (4)
        self._check(arn)
        return arn

    # -- provider hooks -------------------------------------------------------------

    def _create_kek(self, label: str) -> str:
        meta = self._kms.create_key(Description=label, MultiRegion=False, **_KEK_SPEC)
        arn: str = meta["KeyMetadata"]["Arn"]
        with self._lock:
            self._states[arn] = (self._clock() + self._ttl, meta["KeyMetadata"])
        return arn

    def _generate(self, kek_ref: str, context: WrapContext) -> tuple[bytes, bytes]:
        arn = self._enabled(kek_ref)
        out = self._kms.generate_data_key(
            KeyId=arn, KeySpec="AES_256", EncryptionContext=_encryption_context(context)
        )
        if out.get("KeyId") != arn:
            raise KeyUnavailableError(f"{self.name}: key {kek_ref} answered for another key")
        return bytes(out["Plaintext"]), bytes(out["CiphertextBlob"])

    def _wrap(self, kek_ref: str, data_key: bytes, context: WrapContext) -> bytes:
        arn = self._enabled(kek_ref)
        out = self._kms.encrypt(
            KeyId=arn, Plaintext=data_key, EncryptionContext=_encryption_context(context)
        )
        if out.get("KeyId") != arn:
            raise KeyUnavailableError(f"{self.name}: key {kek_ref} answered for another key")
        return bytes(out["CiphertextBlob"])

    def _unwrap(self, kek_ref: str, wrapped: bytes, context: WrapContext) -> bytes:
        arn = self._enabled(kek_ref)
        out = self._kms.decrypt(
            KeyId=arn, CiphertextBlob=wrapped, EncryptionContext=_encryption_context(context)
        )
        if out.get("KeyId") != arn:  # KMS enforces the pin; this holds it if it did not
            raise DecryptionError
        return bytes(out["Plaintext"])

    def _rewrap(self, old_ref: str, new_ref: str, wrapped: bytes, context: WrapContext) -> bytes:
        old_arn, new_arn = self._enabled(old_ref), self._enabled(new_ref)
        ctx = _encryption_context(context)
        out = self._kms.re_encrypt(
            CiphertextBlob=wrapped,
            SourceKeyId=old_arn,
            SourceEncryptionContext=ctx,
            DestinationKeyId=new_arn,
            DestinationEncryptionContext=ctx,
        )
        if out.get("SourceKeyId") != old_arn:  # moto ignores SourceKeyId; AWS refuses
            raise DecryptionError
        if out.get("KeyId") != new_arn:
            raise KeyUnavailableError(f"{self.name}: key {new_ref} answered for another key")
        return bytes(out["CiphertextBlob"])

    def _destroy_kek(self, kek_ref: str) -> None:
        """(1) Read the state afresh. (2) Disable. (3) Schedule deletion (7 days)."""
        try:
            # (1)
            meta = self._describe(kek_ref, fresh=True)
            if meta.get("KeyState") == "PendingDeletion":
                return
            # (2) by key id: these calls cannot cross accounts, and moto wants the id
            if meta.get("KeyState") == "Enabled":
                self._kms.disable_key(KeyId=meta["KeyId"])
            # (3)
            self._kms.schedule_key_deletion(
                KeyId=meta["KeyId"], PendingWindowInDays=PENDING_WINDOW_DAYS
            )
        finally:
            self.forget_state(kek_ref)

    def _ready(self) -> None:
        """One cheap request: the endpoint answers and accepts the credentials.

        AccessDenied still proves both (the role may be allowed only its keys);
        :meth:`check` proves a given key works.
        """
        try:
            self._kms.list_keys(Limit=1)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "AccessDeniedException":
                raise

    def _classify(self, exc: Exception) -> type[Error] | None:
        """Bad ciphertext or wrong key: DecryptionError; any other SDK error: unavailable.

        Only the AWS error code is logged, never the SDK's message (it names ARNs
        and accounts).
        """
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", "unknown"))
            log.warning("aws kms refused a request", extra={"aws_error_code": code})
            return DecryptionError if code in _DECRYPTION_CODES else KeyUnavailableError
        if isinstance(exc, BotoCoreError):  # no endpoint, timeout, no credentials, bad params
            return KeyUnavailableError
        return None
