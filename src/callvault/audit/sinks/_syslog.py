"""Syslog over TLS: RFC 5424 messages, RFC 5425 transport with octet-counting framing.

Message (RFC 5424 §6)::

    <PRI>1 TIMESTAMP HOSTNAME callvault - MSGID [callvault@32473 origin=".." index=".." ..] MSG

- PRI = facility * 8 + severity; severity is warning (4) when the outcome is
  denied or failure, notice (5) otherwise. The facility defaults to 13, "log
  audit", the RFC's facility for exactly this (authpriv, 10, is common too and
  can be configured).
- TIMESTAMP is the entry's time (when it happened, not when it was sent);
  HOSTNAME the configured name or this host's; MSGID the entry's action,
  cut to the RFC's 32 printable ASCII characters.
- STRUCTURED-DATA carries origin, index and tenant under the SD-ID
  ``callvault@32473`` (32473 is the documentation enterprise number of
  RFC 5612, standing in until the project has its own). PARAM-VALUEs escape
  ``"``, ``\\`` and ``]`` (§6.3.3).
- MSG is the OCSF JSON of :mod:`._record`, UTF-8 without the BOM of §6.4:
  receivers that hand MSG to a JSON parser choke on a BOM (the reason CPython
  dropped it from ``SysLogHandler``).

Framing is octet counting (RFC 5425 §4.3, RFC 6587 §3.4.1): ``LEN SP MSG``,
with LEN in octets, so a message may hold anything, newlines included.

Acknowledgement: syslog has none, so a batch counts as delivered only when, on
one fresh TLS connection, every frame was written, our close_notify was sent
and our side of TCP closed, and the receiver then closed its side cleanly (its
own close_notify, or a plain FIN). A receiver closes only once it has read to
our end of stream; one that dies or drops the connection first makes us see a
reset, a TLS alert or a timeout, and the whole batch is sent again (receivers
dedupe by (origin, index)). This proves the receiver *read* the batch, not that
it stored it: a receiver that loses its in-memory queue in a crash loses
messages it had read, which only a disk-assisted queue on its side prevents.
One connection per batch costs a handshake per batch; batches amortise it.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
from collections.abc import Sequence

from callvault.audit.sinks._record import EntryView, Record, ocsf_json
from callvault.audit.sinks._transport import Transport

APP_NAME = "callvault"
SD_ID = "callvault@32473"
FACILITY_LOG_AUDIT = 13
SEVERITY_WARNING, SEVERITY_NOTICE = 4, 5
DEFAULT_PORT = 6514

_NIL = "-"
_CHUNK = 64 * 1024
# RFC 3339 as RFC 5424 §6.2.3 narrows it: at most 6 fractional digits, upper-case T and Z.
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})", re.ASCII
)


def escape_param_value(value: str) -> str:
    """An SD PARAM-VALUE: backslash, double quote and closing bracket escaped (§6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def printusascii(value: str | None, max_len: int) -> str:
    """``value`` as a header field: printable ASCII only (others become ``_``), cut; or ``-``."""
    if not value:
        return _NIL
    return "".join(c if "!" <= c <= "~" else "_" for c in value[:max_len])


def frame(message: bytes) -> bytes:
    """Octet-counting framing: the length in octets, a space, the message."""
    return b"%d %b" % (len(message), message)


def syslog_message(record: Record, *, facility: int, hostname: str) -> bytes:
    """The RFC 5424 message for ``record`` (see the module docstring)."""
    view = EntryView.parse(record.entry)
    severity = SEVERITY_WARNING if view.adverse else SEVERITY_NOTICE
    timestamp = view.time if view.time and _TIMESTAMP.fullmatch(view.time) else _NIL
    params = [("origin", record.origin), ("index", str(record.index))]
    if view.tenant is not None:
        params.append(("tenant", view.tenant))
    sd = "[" + SD_ID + "".join(f' {k}="{escape_param_value(v)}"' for k, v in params) + "]"
    header = (
        f"<{facility * 8 + severity}>1 {timestamp} {printusascii(hostname, 255)} {APP_NAME} "
        f"{_NIL} {printusascii(view.action, 32)} {sd} "
    )
    return header.encode() + ocsf_json(record, view)


def default_hostname() -> str:
    """This host's name as a HOSTNAME field (no DNS lookup)."""
    return printusascii(socket.gethostname(), 255)


class SyslogTlsTransport(Transport):
    """RFC 5425 syslog over TLS; one connection per batch (see the module docstring)."""

    kind = "syslog-tls"

    def __init__(
        self,
        sink_id: str,
        *,
        host: str,
        port: int,
        context: ssl.SSLContext,
        server_name: str | None = None,
        facility: int = FACILITY_LOG_AUDIT,
        hostname: str | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        super().__init__(sink_id)
        self._address = (host, port)
        self._server_name = server_name or host
        self._context = context
        self._facility = facility
        self._hostname = hostname or default_hostname()
        self._timeout = timeout_seconds

    def _deliver(self, records: Sequence[Record]) -> None:
        payload = b"".join(
            frame(syslog_message(r, facility=self._facility, hostname=self._hostname))
            for r in records
        )
        _TlsExchange(self._context, self._server_name, time.monotonic() + self._timeout).send(
            self._address, payload
        )


class _TlsExchange:
    """One connection: handshake, write, close_notify + FIN, wait for the peer's clean close.

    Driven through memory BIOs so that our close_notify and TCP half-close go
    out together without waiting, which works with receivers that answer
    close_notify and with those that only react to the end of the TCP stream.
    """

    def __init__(self, context: ssl.SSLContext, server_name: str, deadline: float) -> None:
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_name)
        self._deadline = deadline

    def send(self, address: tuple[str, int], payload: bytes) -> None:
        with socket.create_connection(address, timeout=self._remaining()) as sock:
            # (1): handshake; the server certificate and name are verified here.
            while True:
                try:
                    self._tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    self._flush(sock)
                    self._receive(sock, eof_ok=False)
            self._flush(sock)
            # (2): every frame.
            view = memoryview(payload)
            for start in range(0, len(view), _CHUNK):
                self._tls.write(view[start : start + _CHUNK])
                self._flush(sock)
            # (3): close_notify, then our TCP FIN.
            with contextlib.suppress(ssl.SSLWantReadError):
                self._tls.unwrap()
            self._flush(sock)
            sock.shutdown(socket.SHUT_WR)
            # (4): the peer's clean close. A reset, an alert (a client
            # certificate refused after a TLS 1.3 handshake) or the deadline
            # raise; its own close_notify is welcome but not required.
            while self._receive(sock, eof_ok=True):
                try:
                    self._tls.unwrap()
                except ssl.SSLWantReadError:
                    continue

    def _remaining(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    def _flush(self, sock: socket.socket) -> None:
        data = self._outgoing.read()
        if data:
            sock.settimeout(self._remaining())
            sock.sendall(data)

    def _receive(self, sock: socket.socket, *, eof_ok: bool) -> bool:
        sock.settimeout(self._remaining())
        data = sock.recv(_CHUNK)
        if not data:
            if not eof_ok:
                raise ConnectionAbortedError
            return False
        self._incoming.write(data)
        return True
