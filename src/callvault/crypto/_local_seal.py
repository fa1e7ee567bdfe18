"""The local sealer: AES-256-GCM under keys derived from the local root key.

Blob layout (all integers big-endian)::

    magic "CVL1" (4) | key id (8) | nonce (12) | ciphertext ‖ tag (16)

The key is HKDF-SHA256(root, info="callvault/local-seal/v1" ‖ tenant ‖ deployment),
so each deployment has its own key; the associated data is the canonical
JSON of the :class:`SealContext` plus the format name. The key id is the
first 8 bytes of SHA-256 over the root key's derived identifier, so a blob
sealed under another root key is refused before decryption is tried (with the
same error as any other failure).
"""

from __future__ import annotations

import hashlib
import secrets

from callvault.crypto._context import SealContext
from callvault.crypto.hazmat import (
    AES_KEY_BYTES,
    GCM_NONCE_BYTES,
    GCM_TAG_BYTES,
    aes_gcm_open,
    aes_gcm_seal,
    hkdf_sha256,
)
from callvault.errors import DecryptionError, KeyUnavailableError

_MAGIC = b"CVL1"
_FORMAT = "callvault-local-seal/1"
_KEY_ID_BYTES = 8
_HEADER_BYTES = len(_MAGIC) + _KEY_ID_BYTES + GCM_NONCE_BYTES


class LocalSealer:
    """Sealer keyed by a 32-byte root key held by the local keyring."""

    def __init__(self, root_key: bytes) -> None:
        if len(root_key) != AES_KEY_BYTES:
            raise KeyUnavailableError("local root key must be 32 bytes")
        self._root = root_key
        ident = hkdf_sha256(root_key, info=b"callvault/local-seal/v1/key-id")
        self.key_id = hashlib.sha256(ident).digest()[:_KEY_ID_BYTES]
        self._keys: dict[tuple[str, str], bytes] = {}

    def _key(self, context: SealContext) -> bytes:
        slot = (context.tenant_id, context.deployment_id or "")
        key = self._keys.get(slot)
        if key is None:
            info = b"callvault/local-seal/v1\x00" + slot[0].encode() + b"\x00" + slot[1].encode()
            key = hkdf_sha256(self._root, info=info)
            self._keys[slot] = key
        return key

    def seal(self, plaintext: bytes, context: SealContext) -> bytes:
        nonce = secrets.token_bytes(GCM_NONCE_BYTES)
        header = _MAGIC + self.key_id + nonce
        aad = header + context.associated_data(_FORMAT)
        return header + aes_gcm_seal(self._key(context), nonce, plaintext, aad)

    def open(self, blob: bytes, context: SealContext) -> bytes:
        if (
            len(blob) < _HEADER_BYTES + GCM_TAG_BYTES
            or blob[:4] != _MAGIC
            or not secrets.compare_digest(blob[4 : 4 + _KEY_ID_BYTES], self.key_id)
        ):
            raise DecryptionError
        header = blob[:_HEADER_BYTES]
        nonce = header[4 + _KEY_ID_BYTES :]
        aad = header + context.associated_data(_FORMAT)
        return aes_gcm_open(self._key(context), nonce, blob[_HEADER_BYTES:], aad)

    def check(self) -> None:
        probe = SealContext(tenant_id="_probe", purpose="readiness", object_id="_probe")
        if self.open(self.seal(b"probe", probe), probe) != b"probe":
            raise KeyUnavailableError("local sealer failed its self-check")
