"""Sealing one value under a data key: the envelope recipe (pure, no I/O).

The data key (256 bits, wrapped by the deployment's KEK elsewhere) never
encrypts directly. Each value gets its own key::

    object key = HKDF-SHA256(data key, info = "callvault/object-key/v1" 0x00 ‖ ctx)

where ``ctx`` is the canonical JSON of the :class:`SealContext`. Blob::

    "CVE1" (4) | nonce (12) | AES-256-GCM(object key, plaintext, aad = "CVE1" ‖ nonce ‖ ctx)

so a value moved to another row, tenant, deployment, owner or purpose does not
open, and every failure is the one :class:`DecryptionError`.
"""

from __future__ import annotations

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
from callvault.errors import DecryptionError

FORMAT = "callvault-envelope/1"
STREAM_FORMAT = "callvault-stream/1"
_MAGIC = b"CVE1"
_HEADER = len(_MAGIC) + GCM_NONCE_BYTES


def _object_key(data_key: bytes, ctx: bytes) -> bytes:
    if len(data_key) != AES_KEY_BYTES:
        raise DecryptionError
    return hkdf_sha256(data_key, info=b"callvault/object-key/v1\x00" + ctx)


def stream_key(data_key: bytes, context: SealContext) -> bytes:
    """The key a sealed stream (:mod:`callvault.crypto.stream`) for ``context`` is sealed with.

    ``HKDF-SHA256(data key, info = "callvault/stream-key/v1" 0x00 ‖ ctx)``: the
    data key never keys a stream directly, and the owner (which the stream's
    own header does not carry) is bound through ``ctx``.
    """
    if len(data_key) != AES_KEY_BYTES:
        raise DecryptionError
    ctx = context.associated_data(STREAM_FORMAT)
    return hkdf_sha256(data_key, info=b"callvault/stream-key/v1\x00" + ctx)


def seal_value(data_key: bytes, plaintext: bytes, context: SealContext) -> bytes:
    """Seal ``plaintext`` for ``context`` under a key derived from ``data_key``."""
    ctx = context.associated_data(FORMAT)
    nonce = secrets.token_bytes(GCM_NONCE_BYTES)
    header = _MAGIC + nonce
    return header + aes_gcm_seal(_object_key(data_key, ctx), nonce, plaintext, header + ctx)


def open_value(data_key: bytes, blob: bytes, context: SealContext) -> bytes:
    """Open a value sealed by :func:`seal_value` for the same context; else DecryptionError."""
    if len(blob) < _HEADER + GCM_TAG_BYTES or blob[: len(_MAGIC)] != _MAGIC:
        raise DecryptionError
    ctx = context.associated_data(FORMAT)
    header = blob[:_HEADER]
    nonce = header[len(_MAGIC) :]
    return aes_gcm_open(_object_key(data_key, ctx), nonce, blob[_HEADER:], header + ctx)
