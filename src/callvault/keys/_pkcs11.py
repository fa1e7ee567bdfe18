"""The ``pkcs11`` key provider: KEKs are AES-256 keys inside an HSM (PKCS#11).

A KEK is generated in the token as a token object that is sensitive and not
extractable (``CKA_SENSITIVE`` true, ``CKA_EXTRACTABLE`` false; PKCS#11 lets
neither be changed back), usable only to encrypt and decrypt, and found by a
random ``CKA_LABEL`` (its ``CKA_ID`` is the same random bytes): the label is
the ref. A customer's existing key is used with
:meth:`Pkcs11KeyProvider.adopt_kek`.

A wrapped data key is ``0x01 ‖ iv(12) ‖ AES-256-GCM(kek, data key, aad =
canonical wrap context)`` (ciphertext then 16-byte tag), computed inside the
HSM with ``CKM_AES_GCM``. IVs are 96 random bits from the OS; NIST SP 800-38D
allows 2^32 random-IV encryptions per key, which a KEK rotation must come long
before. HSMs that insist on generating GCM IVs themselves (some in FIPS mode)
are not supported yet.

RFC 3394/5649 key wrap (``CKM_AES_KEY_WRAP[_PAD]``) is not offered: it takes
no associated data, so a wrapped key moved to another owner's row would still
unwrap (ADR 7 requires the context to be bound), and it wraps key *objects*,
so every data key would first have to be imported into the token. (SoftHSM2
also implements ``_PAD`` as the KWP variant, python-pkcs11 notes.)

Sessions and threads. PKCS#11 login state belongs to the application, not to
a session: a second ``C_Login`` answers ``CKR_USER_ALREADY_LOGGED_IN`` whatever
the PIN, and ``C_Logout`` on any session logs out all of them. python-pkcs11
initialises a module with ``C_Initialize(NULL)``, which tells the module that
the application will not call it from several threads at once (SoftHSM2 then
runs without its own mutexes). So, per process, this module keeps one lock per
PKCS#11 module, held for every call into it, and one logged-in session per
token, shared by every provider for that token; a provider whose PIN is not
the one that logged in is refused. A lost session (handle invalid, logged
out, device removed) is dropped and the call is tried once more on a new one
(python-pkcs11 0.10.1 then prints an ignored ``SessionHandleInvalid`` from the
finaliser of the object search that met the dead session: harmless).

Needs the ``pkcs11`` extra (``pip install 'callvault[pkcs11]'``) and a PKCS#11
module (Debian: ``apt-get install softhsm2`` for tests).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from pydantic import SecretStr

from callvault.crypto.hazmat import AES_KEY_BYTES, GCM_NONCE_BYTES
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
    import pkcs11
    from pkcs11 import Attribute, GCMParams, KeyType, Mechanism, MechanismFlag, ObjectClass
    from pkcs11.exceptions import (
        DeviceRemoved,
        EncryptedDataInvalid,
        EncryptedDataLenRange,
        PinIncorrect,
        PKCS11Error,
        SessionClosed,
        SessionHandleInvalid,
        UserAlreadyLoggedIn,
        UserNotLoggedIn,
    )
    from pkcs11.types import Session
except ImportError:  # the pkcs11 extra is not installed: the constructor says so
    _MISSING = True
else:
    _MISSING = False
    _LOST = (SessionHandleInvalid, SessionClosed, UserNotLoggedIn, DeviceRemoved)
    _BAD_CIPHERTEXT = (EncryptedDataInvalid, EncryptedDataLenRange)

log = logging.getLogger(__name__)
T = TypeVar("T")

_WRAP_VERSION = b"\x01"
_TAG_BYTES = 16
_WRAPPED_LEN = 1 + GCM_NONCE_BYTES + AES_KEY_BYTES + _TAG_BYTES
_PROBE = b"callvault pkcs11 probe"


class _GcmKey(Protocol):
    def encrypt(
        self, data: bytes, buffer_size: int = ..., **kw: Any
    ) -> bytes | Iterator[bytes]: ...
    def decrypt(
        self, data: bytes, buffer_size: int = ..., **kw: Any
    ) -> bytes | Iterator[bytes]: ...
    def get_attributes(self, keys: list[Any]) -> dict[Any, Any]: ...


@dataclass
class _Login:
    """The one logged-in session this process holds on one token."""

    session: Session | None = None
    pin: bytes = field(default=b"", repr=False)
    #: A PIN the token refused: never tried again, so a misconfigured process
    #: cannot use up the token's failed-login budget and lock the PIN.
    refused: bytes = field(default=b"", repr=False)
    users: int = 0


_REGISTRY = threading.Lock()
_MODULE_LOCKS: dict[str, threading.RLock] = {}
_LOGINS: dict[tuple[str, str], _Login] = {}


def _bytes(out: bytes | Iterator[bytes]) -> bytes:
    if not isinstance(out, bytes):  # python-pkcs11 streams only for iterable input
        raise TypeError("python-pkcs11 streamed a one-shot operation")
    return out


def _seal(key: _GcmKey, data: bytes, iv: bytes, aad: bytes) -> bytes:
    """AES-GCM in the token: ciphertext ‖ tag."""
    params = GCMParams(iv, aad, _TAG_BYTES * 8)
    return _bytes(key.encrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params))


def _open(key: _GcmKey, sealed: bytes, iv: bytes, aad: bytes) -> bytes:
    params = GCMParams(iv, aad, _TAG_BYTES * 8)
    return _bytes(key.decrypt(sealed, mechanism=Mechanism.AES_GCM, mechanism_param=params))


class Pkcs11KeyProvider(KeyProvider):
    """KEKs in an HSM token reached through a PKCS#11 module (SoftHSM2 in the tests)."""

    name = "pkcs11"

    def __init__(
        self,
        *,
        module_path: str | Path,
        token_label: str,
        user_pin: SecretStr,
        key_label_prefix: str = "callvault-kek-",
    ) -> None:
        if _MISSING:
            raise ConfigError("pkcs11 needs python-pkcs11: pip install 'callvault[pkcs11]'")
        if not token_label or not user_pin.get_secret_value():
            raise ConfigError("pkcs11: a token label and a user PIN are required")
        # One string per library: python-pkcs11 loads (and initialises) a module per path.
        path = Path(module_path)
        self._module = str(path.resolve() if path.is_file() else path)
        self._token_label = token_label
        self._pin = user_pin
        self._prefix = key_label_prefix
        with _REGISTRY:
            self._lock = _MODULE_LOCKS.setdefault(self._module, threading.RLock())
            self._login = _LOGINS.setdefault((self._module, token_label), _Login())
        self._using = False

    # -- sessions -------------------------------------------------------------------

    def _session(self) -> Session:
        """The token's logged-in session (opened on first use). Caller holds the lock."""
        login, pin = self._login, self._pin.get_secret_value().encode("utf-8")
        if not self._using:
            self._using, login.users = True, login.users + 1
        if login.session is not None:
            if not hmac.compare_digest(pin, login.pin):
                raise PinIncorrect  # the token is logged in with another PIN
            return login.session
        if login.refused and hmac.compare_digest(pin, login.refused):
            raise PinIncorrect
        token = pkcs11.lib(self._module).get_token(token_label=self._token_label)
        try:
            login.session = token.open(rw=True, user_pin=pin.decode("utf-8"))
        except PinIncorrect:
            login.refused = pin
            raise
        except UserAlreadyLoggedIn:
            # Logged in by code outside this provider in this process: the
            # PIN cannot be checked again without logging everyone out.
            log.warning("pkcs11 token already logged in", extra={"provider": self.name})
            login.session = token.open(rw=True)
        login.pin = pin
        return login.session

    def _drop(self) -> None:
        """Forget the token's session (closing it logs the process out). Caller holds the lock."""
        session, self._login.session, self._login.pin = self._login.session, None, b""
        if session is not None:
            with suppress(PKCS11Error):
                session.close()

    def _call(self, op: Callable[[Session], T]) -> T:
        """Run ``op`` on the token's session under the module lock; once more if it was lost."""
        with self._lock:
            try:
                return op(self._session())
            except _LOST:
                self._drop()
                return op(self._session())

    def close(self) -> None:
        """Stop using the token; the last provider using it in this process logs out."""
        with self._lock:
            if self._using:
                self._using, self._login.users = False, self._login.users - 1
                if self._login.users <= 0:
                    self._drop()

    # -- keys -------------------------------------------------------------------------

    def _key(self, session: Session, ref: str) -> _GcmKey:
        """The KEK labelled ``ref``, refused unless it is a fit one."""
        key = session.get_key(object_class=ObjectClass.SECRET_KEY, label=ref)
        if self._unfit(cast("_GcmKey", key)) is not None:
            raise KeyUnavailableError(f"{self.name}: key {ref} is not a fit KEK")
        return cast("_GcmKey", key)

    @staticmethod
    def _unfit(key: _GcmKey) -> str | None:
        """Why a key may not be a KEK (None: it may)."""
        a = key.get_attributes(
            [
                Attribute.KEY_TYPE,
                Attribute.VALUE_LEN,
                Attribute.TOKEN,
                Attribute.PRIVATE,
                Attribute.SENSITIVE,
                Attribute.EXTRACTABLE,
                Attribute.ENCRYPT,
                Attribute.DECRYPT,
            ]
        )
        if a[Attribute.KEY_TYPE] != KeyType.AES or a[Attribute.VALUE_LEN] != AES_KEY_BYTES:
            return "is not an AES-256 key"
        if a[Attribute.EXTRACTABLE] or not a[Attribute.SENSITIVE]:
            return "is extractable or not sensitive"
        if not (a[Attribute.TOKEN] and a[Attribute.PRIVATE]):
            return "is not a private token object (usable without the PIN)"
        if not (a[Attribute.ENCRYPT] and a[Attribute.DECRYPT]):
            return "is not allowed to encrypt and decrypt"
        return None

    def adopt_kek(self, key_label: str) -> str:
        """Check a customer's existing key (found by ``CKA_LABEL``); returns the ref to store.

        1. Exactly one secret key with that label MUST be on the token.
        2. It MUST be AES-256, sensitive, not extractable, a private token
           object (public objects work without the PIN), and allowed to
           encrypt and decrypt.
        3. A wrap/unwrap self-check proves it works with AES-GCM here.

        Raises :class:`InvalidInputError` for an unsuitable key and
        :class:`KeyUnavailableError` when the token cannot be used.
        """
        return self._guard("adopt", key_label, lambda: self._adopt(key_label))

    def _adopt(self, key_label: str) -> str:
        def vet(session: Session) -> None:
            # (1)
            attrs = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: key_label}
            found = list(session.get_objects(attrs))
            if len(found) != 1:
                raise InvalidInputError(
                    f"{self.name}: key {key_label} is not exactly one key on the token",
                    field="key_label",
                )
            # (2)
            why = self._unfit(cast("_GcmKey", found[0]))
            if why is not None:
                raise InvalidInputError(f"{self.name}: key {key_label} {why}", field="key_label")

        self._call(vet)
        # (3)
        self._check(key_label)
        return key_label

    # -- provider hooks ---------------------------------------------------------------

    def _create_kek(self, label: str) -> str:  # noqa: ARG002 - refs are random: no tenant ids on the token
        def op(session: Session) -> str:
            raw_id = secrets.token_bytes(16)
            ref = self._prefix + raw_id.hex()
            session.generate_key(
                KeyType.AES,
                AES_KEY_BYTES * 8,
                id=raw_id,
                label=ref,
                store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                },
            )
            return ref

        return self._call(op)

    def _wrap(self, kek_ref: str, data_key: bytes, context: WrapContext) -> bytes:
        iv = secrets.token_bytes(GCM_NONCE_BYTES)
        aad = context.associated_data()
        sealed = self._call(lambda s: _seal(self._key(s, kek_ref), data_key, iv, aad))
        return _WRAP_VERSION + iv + sealed

    def _unwrap(self, kek_ref: str, wrapped: bytes, context: WrapContext) -> bytes:
        if len(wrapped) != _WRAPPED_LEN or wrapped[:1] != _WRAP_VERSION:
            raise DecryptionError
        iv, body = wrapped[1 : 1 + GCM_NONCE_BYTES], wrapped[1 + GCM_NONCE_BYTES :]
        aad = context.associated_data()

        def op(session: Session) -> bytes:
            key = self._key(session, kek_ref)
            try:
                return _open(key, body, iv, aad)
            except _BAD_CIPHERTEXT:
                raise DecryptionError from None
            except _LOST:
                raise
            except PKCS11Error:
                # A failed tag check is CKR_GENERAL_ERROR in SoftHSM2 and
                # CKR_AEAD_DECRYPT_FAILED in PKCS#11 3.x, codes a device fault
                # can share: if the key still round-trips a probe, it was the tag.
                iv2 = secrets.token_bytes(GCM_NONCE_BYTES)
                _open(key, _seal(key, _PROBE, iv2, b""), iv2, b"")  # raises if the device fails
                raise DecryptionError from None

        return self._call(op)

    def _destroy_kek(self, kek_ref: str) -> None:
        """Destroy every secret key labelled ``kek_ref`` (copies too); gone already is fine."""

        def op(session: Session) -> None:
            attrs = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: kek_ref}
            for obj in list(session.get_objects(attrs)):
                obj.destroy()

        self._call(op)

    def _ready(self) -> None:
        """Log in to the token and check it offers AES-GCM."""

        def op(session: Session) -> None:
            if Mechanism.AES_GCM not in session.token.slot.get_mechanisms():
                raise KeyUnavailableError(
                    f"{self.name}: token {self._token_label} does not offer AES-GCM"
                )

        self._call(op)

    def _classify(self, exc: Exception) -> type[Error] | None:
        """Bad ciphertext: DecryptionError; any other PKCS#11 error: unavailable.

        Only the exception type is logged (by the base class), never its text,
        and the PIN is in neither.
        """
        if isinstance(exc, _BAD_CIPHERTEXT):
            return DecryptionError
        if isinstance(exc, PKCS11Error):
            return KeyUnavailableError
        return None
