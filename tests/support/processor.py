"""A payment processor for tests: ``http.server`` behind ``ssl`` on 127.0.0.1.

It records every request it receives and answers from a script; its
certificate is self-signed for 127.0.0.1 (``callvault.crypto.hazmat``).
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from callvault.crypto.hazmat import generate_self_signed
from callvault.payments import HttpPaymentConnector

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


@contextmanager
def running_processor(directory: Path) -> Iterator[Processor]:
    """A processor listening on 127.0.0.1 until the block ends."""
    cert, key = write_self_signed(directory, "server")
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
