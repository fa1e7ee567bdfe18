"""The envelope recipe: per-value keys, context binding, one error for every failure."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.crypto import SealContext, open_value, seal_value
from callvault.errors import DecryptionError

CTX = SealContext(tenant_id="ten_a", deployment_id="dep_a", purpose="prompt", object_id="agt_a")
KEY = secrets.token_bytes(32)


@given(st.binary(max_size=4096))
def test_round_trip(plaintext: bytes) -> None:
    assert open_value(KEY, seal_value(KEY, plaintext, CTX), CTX) == plaintext


def test_ciphertext_does_not_contain_the_plaintext() -> None:
    secret = b"4111111111111111 my NHS number is 943 476 5919"
    assert secret not in seal_value(KEY, secret, CTX)


def test_same_plaintext_seals_differently_each_time() -> None:
    assert seal_value(KEY, b"x", CTX) != seal_value(KEY, b"x", CTX)


@pytest.mark.parametrize(
    "other",
    [
        SealContext("ten_b", "prompt", "agt_a", "dep_a"),
        SealContext("ten_a", "prompt", "agt_a", "dep_b"),
        SealContext("ten_a", "prompt", "agt_b", "dep_a"),
        SealContext("ten_a", "caller-number", "agt_a", "dep_a"),
        SealContext("ten_a", "prompt", "agt_a", None),
        SealContext("ten_a", "prompt", "agt_a", "dep_a", owner_kind="call", owner_id="call_x"),
    ],
)
def test_blob_moved_to_another_context_does_not_open(other: SealContext) -> None:
    with pytest.raises(DecryptionError):
        open_value(KEY, seal_value(KEY, b"secret prompt", CTX), other)


def test_every_flipped_bit_is_detected() -> None:
    blob = seal_value(KEY, b"abc", CTX)
    for i in range(len(blob) * 8):
        tampered = bytearray(blob)
        tampered[i // 8] ^= 1 << (i % 8)
        with pytest.raises(DecryptionError):
            open_value(KEY, bytes(tampered), CTX)


@pytest.mark.parametrize("cut", [0, 1, 4, 12, 16, 31, -1])
def test_truncated_blob_is_rejected(cut: int) -> None:
    with pytest.raises(DecryptionError):
        open_value(KEY, seal_value(KEY, b"hello world", CTX)[:cut], CTX)


def test_trailing_bytes_are_rejected() -> None:
    with pytest.raises(DecryptionError):
        open_value(KEY, seal_value(KEY, b"hello", CTX) + b"\x00", CTX)


def test_blob_under_another_data_key_is_rejected_with_the_same_error() -> None:
    with pytest.raises(DecryptionError) as info:
        open_value(KEY, seal_value(secrets.token_bytes(32), b"x", CTX), CTX)
    assert str(info.value) == str(DecryptionError())


def test_error_message_says_nothing_about_the_cause() -> None:
    assert str(DecryptionError()) == "sealed object could not be opened"
