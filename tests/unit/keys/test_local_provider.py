"""The local key provider: a keyring of KEKs sealed by the root key or a passphrase."""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path

import pytest

from callvault.errors import DecryptionError, KeyUnavailableError
from callvault.keys import _local
from callvault.keys._context import WrapContext
from callvault.keys._local import LocalKeyProvider

CTX = WrapContext("ten_a", "dep_a", "call", "call_a", "call-data-key")
DATA_KEY = bytes(range(32))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "keyring" / "keyring.json"


@pytest.fixture
def root() -> bytes:
    return secrets.token_bytes(32)


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    # Real Argon2id, small parameters: the tests exercise the path, not the cost.
    monkeypatch.setattr(_local, "ARGON2_T", 1)
    monkeypatch.setattr(_local, "ARGON2_M_KIB", 64)
    monkeypatch.setattr(_local, "ARGON2_P", 1)


def test_wrap_round_trip_and_keyring_is_private(path: Path, root: bytes) -> None:
    p = LocalKeyProvider(path, root_key=root)
    ref = p.create_kek("dep_a")
    wrapped = p.wrap(ref, DATA_KEY, CTX)
    assert DATA_KEY not in wrapped
    assert p.unwrap(ref, wrapped, CTX) == DATA_KEY
    assert path.stat().st_mode & 0o777 == 0o600
    assert DATA_KEY not in path.read_bytes()


@pytest.mark.parametrize(
    "other",
    [
        WrapContext("ten_b", "dep_a", "call", "call_a", "call-data-key"),
        WrapContext("ten_a", "dep_b", "call", "call_a", "call-data-key"),
        WrapContext("ten_a", "dep_a", "call", "call_b", "call-data-key"),
        WrapContext("ten_a", "dep_a", "object", "call_a", "call-data-key"),
        WrapContext("ten_a", "dep_a", "call", "call_a", "other-purpose"),
    ],
)
def test_wrapped_key_moved_to_another_owner_does_not_unwrap(
    path: Path, root: bytes, other: WrapContext
) -> None:
    p = LocalKeyProvider(path, root_key=root)
    ref = p.create_kek("x")
    with pytest.raises(DecryptionError):
        p.unwrap(ref, p.wrap(ref, DATA_KEY, CTX), other)


def test_tampered_wrap_is_a_decryption_error(path: Path, root: bytes) -> None:
    p = LocalKeyProvider(path, root_key=root)
    ref = p.create_kek("x")
    wrapped = bytearray(p.wrap(ref, DATA_KEY, CTX))
    wrapped[-1] ^= 1
    with pytest.raises(DecryptionError):
        p.unwrap(ref, bytes(wrapped), CTX)


def test_destroyed_kek_makes_its_keys_unrecoverable(path: Path, root: bytes) -> None:
    p = LocalKeyProvider(path, root_key=root)
    ref = p.create_kek("x")
    wrapped = p.wrap(ref, DATA_KEY, CTX)
    p.destroy_kek(ref)
    fresh = LocalKeyProvider(path, root_key=root)
    with pytest.raises(KeyUnavailableError, match="local: key lkek_"):
        fresh.unwrap(ref, wrapped, CTX)
    assert ref not in json.loads(path.read_bytes())["keks"]


def test_rewrap_moves_a_key_to_a_new_kek(path: Path, root: bytes) -> None:
    p = LocalKeyProvider(path, root_key=root)
    old, new = p.create_kek("v1"), p.create_kek("v2")
    moved = p.rewrap(old, new, p.wrap(old, DATA_KEY, CTX), CTX)
    p.destroy_kek(old)
    assert p.unwrap(new, moved, CTX) == DATA_KEY


def test_wrong_root_key_fails_with_one_line_naming_the_provider(path: Path, root: bytes) -> None:
    LocalKeyProvider(path, root_key=root).create_kek("x")
    with pytest.raises(KeyUnavailableError) as info:
        LocalKeyProvider(path, root_key=secrets.token_bytes(32)).unlock()
    assert str(info.value).startswith("local: wrong root key or passphrase")


def test_passphrase_keyring_opens_only_with_the_passphrase(path: Path) -> None:
    p = LocalKeyProvider(path, passphrase="correct horse battery staple")
    ref = p.create_kek("x")
    wrapped = p.wrap(ref, DATA_KEY, CTX)
    assert json.loads(path.read_bytes())["kdf"]["alg"] == "argon2id"
    again = LocalKeyProvider(path, passphrase="correct horse battery staple")
    assert again.unwrap(ref, wrapped, CTX) == DATA_KEY
    with pytest.raises(KeyUnavailableError, match="wrong root key or passphrase"):
        LocalKeyProvider(path, passphrase="wrong").unlock()
    with pytest.raises(KeyUnavailableError, match="sealed by a passphrase"):
        LocalKeyProvider(path, root_key=secrets.token_bytes(32)).unlock()


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'{"format": "other"}'])
def test_corrupt_keyring_is_a_clear_error(path: Path, root: bytes, content: bytes) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(KeyUnavailableError, match="corrupt"):
        LocalKeyProvider(path, root_key=root).unlock()


def test_concurrent_writers_lose_no_kek(path: Path, root: bytes) -> None:
    refs: list[str] = []

    def make() -> None:
        p = LocalKeyProvider(path, root_key=root)  # one instance per "process"
        refs.extend(p.create_kek("x") for _ in range(5))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(json.loads(path.read_bytes())["keks"]) == set(refs)
    assert len(refs) == 20


def test_kek_created_by_another_instance_is_found(path: Path, root: bytes) -> None:
    a, b = LocalKeyProvider(path, root_key=root), LocalKeyProvider(path, root_key=root)
    a.unlock()
    b.unlock()
    ref = a.create_kek("x")
    assert b.unwrap(ref, a.wrap(ref, DATA_KEY, CTX), CTX) == DATA_KEY


def test_check_passes_for_a_live_kek_and_fails_for_an_unknown_one(path: Path, root: bytes) -> None:
    p = LocalKeyProvider(path, root_key=root)
    p.check(p.create_kek("x"))
    with pytest.raises(KeyUnavailableError):
        p.check("lkek_" + "0" * 32)
