"""Ed25519 (RFC 8032) signing keys and signature checks from pyca/cryptography, and nothing else.

Keys cross this boundary as raw bytes (the 32-byte seed, the 32-byte public
key) or as PKCS#8 PEM, so callers never hold a ``cryptography`` object.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from callvault.errors import CryptoError

ED25519_SEED_BYTES = 32
ED25519_PUBLIC_KEY_BYTES = 32
ED25519_SIGNATURE_BYTES = 64


class Ed25519SigningKey:
    """One Ed25519 private key. Its ``repr`` never shows key material.

    Build it with :meth:`generate`, :meth:`from_seed` or :meth:`from_pem`;
    anything that is not an Ed25519 private key raises :class:`CryptoError`.
    """

    __slots__ = ("_key",)

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def generate(cls) -> Ed25519SigningKey:
        """A fresh key from the operating system's CSPRNG."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Ed25519SigningKey:
        """The key whose RFC 8032 private key (seed) is these 32 bytes."""
        if len(seed) != ED25519_SEED_BYTES:
            raise CryptoError("an Ed25519 seed is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, pem: bytes) -> Ed25519SigningKey:
        """Load an unencrypted PKCS#8 PEM private key, which MUST be Ed25519."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise CryptoError("not an unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise CryptoError("the PEM private key is not an Ed25519 key")
        return cls(key)

    def seed(self) -> bytes:
        """The 32-byte seed. The caller MUST seal it before it is stored anywhere."""
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def to_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM. The caller MUST seal it before it is stored anywhere."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_bytes(self) -> bytes:
        """The 32-byte RFC 8032 encoding of the public key."""
        return self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign(self, message: bytes) -> bytes:
        """The 64-byte signature of ``message`` (deterministic, RFC 8032)."""
        return self._key.sign(message)

    def __repr__(self) -> str:
        return "Ed25519SigningKey(<secret>)"


class Ed25519VerifyingKey:
    """One Ed25519 public key, loaded once and reused for many signature checks."""

    __slots__ = ("_key", "_raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != ED25519_PUBLIC_KEY_BYTES:
            raise CryptoError("an Ed25519 public key is 32 bytes")
        try:
            self._key = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError:
            raise CryptoError("not an Ed25519 public key") from None
        self._raw = bytes(raw)

    @classmethod
    def from_pem(cls, pem: bytes) -> Ed25519VerifyingKey:
        """Load a SubjectPublicKeyInfo PEM public key, which MUST be Ed25519."""
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, UnsupportedAlgorithm):
            raise CryptoError("not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise CryptoError("the PEM public key is not an Ed25519 key")
        return cls(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    def public_bytes(self) -> bytes:
        """The 32-byte RFC 8032 encoding."""
        return self._raw

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True only if ``signature`` is a valid 64-byte signature of ``message``."""
        if len(signature) != ED25519_SIGNATURE_BYTES:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"Ed25519VerifyingKey({self._raw.hex()})"
