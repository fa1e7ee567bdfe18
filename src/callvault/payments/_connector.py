"""Handing a card to the deployment's payment processor: the connector contract, and HTTPS.

A :class:`PaymentConnector` receives a :class:`ConnectorRequest` (token id,
the card number and maybe the security code, as ``bytearray`` buffers the
vault zeroes once ``send`` returns) and answers with a
:class:`ConnectorResult`: the processor's reference and status, never the
card. Every failure is a :class:`PaymentConnectorError` naming the
connector, an error class and at most an HTTP status: never a message of the
underlying exception, which may quote the request.

:class:`HttpPaymentConnector` POSTs JSON over HTTPS:

1. The URL MUST be ``https``; ``http`` only with ``allow_insecure_loopback``
   and a loopback host (tests). No credentials in the URL: the secret is sent
   as ``Authorization: Bearer``.
2. The server certificate is always verified (the ``ca_file`` bundle, else the
   system store) and its name checked; TLS 1.2 is the floor; redirects are not
   followed; proxy settings from the environment are ignored.
3. The body is built in one preallocated ``bytearray`` (so no grown-and-freed
   copy of the card is left behind by callvault) and zeroed after the request.
4. The reply MUST be 2xx and a JSON object ``{"reference": str, "status": str}``
   of at most :data:`MAX_REPLY_BYTES`; anything else is a
   :class:`PaymentConnectorError`.
"""

from __future__ import annotations

import ipaddress
import json
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Protocol, Self
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from callvault.audit.sinks import client_tls_context
from callvault.errors import InvalidInputError, UnavailableError
from callvault.payments._card import MAX_DIGITS, MIN_DIGITS
from callvault.payments._cvv import MAX_CVV_DIGITS, MIN_CVV_DIGITS
from callvault.payments._token import is_token_id

DEFAULT_TIMEOUT_SECONDS: Final = 10.0
#: Largest reply read from a processor, bytes.
MAX_REPLY_BYTES: Final = 16 * 1024
#: A connector's name: it goes into audit entries and error messages.
NAME_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_REFERENCE: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_STATUS: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")


class PaymentConnectorError(UnavailableError):
    """The card was not (or not provably) taken by the processor.

    The message holds the connector's name, an error class and at most an HTTP
    status: never the card, the code, the URL or the processor's reply.
    """

    code = "payment-connector-failed"

    def __init__(self, connector: str, error_class: str, *, status: int | None = None) -> None:
        text = f"payment connector {connector}: hand-off failed ({error_class}"
        text += f", HTTP {status})" if status is not None else ")"
        super().__init__(text)
        self.connector = connector
        self.error_class = error_class
        self.status = status


def _zero(buf: bytearray) -> None:
    buf[:] = bytes(len(buf))


def check_connector_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidInputError(
            "payment connector name must be 1-64 of a-z 0-9 _ . - (starting alphanumeric)",
            field="connector",
        )
    return name


@dataclass(frozen=True, slots=True, repr=False)
class ConnectorRequest:
    """What a connector sends. ``pan`` and ``cvv`` are ASCII digits the vault zeroes afterwards;
    a connector MUST NOT keep them past ``send``."""

    token_id: str
    pan: bytearray
    cvv: bytearray | None = None

    def __post_init__(self) -> None:
        if not is_token_id(self.token_id):
            raise ValueError("connector request: malformed token id")
        if not (MIN_DIGITS <= len(self.pan) <= MAX_DIGITS and self.pan.isdigit()):
            raise ValueError("connector request: malformed card number")
        if self.cvv is not None and not (
            MIN_CVV_DIGITS <= len(self.cvv) <= MAX_CVV_DIGITS and self.cvv.isdigit()
        ):
            raise ValueError("connector request: malformed security code")

    def __repr__(self) -> str:
        cvv = "None" if self.cvv is None else "<redacted>"
        return f"ConnectorRequest(token_id={self.token_id}, pan=<redacted>, cvv={cvv})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class ConnectorResult:
    """The processor's answer: its reference for the hand-off and a status word. Ids only."""

    connector: str
    token_id: str
    reference: str
    status: str

    def __post_init__(self) -> None:
        if not isinstance(self.reference, str) or not _REFERENCE.fullmatch(self.reference):
            raise ValueError("connector reply: malformed reference")
        if not isinstance(self.status, str) or not _STATUS.fullmatch(self.status):
            raise ValueError("connector reply: malformed status")


