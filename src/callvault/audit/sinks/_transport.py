"""The transport contract, its one error, and the TLS client context every transport uses.

Template method: :meth:`Transport.deliver` is the public entry point. It
returns only once the receiver has taken the whole batch and turns every
failure of a transport's ``_deliver`` into one :class:`SinkError` that names
the sink, its kind, the error's class and (for HTTP) the status code: never a
message of the underlying exception, which may quote a URL, a response body
or part of an entry. The cause is dropped (``from None``) for the same reason.

TLS (:func:`client_tls_context`): the server certificate is always verified,
against the configured CA bundle or else the system trust store, and its name
checked; TLS 1.2 is the floor (1.3 is negotiated whenever the peer has it) with
ECDHE AEAD suites only, no compression, no renegotiation. Python's ``ssl``
loads a client certificate and key from files only, so the key is written to a
private temporary directory (0700, the file 0600), loaded, and deleted at once.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from callvault.audit.sinks._record import Record
from callvault.errors import UnavailableError

TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


class SinkError(UnavailableError):
    """A batch was not (or not provably) taken by the sink; it will be sent again.

    The message holds the sink id, its kind, an error class and at most an
    HTTP status: never entry content, URLs or secrets.
    """

    code = "sink-unavailable"

    def __init__(
        self, sink_id: str, kind: str, error_class: str, *, status: int | None = None
    ) -> None:
        text = f"audit sink {sink_id} ({kind}): delivery failed ({error_class}"
        text += f", HTTP {status})" if status is not None else ")"
        super().__init__(text)
        self.sink_id = sink_id
        self.kind = kind
        self.error_class = error_class
        self.status = status


class Transport(ABC):
    """Delivers batches of records to one sink. Not thread-safe: one batch at a time."""

    kind: ClassVar[str]

    def __init__(self, sink_id: str) -> None:
        self.sink_id = sink_id

    def deliver(self, records: Sequence[Record]) -> None:
        """Return once the receiver has taken every record; else raise :class:`SinkError`."""
        if not records:
            return
        try:
            self._deliver(records)
        except SinkError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes one SinkError naming its class only
            raise SinkError(self.sink_id, self.kind, type(exc).__name__) from None

    @abstractmethod
    def _deliver(self, records: Sequence[Record]) -> None:
        """Send the batch; return only on the receiver's acknowledgement."""

    def _rejected(self, error_class: str, status: int | None = None) -> SinkError:
        return SinkError(self.sink_id, self.kind, error_class, status=status)

    def close(self) -> None:
        """Release connections; the transport is not used afterwards."""
        return

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()


def client_tls_context(
    *,
    ca_pem: str | None,
    min_version: str = "1.2",
    client_cert_pem: str | None = None,
    client_key_pem: str | None = None,
) -> ssl.SSLContext:
    """A verifying TLS client context (see the module docstring).

    Raises ``ssl.SSLError`` or ``ValueError`` for an unusable CA, certificate or key.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED
    ctx.minimum_version = TLS_VERSIONS[min_version]
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.set_ciphers(_TLS12_CIPHERS)
    if ca_pem is None:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        ctx.load_verify_locations(cadata=ca_pem)
    if client_cert_pem is not None:
        if client_key_pem is None:
            raise ValueError("a client certificate needs its key")
        _load_client_chain(ctx, client_cert_pem, client_key_pem)
    return ctx


def _load_client_chain(ctx: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    with tempfile.TemporaryDirectory(prefix="callvault-sink-") as tmp:
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        for path, text in ((cert, cert_pem), (key, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(text)
        ctx.load_cert_chain(cert, key)
