"""An HTTPS server on 127.0.0.1 for the egress tests: scripted answers, recorded requests.

``http.server`` behind ``ssl`` with a self-signed certificate for the names
given (``callvault.crypto.hazmat.generate_self_signed``); it records, per
request, the path, the headers and the SNI name the client sent, and answers
from :attr:`HttpsServer.routes` (path → :class:`Answer`).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from callvault.crypto.hazmat import generate_self_signed


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: Send the body in pieces of this size with ``pause_s`` between them (no Content-Length).
    trickle: int = 0
    pause_s: float = 0.0


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class HttpsServer:
    cert: Path
    port: int = 0
    routes: dict[str, Answer] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}{path}"

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting this server's certificate only."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=str(self.cert))
        return ctx


def _handler(server: HttpsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            server.seen.append(Seen(self.path, dict(self.headers.items())))
            answer = server.routes.get(self.path, Answer(404, b"not here"))
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.trickle:
                self.send_header("Connection", "close")
                self.end_headers()
                for i in range(0, len(answer.body), answer.trickle):
                    self.wfile.write(answer.body[i : i + answer.trickle])
                    self.wfile.flush()
                    time.sleep(answer.pause_s)
                self.close_connection = True
                return
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, *_args: Any) -> None:  # quiet: tests read `server.seen`
            return

    return Handler


@contextmanager
def running_https(directory: Path, names: list[str] | None = None) -> Iterator[HttpsServer]:
    """A server on 127.0.0.1 whose certificate names ``names`` (default: 127.0.0.1)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = generate_self_signed(names or ["127.0.0.1"])
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    server = HttpsServer(cert=cert)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def on_sni(_sock: Any, name: str | None, _ctx: Any) -> None:
        server.sni.append(name)

    context.sni_callback = on_sni
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
