"""The ``local`` key provider: KEKs in a keyring file sealed by a master key.

The master key comes from the 32-byte root key (``CALLVAULT_ROOT_KEY`` or the
0600 key file made by ``callvault init``) or, when ``CALLVAULT_ROOT_PASSPHRASE``
is set, from the passphrase with Argon2id (parameters stored in the keyring).

Keyring file (``<data_dir>/keyring/keyring.json``), RFC 8785 canonical JSON::

    {"format": "callvault-keyring/1",
     "kdf": {"alg": "root-key"} | {"alg": "argon2id", "salt", "t", "m", "p"},
     "check": <base64 AES-GCM of a fixed probe under the master key>,
     "keks": {"<ref>": <base64 nonce ‖ AES-GCM(master, kek, aad=ref)>}}

A wrapped data key is ``0x01 ‖ nonce(12) ‖ AES-256-GCM(kek, data key,
aad = canonical wrap context)``.

Writes are atomic (temporary file, fsync, rename, fsync of the directory)
under an exclusive lock, so two processes creating KEKs cannot lose one.
Destroying a KEK removes it from the file: objects under it cannot be opened
again (a copy of an old keyring file would still hold it; operators who
destroy keys also rotate away backups, as with any key file).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import rfc8785
from argon2.low_level import Type, hash_secret_raw

from callvault.crypto.hazmat import (
    AES_KEY_BYTES,
    GCM_NONCE_BYTES,
    aes_gcm_open,
    aes_gcm_seal,
    hkdf_sha256,
)
from callvault.errors import DecryptionError, KeyUnavailableError
from callvault.keys._context import WrapContext
from callvault.keys._provider import KeyProvider

FORMAT = "callvault-keyring/1"
_WRAP_VERSION = b"\x01"
_CHECK_PROBE = b"callvault keyring check"
# Argon2id parameters for new keyrings (RFC 9106 "second recommended option").
ARGON2_T, ARGON2_M_KIB, ARGON2_P = 3, 65_536, 4


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64 text")  # noqa: TRY004 - callers treat it as a malformed file
    return base64.b64decode(text, validate=True)


def _well_formed(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and doc.get("format") == FORMAT
        and isinstance(doc.get("keks"), dict)
        and isinstance(doc.get("kdf"), dict)
    )


class LocalKeyProvider(KeyProvider):
    """KEKs live in a local keyring file sealed by the root key or a passphrase."""

    name = "local"

    def __init__(
        self, path: Path, *, root_key: bytes | None = None, passphrase: str | None = None
    ) -> None:
        if (root_key is None) == (passphrase is None):
            raise ValueError("the local keyring needs exactly one of root key or passphrase")
        if root_key is not None and len(root_key) != AES_KEY_BYTES:
            raise KeyUnavailableError("local: the root key must be 32 bytes")
        self._path = path
        self._root_key = root_key
        self._passphrase = passphrase
        self._master: bytes | None = None
        self._keks: dict[str, bytes] = {}
        self._mutex = threading.Lock()

    # -- keyring file -------------------------------------------------------------

    def _derive(self, kdf: dict[str, Any]) -> bytes:
        if kdf.get("alg") == "root-key" and self._root_key is not None:
            return hkdf_sha256(self._root_key, info=b"callvault/keyring/v1")
        if kdf.get("alg") == "argon2id" and self._passphrase is not None:
            t, m, p = int(kdf["t"]), int(kdf["m"]), int(kdf["p"])
            if not (1 <= t <= 64 and 8 * p <= m <= 4_194_304 and 1 <= p <= 64):
                raise KeyUnavailableError("local: keyring has out-of-range Argon2id parameters")
            return hash_secret_raw(
                self._passphrase.encode("utf-8"),
                _unb64(kdf["salt"]),
                time_cost=t,
                memory_cost=m,
                parallelism=p,
                hash_len=AES_KEY_BYTES,
                type=Type.ID,
            )
        raise KeyUnavailableError(
            "local: the keyring is sealed by a "
            + ("passphrase" if kdf.get("alg") == "argon2id" else "root key")
            + " and none was given (CALLVAULT_ROOT_PASSPHRASE / CALLVAULT_ROOT_KEY)"
        )

    def _new_keyring(self) -> dict[str, Any]:
        if self._passphrase is not None:
            kdf: dict[str, Any] = {
                "alg": "argon2id",
                "salt": _b64(secrets.token_bytes(16)),
                "t": ARGON2_T,
                "m": ARGON2_M_KIB,
                "p": ARGON2_P,
            }
        else:
            kdf = {"alg": "root-key"}
        master = self._derive(kdf)
        nonce = secrets.token_bytes(GCM_NONCE_BYTES)
        check = nonce + aes_gcm_seal(master, nonce, _CHECK_PROBE, FORMAT.encode())
        return {"format": FORMAT, "kdf": kdf, "check": _b64(check), "keks": {}}

    def _read(self) -> dict[str, Any] | None:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if not _well_formed(doc):
            raise KeyUnavailableError(f"local: keyring file {self._path} is corrupt")
        result: dict[str, Any] = doc
        return result

    def _unlock(self, doc: dict[str, Any]) -> bytes:
        """(1) Derive the master key. (2) Prove it with the check value. (3) Open every KEK."""
        # (1)
        master = self._derive(doc["kdf"])
        # (2)
        try:
            check = _unb64(doc["check"])
            aes_gcm_open(master, check[:GCM_NONCE_BYTES], check[GCM_NONCE_BYTES:], FORMAT.encode())
        except (DecryptionError, KeyError, ValueError, binascii.Error):
            raise KeyUnavailableError(
                "local: wrong root key or passphrase for the keyring (or it is corrupt)"
            ) from None
        # (3)
        keks: dict[str, bytes] = {}
        for ref, sealed_b64 in doc["keks"].items():
            try:
                sealed = _unb64(sealed_b64)
                keks[ref] = aes_gcm_open(
                    master, sealed[:GCM_NONCE_BYTES], sealed[GCM_NONCE_BYTES:], ref.encode()
                )
            except (DecryptionError, ValueError, binascii.Error):
                raise KeyUnavailableError(f"local: keyring entry {ref} is corrupt") from None
        self._master, self._keks = master, keks
        return master

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """Hold the keyring's lock; yield its document; write it back atomically."""
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self._path.with_suffix(".lock")
        with self._mutex, open(lock_path, "a") as lock:  # noqa: PTH123 - fcntl needs the fd
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            doc = self._read() or self._new_keyring()
            self._unlock(doc)
            yield doc
            tmp = self._path.with_suffix(f".tmp{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(rfc8785.dumps(doc))
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(self._path)
            dir_fd = os.open(self._path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            self._unlock(doc)

    def _kek(self, ref: str) -> bytes:
        kek = self._keks.get(ref)
        if kek is None:  # another process may have created it: read the file again
            doc = self._read()
            if doc is not None:
                self._unlock(doc)
            kek = self._keks.get(ref)
        if kek is None:
            raise KeyUnavailableError(f"local: key {ref} does not exist (destroyed?)")
        return kek

    # -- provider hooks -------------------------------------------------------------

    def _create_kek(self, label: str) -> str:  # noqa: ARG002 - local refs carry no label
        ref = "lkek_" + secrets.token_hex(16)
        kek = secrets.token_bytes(AES_KEY_BYTES)
        with self._locked() as doc:
            assert self._master is not None  # noqa: S101 - set by _unlock in _locked
            nonce = secrets.token_bytes(GCM_NONCE_BYTES)
            doc["keks"][ref] = _b64(nonce + aes_gcm_seal(self._master, nonce, kek, ref.encode()))
        return ref

    def _wrap(self, kek_ref: str, data_key: bytes, context: WrapContext) -> bytes:
        nonce = secrets.token_bytes(GCM_NONCE_BYTES)
        sealed = aes_gcm_seal(self._kek(kek_ref), nonce, data_key, context.associated_data())
        return _WRAP_VERSION + nonce + sealed

    def _unwrap(self, kek_ref: str, wrapped: bytes, context: WrapContext) -> bytes:
        if wrapped[:1] != _WRAP_VERSION or len(wrapped) < 1 + GCM_NONCE_BYTES + 16:
            raise DecryptionError
        nonce = wrapped[1 : 1 + GCM_NONCE_BYTES]
        body = wrapped[1 + GCM_NONCE_BYTES :]
        return aes_gcm_open(self._kek(kek_ref), nonce, body, context.associated_data())

    def _destroy_kek(self, kek_ref: str) -> None:
        with self._locked() as doc:
            doc["keks"].pop(kek_ref, None)
        self._keks.pop(kek_ref, None)

    def _ready(self) -> None:
        self.unlock()

    def unlock(self) -> None:
        """Open the keyring now (creating it if absent), so a wrong key fails at startup."""
        doc = self._read()
        if doc is not None:
            self._unlock(doc)
            return
        with self._locked():
            pass
