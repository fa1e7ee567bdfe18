"""The ``vault-transit`` key provider: KEKs are transit keys in OpenBao or Vault.

A KEK is an ``aes256-gcm96`` transit key, not exportable, no plaintext backup,
not derived; its reference is ``<mount>/<name>``. A wrapped data key is the
transit ciphertext ``vault:v<N>:<base64>`` as ASCII bytes (``N``: the key
version, :meth:`~VaultTransitKeyProvider.key_version`). The wrap context is
bound as transit ``associated_data`` (AES-GCM AAD) on ``encrypt``, ``decrypt``
and ``datakey/plaintext``.

OpenBao's ``rewrap`` endpoint takes no associated data (it decrypts without
AAD, so every bound ciphertext fails there). ``rewrap`` here is therefore
decrypt, then encrypt under the latest version of the target key, the data key
passing through this process as on every unwrap. It serves both the same key
after :meth:`~VaultTransitKeyProvider.rotate_kek` (``rewrap(ref, ref, ...)``)
and a move to another key. Rotation: (1) ``rotate_kek``; (2) rewrap the rows
whose ``key_version`` is older (a rerun resumes with the rows left); (3)
``retire_versions`` (``min_decryption_version``): old versions stop decrypting.

Transit ``encrypt`` creates a missing key ("upsert") unless the mount sets
``config/keys disable_upsert=true`` (operators SHOULD), so ``wrap`` reads the
key first: a destroyed or mistyped reference fails instead of wrapping under a
fresh key. The token needs ``create``/``update`` on ``<mount>/keys/*`` (and
``.../config``, ``.../rotate``), ``update`` on ``<mount>/encrypt/*``,
``decrypt/*``, ``datakey/plaintext/*``, and ``read``/``delete`` on ``keys/*``.

Plain httpx rather than hvac: typed, separate connect and read bounds, and the
API is a handful of JSON calls. Redirects are not followed (the token goes to
the configured address only); ``http://`` is accepted for loopback only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import re
import secrets
import ssl
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from pydantic import SecretStr

from callvault.errors import ConfigError, DecryptionError, Error, KeyUnavailableError
from callvault.keys._context import WrapContext
from callvault.keys._provider import KeyProvider

KEY_TYPE = "aes256-gcm96"
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,126}[A-Za-z0-9])?")
_MOUNT = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")
_CIPHERTEXT = re.compile(rb"vault:v([1-9][0-9]{0,8}):[A-Za-z0-9+/]+={0,2}")
#: Server messages (400) that mean "these bytes do not open", as opposed to "key unusable".
_BAD_CIPHERTEXT = ("message authentication failed", "invalid ciphertext")


class _TransitError(Exception):
    """A failed transit call, already classified. Carries the status only, never server text."""

    def __init__(self, kind: type[Error], status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.kind = kind
        self.status = status


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _text(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str):
        raise _TransitError(KeyUnavailableError, 200)
    return value


def _key_bytes(data: dict[str, Any]) -> bytes:
    try:
        return base64.b64decode(_text(data, "plaintext"), validate=True)
    except binascii.Error:
        raise _TransitError(KeyUnavailableError, 200) from None


def _ciphertext(data: dict[str, Any]) -> bytes:
    wrapped = _text(data, "ciphertext").encode("ascii", "replace")
    if not _CIPHERTEXT.fullmatch(wrapped):
        raise _TransitError(KeyUnavailableError, 200)
    return wrapped


def _unfit(info: dict[str, Any]) -> str | None:
    """Why a transit key cannot serve as a KEK, or None."""
    if info.get("type") != KEY_TYPE:
        return f"it is not an {KEY_TYPE} key"
    if info.get("exportable") is not False:
        return "it is exportable"
    if info.get("allow_plaintext_backup") is not False:
        return "it allows plaintext backup"
    if info.get("derived") is not False:
        return "it is a derived key"
    return None


def _is_loopback(host: str) -> bool:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return host == "localhost"


class VaultTransitKeyProvider(KeyProvider):
    """KEKs are transit keys; data keys are wrapped with the wrap context as AES-GCM AAD."""

    name = "vault-transit"

    def __init__(
        self,
        address: str,
        token: SecretStr | str,
        *,
        mount: str = "transit",
        namespace: str | None = None,
        ca_file: Path | None = None,
        tls_verify: bool = True,
        timeout_seconds: float = 10.0,
        connect_timeout_seconds: float = 3.0,
    ) -> None:
        try:
            url = httpx.URL(address)
        except httpx.InvalidURL:
            raise ConfigError("vault-transit: the address must be an http(s) URL") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError("vault-transit: the address must be an http(s) URL")
        if url.scheme == "http" and not _is_loopback(url.host):
            raise ConfigError("vault-transit: plain http is allowed to a loopback address only")
        mount = mount.strip("/")
        if not _MOUNT.fullmatch(mount):
            raise ConfigError("vault-transit: the mount path is not a valid path")
        if not (0 < connect_timeout_seconds <= 300 and 0 < timeout_seconds <= 300):
            raise ConfigError("vault-transit: timeouts must be within (0, 300] seconds")
        secret = token if isinstance(token, SecretStr) else SecretStr(token)
        if not secret.get_secret_value():
            raise ConfigError("vault-transit: a token is required")
        headers = {"X-Vault-Token": secret.get_secret_value(), "X-Vault-Request": "true"}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        verify: ssl.SSLContext | bool = False
        if tls_verify:
            try:
                verify = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            except (OSError, ssl.SSLError):
                raise ConfigError(f"vault-transit: cannot load the CA file {ca_file}") from None
        self._mount = mount
        self._http = httpx.Client(
            base_url=str(url).rstrip("/") + "/v1/",
            headers=headers,
            verify=verify,
            timeout=httpx.Timeout(timeout_seconds, connect=connect_timeout_seconds),
            follow_redirects=False,
            trust_env=False,
        )

    # -- lifecycle ----------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VaultTransitKeyProvider:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    # -- transit calls --------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._http.request(method, path, json=body)
        status = response.status_code
        if status == 204:
            return {}
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if status != 200:
            raise _TransitError(self._kind(status, doc), status)
        data = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(data, dict):
            raise _TransitError(KeyUnavailableError, status)
        return data

    @staticmethod
    def _kind(status: int, doc: object) -> type[Error]:
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if status == 400 and isinstance(errors, list):
            text = " ".join(e for e in errors if isinstance(e, str))
            if any(marker in text for marker in _BAD_CIPHERTEXT):
                return DecryptionError
        return KeyUnavailableError

    def _key_name(self, ref: str) -> str:
        mount, _, name = ref.rpartition("/")
        if mount != self._mount or not _NAME.fullmatch(name):
            raise KeyUnavailableError(f"{self.name}: {ref} is not a key of mount {self._mount}")
        return name

    def _read_key(self, ref: str) -> dict[str, Any]:
        return self._call("GET", f"{self._mount}/keys/{self._key_name(ref)}")

    def _transit(self, op: str, ref: str, context: WrapContext, **fields: Any) -> dict[str, Any]:
        """POST ``<mount>/<op>/<name>`` with the wrap context as ``associated_data``."""
        body = {**fields, "associated_data": _b64(context.associated_data())}
        return self._call("POST", f"{self._mount}/{op}/{self._key_name(ref)}", body)

    # -- provider hooks -------------------------------------------------------------

    def _create_kek(self, label: str) -> str:  # noqa: ARG002 - key names are random, not labels
        name = "callvault-" + secrets.token_hex(16)
        body = {"type": KEY_TYPE, "exportable": False, "allow_plaintext_backup": False}
        self._call("POST", f"{self._mount}/keys/{name}", {**body, "derived": False})
        return f"{self._mount}/{name}"

    def _wrap(self, kek_ref: str, data_key: bytes, context: WrapContext) -> bytes:
        self._read_key(kek_ref)  # encrypt would create a missing key (upsert): refuse instead
        return _ciphertext(self._transit("encrypt", kek_ref, context, plaintext=_b64(data_key)))

    def _unwrap(self, kek_ref: str, wrapped: bytes, context: WrapContext) -> bytes:
        if not _CIPHERTEXT.fullmatch(wrapped):
            raise DecryptionError
        ciphertext = wrapped.decode("ascii")
        return _key_bytes(self._transit("decrypt", kek_ref, context, ciphertext=ciphertext))

    def _generate(self, kek_ref: str, context: WrapContext) -> tuple[bytes, bytes]:
        """Transit ``datakey/plaintext``: never creates a key, honours associated_data."""
        data = self._transit("datakey/plaintext", kek_ref, context, bits=256)
        return _key_bytes(data), _ciphertext(data)

    def _destroy_kek(self, kek_ref: str) -> None:
        name = self._key_name(kek_ref)
        try:
            self._read_key(kek_ref)
        except _TransitError as exc:
            if exc.status == 404:  # already gone: destroying is idempotent
                return
            raise
        self._call("POST", f"{self._mount}/keys/{name}/config", {"deletion_allowed": True})
        self._call("DELETE", f"{self._mount}/keys/{name}")

    def _ready(self) -> None:
        """The server answers and the token is valid (``auth/token/lookup-self``)."""
        self._call("GET", "auth/token/lookup-self")

    def _classify(self, exc: Exception) -> type[Error] | None:
        if isinstance(exc, _TransitError):
            return exc.kind
        if isinstance(exc, httpx.HTTPError):
            return KeyUnavailableError
        return None

    # -- transit-specific operations ------------------------------------------------

    def adopt_kek(self, name: str) -> str:
        """Use an existing transit key (bring your own); returns its reference.

        Refused (:class:`KeyUnavailableError`) unless it exists, is ``aes256-gcm96``,
        is not exportable, allows no plaintext backup and is not derived.
        """
        ref = f"{self._mount}/{name}"

        def adopt() -> str:
            problem = _unfit(self._read_key(ref))
            if problem is not None:
                raise KeyUnavailableError(f"{self.name}: key {ref} cannot be adopted: {problem}")
            return ref

        return self._guard("adopt", ref, adopt)

    def rotate_kek(self, kek_ref: str) -> int:
        """Add a new version to the key (new wraps use it); returns that version."""

        def rotate() -> int:
            path = f"{self._mount}/keys/{self._key_name(kek_ref)}/rotate"
            # OpenBao answers with the key; older servers with 204 (then read it).
            version = (self._call("POST", path) or self._read_key(kek_ref)).get("latest_version")
            if not isinstance(version, int) or version < 1:
                raise _TransitError(KeyUnavailableError, 200)
            return version

        return self._guard("rotate", kek_ref, rotate)

    def retire_versions(self, kek_ref: str, min_version: int) -> None:
        """Versions below ``min_version`` no longer decrypt (``min_decryption_version``).

        Callers MUST first rewrap every data key on an older :meth:`key_version`.
        """
        if min_version < 1:
            raise ValueError("key versions start at 1")
        path = f"{self._mount}/keys/{self._key_name(kek_ref)}/config"
        self._guard(
            "retire versions of",
            kek_ref,
            lambda: self._call("POST", path, {"min_decryption_version": min_version}),
        )

    @staticmethod
    def key_version(wrapped: bytes) -> int:
        """The key version a wrapped data key is under; :class:`DecryptionError` if malformed."""
        match = _CIPHERTEXT.fullmatch(wrapped)
        if match is None:
            raise DecryptionError
        return int(match.group(1))
