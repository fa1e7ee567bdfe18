"""Fixtures for the payments vault: a recording HTTPS processor, a vault, grants through the gate.

The processor is ``http.server`` behind ``ssl`` with a self-signed certificate
made for 127.0.0.1 (``cryptography``, through ``callvault.crypto.hazmat``); it
records every request it receives and answers from a script.

No shipped role has ``payments:detokenize`` (a ``payment_operator`` role is to
come), so :class:`Cards` gives the ``ingest`` role that action in
``ROLE_ACTIONS`` for the test only, builds an authorizer over the shipped
policy set from it, and puts a gate with that authorizer on the runtime.
Grants still come only from ``rt.gate.enforce``.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from callvault.access import (
    ROLE_ACTIONS,
    Action,
    Authorizer,
    Binding,
    Gate,
    Grant,
    Principal,
    Resource,
    Role,
    ScopeKind,
)
from callvault.crypto.hazmat import generate_self_signed
from callvault.payments import HttpPaymentConnector, TokenVault
from callvault.runtime import Runtime
from tests.support.world import World

SECRET = "sk_test_" + "p" * 32
OK_REPLY = (200, json.dumps({"reference": "auth_000123", "status": "authorized"}).encode())


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Processor:
    """A payment processor that records requests and answers ``script`` first, then ``default``."""

    ca_file: Path
    port: int = 0
    default: tuple[int, bytes] = OK_REPLY
    script: list[tuple[int, bytes]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/v1/card-handoff"

    def connector(self, name: str = "acme-pay", **kwargs: Any) -> HttpPaymentConnector:
        kwargs.setdefault("ca_file", self.ca_file)
        kwargs.setdefault("timeout_seconds", 5.0)
        return HttpPaymentConnector(name, self.url, secret=SECRET, **kwargs)


def _handler(processor: Processor) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            processor.seen.append(Seen(self.path, dict(self.headers.items()), body))
            status, reply = processor.script.pop(0) if processor.script else processor.default
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_args: Any) -> None:  # quiet: tests read `processor.seen`
            return

    return Handler


def write_self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = generate_self_signed(["127.0.0.1"])
    cert, key = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    return cert, key


@pytest.fixture(scope="module")
def https_processor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processor]:
    cert, key = write_self_signed(tmp_path_factory.mktemp("processor"), "server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    processor = Processor(ca_file=cert)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(processor))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    processor.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield processor
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def processor(https_processor: Processor) -> Processor:
    https_processor.seen.clear()
    https_processor.script.clear()
    return https_processor


@pytest.fixture
def vault(rt: Runtime) -> TokenVault:
    return TokenVault(rt.keys, rt.audit)


@dataclass
class Cards:
    """Ids of tenant A's first two calls (one per deployment) and tenant B's first call."""

    rt: Runtime
    world: World

    @property
    def tenant(self) -> str:
        return self.world.a.id

    def call(self, n: int = 0) -> tuple[str, str, str]:
        """(deployment, agent, call) of tenant A's call ``n``."""
        a = self.world.a
        return a.deployments[n], a.agents[n], a.calls[n]

    def operator(self, n: int = 0) -> Principal:
        """Tenant A's deployment-``n``-wide ingest principal, here also the payment operator."""
        dep = self.world.a.deployments[n]
        return Principal(
            id=self.world.a.principals[("ingest", "tenant")],
            tenant_id=self.tenant,
            kind="service",
            active=True,
            bindings=frozenset({Binding(Role.INGEST, ScopeKind.DEPLOYMENT, dep)}),
        )

    def resource(self, n: int = 0) -> Resource:
        dep, agent, call = self.call(n)
        return Resource.call(self.tenant, dep, agent, call)

    def grant(self, n: int = 0, action: Action = Action.PAYMENTS_DETOKENIZE) -> Grant:
        return self.rt.gate.enforce(
            self.operator(n), action, self.resource(n), request_id=f"req-{action.value}-{n}"
        )


@pytest.fixture
def cards(rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch) -> Cards:
    monkeypatch.setitem(
        ROLE_ACTIONS, Role.INGEST, ROLE_ACTIONS[Role.INGEST] | {Action.PAYMENTS_DETOKENIZE}
    )
    policies = (files("callvault.access") / "policies.cedar").read_text(encoding="utf-8")
    monkeypatch.setattr(rt, "gate", Gate(Authorizer(policies), rt.audit))
    return Cards(rt, world)
