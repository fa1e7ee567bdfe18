"""Splunk HEC and signed-webhook sinks against a real local HTTPS server.

The server (``http.server`` behind an ``ssl`` context with a certificate from
the test CA) records every request and answers from a script, so the tests see
exactly what a SIEM would: headers, body bytes, retries.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from callvault.audit import AuditEvent, Outcome
from callvault.audit.sinks import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    Backoff,
    SinkCursors,
    SinkDispatcher,
    SinkTarget,
    WebhookSignatureError,
    build_transport,
    verify_webhook_signature,
)
from callvault.bootstrap import create_tenant_with_owner
from callvault.runtime import Runtime
from tests.integration.rsyslog import Pki, make_pki

TOKEN = "8c5e3f0a-3b7e-4a61-9b8e-0d6f1c2a4e55"
WEBHOOK_SECRET = "whsec_" + "k" * 40


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpsReceiver:
    """Records requests; answers each with the next scripted (status, body), else ``default``."""

    port: int = 0
    default: tuple[int, bytes] = (200, b'{"text":"Success","code":0}')
    script: list[tuple[int, bytes, dict[str, str]]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def _handler(receiver: HttpsReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.seen.append(Seen(self.path, dict(self.headers.items()), body))
            status, reply, extra = (
                receiver.script.pop(0) if receiver.script else (*receiver.default, {})
            )
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_args: Any) -> None:  # quiet: the test reads `receiver.seen`
            return

    return Handler


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def https(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsReceiver]:
    directory = tmp_path_factory.mktemp("https")
    paths = pki.write(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(paths["server_cert_pem"], paths["server_key_pem"])
    receiver = HttpsReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver(https: HttpsReceiver) -> HttpsReceiver:
    https.seen.clear()
    https.script.clear()
    return https


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Tenant:
    rt: Runtime
    id: str

    @property
    def origin(self) -> str:
        return f"callvault.localhost/audit/{self.id}"

    def read(self, tenant: str, start: int, limit: int) -> list[tuple[int, bytes]]:
        with self.rt.db.tenant_tx(tenant) as s:
            return self.rt.audit.read(s, tenant, start=start, limit=limit)

    def entries(self) -> list[tuple[int, bytes]]:
        return self.read(self.id, 0, 1_000_000)

    def dispatcher(self, sink_id: str, transport: Any, clock: Clock) -> SinkDispatcher:
        target = SinkTarget(self.id, sink_id, transport)
        return SinkDispatcher(
            cursors=SinkCursors(self.rt.db),
            targets=lambda: [target],
            read=self.read,
            origin=lambda _t: self.origin,
            size=lambda t: len(self.read(t, 0, 1_000_000)),
            batch_size=5,
            max_batches=100,
            backoff=Backoff(base_seconds=1, cap_seconds=8),
            clock=clock,
            jitter=lambda: 0.0,
        )


@pytest.fixture
def tenant(rt: Runtime) -> Tenant:
    init = create_tenant_with_owner(rt, tenant_name="acme", owner_name="acme-owner")
    event = AuditEvent("sink.test", Outcome.SUCCESS, "prn_x", "call", "call_1", detail={"n": "ü"})
    rt.audit.append(init.tenant_id, *([event] * 6))
    return Tenant(rt, init.tenant_id)


def _hec(receiver: HttpsReceiver, pki: Pki, **overrides: Any) -> Any:
    config = {"url": receiver.base, "ca_pem": pki.ca_pem, "host": "cv-test"} | overrides
    return build_transport("splunk-hec", config, TOKEN, sink_id="snk_hec")


def _webhook(receiver: HttpsReceiver, pki: Pki) -> Any:
    config = {"url": receiver.base + "/hooks/audit", "ca_pem": pki.ca_pem}
    return build_transport("webhook", config, WEBHOOK_SECRET, sink_id="snk_hook")


def _hec_events(body: bytes) -> list[dict[str, Any]]:
    decoder, text, events, at = json.JSONDecoder(), body.decode(), [], 0
    while at < len(text):
        event, at = decoder.raw_decode(text, at)
        events.append(event)
    return events


# -- Splunk HEC -----------------------------------------------------------------------


def test_hec_posts_every_entry_with_the_token_and_hec_event_shape(
    tenant: Tenant, receiver: HttpsReceiver, pki: Pki
) -> None:
    dispatcher = tenant.dispatcher("snk_hec", _hec(receiver, pki), Clock())
    result = dispatcher.run_once()[(tenant.id, "snk_hec")]
    entries = tenant.entries()
    assert (result.delivered, result.error) == (len(entries), None)
    assert len(receiver.seen) == -(-len(entries) // 5)  # batches of at most 5
    events = [e for seen in receiver.seen for e in _hec_events(seen.body)]
    for seen in receiver.seen:
        assert seen.path == "/services/collector/event"
        assert seen.headers["Authorization"] == f"Splunk {TOKEN}"
    assert len(events) == len(entries)
    for event, (index, entry) in zip(events, entries, strict=True):
        assert set(event) == {"time", "host", "source", "sourcetype", "event"}
        assert (event["source"], event["sourcetype"], event["host"]) == (
            "callvault",
            "callvault:audit",
            "cv-test",
        )
        ocsf = event["event"]
        assert ocsf["metadata"]["log_name"] == tenant.origin
        assert ocsf["metadata"]["sequence"] == index
        assert ocsf["raw_data"].encode() == entry
        assert isinstance(event["time"], float)
        assert abs(event["time"] * 1000 - ocsf["time"]) < 1
    assert SinkCursors(tenant.rt.db).get(tenant.id, "snk_hec").next_index == len(entries)
    assert dispatcher.backlog() == {(tenant.id, "snk_hec"): 0}


def test_hec_503_keeps_the_cursor_and_the_retry_resends_the_same_batch(
    tenant: Tenant, receiver: HttpsReceiver, pki: Pki
) -> None:
    receiver.script.append((503, b'{"text":"Server is busy","code":9}', {}))
    clock = Clock()
    dispatcher = tenant.dispatcher("snk_hec", _hec(receiver, pki), clock)
    result = dispatcher.run_once()[(tenant.id, "snk_hec")]
    assert (result.delivered, result.error) == (0, "HTTPStatusError")
    cursor = SinkCursors(tenant.rt.db).get(tenant.id, "snk_hec")
    assert (cursor.next_index, cursor.failures, cursor.last_error) == (0, 1, "HTTPStatusError")
    assert dispatcher.run_once() == {}  # backing off
    clock.now += 0.5  # base 1 s, no jitter: half the window
    result = dispatcher.run_once()[(tenant.id, "snk_hec")]
    assert result.error is None
    assert receiver.seen[0].body == receiver.seen[1].body  # byte-identical retry
    assert dispatcher.backlog() == {(tenant.id, "snk_hec"): 0}


def test_hec_200_without_code_zero_is_not_an_acknowledgement(
    tenant: Tenant, receiver: HttpsReceiver, pki: Pki
) -> None:
    receiver.script.append((200, b'{"text":"Invalid data format","code":6}', {}))
    result = tenant.dispatcher("snk_hec", _hec(receiver, pki), Clock()).run_once()
    assert result[(tenant.id, "snk_hec")].error == "HecErrorCode"
    assert SinkCursors(tenant.rt.db).get(tenant.id, "snk_hec").next_index == 0


def test_hec_redirect_is_not_followed(tenant: Tenant, receiver: HttpsReceiver, pki: Pki) -> None:
    receiver.script.append((307, b"", {"Location": receiver.base + "/elsewhere"}))
    result = tenant.dispatcher("snk_hec", _hec(receiver, pki), Clock()).run_once()
    assert result[(tenant.id, "snk_hec")].error == "HTTPStatusError"
    assert [s.path for s in receiver.seen] == ["/services/collector/event"]


def test_hec_server_certificate_from_another_ca_is_refused(
    tenant: Tenant, receiver: HttpsReceiver
) -> None:
    stranger = make_pki("some other CA")
    result = tenant.dispatcher("snk_hec", _hec(receiver, stranger), Clock()).run_once()
    assert result[(tenant.id, "snk_hec")].error == "ConnectError"
    assert receiver.seen == []
    assert SinkCursors(tenant.rt.db).get(tenant.id, "snk_hec").next_index == 0


# -- signed webhook -------------------------------------------------------------------


def test_webhook_batches_are_signed_and_verify(
    tenant: Tenant, receiver: HttpsReceiver, pki: Pki
) -> None:
    result = tenant.dispatcher("snk_hook", _webhook(receiver, pki), Clock()).run_once()
    entries = tenant.entries()
    assert result[(tenant.id, "snk_hook")].delivered == len(entries)
    delivered = []
    for seen in receiver.seen:
        assert seen.path == "/hooks/audit"
        assert seen.headers["Content-Type"] == "application/json"
        header = seen.headers[SIGNATURE_HEADER]
        verify_webhook_signature(WEBHOOK_SECRET, header, seen.body, now=time.time())
        assert seen.headers[DELIVERY_ID_HEADER] == hashlib.sha256(seen.body).hexdigest()[:32]
        with pytest.raises(WebhookSignatureError):
            verify_webhook_signature(WEBHOOK_SECRET, header, seen.body + b" ", now=time.time())
        delivered += json.loads(seen.body)
    assert [(e["metadata"]["sequence"], e["raw_data"].encode()) for e in delivered] == entries
    assert {e["metadata"]["log_name"] for e in delivered} == {tenant.origin}


@pytest.mark.parametrize("status", [500, 404, 302])
def test_webhook_non_2xx_keeps_the_cursor_and_the_retry_keeps_its_delivery_id(
    tenant: Tenant, receiver: HttpsReceiver, pki: Pki, status: int
) -> None:
    receiver.script.append((status, b"{}", {"Location": "https://example.org/"}))
    clock = Clock()
    dispatcher = tenant.dispatcher("snk_hook", _webhook(receiver, pki), clock)
    result = dispatcher.run_once()[(tenant.id, "snk_hook")]
    assert (result.delivered, result.error) == (0, "HTTPStatusError")
    assert SinkCursors(tenant.rt.db).get(tenant.id, "snk_hook").next_index == 0
    clock.now += 1
    assert dispatcher.run_once()[(tenant.id, "snk_hook")].error is None
    first, retry = receiver.seen[0], receiver.seen[1]
    assert first.body == retry.body
    assert first.headers[DELIVERY_ID_HEADER] == retry.headers[DELIVERY_ID_HEADER]


# -- configured through the API, delivered by the service's own dispatcher ------------


def test_a_webhook_sink_added_through_the_api_receives_the_tenants_log(
    rt: Runtime, receiver: HttpsReceiver, pki: Pki
) -> None:
    from fastapi.testclient import TestClient  # noqa: PLC0415 - only this test needs the API

    from callvault.api import create_app  # noqa: PLC0415 - as above

    init = create_tenant_with_owner(rt, tenant_name="acme", owner_name="acme-owner")
    headers = {"Authorization": f"Bearer {init.token}"}
    with TestClient(create_app(rt), base_url="https://testserver") as client:
        r = client.post(
            "/v1/audit/sinks",
            headers=headers,
            json={
                "kind": "webhook",
                "name": "siem",
                "config": {"url": receiver.base + "/hooks/audit", "ca_pem": pki.ca_pem},
                "secret": WEBHOOK_SECRET,
            },
        )
        assert r.status_code == 201, r.text
        sink = r.json()
        assert WEBHOOK_SECRET not in r.text
        assert sink["has_secret"] is True
        assert sink["backlog"] > 0
        rt.dispatcher.run_once()
        listed = client.get("/v1/audit/sinks", headers=headers).json()
        assert [s["id"] for s in listed] == [sink["id"]]
        # Everything up to the sink's own creation entry was delivered, nothing else pending
        # but the entries that reading the list added.
        assert listed[0]["next_index"] >= sink["next_index"] + sink["backlog"]
        ready = client.get("/readyz").json()
        assert ready["audit_sinks"]["sinks"] == 1
        assert ready["audit_sinks"]["failing"] == 0
        r = client.delete(f"/v1/audit/sinks/{sink['id']}", headers=headers)
        assert r.status_code == 204
        assert client.get("/v1/audit/sinks", headers=headers).json() == []
    delivered = {}
    for seen in receiver.seen:
        verify_webhook_signature(
            WEBHOOK_SECRET, seen.headers[SIGNATURE_HEADER], seen.body, now=time.time()
        )
        for record in json.loads(seen.body):
            delivered[record["metadata"]["sequence"]] = record
    with rt.db.tenant_tx(init.tenant_id) as s:
        log = rt.audit.read(s, init.tenant_id, start=0, limit=10_000)
    assert set(delivered) >= set(range(listed[0]["next_index"]))
    created = [json.loads(e) for _, e in log if b"audit.sink.create" in e]
    assert len(created) == 1
    assert created[0]["detail"]["secret"].startswith("hmac-sha256:")
    assert all(WEBHOOK_SECRET.encode() not in e for _, e in log)
    assert hashlib.sha256(b"").hexdigest() not in created[0]["detail"]["secret"]
