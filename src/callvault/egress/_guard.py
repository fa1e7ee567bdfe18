"""An outbound HTTPS client for URLs a tenant supplies, which cannot be pointed inside.

A tenant administrator who gives callvault a URL to fetch (IdP metadata, later
discovery documents and webhooks) could otherwise make the server reach what
only the server can: loopback services, the cloud metadata endpoint, the
private network. Every request through :meth:`EgressGuard.client` goes
through :class:`GuardedTransport`, which:

1. Checks the URL (:func:`check_url`): ``https`` only, no credentials, a
   port in the allowed set (443 unless the installation configured more), a
   host that is a name or a canonical IP literal (``127.1``, ``0x7f.1`` and
   ``2130706433`` are refused: resolvers read them as 127.0.0.1).
2. Resolves the host once (``socket.getaddrinfo``, bounded by the timeout).
3. Refuses if ANY address it resolved to is not globally routable
   (:func:`~callvault.egress._address.check_address`), so a name answering
   public and private addresses at once cannot be used either.
4. Connects to one of exactly those vetted addresses (the next on a failed
   connect): the URL's host is replaced by the address, the ``Host`` header
   keeps the name, and httpcore's ``sni_hostname`` request extension makes
   TLS send the name as SNI and verify the certificate against the name.
   Nothing resolves the name a second time, so a DNS answer that changes
   between check and connect (DNS rebinding) cannot redirect the connection.
5. Refuses redirects (a 3xx answer is an error: the next hop would be a new
   URL, never followed), compressed bodies (it asks for ``identity``: a
   small compressed body can inflate without bound), bodies above
   ``max_response_bytes`` and responses still arriving after the total
   deadline. Each network operation's timeout is cut to what is left of the
   deadline, so one request takes at most about the timeout plus one read.

Connections are never kept alive (a pooled connection to an address could
otherwise carry a request for another name), proxies and ``.netrc`` from the
environment are ignored, TLS is verified (system trust store, plus the
installation's extra CA file) with TLS 1.2 at least.

Refusals raise :class:`EgressRefusedError` carrying a reason code only; the
URL and the addresses are never put in a message or a log line (a tenant's
URL can be private to it). ``allow_loopback`` exists for tests and MUST NOT
be set from anything a tenant sends.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx

from callvault.egress._address import Address, Network, check_address
from callvault.errors import ConfigError, InvalidInputError

if TYPE_CHECKING:
    from callvault.config import Settings

log = logging.getLogger("callvault.egress")

DEFAULT_PORTS: Final = frozenset({443})
DEFAULT_TIMEOUT_S: Final = 10.0
DEFAULT_MAX_RESPONSE_BYTES: Final = 1024 * 1024
MAX_URL_CHARS: Final = 2048
#: Vetted addresses tried, in resolver order, when connecting fails.
MAX_CONNECT_ATTEMPTS: Final = 3

#: Every reason code :class:`EgressRefusedError` can carry, for documentation and tests.
URL_REASONS: Final = frozenset({"url", "scheme", "credentials", "host", "port"})
RESOLVE_REASONS: Final = frozenset({"resolve", "no-address"})
ADDRESS_REASONS: Final = frozenset(
    {
        "unspecified",
        "loopback",
        "private",
        "shared",
        "link-local",
        "reserved",
        "documentation",
        "benchmarking",
        "multicast",
        "unique-local",
        "site-local",
        "tunnel",
        "not-global",
        "invalid",
    }
)
RESPONSE_REASONS: Final = frozenset({"redirect", "encoding", "too-large", "timeout"})
_TIMEOUT_KEYS: Final = ("connect", "read", "write", "pool")

# getaddrinfo has no timeout of its own; lookups run here and are waited for at most
# the guard's timeout. Few workers: hung lookups queue (and time out) rather than pile up.
_RESOLVER: Final = ThreadPoolExecutor(max_workers=4, thread_name_prefix="callvault-egress-dns")


class EgressRefusedError(InvalidInputError):
    """An outbound request to a tenant-supplied URL was refused; ``reason`` says why.

    The message is the reason code only: never the URL, the host or an address.
    """

    code = "egress-refused"

    def __init__(self, reason: str) -> None:
        super().__init__(f"outbound request refused ({reason})")
        self.reason = reason


def _refuse(reason: str) -> EgressRefusedError:
    log.info("egress refused: %s", reason)
    return EgressRefusedError(reason)


def _ip_literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _legacy_ipv4(host: str) -> bool:
    """True for what ``inet_aton`` reads as IPv4 but is not dotted-quad (``127.1``, ``0x7f.1``)."""
    try:
        socket.inet_aton(host)
    except (OSError, ValueError):
        return False
    return True


def check_url(url: str | httpx.URL, *, ports: Collection[int] = DEFAULT_PORTS) -> tuple[str, int]:
    """Step (1): ``(host, port)`` of an acceptable URL, else :class:`EgressRefusedError`.

    ``host`` is the ASCII (IDNA) form without brackets, as the resolver and TLS want it.
    """
    if isinstance(url, str):
        if len(url) > MAX_URL_CHARS or any(ch.isspace() or not ch.isprintable() for ch in url):
            raise _refuse("url")
        try:
            url = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError):
            raise _refuse("url") from None
    if url.scheme != "https":
        raise _refuse("scheme")
    if url.userinfo:
        raise _refuse("credentials")
    try:
        host = url.raw_host.decode("ascii")
    except UnicodeDecodeError:
        raise _refuse("host") from None
    if not host or "%" in host or len(host) > 253:
        raise _refuse("host")
    if _ip_literal(host) is None and _legacy_ipv4(host):
        raise _refuse("host")
    port = url.port if url.port is not None else 443
    if port not in ports:
        raise _refuse("port")
    return host, port


def _resolve(host: str, port: int, timeout_s: float) -> tuple[Address, ...]:
    """Step (2): every address ``host`` resolves to, de-duplicated, in resolver order."""
    future = _RESOLVER.submit(
        socket.getaddrinfo, host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    try:
        infos = future.result(timeout=timeout_s)
    except FutureTimeoutError:
        future.cancel()
        raise _refuse("resolve") from None
    except (OSError, UnicodeError, ValueError):
        raise _refuse("resolve") from None
    found: list[Address] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = _ip_literal(str(sockaddr[0]))
        if ip is None:
            raise _refuse("resolve")
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
            ip = ipaddress.IPv6Address(ip.packed)  # vetted and connected without the zone
        if ip not in found:
            found.append(ip)
    if not found:
        raise _refuse("no-address")
    return tuple(found)


@dataclass(frozen=True, slots=True)
class Target:
    """A vetted destination: the URL's host and port and the addresses it may be reached at."""

    host: str
    port: int
    addresses: tuple[Address, ...]
    #: The URL named an IP address: no SNI (RFC 6066 forbids it), certificate checked against it.
    ip_literal: bool


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A verifying client context: the system trust store, plus ``ca_file`` if given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError, ValueError):
            raise ConfigError(
                "CALLVAULT_EGRESS_CA_FILE is not a readable PEM bundle",
                field="CALLVAULT_EGRESS_CA_FILE",
            ) from None
    return ctx


