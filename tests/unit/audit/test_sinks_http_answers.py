"""What counts as an acknowledgement from HEC and webhook receivers (in-process, no sockets)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from callvault.audit.sinks import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    Record,
    SinkError,
    SplunkHecTransport,
    WebhookTransport,
    client_tls_context,
    verify_webhook_signature,
)

RECORDS = [
    Record("cv/audit/t", 0, b'{"action":"a","outcome":"success","time":"2025-01-01T00:00:00Z"}'),
    Record("cv/audit/t", 1, b'{"action":"b","outcome":"denied","time":"2025-01-01T00:00:01.5Z"}'),
]
SECRET = "whsec_" + "w" * 40


def _hec(answer: Callable[[httpx.Request], httpx.Response]) -> SplunkHecTransport:
    return SplunkHecTransport(
        "snk_hec",
        url="https://splunk.example.org:8088/",
        token=SecretStr("tok-123"),
        context=client_tls_context(ca_pem=None),
        transport=httpx.MockTransport(answer),
    )


def test_hec_request_shape() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"text": "Success", "code": 0})

    _hec(answer).deliver(RECORDS)
    (request,) = seen
    assert str(request.url) == "https://splunk.example.org:8088/services/collector/event"
    assert request.headers["Authorization"] == "Splunk tok-123"
    decoder, text, events, at = json.JSONDecoder(), request.content.decode(), [], 0
    while at < len(text):
        event, at = decoder.raw_decode(text, at)
        events.append(event)
    assert [e["time"] for e in events] == [1735689600.0, 1735689601.5]
    assert [e["event"]["metadata"]["sequence"] for e in events] == [0, 1]


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, b'{"text":"Invalid token","code":4}', "HecErrorCode"),
        (200, b'{"text":"Success"}', "HecErrorCode"),
        (200, b"OK", "MalformedResponse"),
        (200, b"[0]", "MalformedResponse"),
        (201, b'{"code":0}', "HTTPStatusError"),
        (503, b'{"text":"Server is busy","code":9}', "HTTPStatusError"),
        (403, b'{"text":"Invalid token","code":4}', "HTTPStatusError"),
    ],
)
def test_hec_acknowledges_only_200_with_code_zero(status: int, body: bytes, error: str) -> None:
    transport = _hec(lambda _r: httpx.Response(status, content=body))
    with pytest.raises(SinkError) as info:
        transport.deliver(RECORDS)
    assert (info.value.error_class, info.value.status, info.value.sink_id) == (
        error,
        status,
        "snk_hec",
    )
    assert body.decode() not in str(info.value)


def test_hec_network_errors_become_sink_errors() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(
            "connection refused to https://splunk.example.org", request=request
        )

    with pytest.raises(SinkError) as info:
        _hec(answer).deliver(RECORDS)
    assert info.value.error_class == "ConnectError"
    assert "splunk.example.org" not in str(info.value)


def test_an_empty_batch_sends_nothing() -> None:
    def answer(_r: httpx.Request) -> httpx.Response:
        raise AssertionError

    _hec(answer).deliver([])


def test_webhook_signs_with_its_clock_and_accepts_any_2xx() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    WebhookTransport(
        "snk_hook",
        url="https://hooks.example.org/audit",
        secret=SecretStr(SECRET),
        context=client_tls_context(ca_pem=None),
        clock=lambda: 1_750_000_000.9,
        transport=httpx.MockTransport(answer),
    ).deliver(RECORDS)
    (request,) = seen
    header = request.headers[SIGNATURE_HEADER]
    assert header.startswith("t=1750000000,v1=")
    verify_webhook_signature(SECRET, header, request.content, now=1_750_000_100)
    assert len(request.headers[DELIVERY_ID_HEADER]) == 32
    assert [e["metadata"]["uid"] for e in json.loads(request.content)] == [
        "cv/audit/t/0",
        "cv/audit/t/1",
    ]
