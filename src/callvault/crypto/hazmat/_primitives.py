"""AES-256-GCM and HKDF-SHA256 from pyca/cryptography, and nothing else."""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callvault.errors import DecryptionError

AES_KEY_BYTES = 32
GCM_NONCE_BYTES = 12
GCM_TAG_BYTES = 16


def aes_gcm_seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt with AES-256-GCM; returns ciphertext followed by the 16-byte tag."""
    if len(key) != AES_KEY_BYTES or len(nonce) != GCM_NONCE_BYTES:
        raise ValueError("AES-256-GCM needs a 32-byte key and a 12-byte nonce")
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aes_gcm_open(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """Decrypt and authenticate; any failure is the one :class:`DecryptionError`."""
    if len(key) != AES_KEY_BYTES or len(nonce) != GCM_NONCE_BYTES:
        raise DecryptionError
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise DecryptionError from None


def hkdf_sha256(
    ikm: bytes, *, info: bytes, length: int = AES_KEY_BYTES, salt: bytes | None = None
) -> bytes:
    """RFC 5869 HKDF with SHA-256."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


class AesGcm:
    """One AES-256-GCM key, set up once and reused for many messages.

    Building an ``AESGCM`` object runs the key schedule; a stream of segments
    under one derived key MUST reuse one :class:`AesGcm` rather than call
    :func:`aes_gcm_seal` per segment. The ``*_into`` methods write into a
    caller's buffer, so sealing or opening many segments allocates nothing
    per segment. The caller owes nonce uniqueness per key.
    """

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != AES_KEY_BYTES:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._aead = AESGCM(key)

    def seal_into(
        self,
        nonce: bytes,
        plaintext: bytes | bytearray | memoryview,
        out: bytearray | memoryview,
        aad: bytes | None = None,
    ) -> None:
        """Encrypt into ``out``, which MUST be exactly ``len(plaintext) + 16`` bytes long.

        ``out`` receives the ciphertext followed by the 16-byte tag.
        """
        self._aead.encrypt_into(nonce, plaintext, aad, out)

    def open_into(
        self,
        nonce: bytes,
        ciphertext: bytes | bytearray | memoryview,
        out: bytearray | memoryview,
        aad: bytes | None = None,
    ) -> None:
        """Decrypt and authenticate into ``out`` (exactly ``len(ciphertext) - 16`` bytes).

        Any failure (bad tag, wrong lengths) is the one :class:`DecryptionError`,
        and ``out`` is zeroed first, so no unauthenticated byte is left in it.
        """
        try:
            self._aead.decrypt_into(nonce, ciphertext, aad, out)
        except (InvalidTag, ValueError):
            out[:] = bytes(len(out))
            raise DecryptionError from None

    def open(
        self, nonce: bytes, ciphertext: bytes | bytearray | memoryview, aad: bytes | None = None
    ) -> bytes:
        """Decrypt and authenticate into new bytes; any failure is :class:`DecryptionError`."""
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except (InvalidTag, ValueError):
            raise DecryptionError from None
