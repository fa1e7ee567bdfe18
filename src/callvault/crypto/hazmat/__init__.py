"""The only package allowed to import ``cryptography.hazmat`` (enforced by ruff's banned-api).

Recipes elsewhere in :mod:`callvault.crypto` use these thin wrappers, so the
set of primitives callvault depends on is visible in one place.
"""

from callvault.crypto.hazmat._ed25519 import (
    ED25519_PUBLIC_KEY_BYTES,
    ED25519_SEED_BYTES,
    ED25519_SIGNATURE_BYTES,
    Ed25519SigningKey,
    Ed25519VerifyingKey,
)
from callvault.crypto.hazmat._primitives import (
    AES_KEY_BYTES,
    GCM_NONCE_BYTES,
    GCM_TAG_BYTES,
    AesGcm,
    aes_gcm_open,
    aes_gcm_seal,
    hkdf_sha256,
)
from callvault.crypto.hazmat._tls import cert_fingerprint, generate_self_signed

__all__ = [
    "AES_KEY_BYTES",
    "ED25519_PUBLIC_KEY_BYTES",
    "ED25519_SEED_BYTES",
    "ED25519_SIGNATURE_BYTES",
    "GCM_NONCE_BYTES",
    "GCM_TAG_BYTES",
    "AesGcm",
    "Ed25519SigningKey",
    "Ed25519VerifyingKey",
    "aes_gcm_open",
    "aes_gcm_seal",
    "cert_fingerprint",
    "generate_self_signed",
    "hkdf_sha256",
]
