"""The local sealer: context binding, tamper detection, one error for every failure."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.crypto import LocalSealer, SealContext
from callvault.errors import DecryptionError, KeyUnavailableError

CTX = SealContext(tenant_id="ten_a", deployment_id="dep_a", purpose="prompt", object_id="agt_a")


@pytest.fixture
def sealer() -> LocalSealer:
    return LocalSealer(secrets.token_bytes(32))


@given(st.binary(max_size=4096))
def test_round_trip(plaintext: bytes) -> None:
    s = LocalSealer(b"k" * 32)
    assert s.open(s.seal(plaintext, CTX), CTX) == plaintext


def test_ciphertext_does_not_contain_the_plaintext(sealer: LocalSealer) -> None:
    secret = b"4111111111111111 my NHS number is 943 476 5919"
    assert secret not in sealer.seal(secret, CTX)


def test_same_plaintext_seals_differently_each_time(sealer: LocalSealer) -> None:
    assert sealer.seal(b"x", CTX) != sealer.seal(b"x", CTX)


@pytest.mark.parametrize(
    "other",
    [
        SealContext("ten_b", "prompt", "agt_a", "dep_a"),
        SealContext("ten_a", "prompt", "agt_a", "dep_b"),
        SealContext("ten_a", "prompt", "agt_b", "dep_a"),
        SealContext("ten_a", "caller-number", "agt_a", "dep_a"),
        SealContext("ten_a", "prompt", "agt_a", None),
    ],
)
def test_blob_moved_to_another_context_does_not_open(
    sealer: LocalSealer, other: SealContext
) -> None:
    blob = sealer.seal(b"secret prompt", CTX)
    with pytest.raises(DecryptionError):
        sealer.open(blob, other)


def test_every_flipped_bit_is_detected(sealer: LocalSealer) -> None:
    blob = sealer.seal(b"abc", CTX)
    for i in range(len(blob) * 8):
        tampered = bytearray(blob)
        tampered[i // 8] ^= 1 << (i % 8)
        with pytest.raises(DecryptionError):
            sealer.open(bytes(tampered), CTX)


@pytest.mark.parametrize("cut", [0, 1, 4, 12, 24, 39, -1])
def test_truncated_blob_is_rejected(sealer: LocalSealer, cut: int) -> None:
    blob = sealer.seal(b"hello world", CTX)
    with pytest.raises(DecryptionError):
        sealer.open(blob[:cut], CTX)


def test_trailing_bytes_are_rejected(sealer: LocalSealer) -> None:
    with pytest.raises(DecryptionError):
        sealer.open(sealer.seal(b"hello", CTX) + b"\x00", CTX)


def test_blob_from_another_root_key_is_rejected_with_the_same_error(sealer: LocalSealer) -> None:
    other = LocalSealer(secrets.token_bytes(32))
    with pytest.raises(DecryptionError) as info:
        sealer.open(other.seal(b"x", CTX), CTX)
    assert str(info.value) == str(DecryptionError())


def test_error_message_says_nothing_about_the_cause() -> None:
    assert str(DecryptionError()) == "sealed object could not be opened"


def test_short_root_key_is_refused() -> None:
    with pytest.raises(KeyUnavailableError):
        LocalSealer(b"short")
