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
