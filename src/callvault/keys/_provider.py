"""The KeyProvider base class: one public surface, errors normalised.

Template method: the public methods check their arguments and turn every
provider failure into one of two errors, so callers never see an SDK's
exception (or its message, which may name resources):

- :class:`~callvault.errors.KeyUnavailableError`: the provider cannot be used
  (unreachable, key disabled or destroyed, bad credentials). Its message names
  the provider and the key reference only.
- :class:`~callvault.errors.DecryptionError`: the wrapped bytes or the context
  do not open. No detail.

Providers implement the ``_``-prefixed methods and ``_classify`` (which of the
two an exception of theirs is).
"""

from __future__ import annotations

import abc
import logging
import secrets
from collections.abc import Callable
from typing import TypeVar

from callvault.crypto.hazmat import AES_KEY_BYTES
from callvault.errors import DecryptionError, Error, InvalidInputError, KeyUnavailableError
from callvault.keys._context import WrapContext

log = logging.getLogger(__name__)
T = TypeVar("T")

_MAX_WRAPPED_BYTES = 4096


class KeyProvider(abc.ABC):
    """Holds key-encryption keys (KEKs) and wraps data keys with them."""

    #: Short provider name used in settings, rows and messages (``local``, ``aws-kms``...).
    name: str = "provider"

    # -- public surface (fixed) -------------------------------------------------

    def create_kek(self, label: str) -> str:
        """Create a new KEK; returns the provider's reference to it (never the key)."""
        return self._guard("create a key", "-", lambda: self._create_kek(label))

    def wrap(self, kek_ref: str, data_key: bytes, context: WrapContext) -> bytes:
        """Wrap a 256-bit data key under ``kek_ref`` bound to ``context``."""
        if len(data_key) != AES_KEY_BYTES:
            raise ValueError("data keys are 32 bytes")
        wrapped = self._guard("wrap", kek_ref, lambda: self._wrap(kek_ref, data_key, context))
        if not wrapped or len(wrapped) > _MAX_WRAPPED_BYTES:
            raise KeyUnavailableError(f"{self.name}: key {kek_ref} returned an invalid wrap")
        return wrapped

    def adopt_kek(self, key_ref: str) -> str:  # noqa: ARG002 - the default refuses any ref
        """Use the customer's existing key (bring your own key) after checking it fits.

        Providers that can adopt override this; the default refuses.
        """
        raise InvalidInputError(
            f"key provider {self.name} cannot adopt an existing key", field="key_ref"
        )

    def generate(self, kek_ref: str, context: WrapContext) -> tuple[bytes, bytes]:
        """A new 256-bit data key and its wrap under ``kek_ref`` (KMS: GenerateDataKey)."""
        key, wrapped = self._guard("generate", kek_ref, lambda: self._generate(kek_ref, context))
        if len(key) != AES_KEY_BYTES or not wrapped or len(wrapped) > _MAX_WRAPPED_BYTES:
            raise KeyUnavailableError(f"{self.name}: key {kek_ref} returned an invalid data key")
        return key, wrapped

    def unwrap(self, kek_ref: str, wrapped: bytes, context: WrapContext) -> bytes:
        """Unwrap; :class:`DecryptionError` if the bytes or the context are wrong."""
        if not wrapped or len(wrapped) > _MAX_WRAPPED_BYTES:
            raise DecryptionError
        key = self._guard("unwrap", kek_ref, lambda: self._unwrap(kek_ref, wrapped, context))
        if len(key) != AES_KEY_BYTES:
            raise DecryptionError
        return key

    def rewrap(self, old_ref: str, new_ref: str, wrapped: bytes, context: WrapContext) -> bytes:
        """Move a wrapped key from one KEK to another without the caller seeing it."""
        return self._guard(
            "rewrap", new_ref, lambda: self._rewrap(old_ref, new_ref, wrapped, context)
        )

    def destroy_kek(self, kek_ref: str) -> None:
        """Destroy (or schedule the provider's destruction of) a KEK. Irreversible."""
        self._guard("destroy", kek_ref, lambda: self._destroy_kek(kek_ref))

    def ready(self) -> None:
        """Raise :class:`KeyUnavailableError` unless the provider can be used now."""
        self._guard("reach the provider", "-", self._ready)

    def check(self, kek_ref: str) -> None:
        """Raise :class:`KeyUnavailableError` unless ``kek_ref`` can wrap and unwrap now."""
        self._guard("check", kek_ref, lambda: self._check(kek_ref))

    # -- provider hooks -----------------------------------------------------------

    @abc.abstractmethod
    def _create_kek(self, label: str) -> str: ...

    @abc.abstractmethod
    def _wrap(self, kek_ref: str, data_key: bytes, context: WrapContext) -> bytes: ...

    @abc.abstractmethod
    def _unwrap(self, kek_ref: str, wrapped: bytes, context: WrapContext) -> bytes: ...

    @abc.abstractmethod
    def _destroy_kek(self, kek_ref: str) -> None: ...

    def _generate(self, kek_ref: str, context: WrapContext) -> tuple[bytes, bytes]:
        """Default: a key from the OS's CSPRNG, wrapped. KMS providers override."""
        key = secrets.token_bytes(AES_KEY_BYTES)
        return key, self._wrap(kek_ref, key, context)

    def _rewrap(self, old_ref: str, new_ref: str, wrapped: bytes, context: WrapContext) -> bytes:
        """Default: unwrap in memory and wrap again. Providers with a native rewrap override."""
        return self._wrap(new_ref, self._unwrap(old_ref, wrapped, context), context)

    def _ready(self) -> None:  # noqa: B027 - optional hook: most providers check on first use
        """Default: nothing to check until a key is used."""

    def _check(self, kek_ref: str) -> None:
        probe = WrapContext("_probe", "_probe", "probe", "_probe", "check")
        key = bytes(AES_KEY_BYTES)
        if self._unwrap(kek_ref, self._wrap(kek_ref, key, probe), probe) != key:
            raise KeyUnavailableError(f"{self.name}: key {kek_ref} failed its self-check")

    def _classify(self, exc: Exception) -> type[Error] | None:  # noqa: ARG002 - a hook
        """Map a provider exception to KeyUnavailableError or DecryptionError (None: re-raise)."""
        return None

    # -- machinery ----------------------------------------------------------------

    def _guard(self, what: str, ref: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except (DecryptionError, KeyUnavailableError):
            raise
        except Exception as exc:  # every SDK error is normalised here, by design
            kind = self._classify(exc)
            log.warning(
                "key provider call failed",
                extra={
                    "provider": self.name,
                    "op": what,
                    "key_ref": ref,
                    "error_type": type(exc).__name__,
                },
            )
            if kind is DecryptionError:
                raise DecryptionError from None
            if kind is None and not isinstance(exc, OSError):
                raise
            raise KeyUnavailableError(f"{self.name}: cannot {what} with key {ref}") from None
