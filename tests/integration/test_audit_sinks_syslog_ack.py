"""The syslog transport's stand-in for an acknowledgement: the receiver's clean close.

A Python TLS server on loopback plays receivers that behave well and badly;
only one that read to our end of stream and then closed makes a batch count
as delivered.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callvault.audit.sinks import Record, SinkError, SyslogTlsTransport, client_tls_context, frame
from callvault.audit.sinks._syslog import syslog_message
from tests.integration.rsyslog import Pki, make_pki

RECORDS = [Record("cv/audit/t", i, b'{"action":"x","detail":"%d"}' % i) for i in range(400)]


@dataclass
class Peer:
    """A one-connection TLS server running ``behave(conn)`` on a thread."""

    pki: Pki
    directory: Path
    behave: Callable[[ssl.SSLSocket, Peer], None]
    received: bytearray = field(default_factory=bytearray)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    def serve(self) -> threading.Thread:
        paths = self.pki.write(self.directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(paths["server_cert_pem"], paths["server_key_pem"])
        listener = socket.create_server(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]

        def run() -> None:
            with listener:
                raw, _ = listener.accept()
            with context.wrap_socket(raw, server_side=True) as conn:
                self.behave(conn, self)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def read_to_end(self, conn: ssl.SSLSocket) -> None:
        while data := conn.recv(65536):  # b"" once our close_notify arrives
            self.received += data


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture
def peer_factory(pki: Pki, tmp_path: Path) -> Iterator[Callable[..., Peer]]:
    peers: list[tuple[Peer, threading.Thread]] = []

    def make(behave: Callable[[ssl.SSLSocket, Peer], None]) -> Peer:
        peer = Peer(pki, tmp_path, behave)
        peers.append((peer, peer.serve()))
        return peer

    yield make
    for peer, thread in peers:
        peer.release.set()
        thread.join(5)


def _transport(peer: Peer, timeout: float = 5.0) -> SyslogTlsTransport:
    return SyslogTlsTransport(
        "snk_sys",
        host="127.0.0.1",
        port=peer.port,
        context=client_tls_context(ca_pem=peer.pki.ca_pem),
        hostname="cv-test",
        timeout_seconds=timeout,
    )


def _expected() -> bytes:
    return b"".join(frame(syslog_message(r, facility=13, hostname="cv-test")) for r in RECORDS)


def test_receiver_answering_close_notify_acknowledges(peer_factory: Callable[..., Peer]) -> None:
    def behave(conn: ssl.SSLSocket, peer: Peer) -> None:
        peer.read_to_end(conn)
        conn.unwrap()  # our close_notify back

    peer = peer_factory(behave)
    _transport(peer).deliver(RECORDS)
    assert bytes(peer.received) == _expected()


def test_receiver_closing_tcp_after_reading_everything_acknowledges(
    peer_factory: Callable[..., Peer],
) -> None:
    def behave(conn: ssl.SSLSocket, peer: Peer) -> None:
        peer.read_to_end(conn)  # then close without close_notify, as rsyslog does

    peer = peer_factory(behave)
    _transport(peer).deliver(RECORDS)
    assert bytes(peer.received) == _expected()


def test_receiver_dropping_the_connection_unread_is_a_failure(
    peer_factory: Callable[..., Peer],
) -> None:
    def behave(conn: ssl.SSLSocket, peer: Peer) -> None:
        peer.received += conn.recv(100)
        # Abort with unread data: the kernel answers with a reset.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    peer = peer_factory(behave)
    with pytest.raises(SinkError) as info:
        _transport(peer).deliver(RECORDS)
    assert info.value.error_class in {"ConnectionResetError", "BrokenPipeError", "OSError"}
    assert len(peer.received) < len(_expected())


def test_receiver_that_never_closes_is_a_failure_at_the_deadline(
    peer_factory: Callable[..., Peer],
) -> None:
    def behave(conn: ssl.SSLSocket, peer: Peer) -> None:
        peer.read_to_end(conn)
        peer.release.wait(10)  # read everything, but never say so

    peer = peer_factory(behave)
    with pytest.raises(SinkError) as info:
        _transport(peer, timeout=0.5).deliver(RECORDS)
    assert info.value.error_class == "TimeoutError"
    assert str(info.value) == "audit sink snk_sys (syslog-tls): delivery failed (TimeoutError)"
