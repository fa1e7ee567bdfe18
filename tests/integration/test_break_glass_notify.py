"""Issue 7, "the tenant notified": every break-glass step reaches the tenant's own SIEM.

End to end, through the real API and the running service's own sink dispatcher
(started by the app's lifespan, never driven by hand here):

1. Each tenant's admin adds a signed-webhook sink (``POST /v1/audit/sinks``)
   pointing at a real local HTTPS server whose certificate is issued by the
   test CA; the sink trusts that CA through its ordinary ``ca_pem`` setting.
2. A ``support_engineer`` operator requests break-glass for tenant A's first
   deployment; A's admin approves; the operator reads that deployment's call
   transcript (redacted) under the grant; A's admin revokes.
3. A's webhook receives, signed (checked with :func:`verify_webhook_signature`)
   and in log order: ``break_glass.request``, ``break_glass.approve``, the
   ``transcript:read_redacted`` entry tagged with the grant, ``break_glass.revoke``.
   No body carries the sealed reason or any transcript content.
4. B's webhook, caught up past the revocation, received nothing about it.

The HTTPS receiver follows ``tests/integration/test_audit_sinks_http.py``.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from callvault.audit.sinks import (
    SIGNATURE_HEADER,
    WebhookSignatureError,
    verify_webhook_signature,
)
from callvault.operators import OperatorRole
from callvault.runtime import Runtime
from tests.integration.rsyslog import Pki, make_pki
from tests.support.world import CALLER_NUMBER, TRANSCRIPT, World
from tests.unit.api._harness import audit_size, auth
from tests.unit.operators._support import make_operator

SECRET_A = "whsec_a_" + "a" * 40
SECRET_B = "whsec_b_" + "b" * 40
#: The operator's free-text reason: sealed at rest, never in any log or SIEM body.
REASON = f"customer escalation: garbled transcript after agent update {uuid.uuid4().hex}"
TICKET = "INC-7007"
#: Bound on every wait for the background dispatcher (it polls about once a second).
DEADLINE_SECONDS = 15.0
#: Transcript content that must never leave in an audit record (the world's transcripts).
CONTENT = (
    "31926819",
    "twelfth of march",
    "date of birth",
    "thank you, I have that",
    CALLER_NUMBER,
    CALLER_NUMBER.replace(" ", ""),
)


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local HTTPS endpoint recording every POST; answers 200."""

    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _posts: list[Post] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hooks/audit"

    def record(self, post: Post) -> None:
        with self._lock:
            self._posts.append(post)

    def posts(self) -> list[Post]:
        with self._lock:
            return list(self._posts)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.record(Post(self.path, dict(self.headers.items()), body))
            reply = b'{"ok":true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_args: Any) -> None:  # quiet: the test reads the receiver
            return

    return Handler


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture
def serve(pki: Pki, tmp_path: Path) -> Iterator[Callable[[], Receiver]]:
    """Starts local HTTPS receivers (certificate from the test CA); stops them after the test."""
    paths = pki.write(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(paths["server_cert_pem"], paths["server_key_pem"])
    servers: list[ThreadingHTTPServer] = []

    def start() -> Receiver:
        receiver = Receiver()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        receiver.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return receiver

    try:
        yield start
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def _add_sink(client: TestClient, token: str, receiver: Receiver, pki: Pki, secret: str) -> str:
    r = client.post(
        "/v1/audit/sinks",
        headers=auth(token),
        json={
            "kind": "webhook",
            "name": "siem",
            "config": {"url": receiver.url, "ca_pem": pki.ca_pem},
            "secret": secret,
        },
    )
    assert r.status_code == 201, r.text
    assert secret not in r.text
    return str(r.json()["id"])


def _delivered(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """Every OCSF record the receiver took, in arrival order, first copy of each index.

    Each POST's signature is checked on its raw body before the body is parsed.
    """
    seen: dict[int, dict[str, Any]] = {}
    for post in receiver.posts():
        assert post.path == "/hooks/audit"
        assert post.headers["Content-Type"] == "application/json"
        verify_webhook_signature(secret, post.headers[SIGNATURE_HEADER], post.body, time.time())
        for record in json.loads(post.body):
            seen.setdefault(record["metadata"]["sequence"], record)
    return list(seen.values())


def _wait_for_log(rt: Runtime, tenant_id: str, receiver: Receiver, secret: str) -> int:
    """Wait (bounded) until the receiver holds every entry the tenant's log has now."""
    size = audit_size(rt, tenant_id)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        got = {r["metadata"]["sequence"] for r in _delivered(receiver, secret)}
        if got >= set(range(size)):
            return size
        if time.monotonic() > deadline:
            missing = sorted(set(range(size)) - got)
            pytest.fail(f"sink of {tenant_id} still lacks {len(missing)} of {size} entries")
        time.sleep(0.05)


def _bodies(receiver: Receiver) -> bytes:
    return b"\n".join(post.body for post in receiver.posts())


def test_every_break_glass_step_reaches_the_tenants_signed_webhook_and_no_other(
    rt: Runtime, client: TestClient, world: World, pki: Pki, serve: Callable[[], Receiver]
) -> None:
    a, b = world.a, world.b
    admin_a = a.tokens[("admin", "tenant")]
    siem_a, siem_b = serve(), serve()
    _add_sink(client, admin_a, siem_a, pki, SECRET_A)
    _add_sink(client, b.tokens[("admin", "tenant")], siem_b, pki, SECRET_B)

    # -- the break-glass life, through the API ----------------------------------------------
    op = make_operator(rt, f"eng-{uuid.uuid4().hex[:10]}", OperatorRole.SUPPORT_ENGINEER)
    deployment, call = a.deployments[0], a.calls[0]  # world: call i is in deployment i
    r = client.post(
        f"/v1/operator/tenants/{a.id}/break-glass",
        headers=auth(op.token),
        json={
            "deployment_id": deployment,
            "reason": REASON,
            "ticket_ref": TICKET,
            "duration_minutes": 60,
        },
    )
    assert r.status_code == 201, r.text
    grant = r.json()["id"]
    assert r.json()["status"] == "pending"
    r = client.post(f"/v1/tenant/break-glass/{grant}/approve", headers=auth(admin_a))
    assert (r.status_code, r.json()["status"]) == (200, "approved"), r.text
    r = client.get(f"/v1/operator/tenants/{a.id}/calls/{call}/transcript", headers=auth(op.token))
    assert r.status_code == 200, r.text
    assert r.json()["view"] == "redacted"
    served = [s["text"] for s in r.json()["segments"]]
    assert TRANSCRIPT[1]["text"] in " ".join(served)  # content was really read
    r = client.post(f"/v1/tenant/break-glass/{grant}/revoke", headers=auth(admin_a))
    assert (r.status_code, r.json()["status"]) == (200, "revoked"), r.text

    # -- tenant A's SIEM: the whole log, signed, untouched --------------------------------
    size_a = _wait_for_log(rt, a.id, siem_a, SECRET_A)
    delivered = _delivered(siem_a, SECRET_A)
    stored = _stored(rt, a.id)
    assert len(stored) >= size_a
    for record in delivered:
        index = record["metadata"]["sequence"]
        assert record["raw_data"].encode() == stored[index]
        assert record["metadata"]["tenant_uid"] == a.id
    for post in siem_a.posts():
        with pytest.raises(WebhookSignatureError):  # signed with A's secret, not B's
            verify_webhook_signature(
                SECRET_B, post.headers[SIGNATURE_HEADER], post.body, time.time()
            )

    # -- the grant's story, in order ---------------------------------------------------------
    entries = [(r, json.loads(r["raw_data"])) for r in delivered]
    ours = [(r, e) for r, e in entries if e.get("detail", {}).get("break_glass") == grant]
    assert [e["action"] for _, e in ours] == [
        "break_glass.request",
        "break_glass.approve",
        "transcript:read_redacted",
        "break_glass.revoke",
    ]
    sequences = [r["metadata"]["sequence"] for r, _ in ours]
    assert sequences == sorted(sequences)
    admin_a_id = a.principals[("admin", "tenant")]
    expected_actor = {
        "break_glass.request": op.id,
        "break_glass.approve": admin_a_id,
        "transcript:read_redacted": op.id,
        "break_glass.revoke": admin_a_id,
    }
    for record, entry in ours:
        action = entry["action"]
        assert entry["actor"] == expected_actor[action], action
        assert record["actor"]["user"]["uid"] == entry["actor"]
        assert record["activity_name"] == action
        assert record["unmapped"]["detail"] == entry["detail"]
        if action.startswith("break_glass."):
            assert entry["outcome"] == "success"
            assert entry["resource"] == {"kind": "break_glass", "id": grant}
            detail = entry["detail"]
            assert (detail["operator"], detail["deployment"], detail["ticket"]) == (
                op.id,
                deployment,
                TICKET,
            ), action
        else:  # the content read: the tenant's gate's entry, tagged with the grant
            assert entry["outcome"] == "allowed"
            assert entry["resource"] == {"kind": "call", "id": call}
            assert entry["detail"]["realm"] == "operator"
            assert entry["detail"]["key"] == op.key_id

    # Nothing the operator wrote as its reason, nothing of the transcript, ever left.
    bodies_a = _bodies(siem_a)
    assert REASON.encode() not in bodies_a
    assert REASON.rsplit(" ", 1)[1].encode() not in bodies_a
    for text in (*CONTENT, *served):
        assert text.encode() not in bodies_a, text

    # -- tenant B's SIEM: caught up past the revocation, and told nothing of it ---------------
    _wait_for_log(rt, b.id, siem_b, SECRET_B)
    delivered_b = _delivered(siem_b, SECRET_B)
    assert delivered_b, "B's sink works (it carries B's own log)"
    assert {r["metadata"]["tenant_uid"] for r in delivered_b} == {b.id}
    assert not [r for r in delivered_b if r["activity_name"].startswith("break_glass.")]
    bodies_b = _bodies(siem_b)
    for marker in (grant, op.id, op.key_id, TICKET, REASON, a.id, deployment, call):
        assert marker.encode() not in bodies_b, marker


def _stored(rt: Runtime, tenant_id: str) -> dict[int, bytes]:
    with rt.db.tenant_tx(tenant_id) as s:
        return dict(rt.audit.read(s, tenant_id, start=0, limit=1_000_000))
