"""verify_webhook_signature: the receiver's check rejects tampering, replays and junk."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from callvault.audit.sinks import (
    WebhookSignatureError,
    verify_webhook_signature,
    webhook_signature,
)

SECRET = "whsec_" + "s" * 40
BODY = b'[{"metadata":{"uid":"o/1"}}]'
NOW = 1_750_000_000


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1750000000." + BODY, hashlib.sha256).hexdigest()
    assert webhook_signature(SECRET, NOW, BODY) == f"t=1750000000,v1={expected}"


def test_a_fresh_signature_verifies() -> None:
    verify_webhook_signature(SECRET, webhook_signature(SECRET, NOW, BODY), BODY, now=NOW + 5)
    verify_webhook_signature(SECRET.encode(), webhook_signature(SECRET, NOW, BODY), BODY, now=NOW)


def test_a_tampered_body_is_rejected() -> None:
    header = webhook_signature(SECRET, NOW, BODY)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_webhook_signature(SECRET, header, BODY.replace(b"o/1", b"o/2"), now=NOW)


def test_another_secret_is_rejected() -> None:
    header = webhook_signature("whsec_" + "x" * 40, NOW, BODY)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_webhook_signature(SECRET, header, BODY, now=NOW)


def test_a_moved_timestamp_is_rejected() -> None:
    _, _, mac = webhook_signature(SECRET, NOW, BODY).partition(",")
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_webhook_signature(SECRET, f"t={NOW + 1},{mac}", BODY, now=NOW)


@pytest.mark.parametrize("age", [301, 10_000])
def test_a_stale_timestamp_is_a_replay(age: int) -> None:
    header = webhook_signature(SECRET, NOW, BODY)
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        verify_webhook_signature(SECRET, header, BODY, now=NOW + age)


def test_a_future_timestamp_beyond_tolerance_is_rejected() -> None:
    header = webhook_signature(SECRET, NOW + 301, BODY)
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        verify_webhook_signature(SECRET, header, BODY, now=NOW)


def test_tolerance_is_configurable_and_inclusive() -> None:
    header = webhook_signature(SECRET, NOW, BODY)
    verify_webhook_signature(SECRET, header, BODY, now=NOW + 300)
    verify_webhook_signature(SECRET, header, BODY, now=NOW - 300)
    with pytest.raises(WebhookSignatureError):
        verify_webhook_signature(SECRET, header, BODY, now=NOW + 31, tolerance_seconds=30)


def test_one_matching_v1_among_several_verifies() -> None:
    good = webhook_signature(SECRET, NOW, BODY)
    verify_webhook_signature(SECRET, f"{good},v1={'0' * 64},v0=legacy", BODY, now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"v1={'a' * 64}",
        "t=1750000000",
        f"t=1750000000,t=1750000000,v1={'a' * 64}",
        f"t=-1750000000,v1={'a' * 64}",
        f"t=1750000000.5,v1={'a' * 64}",
        f"t=01750000000,v1={'a' * 64}",
        f"t=1750000000,v1={'A' * 64}",
        f"t=1750000000,v1={'a' * 63}",
        f"t=1750000000,v1={'a' * 64},junk",
        "t=" + "9" * 2000,
    ],
)
def test_malformed_headers_are_rejected(header: str) -> None:
    with pytest.raises(WebhookSignatureError, match="malformed"):
        verify_webhook_signature(SECRET, header, BODY, now=NOW)


def test_an_empty_secret_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        verify_webhook_signature("", webhook_signature("k", NOW, BODY), BODY, now=NOW)


def test_error_messages_quote_nothing_from_the_request() -> None:
    header = webhook_signature(SECRET, NOW, BODY)
    with pytest.raises(WebhookSignatureError) as info:
        verify_webhook_signature(SECRET, header, BODY + b"secret-ish", now=NOW)
    assert "secret-ish" not in str(info.value)
    assert header.rpartition("=")[2] not in str(info.value)