class EgressGuard:
    """The policy (ports, allow-list, limits, trust) and the clients that enforce it.

    ``ssl_context`` replaces the trust built from ``ca_file`` (tests pass a
    context trusting their own server). ``allow_loopback`` is for tests only.
    """

    def __init__(
        self,
        *,
        allow: Sequence[Network] = (),
        ports: Collection[int] = DEFAULT_PORTS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        ca_file: Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
        allow_loopback: bool = False,
    ) -> None:
        if not 0 < timeout_s <= 120:
            raise ValueError("egress timeout must be over 0 and at most 120 seconds")
        if max_response_bytes < 1:
            raise ValueError("egress response limit must be positive")
        self.allow = tuple(allow)
        self.ports = frozenset(ports)
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self.allow_loopback = allow_loopback
        self._ca_file = ca_file
        self._ssl_context = ssl_context

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> EgressGuard:
        """The installation's guard (``CALLVAULT_EGRESS_*``); never loopback."""
        kwargs: dict[str, Any] = {
            "allow": settings.egress_allow_networks,
            "ports": settings.egress_allowed_ports,
            "timeout_s": settings.egress_timeout_seconds,
            "ca_file": settings.egress_ca_file,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self) -> str:
        return (
            f"EgressGuard(ports={sorted(self.ports)}, allow={len(self.allow)} networks, "
            f"timeout_s={self.timeout_s}, loopback={'allowed' if self.allow_loopback else 'no'})"
        )

    def check_url(self, url: str | httpx.URL) -> tuple[str, int]:
        """Step (1) alone, without a name lookup: ``(host, port)`` or the refusal."""
        return check_url(url, ports=self.ports)

    def vet(self, url: str | httpx.URL) -> Target:
        """Steps (1)-(3): the vetted destination of ``url``, or :class:`EgressRefusedError`."""
        # (1):
        host, port = check_url(url, ports=self.ports)
        literal = _ip_literal(host)
        # (2):
        addresses = (literal,) if literal is not None else _resolve(host, port, self.timeout_s)
        # (3):
        for ip in addresses:
            reason = check_address(ip, allow=self.allow, allow_loopback=self.allow_loopback)
            if reason is not None:
                raise _refuse(reason)
        return Target(host, port, addresses, ip_literal=literal is not None)

    def transport(self, *, max_response_bytes: int | None = None) -> GuardedTransport:
        """A transport under this guard; ``max_response_bytes`` can only lower the limit."""
        limit = self.max_response_bytes
        if max_response_bytes is not None:
            limit = max(1, min(limit, max_response_bytes))
        ctx = self._ssl_context or tls_context(self._ca_file)
        return GuardedTransport(self, ssl_context=ctx, max_response_bytes=limit)

    def client(self, *, max_response_bytes: int | None = None, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` whose every request goes through :class:`GuardedTransport`.

        The caller SHOULD close it (``with guard.client() as http:``). ``kwargs``
        go to ``httpx.Client`` (headers, event hooks); transport, redirects,
        proxies and environment trust are fixed.
        """
        for fixed in ("transport", "mounts", "proxy", "verify", "trust_env", "follow_redirects"):
            if fixed in kwargs:
                raise TypeError(f"{fixed} is fixed by the egress guard")
        kwargs.setdefault("timeout", httpx.Timeout(self.timeout_s))
        headers = httpx.Headers(kwargs.pop("headers", None))
        headers.setdefault("User-Agent", "callvault")
        headers["Accept-Encoding"] = "identity"
        return httpx.Client(
            transport=self.transport(max_response_bytes=max_response_bytes),
            headers=headers,
            follow_redirects=False,
            trust_env=False,
            **kwargs,
        )


class _CappedStream(httpx.SyncByteStream):
    """Step (5) on the body: refuse past the byte limit or the deadline."""

    def __init__(self, inner: httpx.SyncByteStream, *, limit: int, deadline: float) -> None:
        self._inner = inner
        self._limit = limit
        self._deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self._inner:
            size += len(chunk)
            if size > self._limit:
                raise _refuse("too-large")
            if time.monotonic() > self._deadline:
                raise _refuse("timeout")
            yield chunk

    def close(self) -> None:
        self._inner.close()


class GuardedTransport(httpx.BaseTransport):
    """Steps (1)-(5) around an ``httpx.HTTPTransport`` that never keeps connections alive."""

    def __init__(
        self, guard: EgressGuard, *, ssl_context: ssl.SSLContext, max_response_bytes: int
    ) -> None:
        self._guard = guard
        self._limit = max_response_bytes
        self._inner = httpx.HTTPTransport(
            verify=ssl_context,
            trust_env=False,
            http1=True,
            http2=False,
            retries=0,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self._guard.timeout_s
        # (1)-(3):
        target = self._guard.vet(request.url)
        # (4):
        extensions = dict(request.extensions)
        if not target.ip_literal:
            extensions["sni_hostname"] = target.host.rstrip(".")  # SNI names carry no root dot
        failure: httpx.TransportError | None = None
        for ip in target.addresses[:MAX_CONNECT_ATTEMPTS]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _refuse("timeout")
            given = request.extensions.get("timeout") or {}
            extensions["timeout"] = {
                key: left if given.get(key) is None else min(float(given[key]), left)
                for key in _TIMEOUT_KEYS
            }
            pinned = httpx.Request(
                request.method,
                request.url.copy_with(host=str(ip)),
                headers=request.headers,  # Host: the name, as the URL gave it
                stream=request.stream,
                extensions=extensions,
            )
            try:
                response = self._inner.handle_request(pinned)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = exc
                continue
            return self._checked(response, deadline)
        assert failure is not None  # noqa: S101 - vet() returns at least one address
        raise failure

    def _checked(self, response: httpx.Response, deadline: float) -> httpx.Response:
        # (5):
        limit = self._limit
        if 300 <= response.status_code < 400:
            response.close()
            raise _refuse("redirect")
        if response.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
            response.close()
            raise _refuse("encoding")
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            response.close()
            raise _refuse("too-large")
        assert isinstance(response.stream, httpx.SyncByteStream)  # noqa: S101 - sync transport
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CappedStream(response.stream, limit=limit, deadline=deadline),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()
