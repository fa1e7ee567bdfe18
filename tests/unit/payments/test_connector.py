"""HttpPaymentConnector: https only, verified TLS, bounded and checked replies, no secrets shown."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from callvault.errors import InvalidInputError
from callvault.payments import (
    ConnectorRequest,
    ConnectorResult,
    HttpPaymentConnector,
    PaymentConnectorError,
)
from callvault.payments._connector import MAX_REPLY_BYTES, request_body
from callvault.payments._token import new_token_id
from tests.support.processor import SECRET, Processor, write_self_signed
from tests.unit.payments.cardnumbers import PAN, leaks


def _request(cvv: str | None = None) -> ConnectorRequest:
    return ConnectorRequest(
        new_token_id(), bytearray(PAN, "ascii"), None if cvv is None else bytearray(cvv, "ascii")
    )


def test_body_is_the_documented_json_and_the_request_never_shows_the_card() -> None:
    request = _request("042")
    assert json.loads(request_body(request)) == {
        "token": request.token_id,
        "pan": PAN,
        "cvv": "042",
    }
    assert json.loads(request_body(_request())).keys() == {"token", "pan"}
    for shown in (repr(request), str(request), f"{request}"):
        assert leaks(shown) == []
        assert "042" not in shown


@pytest.mark.parametrize(
    ("token_id", "pan", "cvv"),
    [
        ("tok_x", PAN, None),
        (None, PAN[:11], None),
        (None, PAN[:8] + '"' + PAN[9:], None),
        (None, PAN, "12"),
        (None, PAN, '1"3'),
    ],
    ids=["bad-token", "short-pan", "quote-in-pan", "short-cvv", "quote-in-cvv"],
)
def test_malformed_requests_cannot_be_built(
    token_id: str | None, pan: str, cvv: str | None
) -> None:
    with pytest.raises(ValueError, match="malformed") as info:
        ConnectorRequest(
            token_id or new_token_id(),
            bytearray(pan, "ascii"),
            None if cvv is None else bytearray(cvv, "ascii"),
        )
    assert leaks(str(info.value)) == []


def test_sends_to_the_processor_and_returns_its_reference(processor: Processor) -> None:
    request = _request()
    with processor.connector() as connector:
        result = connector.send(request)
    assert result == ConnectorResult("acme-pay", request.token_id, "auth_000123", "authorized")
    assert json.loads(processor.seen[0].body) == {"token": request.token_id, "pan": PAN}
    assert processor.seen[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert leaks(repr(connector)) == []
    assert SECRET not in repr(connector)


@pytest.mark.parametrize(
    ("reply", "error_class", "status"),
    [
        ((500, b'{"error":"declined"}'), "HTTPStatusError", 500),
        ((302, b"{}"), "HTTPStatusError", 302),
        ((200, b"not json"), "MalformedReply", 200),
        ((200, b'{"reference":"a b","status":"ok"}'), "MalformedReply", 200),
        ((200, b'{"status":"ok"}'), "MalformedReply", 200),
        ((200, b"[1]"), "MalformedReply", 200),
        ((200, b'{"reference":"' + b"r" * MAX_REPLY_BYTES + b'"}'), "ReplyTooLarge", 200),
    ],
    ids=[
        "500",
        "redirect-not-followed",
        "not-json",
        "bad-reference",
        "no-reference",
        "array",
        "huge",
    ],
)
def test_bad_answers_are_one_error_with_class_and_status_only(
    processor: Processor, reply: tuple[int, bytes], error_class: str, status: int
) -> None:
    processor.script.append(reply)
    with pytest.raises(PaymentConnectorError) as info:
        processor.connector().send(_request())
    assert (info.value.connector, info.value.error_class, info.value.status) == (
        "acme-pay",
        error_class,
        status,
    )
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert len(processor.seen) == 1


def test_a_certificate_the_ca_file_does_not_vouch_for_is_refused(
    processor: Processor, tmp_path: Path
) -> None:
    stranger, _key = write_self_signed(tmp_path, "stranger")
    with pytest.raises(PaymentConnectorError) as info:
        processor.connector(ca_file=stranger).send(_request())
    assert info.value.error_class == "ConnectError"
    # httpx's exception holds the request, body and card included: it is not kept.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert processor.seen == []


def test_the_system_trust_store_does_not_vouch_for_a_self_signed_processor(
    processor: Processor,
) -> None:
    connector = HttpPaymentConnector("acme-pay", processor.url, secret=SECRET)
    with pytest.raises(PaymentConnectorError):
        connector.send(_request())
    assert processor.seen == []


def test_unreachable_processor_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    connector = HttpPaymentConnector(
        "acme-pay", f"https://127.0.0.1:{port}/", secret=SECRET, timeout_seconds=2
    )
    with pytest.raises(PaymentConnectorError) as info:
        connector.send(_request())
    assert info.value.error_class == "ConnectError"
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://pay.example.com/charge", False),
        ("http://pay.example.com/charge", True),  # the flag is for loopback only
        ("http://127.0.0.1:8080/charge", False),
        ("ftp://pay.example.com/charge", False),
        ("https://user:pw@pay.example.com/charge", False),
        ("https:///charge", False),
        ("https://pay.example.com:99999/charge", False),
        ("https://pay.example.com/charge#frag", False),
        (f"http://pay.example.com/{PAN}", True),
    ],
    ids=[
        "http",
        "http-flag-not-loopback",
        "http-loopback-no-flag",
        "ftp",
        "credentials",
        "no-host",
        "bad-port",
        "fragment",
        "card-in-url",
    ],
)
def test_refused_urls_are_not_quoted_back(url: str, allow: bool) -> None:
    with pytest.raises(InvalidInputError) as info:
        HttpPaymentConnector("acme-pay", url, secret=SECRET, allow_insecure_loopback=allow)
    assert info.value.field == "url"
    assert "example" not in str(info.value)
    assert leaks(str(info.value)) == []


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/charge", "http://[::1]/c", "http://localhost/c"]
)
def test_plain_http_only_to_loopback_and_only_when_asked(url: str) -> None:
    HttpPaymentConnector("acme-pay", url, secret=SECRET, allow_insecure_loopback=True).close()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "Acme Pay"}, "connector"),
        ({"name": ""}, "connector"),
        ({"secret": ""}, "secret"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"ca_file": "/nonexistent/ca.pem"}, "ca_file"),
    ],
    ids=["name-with-space", "no-name", "no-secret", "no-timeout", "missing-ca"],
)
def test_bad_settings_are_refused_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    settings: dict[str, object] = {"name": "acme-pay", "secret": SECRET, **kwargs}
    name = settings.pop("name")
    with pytest.raises(InvalidInputError) as info:
        HttpPaymentConnector(name, "https://pay.example.com/c", **settings)  # type: ignore[arg-type]
    assert info.value.field == field


def test_a_ca_file_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(InvalidInputError) as info:
        HttpPaymentConnector("acme-pay", "https://pay.example.com/c", secret=SECRET, ca_file=bad)
    assert info.value.field == "ca_file"
