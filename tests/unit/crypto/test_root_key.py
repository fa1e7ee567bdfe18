"""The local root key fails closed: missing, malformed or exposed keys stop the service."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from callvault.config import load_settings
from callvault.errors import ConfigError, ConflictError, KeyUnavailableError
from callvault.keys import create_root_key, load_root_key


def test_created_key_file_is_private_and_loads_back(tmp_path: Path) -> None:
    s = load_settings({}, data_dir=tmp_path)
    key = create_root_key(s)
    path = tmp_path / "keyring" / "root.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_root_key(s) == key


def test_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    s = load_settings({}, data_dir=tmp_path)
    create_root_key(s)
    with pytest.raises(ConflictError):
        create_root_key(s)


def test_missing_key_stops_the_service(tmp_path: Path) -> None:
    with pytest.raises(KeyUnavailableError, match="callvault init"):
        load_root_key(load_settings({}, data_dir=tmp_path))


def test_group_readable_key_file_is_refused(tmp_path: Path) -> None:
    s = load_settings({}, data_dir=tmp_path)
    create_root_key(s)
    (tmp_path / "keyring" / "root.key").chmod(0o640)
    with pytest.raises(KeyUnavailableError, match="group or others"):
        load_root_key(s)


@pytest.mark.parametrize("value", ["not base64!!", base64.b64encode(b"short").decode()])
def test_bad_key_from_environment_names_the_variable(tmp_path: Path, value: str) -> None:
    s = load_settings({"CALLVAULT_ROOT_KEY": value}, data_dir=tmp_path)
    with pytest.raises(ConfigError, match="CALLVAULT_ROOT_KEY") as info:
        load_root_key(s)
    assert value not in str(info.value)


def test_key_from_environment_is_used(tmp_path: Path) -> None:
    raw = os.urandom(32)
    s = load_settings({"CALLVAULT_ROOT_KEY": base64.b64encode(raw).decode()}, data_dir=tmp_path)
    assert load_root_key(s) == raw
    assert "CALLVAULT_ROOT_KEY" not in repr(s) or base64.b64encode(raw).decode() not in repr(s)
