"""The local root key: 32 random bytes from ``CALLVAULT_ROOT_KEY`` or a 0600 file.

Fail closed: a missing, short, or group/world-readable key file stops the
service; a new key is made only by ``callvault init`` (never silently at
start-up, which would leave existing sealed data unreadable).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from pathlib import Path

from callvault.config import Settings
from callvault.errors import ConfigError, ConflictError, KeyUnavailableError

ROOT_KEY_FILE = "root.key"
_KEY_BYTES = 32


def _key_path(settings: Settings) -> Path:
    return settings.data_dir / "keyring" / ROOT_KEY_FILE


def _decode(text: str, name: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} is not base64", field=name) from None
    if len(key) != _KEY_BYTES:
        raise ConfigError(f"{name} must decode to {_KEY_BYTES} bytes", field=name)
    return key


def load_root_key(settings: Settings) -> bytes:
    """Return the root key, from the environment or the key file."""
    if settings.root_key is not None:
        return _decode(settings.root_key.get_secret_value(), "CALLVAULT_ROOT_KEY")
    path = _key_path(settings)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyUnavailableError(
            "local: no root key for the keyring: run `callvault init`, "
            "or set CALLVAULT_ROOT_KEY or CALLVAULT_ROOT_PASSPHRASE"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyUnavailableError(f"root key file {path} must not be readable by group or others")
    return _decode(path.read_text(encoding="ascii"), str(path))


def create_root_key(settings: Settings) -> bytes:
    """Create the key file (0600) and return the key; refuse if one exists."""
    if settings.root_key is not None:
        return load_root_key(settings)
    path = _key_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(_KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConflictError(f"root key file {path} already exists") from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(base64.b64encode(key).decode("ascii") + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return key
