"""The vault-transit key provider against a real OpenBao dev server on loopback."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callvault.errors import ConfigError, DecryptionError, KeyUnavailableError
from callvault.keys import DataKeyCache, KeyHierarchy, KeyOwner, WrapContext
from callvault.keys._vault_transit import VaultTransitKeyProvider
from tests.integration.openbao import BaoUnavailableError, OpenBao, find_bao

pytestmark = pytest.mark.vault

CTX = WrapContext("ten_a", "dep_a", "call", "call_a", "call-data-key")
DATA_KEY = bytes(range(32))


def _find_or_skip() -> Path:
    try:
        return find_bao()
    except BaoUnavailableError as exc:
        if os.environ.get("CV_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CV_TEST_REQUIRE_POSTGRES=1 but {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def bao() -> Iterator[OpenBao]:
    server = OpenBao.start(_find_or_skip())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def provider(bao: OpenBao) -> Iterator[VaultTransitKeyProvider]:
    with VaultTransitKeyProvider(bao.address, bao.token, timeout_seconds=5) as p:
        yield p


@pytest.fixture
def ref(provider: VaultTransitKeyProvider) -> str:
    return provider.create_kek("ten_a/dep_a")


def _name(ref: str) -> str:
    return ref.removeprefix("transit/")


# -- wrapping ---------------------------------------------------------------------


def test_new_kek_is_a_non_exportable_aes_gcm_transit_key(bao: OpenBao, ref: str) -> None:
    assert ref.startswith("transit/callvault-")
    info = bao.key_info(_name(ref))
    assert info is not None
    assert info["type"] == "aes256-gcm96"
    assert info["exportable"] is False
    assert info["allow_plaintext_backup"] is False
    assert info["derived"] is False


def test_wrap_and_generate_round_trip(provider: VaultTransitKeyProvider, ref: str) -> None:
    wrapped = provider.wrap(ref, DATA_KEY, CTX)
    assert wrapped.startswith(b"vault:v1:")
    assert DATA_KEY not in wrapped
    assert provider.unwrap(ref, wrapped, CTX) == DATA_KEY
    key, wrapped_new = provider.generate(ref, CTX)
    assert len(key) == 32
    assert key != DATA_KEY
    assert provider.unwrap(ref, wrapped_new, CTX) == key


@pytest.mark.parametrize(
    "other",
    [
        WrapContext("ten_b", "dep_a", "call", "call_a", "call-data-key"),
        WrapContext("ten_a", "dep_b", "call", "call_a", "call-data-key"),
        WrapContext("ten_a", "dep_a", "object", "call_a", "call-data-key"),
        WrapContext("ten_a", "dep_a", "call", "call_b", "call-data-key"),
        WrapContext("ten_a", "dep_a", "call", "call_a", "other-purpose"),
    ],
    ids=["tenant", "deployment", "owner-kind", "owner-id", "purpose"],
)
def test_wrapped_key_moved_to_another_owner_does_not_unwrap(
    provider: VaultTransitKeyProvider, ref: str, other: WrapContext
) -> None:
    _, generated = provider.generate(ref, CTX)
    for wrapped in (provider.wrap(ref, DATA_KEY, CTX), generated):
        with pytest.raises(DecryptionError):
            provider.unwrap(ref, wrapped, other)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda w: w[:-3] + (b"A" if w[-3:-2] != b"A" else b"B") + w[-2:],
        lambda w: w.replace(b"vault:v1:", b"vault:v7:"),
        lambda w: w.replace(b"vault:v1:", b""),
        lambda w: w + b"!",
        lambda w: b"vault:v1:" + w[9:40],
    ],
    ids=["flipped-byte", "other-version", "no-prefix", "trailing-garbage", "truncated"],
)
def test_tampered_wrap_is_a_decryption_error(
    provider: VaultTransitKeyProvider, ref: str, mangle: Callable[[bytes], bytes]
) -> None:
    wrapped = provider.wrap(ref, DATA_KEY, CTX)
    with pytest.raises(DecryptionError):
        provider.unwrap(ref, mangle(wrapped), CTX)


def test_ciphertext_of_one_key_presented_as_another_is_refused(
    provider: VaultTransitKeyProvider,
) -> None:
    a, b = provider.create_kek("a"), provider.create_kek("b")
    with pytest.raises(DecryptionError):
        provider.unwrap(b, provider.wrap(a, DATA_KEY, CTX), CTX)
    provider.rotate_kek(a)  # a ciphertext of a version key b does not have
    with pytest.raises(DecryptionError):
        provider.unwrap(b, provider.wrap(a, DATA_KEY, CTX), CTX)


# -- rotation ---------------------------------------------------------------------


def test_rotation_and_rewrap_move_keys_to_the_new_version_and_retiring_locks_out_the_old(
    provider: VaultTransitKeyProvider, ref: str
) -> None:
    old = provider.wrap(ref, DATA_KEY, CTX)
    assert provider.key_version(old) == 1
    assert provider.rotate_kek(ref) == 2
    assert provider.key_version(provider.wrap(ref, DATA_KEY, CTX)) == 2  # new wraps: latest
    moved = provider.rewrap(ref, ref, old, CTX)
    assert provider.key_version(moved) == 2
    assert provider.key_version(provider.rewrap(ref, ref, moved, CTX)) == 2  # rerun: no-op
    assert provider.unwrap(ref, old, CTX) == DATA_KEY  # not retired yet
    provider.retire_versions(ref, 2)
    with pytest.raises(KeyUnavailableError, match=f"^vault-transit: cannot unwrap with key {ref}$"):
        provider.unwrap(ref, old, CTX)
    assert provider.unwrap(ref, moved, CTX) == DATA_KEY


def test_rewrap_under_the_wrong_context_is_refused(
    provider: VaultTransitKeyProvider, ref: str
) -> None:
    provider.rotate_kek(ref)
    other = WrapContext("ten_b", "dep_a", "call", "call_a", "call-data-key")
    with pytest.raises(DecryptionError):
        provider.rewrap(ref, ref, provider.wrap(ref, DATA_KEY, CTX), other)


def test_rewrap_moves_a_key_to_another_transit_key(provider: VaultTransitKeyProvider) -> None:
    old, new = provider.create_kek("v1"), provider.create_kek("v2")
    moved = provider.rewrap(old, new, provider.wrap(old, DATA_KEY, CTX), CTX)
    provider.destroy_kek(old)
    assert provider.unwrap(new, moved, CTX) == DATA_KEY


def test_retiring_a_version_that_does_not_exist_yet_is_refused(
    provider: VaultTransitKeyProvider, ref: str
) -> None:
    with pytest.raises(KeyUnavailableError):
        provider.retire_versions(ref, 5)
    assert provider.unwrap(ref, provider.wrap(ref, DATA_KEY, CTX), CTX) == DATA_KEY


# -- unusable keys and servers ----------------------------------------------------


def test_destroyed_key_is_unavailable_and_a_wrap_does_not_recreate_it(
    bao: OpenBao, provider: VaultTransitKeyProvider, ref: str
) -> None:
    wrapped = provider.wrap(ref, DATA_KEY, CTX)
    provider.destroy_kek(ref)
    assert bao.key_info(_name(ref)) is None
    with pytest.raises(KeyUnavailableError, match=f"^vault-transit: cannot unwrap with key {ref}$"):
        provider.unwrap(ref, wrapped, CTX)
    with pytest.raises(KeyUnavailableError):
        provider.wrap(ref, DATA_KEY, CTX)  # transit's encrypt would upsert a fresh key
    with pytest.raises(KeyUnavailableError):
        provider.generate(ref, CTX)
    with pytest.raises(KeyUnavailableError):
        provider.check(ref)
    assert bao.key_info(_name(ref)) is None
    provider.destroy_kek(ref)  # idempotent


def test_wrong_token_is_unavailable_and_the_message_names_only_provider_and_key(
    bao: OpenBao, provider: VaultTransitKeyProvider, ref: str
) -> None:
    wrapped = provider.wrap(ref, DATA_KEY, CTX)
    with VaultTransitKeyProvider(bao.address, "not-the-token") as bad:
        with pytest.raises(KeyUnavailableError) as info:
            bad.unwrap(ref, wrapped, CTX)
        assert str(info.value) == f"vault-transit: cannot unwrap with key {ref}"
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__
        with pytest.raises(KeyUnavailableError, match=r"^vault-transit: cannot reach the provider"):
            bad.ready()


def test_reference_outside_the_configured_mount_is_refused(
    provider: VaultTransitKeyProvider, ref: str
) -> None:
    wrapped = provider.wrap(ref, DATA_KEY, CTX)
    for other in ("other/" + _name(ref), "transit/../sys/x", _name(ref)):
        with pytest.raises(KeyUnavailableError, match="is not a key of mount transit"):
            provider.unwrap(other, wrapped, CTX)


def test_unreachable_address_is_unavailable(bao: OpenBao) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    with VaultTransitKeyProvider(f"http://127.0.0.1:{closed_port}", bao.token) as p:
        with pytest.raises(KeyUnavailableError, match=r"^vault-transit: cannot reach the provider"):
            p.ready()
        with pytest.raises(KeyUnavailableError, match=r"^vault-transit: cannot unwrap with key"):
            p.unwrap("transit/k", b"vault:v1:AAAA", CTX)


def test_server_that_never_answers_is_unavailable_within_the_timeout(bao: OpenBao) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        p = VaultTransitKeyProvider(f"http://127.0.0.1:{port}", bao.token, timeout_seconds=0.5)
        with p:
            started = time.monotonic()
            with pytest.raises(KeyUnavailableError):
                p.unwrap("transit/k", b"vault:v1:AAAA", CTX)
            # A bound, not a benchmark: without one the call would hang forever.
            assert time.monotonic() - started < 10


def test_ready_and_check_pass_for_a_live_server_and_key(
    bao: OpenBao, provider: VaultTransitKeyProvider, ref: str
) -> None:
    provider.ready()
    provider.check(ref)
    with pytest.raises(KeyUnavailableError):
        provider.check("transit/callvault-never-made")
    assert bao.key_info("callvault-never-made") is None


# -- bring your own key -----------------------------------------------------------


def test_adopting_an_existing_aead_key_works(
    bao: OpenBao, provider: VaultTransitKeyProvider
) -> None:
    bao.api("POST", "transit/keys/customer-kek", {"type": "aes256-gcm96"})
    ref = provider.adopt_kek("customer-kek")
    assert ref == "transit/customer-kek"
    assert provider.unwrap(ref, provider.wrap(ref, DATA_KEY, CTX), CTX) == DATA_KEY


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"type": "aes256-gcm96", "exportable": True}, "it is exportable"),
        ({"type": "aes256-gcm96", "allow_plaintext_backup": True}, "it allows plaintext backup"),
        ({"type": "aes256-gcm96", "derived": True}, "it is a derived key"),
        ({"type": "aes128-gcm96"}, "it is not an aes256-gcm96 key"),
        ({"type": "chacha20-poly1305"}, "it is not an aes256-gcm96 key"),
        ({"type": "rsa-2048"}, "it is not an aes256-gcm96 key"),
        ({"type": "hmac", "key_size": 32}, "it is not an aes256-gcm96 key"),
    ],
    ids=["exportable", "plaintext-backup", "derived", "aes128", "chacha", "rsa", "hmac"],
)
def test_adopting_an_exportable_or_non_aead_key_is_refused(
    bao: OpenBao, provider: VaultTransitKeyProvider, settings: dict[str, object], reason: str
) -> None:
    name = f"byo-{os.urandom(6).hex()}"
    bao.api("POST", f"transit/keys/{name}", settings)
    with pytest.raises(KeyUnavailableError) as info:
        provider.adopt_kek(name)
    assert str(info.value) == f"vault-transit: key transit/{name} cannot be adopted: {reason}"


def test_adopting_a_missing_key_is_refused(bao: OpenBao, provider: VaultTransitKeyProvider) -> None:
    with pytest.raises(KeyUnavailableError, match=r"^vault-transit: cannot adopt with key"):
        provider.adopt_kek("no-such-key")
    assert bao.key_info("no-such-key") is None


# -- configuration and the hierarchy ----------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"address": "http://vault.example:8200"}, "plain http is allowed to a loopback"),
        ({"address": "ftp://127.0.0.1"}, "must be an http"),
        ({"token": ""}, "a token is required"),
        ({"mount": "../sys"}, "mount path"),
        ({"timeout_seconds": 0}, "timeouts"),
        ({"connect_timeout_seconds": 3600}, "timeouts"),
        ({"ca_file": Path("/nonexistent/ca.pem")}, "cannot load the CA file"),
    ],
)
def test_bad_settings_are_refused_at_construction(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"address": "http://127.0.0.1:8200", "token": "t", **kwargs}
    with pytest.raises(ConfigError, match=message):
        VaultTransitKeyProvider(**args)  # type: ignore[arg-type]


def test_key_hierarchy_works_with_the_provider(provider: VaultTransitKeyProvider) -> None:
    hierarchy = KeyHierarchy(
        {"vault-transit": provider},
        DataKeyCache(max_keys=10, ttl_seconds=60),
        default_provider="vault-transit",
    )
    hierarchy.check()
    p = hierarchy.provider("vault-transit")
    ref = p.create_kek("ten_a/dep_a")
    ctx = KeyOwner("ten_a", "dep_a", "call", "call_a").wrap_context()
    key, wrapped = p.generate(ref, ctx)
    assert hierarchy.cache.get("dk_1", lambda: p.unwrap(ref, wrapped, ctx)) == key
    assert hierarchy.cache.get("dk_1", lambda: b"") == key
    assert (hierarchy.cache.hits, hierarchy.cache.misses) == (1, 1)
    tenant_ctx = KeyOwner("ten_a", None, "config-version", "cv_1").wrap_context()
    with pytest.raises(DecryptionError):
        p.unwrap(ref, wrapped, tenant_ctx)


# -- TLS and namespaces -----------------------------------------------------------


@pytest.fixture(scope="module")
def bao_tls() -> Iterator[OpenBao]:
    server = OpenBao.start(_find_or_skip(), tls=True)
    try:
        yield server
    finally:
        server.stop()


def test_tls_server_is_verified_against_the_operators_ca(bao_tls: OpenBao) -> None:
    with VaultTransitKeyProvider(bao_tls.address, bao_tls.token, ca_file=bao_tls.ca_file) as p:
        p.ready()
        ref = p.create_kek("x")
        assert p.unwrap(ref, p.wrap(ref, DATA_KEY, CTX), CTX) == DATA_KEY
    untrusted = VaultTransitKeyProvider(bao_tls.address, bao_tls.token)  # system CAs only
    with untrusted, pytest.raises(KeyUnavailableError, match=r"^vault-transit: cannot reach the"):
        untrusted.ready()


def test_namespace_keeps_keys_apart(bao: OpenBao) -> None:
    ns = f"team-{os.urandom(4).hex()}"
    bao.api("POST", f"sys/namespaces/{ns}")
    bao.api("POST", "sys/mounts/transit", {"type": "transit"}, namespace=ns)
    with VaultTransitKeyProvider(bao.address, bao.token, namespace=ns) as p:
        ref = p.create_kek("x")
        wrapped = p.wrap(ref, DATA_KEY, CTX)
        assert p.unwrap(ref, wrapped, CTX) == DATA_KEY
    assert bao.key_info(_name(ref), namespace=ns) is not None
    assert bao.key_info(_name(ref)) is None
    root_ns = VaultTransitKeyProvider(bao.address, bao.token)
    with root_ns, pytest.raises(KeyUnavailableError):
        root_ns.unwrap(ref, wrapped, CTX)