class PaymentConnector(Protocol):
    """A payment processor integration (see the module docstring)."""

    @property
    def name(self) -> str: ...

    def send(self, request: ConnectorRequest) -> ConnectorResult:
        """Hand the card over; return the processor's reference, or raise."""
        ...


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str, *, allow_insecure_loopback: bool) -> str:
    # (1): the URL is never quoted back: it may hold a path or query the operator considers private.
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a malformed port
    except (ValueError, TypeError):
        raise InvalidInputError("payment connector URL is malformed", field="url") from None
    if not host:
        raise InvalidInputError("payment connector URL has no host", field="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError(
            "payment connector URL must not hold credentials (use the secret)", field="url"
        )
    if parts.fragment:
        raise InvalidInputError("payment connector URL must not have a fragment", field="url")
    scheme = parts.scheme.lower()
    if scheme == "https":
        return url
    if scheme == "http" and allow_insecure_loopback and _is_loopback(host):
        return url
    raise InvalidInputError("payment connector URL must use https", field="url")


def _tls_context(ca_file: Path | str | None) -> ssl.SSLContext:
    # (2):
    if ca_file is None:
        return client_tls_context(ca_pem=None)
    try:
        pem = Path(ca_file).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise InvalidInputError(
            "payment connector CA file is not readable", field="ca_file"
        ) from None
    try:
        return client_tls_context(ca_pem=pem)
    except (ssl.SSLError, ValueError):
        raise InvalidInputError(
            "payment connector CA file is not a PEM certificate bundle", field="ca_file"
        ) from None


def request_body(request: ConnectorRequest) -> bytearray:
    """``{"token":"…","pan":"…"[,"cvv":"…"]}`` in one preallocated buffer (step 3).

    The fields are checked (id characters and digits only) by :class:`ConnectorRequest`,
    so nothing in them needs JSON escaping.
    """
    parts: list[bytes | bytearray] = [
        b'{"token":"',
        request.token_id.encode("ascii"),
        b'","pan":"',
        request.pan,
    ]
    if request.cvv is not None:
        parts += [b'","cvv":"', request.cvv]
    parts.append(b'"}')
    out = bytearray(sum(len(p) for p in parts))
    at = 0
    for part in parts:
        out[at : at + len(part)] = part
        at += len(part)
    return out


class HttpPaymentConnector:
    """POSTs the card as JSON to a processor over verified HTTPS (module docstring)."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        secret: SecretStr | str,
        ca_file: Path | str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        allow_insecure_loopback: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._name = check_connector_name(name)
        self._url = _check_url(url, allow_insecure_loopback=allow_insecure_loopback)
        self._secret = secret if isinstance(secret, SecretStr) else SecretStr(secret)
        if not self._secret.get_secret_value():
            raise InvalidInputError("payment connector secret is empty", field="secret")
        if not 0 < timeout_seconds <= 300:
            raise InvalidInputError(
                "payment connector timeout must be over 0 and at most 300 seconds",
                field="timeout_seconds",
            )
        self._client = httpx.Client(
            headers={"Content-Type": "application/json", "User-Agent": "callvault"},
            verify=_tls_context(ca_file),
            timeout=timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            transport=transport,
        )

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"HttpPaymentConnector(name={self._name})"

    def send(self, request: ConnectorRequest) -> ConnectorResult:
        body = request_body(request)
        failure: str | None = None
        status: int | None = None
        reply = b""
        try:
            headers = {"Authorization": f"Bearer {self._secret.get_secret_value()}"}
            with self._client.stream(
                "POST", self._url, content=bytes(body), headers=headers
            ) as response:
                status = response.status_code
                reply = self._read_capped(response)
        except PaymentConnectorError as exc:
            failure = exc.error_class
        except Exception as exc:  # noqa: BLE001 - every failure becomes one error naming its class only
            failure = type(exc).__name__
        finally:
            _zero(body)
        # Raised here, outside the handlers: the underlying exception (which holds
        # the request, body included) is neither the cause nor the context.
        if failure is not None:
            raise PaymentConnectorError(self._name, failure, status=status)
        if status is None or not 200 <= status < 300:
            raise PaymentConnectorError(self._name, "HTTPStatusError", status=status)
        return self._result(request.token_id, reply, status)

    def _read_capped(self, response: httpx.Response) -> bytes:
        # (4):
        out = bytearray()
        for chunk in response.iter_bytes():
            out += chunk
            if len(out) > MAX_REPLY_BYTES:
                raise PaymentConnectorError(
                    self._name, "ReplyTooLarge", status=response.status_code
                )
        return bytes(out)

    def _result(self, token_id: str, reply: bytes, status: int) -> ConnectorResult:
        try:
            doc = json.loads(reply)
            result = ConnectorResult(
                connector=self._name,
                token_id=token_id,
                reference=doc["reference"],
                status=doc["status"],
            )
        except (ValueError, KeyError, TypeError):
            result = None
        if result is None:
            raise PaymentConnectorError(self._name, "MalformedReply", status=status)
        return result

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()
