"""The pkcs11 key provider against a real SoftHSM2 token the suite initialises itself."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

if os.environ.get("CV_TEST_REQUIRE_POSTGRES") != "1":  # the CI flag: there it must be installed
    pytest.importorskip("pkcs11", reason="pip install 'callvault[pkcs11]'")

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.exceptions import (
    AttributeReadOnly,
    AttributeSensitive,
    KeyUnextractable,
    NoSuchKey,
)
from pydantic import SecretStr
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from callvault.errors import DecryptionError, InvalidInputError, KeyUnavailableError
from callvault.keys import DataKeyCache, KeyHierarchy, KeyOwner, WrapContext
from callvault.keys._pkcs11 import Pkcs11KeyProvider
from callvault.store.models import Base, DataKey, Deployment, Kek, Tenant, utcnow
from tests.integration.softhsm import SoftHsm, SoftHsmUnavailableError

pytestmark = pytest.mark.hsm

TOKEN = "cv-main"
#: Never logged in to by a correct PIN before its wrong-PIN test.
FRESH_TOKEN = "cv-fresh"
PIN = "user-pin-4711"
CTX = WrapContext("ten_a", "dep_a", "call", "call_a", "call-data-key")
DATA_KEY = bytes(range(32))
_CONF_BEFORE = os.environ.get("SOFTHSM2_CONF")


@pytest.fixture(scope="session")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    try:
        return SoftHsm.start(
            tmp_path_factory.mktemp("softhsm"),
            (TOKEN, FRESH_TOKEN),
            user_pin=PIN,
            so_pin="so-pin-0815",
        )
    except SoftHsmUnavailableError as exc:
        if os.environ.get("CV_TEST_REQUIRE_POSTGRES") == "1":  # the CI flag: real peers required
            pytest.fail(f"CV_TEST_REQUIRE_POSTGRES=1 but {exc}")
        pytest.skip(str(exc))


def test_suite_token_lives_in_its_own_directory_and_the_env_is_restored(hsm: SoftHsm) -> None:
    assert os.environ.get("SOFTHSM2_CONF") == _CONF_BEFORE
    assert hsm.conf.read_text().startswith(f"directories.tokendir = {hsm.conf.parent}")
    assert len(list((hsm.conf.parent / "tokens").iterdir())) == 2


def _provider(hsm: SoftHsm, token: str = TOKEN, pin: str = PIN) -> Pkcs11KeyProvider:
    return Pkcs11KeyProvider(module_path=hsm.module, token_label=token, user_pin=SecretStr(pin))


@pytest.fixture
def provider(hsm: SoftHsm) -> Iterator[Pkcs11KeyProvider]:
    p = _provider(hsm)
    p.ready()
    yield p
    p.close()


def _token_key(hsm: SoftHsm, ref: str, attrs: list[Attribute]) -> dict[Attribute, object]:
    with hsm.session(TOKEN) as s:
        return s.get_key(object_class=ObjectClass.SECRET_KEY, label=ref).get_attributes(attrs)


# -- wrapping ---------------------------------------------------------------------------


def test_wrap_round_trip_in_the_token_with_a_fresh_iv_each_time(
    provider: Pkcs11KeyProvider,
) -> None:
    ref = provider.create_kek("ten_a/dep_a")
    assert ref.startswith("callvault-kek-")
    assert "ten_a" not in ref
    first, second = provider.wrap(ref, DATA_KEY, CTX), provider.wrap(ref, DATA_KEY, CTX)
    assert len(first) == 1 + 12 + 32 + 16
    assert first[:1] == b"\x01"
    assert first[1:13] != second[1:13]
    assert DATA_KEY not in first
    assert provider.unwrap(ref, first, CTX) == DATA_KEY
    assert provider.unwrap(ref, second, CTX) == DATA_KEY


def test_kek_is_sensitive_never_extractable_and_only_encrypts(
    hsm: SoftHsm, provider: Pkcs11KeyProvider
) -> None:
    ref = provider.create_kek("x")
    expected = {
        Attribute.KEY_TYPE: KeyType.AES,
        Attribute.VALUE_LEN: 32,
        Attribute.ID: bytes.fromhex(ref.removeprefix("callvault-kek-")),
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.ALWAYS_SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.NEVER_EXTRACTABLE: True,
        Attribute.ENCRYPT: True,
        Attribute.DECRYPT: True,
        Attribute.WRAP: False,
        Attribute.UNWRAP: False,
        Attribute.SIGN: False,
        Attribute.DERIVE: False,
    }
    assert _token_key(hsm, ref, list(expected)) == expected


def test_kek_value_cannot_be_read_exported_or_unlocked(
    hsm: SoftHsm, provider: Pkcs11KeyProvider
) -> None:
    ref = provider.create_kek("x")
    with hsm.session(TOKEN) as s:
        kek = s.get_key(object_class=ObjectClass.SECRET_KEY, label=ref)
        with pytest.raises(AttributeSensitive):
            kek[Attribute.VALUE]
        wrapper = s.generate_key(
            KeyType.AES, 256, label="cv-test-wrapper", capabilities=MechanismFlag.WRAP
        )
        with pytest.raises(KeyUnextractable):
            wrapper.wrap_key(kek, mechanism=Mechanism.AES_KEY_WRAP)
        with pytest.raises(AttributeReadOnly):
            kek[Attribute.EXTRACTABLE] = True
        with pytest.raises(AttributeReadOnly):
            kek[Attribute.SENSITIVE] = False
        with pytest.raises(AttributeReadOnly):
            kek.copy({Attribute.EXTRACTABLE: True})


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
    provider: Pkcs11KeyProvider, other: WrapContext
) -> None:
    ref = provider.create_kek("x")
    with pytest.raises(DecryptionError):
        provider.unwrap(ref, provider.wrap(ref, DATA_KEY, CTX), other)


_TAMPERINGS: dict[str, Callable[[bytes], bytes]] = {
    "version byte": lambda w: b"\x02" + w[1:],
    "iv": lambda w: w[:1] + bytes([w[1] ^ 1]) + w[2:],
    "ciphertext": lambda w: w[:20] + bytes([w[20] ^ 0x80]) + w[21:],
    "tag": lambda w: w[:-1] + bytes([w[-1] ^ 1]),
    "truncated": lambda w: w[:-1],
    "extended": lambda w: w + b"\x00",
}


@pytest.mark.parametrize("tamper", _TAMPERINGS.values(), ids=_TAMPERINGS.keys())
def test_tampered_wrap_is_a_decryption_error(
    provider: Pkcs11KeyProvider, tamper: Callable[[bytes], bytes]
) -> None:
    ref = provider.create_kek("x")
    wrapped = provider.wrap(ref, DATA_KEY, CTX)
    with pytest.raises(DecryptionError):
        provider.unwrap(ref, tamper(wrapped), CTX)
    assert provider.unwrap(ref, wrapped, CTX) == DATA_KEY  # the token still works


def test_wrap_under_one_kek_presented_as_another_is_refused(provider: Pkcs11KeyProvider) -> None:
    a, b = provider.create_kek("a"), provider.create_kek("b")
    with pytest.raises(DecryptionError):
        provider.unwrap(b, provider.wrap(a, DATA_KEY, CTX), CTX)


def test_rewrap_moves_a_key_to_a_new_kek(provider: Pkcs11KeyProvider) -> None:
    old, new = provider.create_kek("v1"), provider.create_kek("v2")
    moved = provider.rewrap(old, new, provider.wrap(old, DATA_KEY, CTX), CTX)
    provider.destroy_kek(old)
    assert provider.unwrap(new, moved, CTX) == DATA_KEY


def test_destroyed_kek_makes_its_keys_unrecoverable(
    hsm: SoftHsm, provider: Pkcs11KeyProvider
) -> None:
    ref = provider.create_kek("x")
    wrapped = provider.wrap(ref, DATA_KEY, CTX)
    provider.destroy_kek(ref)
    with pytest.raises(KeyUnavailableError) as info:
        provider.unwrap(ref, wrapped, CTX)
    assert str(info.value) == f"pkcs11: cannot unwrap with key {ref}"
    with pytest.raises(NoSuchKey):
        _token_key(hsm, ref, [Attribute.LABEL])
    with pytest.raises(KeyUnavailableError):
        provider.check(ref)
    provider.destroy_kek(ref)  # destroying again is not an error


def test_check_passes_for_a_live_kek_and_fails_for_an_unknown_one(
    provider: Pkcs11KeyProvider,
) -> None:
    provider.check(provider.create_kek("x"))
    with pytest.raises(KeyUnavailableError):
        provider.check("callvault-kek-" + "0" * 32)


# -- bad configuration -------------------------------------------------------------------


def _assert_refused_without_showing(bad: Pkcs11KeyProvider, wrong: str) -> None:
    for _ in range(2):
        with pytest.raises(KeyUnavailableError) as info:
            bad.ready()
        assert str(info.value) == "pkcs11: cannot reach the provider with key -"
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__
    assert wrong not in repr(bad.__dict__)


def test_wrong_pin_is_unavailable_never_shown_and_tried_once(
    hsm: SoftHsm, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    loads: list[str] = []
    real_lib = pkcs11.lib
    monkeypatch.setattr(pkcs11, "lib", lambda so: loads.append(so) or real_lib(so))
    bad = _provider(hsm, FRESH_TOKEN, "wrong-pin-9999")
    _assert_refused_without_showing(bad, "wrong-pin-9999")
    # The second refusal came from memory: a retrying service cannot lock the PIN.
    assert len(loads) == 1
    bad.close()
    assert "wrong-pin" not in caplog.text
    good = _provider(hsm, FRESH_TOKEN)  # a refused PIN does not block the right one
    good.ready()
    good.check(good.create_kek("x"))
    good.close()
    assert PIN not in caplog.text


def test_wrong_pin_is_refused_while_the_process_is_logged_in_with_the_right_one(
    hsm: SoftHsm, provider: Pkcs11KeyProvider, caplog: pytest.LogCaptureFixture
) -> None:
    # PKCS#11 answers a second C_Login with "already logged in", whatever the PIN.
    caplog.set_level(logging.DEBUG)
    bad = _provider(hsm, TOKEN, "wrong-pin-1234")
    _assert_refused_without_showing(bad, "wrong-pin-1234")
    bad.close()
    assert "wrong-pin" not in caplog.text
    provider.check(provider.create_kek("x"))  # the right one is still logged in


def test_missing_token_is_unavailable(hsm: SoftHsm) -> None:
    with pytest.raises(KeyUnavailableError, match=r"^pkcs11: cannot reach the provider"):
        _provider(hsm, "no-such-token").ready()


def test_missing_module_is_unavailable(tmp_path: Path) -> None:
    p = Pkcs11KeyProvider(
        module_path=tmp_path / "nope.so", token_label=TOKEN, user_pin=SecretStr(PIN)
    )
    with pytest.raises(KeyUnavailableError, match=r"^pkcs11: cannot wrap with key k$"):
        p.wrap("k", DATA_KEY, CTX)


# -- adopting a customer's key -------------------------------------------------------------


def _make_key(hsm: SoftHsm, label: str, bits: int = 256, **template: bool) -> None:
    attrs = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True}
    attrs[Attribute.EXTRACTABLE] = False
    attrs.update({getattr(Attribute, k.upper()): v for k, v in template.items()})
    with hsm.session(TOKEN) as s:
        s.generate_key(KeyType.AES, bits, label=label, store=True, template=attrs)


def test_adopted_key_wraps_and_unwraps(hsm: SoftHsm, provider: Pkcs11KeyProvider) -> None:
    _make_key(hsm, "customer-kek-ok")
    ref = provider.adopt_kek("customer-kek-ok")
    assert ref == "customer-kek-ok"
    assert provider.unwrap(ref, provider.wrap(ref, DATA_KEY, CTX), CTX) == DATA_KEY


@pytest.mark.parametrize(
    ("label", "bits", "template", "why"),
    [
        ("customer-kek-extractable", 256, {"extractable": True}, "extractable"),
        ("customer-kek-readable", 256, {"sensitive": False}, "not sensitive"),
        ("customer-kek-128", 128, {}, "not an AES-256 key"),
        ("customer-kek-no-decrypt", 256, {"decrypt": False}, "encrypt and decrypt"),
        ("customer-kek-public", 256, {"private": False}, "not a private token object"),
    ],
)
def test_adopting_an_unfit_key_is_refused(
    hsm: SoftHsm,
    provider: Pkcs11KeyProvider,
    label: str,
    bits: int,
    template: dict[str, bool],
    why: str,
) -> None:
    _make_key(hsm, label, bits, **template)
    with pytest.raises(InvalidInputError, match=why):
        provider.adopt_kek(label)


def test_adopting_a_missing_or_ambiguous_label_is_refused(
    hsm: SoftHsm, provider: Pkcs11KeyProvider
) -> None:
    with pytest.raises(InvalidInputError, match="not exactly one key"):
        provider.adopt_kek("customer-kek-absent")
    _make_key(hsm, "customer-kek-twice")
    _make_key(hsm, "customer-kek-twice")
    with pytest.raises(InvalidInputError, match="not exactly one key"):
        provider.adopt_kek("customer-kek-twice")


# -- sessions and threads --------------------------------------------------------------------


def test_concurrent_wraps_from_threads(hsm: SoftHsm, provider: Pkcs11KeyProvider) -> None:
    ref = provider.create_kek("x")
    other = _provider(hsm)  # a second provider on the same token shares its login
    errors: list[BaseException] = []

    def work(p: Pkcs11KeyProvider, n: int) -> None:
        try:
            for i in range(25):
                key = bytes([n, i]) * 16
                ctx = WrapContext("ten_a", "dep_a", "call", f"call_{n}_{i}", "call-data-key")
                assert p.unwrap(ref, p.wrap(ref, key, ctx), ctx) == key
        except BaseException as exc:  # noqa: BLE001 - collected, asserted in the test thread
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(provider if n % 2 else other, n)) for n in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert errors == []
    assert provider.unwrap(ref, provider.wrap(ref, DATA_KEY, CTX), CTX) == DATA_KEY


# python-pkcs11 0.10.1 leaves the object search that met the dead session
# "active" and its finaliser raises again when collected (stderr, harmless).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_lost_sessions_are_reopened(hsm: SoftHsm, provider: Pkcs11KeyProvider) -> None:
    ref = provider.create_kek("x")
    wrapped = provider.wrap(ref, DATA_KEY, CTX)
    hsm.restart()  # every session handle and the login are gone
    assert provider.unwrap(ref, wrapped, CTX) == DATA_KEY


def test_closing_one_provider_leaves_the_others_logged_in(hsm: SoftHsm) -> None:
    a, b = _provider(hsm), _provider(hsm)
    a.ready()
    b.ready()
    ref = a.create_kek("x")
    a.close()
    assert b.unwrap(ref, b.wrap(ref, DATA_KEY, CTX), CTX) == DATA_KEY
    b.close()


# -- the key hierarchy on top ------------------------------------------------------------------


def test_key_hierarchy_keeps_data_keys_under_an_hsm_kek(provider: Pkcs11KeyProvider) -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    cache = DataKeyCache(max_keys=100, ttl_seconds=60)
    keys = KeyHierarchy({"pkcs11": provider}, cache, default_provider="pkcs11")
    keys.check()
    with Session(engine) as s:
        s.add(Tenant(id="ten_a", name="A", created_at=utcnow()))
        s.add(
            Deployment(
                id="dep_a",
                tenant_id="ten_a",
                name="main",
                region="eu",
                recording_retention_days=30,
                transcript_retention_days=30,
                key_provider="pkcs11",
                created_at=utcnow(),
            )
        )
        s.flush()
        owner = KeyOwner("ten_a", "dep_a", "call", "call_a")
        key = keys.data_key(s, owner, create=True)
        kek = s.execute(select(Kek)).scalar_one()
        row = s.execute(select(DataKey)).scalar_one()
        assert (kek.provider, kek.deployment_id) == ("pkcs11", "dep_a")
        assert provider.unwrap(kek.provider_ref, row.wrapped, owner.wrap_context()) == key
        cache.clear()
        assert keys.data_key(s, owner, create=False) == key
        assert cache.misses == 2
        other = KeyOwner("ten_a", "dep_a", "call", "call_b")
        assert keys.data_key(s, other, create=True) != key
        assert s.execute(select(Kek)).scalars().all() == [kek]
