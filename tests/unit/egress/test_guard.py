"""The egress guard: what a tenant-supplied URL can and cannot make the server reach.

Addresses are decided by a pure table (``check_address``); the client is
exercised against a real HTTPS server on loopback, with ``socket.getaddrinfo``
monkeypatched so names (``idp.test``...) resolve as each attack needs.
"""

from __future__ import annotations

import gzip
import ipaddress
import logging
import socket
from typing import Any

import httpx
import pytest

from callvault.config import load_settings
from callvault.egress import (
    ADDRESS_REASONS,
    EgressGuard,
    EgressRefusedError,
    check_address,
    check_url,
    parse_allow_list,
)
from callvault.errors import ConfigError, InvalidInputError
from tests.unit.egress._server import Answer, HttpsServer
from tests.unit.egress.conftest import FakeDns

PUBLIC_V4 = "93.184.215.14"

# --- check_address: the table ------------------------------------------------------------------

INTERNAL = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # cloud instance metadata
    ("169.254.0.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("100.64.0.1", "shared"),  # carrier-grade NAT
    ("100.127.255.254", "shared"),
    ("fc00::1", "unique-local"),
    ("fd00:ec2::254", "unique-local"),  # AWS IMDS over IPv6
    ("fec0::1", "site-local"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - an address under test, nothing binds to it
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("ff05::2", "multicast"),
    ("255.255.255.255", "reserved"),
    ("240.0.0.1", "reserved"),
    ("192.0.0.8", "reserved"),
    ("192.88.99.1", "reserved"),
    ("100::1", "reserved"),
    ("::1.2.3.4", "reserved"),  # IPv4-compatible (deprecated)
    ("64:ff9b:1::a00:1", "reserved"),  # local-use NAT64
    ("2001:2::1", "reserved"),
    ("5f00::1", "reserved"),
    ("4000::1", "reserved"),  # outside 2000::/3
    ("192.0.2.1", "documentation"),
    ("198.51.100.1", "documentation"),
    ("203.0.113.1", "documentation"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "tunnel"),  # Teredo
    ("2002:808:808::1", "tunnel"),  # 6to4 of a public address: still a tunnel
]

MAPPED = [
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:7f00:1", "loopback"),
    ("0:0:0:0:0:ffff:7f00:0001", "loopback"),
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.1.2.3", "private"),
    ("::ffff:100.64.0.1", "shared"),
    ("::ffff:0.0.0.0", "unspecified"),
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 to loopback
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 to cloud metadata
    ("64:ff9b::c0a8:101", "private"),
    ("2002:7f00:1::1", "loopback"),  # 6to4 wrapping loopback
    ("2002:a9fe:a9fe::", "link-local"),  # 6to4 wrapping cloud metadata
    ("2002:a00:1::", "private"),
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    PUBLIC_V4,
    "100.63.255.255",  # just below the CGNAT block
    "100.128.0.0",  # just above it
    "172.15.255.255",
    "172.32.0.0",
    "2606:4700:4700::1111",
    "2a00:1450:4009:81f::200e",
    "::ffff:8.8.8.8",  # mapped public
    "64:ff9b::808:808",  # NAT64 to a public address (DNS64 on IPv6-only hosts)
]


@pytest.mark.parametrize(("address", "reason"), INTERNAL + MAPPED)
def test_every_internal_address_class_is_refused(address: str, reason: str) -> None:
    assert check_address(address) == reason
    assert check_address(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", PUBLIC)
def test_globally_routable_addresses_are_allowed(address: str) -> None:
    assert check_address(address) is None


def test_every_reason_is_a_documented_code() -> None:
    for address, _ in INTERNAL + MAPPED:
        assert check_address(address) in ADDRESS_REASONS
    assert check_address("not an address") == "invalid"


def test_allow_list_opens_private_space_it_names_and_nothing_else() -> None:
    allow = parse_allow_list(["10.20.0.0/16", "fd12:3456::/32", "100.64.8.0/24"])
    assert check_address("10.20.1.5", allow=allow) is None
    assert check_address("::ffff:10.20.1.5", allow=allow) is None  # mapped form too
    assert check_address("fd12:3456::1", allow=allow) is None
    assert check_address("100.64.8.9", allow=allow) is None
    assert check_address("10.21.0.1", allow=allow) == "private"
    assert check_address("192.168.0.1", allow=allow) == "private"
    assert check_address("2002:a14:105::", allow=allow) == "private"  # 6to4 is not opened


@pytest.mark.parametrize(
    ("network", "address", "reason"),
    [
        ("127.0.0.0/8", "127.0.0.1", "loopback"),
        ("169.254.0.0/16", "169.254.169.254", "link-local"),
        ("0.0.0.0/0", "169.254.169.254", "link-local"),
        ("::/0", "::1", "loopback"),
        ("224.0.0.0/4", "224.0.0.1", "multicast"),
    ],
)
def test_allow_list_can_never_open_loopback_link_local_or_multicast(
    network: str, address: str, reason: str
) -> None:
    # Even handed networks that bypass parse_allow_list's own refusal.
    assert check_address(address, allow=[ipaddress.ip_network(network)]) == reason


@pytest.mark.parametrize(
    "entry",
    ["169.254.0.0/16", "127.0.0.0/8", "0.0.0.0/0", "8.8.8.0/24", "10.0.0.0/7", "::/0", "fe80::/10"],
)
def test_allow_list_entries_beyond_private_space_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="entry 2") as exc:
        parse_allow_list(["10.0.0.0/8", entry])
    assert entry not in str(exc.value)


@pytest.mark.parametrize("entry", ["10.0.0.1/8", "bogus", "10.0.0.0/33"])
def test_malformed_allow_list_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="entry 1"):
        parse_allow_list([entry])


def test_loopback_is_opened_only_by_the_test_switch() -> None:
    assert check_address("127.0.0.1", allow_loopback=True) is None
    assert check_address("::ffff:127.0.0.1", allow_loopback=True) is None
    assert check_address("169.254.169.254", allow_loopback=True) == "link-local"
    assert check_address("10.0.0.1", allow_loopback=True) == "private"


# --- settings --------------------------------------------------------------------------------


def test_settings_parse_the_operator_allow_list_and_ports() -> None:
    s = load_settings(
        {
            "CALLVAULT_EGRESS_ALLOW_CIDRS": "10.20.0.0/16, fd00::/8",
            "CALLVAULT_EGRESS_ALLOW_PORTS": "443, 8443",
        }
    )
    assert s.egress_allow_networks == (
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert s.egress_allowed_ports == frozenset({443, 8443})
    assert load_settings({}).egress_allowed_ports == frozenset({443})
    assert load_settings({}).egress_allow_networks == ()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CALLVAULT_EGRESS_ALLOW_CIDRS", "169.254.0.0/16"),
        ("CALLVAULT_EGRESS_ALLOW_CIDRS", "10.0.0.0/8,nonsense"),
        ("CALLVAULT_EGRESS_ALLOW_PORTS", "443,70000"),
        ("CALLVAULT_EGRESS_ALLOW_PORTS", "https"),
        ("CALLVAULT_EGRESS_TIMEOUT_SECONDS", "0"),
    ],
)
def test_bad_egress_settings_stop_startup(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings({name: value})
    assert name in str(exc.value)


def test_an_unreadable_ca_file_is_a_configuration_error(tmp_path: Any) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    for path in (bad, tmp_path / "missing.pem"):
        with pytest.raises(ConfigError) as exc:
            EgressGuard(ca_file=path).client()
        assert exc.value.field == "CALLVAULT_EGRESS_CA_FILE"


def test_an_extra_ca_file_is_trusted_besides_the_system_store(
    dns: FakeDns, server: HttpsServer
) -> None:
    dns.answers["idp.test"] = [["127.0.0.1"]]
    server.routes["/m"] = Answer(200, b"ok")
    guard = EgressGuard(ports={server.port}, ca_file=server.cert, allow_loopback=True)
    with guard.client() as http:
        assert http.get(server.url("/m", host="idp.test")).content == b"ok"


def test_the_installation_guard_never_allows_loopback() -> None:
    guard = EgressGuard.from_settings(load_settings({}))
    assert not guard.allow_loopback
    with pytest.raises(EgressRefusedError) as exc:
        guard.vet("https://127.0.0.1/metadata")
    assert exc.value.reason == "loopback"


# --- URL checks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://idp.example.com/metadata", "scheme"),
        ("ftp://idp.example.com/metadata", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://127.0.0.1:6379/_INFO", "scheme"),
        ("//idp.example.com/metadata", "scheme"),
        ("https://user:pass@idp.example.com/metadata", "credentials"),
        ("https://user@idp.example.com/metadata", "credentials"),
        ("https://idp.example.com:8443/metadata", "port"),
        ("https://idp.example.com:22/", "port"),
        ("https://idp.example.com:80/", "port"),
        ("https:///metadata", "host"),
        ("https://127.1/", "host"),
        ("https://2130706433/", "host"),
        ("https://0x7f000001/", "host"),
        ("https://0177.0.0.1/", "url"),  # httpx itself refuses leading-zero octets
        ("https://[fe80::1%25eth0]/", "host"),
        ("https://idp.example.com/meta data", "url"),
        ("https://idp.example.com/\x00", "url"),
        ("https://" + "a" * 2050 + ".com/", "url"),
        ("https://[::1/", "url"),
    ],
)
def test_bad_urls_are_refused_before_any_lookup(dns: FakeDns, url: str, reason: str) -> None:
    with pytest.raises(EgressRefusedError) as exc:
        EgressGuard().vet(url)
    assert exc.value.reason == reason
    assert dns.lookups == []


def test_configured_ports_are_allowed() -> None:
    assert check_url("https://idp.example.com:8443/m", ports={443, 8443}) == (
        "idp.example.com",
        8443,
    )
    assert check_url("https://idp.example.com/m") == ("idp.example.com", 443)
    assert check_url("https://idp.example.com:443/m") == ("idp.example.com", 443)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/", "loopback"),
        ("https://[::1]/", "loopback"),
        ("https://[::ffff:127.0.0.1]/", "loopback"),
        ("https://[::ffff:a9fe:a9fe]/", "link-local"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://10.0.0.5/", "private"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://[64:ff9b::a9fe:a9fe]/", "link-local"),
    ],
)
def test_internal_ip_literal_hosts_are_refused(dns: FakeDns, url: str, reason: str) -> None:
    with pytest.raises(EgressRefusedError) as exc:
        EgressGuard().vet(url)
    assert exc.value.reason == reason


# --- resolution -------------------------------------------------------------------------------


def test_a_name_resolving_to_public_and_private_addresses_is_refused(dns: FakeDns) -> None:
    dns.answers["mixed.test"] = [[PUBLIC_V4, "10.0.0.7"]]
    with pytest.raises(EgressRefusedError) as exc:
        EgressGuard().vet("https://mixed.test/metadata")
    assert exc.value.reason == "private"
    dns.answers["mixed6.test"] = [["2606:4700:4700::1111", "::ffff:169.254.169.254"]]
    with pytest.raises(EgressRefusedError) as exc:
        EgressGuard().vet("https://mixed6.test/metadata")
    assert exc.value.reason == "link-local"


@pytest.mark.parametrize("internal", ["127.0.0.1", "169.254.169.254", "fd00::1", "::", "10.9.9.9"])
def test_a_name_resolving_to_an_internal_address_is_refused(dns: FakeDns, internal: str) -> None:
    dns.answers["inside.test"] = [[internal]]
    with pytest.raises(EgressRefusedError) as exc:
        EgressGuard().vet("https://inside.test/metadata")
    assert exc.value.reason == check_address(internal)


def test_a_public_name_is_vetted_with_all_its_addresses(dns: FakeDns) -> None:
    dns.answers["public.test"] = [[PUBLIC_V4, "2606:4700:4700::1111", PUBLIC_V4]]
    target = EgressGuard().vet("https://public.test/metadata")
    assert [str(a) for a in target.addresses] == [PUBLIC_V4, "2606:4700:4700::1111"]
    assert (target.host, target.port, target.ip_literal) == ("public.test", 443, False)


def test_unresolvable_names_are_refused(dns: FakeDns) -> None:
    dns.answers["nowhere.test"] = [[]]
    with pytest.raises(EgressRefusedError) as exc:
        EgressGuard().vet("https://nowhere.test/")
    assert exc.value.reason == "resolve"


def test_operator_allow_list_admits_an_on_premises_idp(dns: FakeDns) -> None:
    dns.answers["adfs.trust.test"] = [["10.20.4.5"]]
    guard = EgressGuard(allow=parse_allow_list(["10.20.0.0/16"]))
    assert [str(a) for a in guard.vet("https://adfs.trust.test/m").addresses] == ["10.20.4.5"]
    dns.answers["adfs2.trust.test"] = [["10.20.4.5", "10.99.0.1"]]
    with pytest.raises(EgressRefusedError):
        guard.vet("https://adfs2.trust.test/m")


# --- the client: pinned connection, TLS to the name --------------------------------------------


def _guard(server: HttpsServer, **kwargs: Any) -> EgressGuard:
    kwargs.setdefault("allow_loopback", True)
    return EgressGuard(
        ports={443, server.port}, ssl_context=server.client_context(), timeout_s=5, **kwargs
    )


def test_request_connects_to_the_vetted_address_with_sni_and_host_of_the_name(
    dns: FakeDns, server: HttpsServer
) -> None:
    dns.answers["idp.test"] = [["127.0.0.1"]]
    server.routes["/m"] = Answer(200, b"hello")
    with _guard(server).client() as http:
        r = http.get(server.url("/m", host="idp.test"))
    assert r.status_code == 200
    assert r.content == b"hello"
    assert dns.lookups == ["idp.test"]  # once: the connection did not resolve it again
    assert server.sni == ["idp.test"]
    assert server.seen[0].headers["Host"] == f"idp.test:{server.port}"
    assert server.seen[0].headers["Accept-Encoding"] == "identity"


def test_certificate_is_still_verified_against_the_name(dns: FakeDns, server: HttpsServer) -> None:
    # The server's certificate does not name this host: pinning the address must not
    # turn verification off (it is checked against the name, not the address).
    dns.answers["unnamed.test"] = [["127.0.0.1"]]
    server.routes["/m"] = Answer(200, b"hello")
    with _guard(server).client() as http, pytest.raises(httpx.ConnectError):
        http.get(server.url("/m", host="unnamed.test"))
    assert server.seen == []


def test_dns_rebinding_cannot_redirect_the_connection(
    dns: FakeDns, server: HttpsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """First answer public (passes the check), every later one loopback (the attack)."""
    server.routes["/m"] = Answer(200, b"internal secret")
    url = server.url("/m", host="rebind.test")
    # Control: a check-then-fetch client that resolves twice reaches the internal server.
    dns.answers["rebind.test"] = [[PUBLIC_V4], ["127.0.0.1"]]
    EgressGuard(ports={server.port}).vet(url)
    with httpx.Client(verify=server.client_context(), trust_env=False) as naive:
        assert naive.get(url).content == b"internal secret"
    assert len(server.seen) == 1
    # The guard connects to the address it vetted, never to a second answer.
    server.seen.clear()
    dns.lookups.clear()
    dns.answers["rebind.test"] = [[PUBLIC_V4], ["127.0.0.1"]]
    connects: list[tuple[str, int]] = []

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        connects.append((str(address[0]), int(address[1])))
        raise OSError(101, "Network is unreachable")  # the public address, offline here

    monkeypatch.setattr(socket, "create_connection", create_connection)
    with EgressGuard(ports={server.port}).client() as http, pytest.raises(httpx.ConnectError):
        http.get(url)
    assert connects == [(PUBLIC_V4, server.port)]
    assert dns.lookups == ["rebind.test"]
    assert server.seen == []


def test_connections_are_not_reused_across_names(dns: FakeDns, server: HttpsServer) -> None:
    dns.answers["idp.test"] = [["127.0.0.1"]]
    dns.answers["other-name.test"] = [["127.0.0.1"]]
    server.routes["/m"] = Answer(200, b"ok")
    with _guard(server).client() as http:
        http.get(server.url("/m", host="idp.test"))
        http.get(server.url("/m", host="other-name.test"))
    assert server.sni == ["idp.test", "other-name.test"]


def test_an_ip_literal_url_is_fetched_without_sni(server: HttpsServer) -> None:
    server.routes["/m"] = Answer(200, b"ok")
    with _guard(server).client() as http:
        assert http.get(server.url("/m")).content == b"ok"
    assert server.sni == [None]


def test_loopback_server_is_refused_without_the_test_switch(server: HttpsServer) -> None:
    server.routes["/m"] = Answer(200, b"ok")
    with _guard(server, allow_loopback=False).client() as http:
        for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]"):
            with pytest.raises(EgressRefusedError) as exc:
                http.get(server.url("/m", host=host))
            assert exc.value.reason == "loopback"
    assert server.seen == []


# --- the client: answers it refuses ---------------------------------------------------------


def test_redirects_are_refused_even_when_the_caller_asks_to_follow(server: HttpsServer) -> None:
    server.routes["/r"] = Answer(302, headers={"Location": "https://169.254.169.254/"})
    with _guard(server).client() as http:
        for follow in (False, True):
            with pytest.raises(EgressRefusedError) as exc:
                http.get(server.url("/r"), follow_redirects=follow)
            assert exc.value.reason == "redirect"


def test_client_settings_that_would_weaken_the_guard_are_refused(server: HttpsServer) -> None:
    for name in ("follow_redirects", "transport", "verify", "trust_env", "proxy", "mounts"):
        with pytest.raises(TypeError):
            _guard(server).client(**{name: None})


def test_oversized_bodies_are_refused(server: HttpsServer) -> None:
    server.routes["/big"] = Answer(200, b"x" * 5000)
    server.routes["/trickle"] = Answer(200, b"x" * 5000, trickle=1000)
    with _guard(server, max_response_bytes=4096).client() as http:
        for path in ("/big", "/trickle"):
            with pytest.raises(EgressRefusedError) as exc:
                http.get(server.url(path))
            assert exc.value.reason == "too-large"


def test_compressed_bodies_are_refused(server: HttpsServer) -> None:
    bomb = gzip.compress(b"\0" * 10_000_000)
    server.routes["/gz"] = Answer(200, bomb, headers={"Content-Encoding": "gzip"})
    with _guard(server).client() as http, pytest.raises(EgressRefusedError) as exc:
        http.get(server.url("/gz"))
    assert exc.value.reason == "encoding"


def test_a_slow_body_stops_at_the_deadline(server: HttpsServer) -> None:
    server.routes["/slow"] = Answer(200, b"x" * 40, trickle=1, pause_s=0.1)
    guard = EgressGuard(
        ports={server.port}, ssl_context=server.client_context(), timeout_s=1, allow_loopback=True
    )
    with guard.client() as http, pytest.raises(EgressRefusedError) as exc:
        http.get(server.url("/slow"))
    assert exc.value.reason == "timeout"


# --- what a refusal says ------------------------------------------------------------------------


def test_refusals_name_a_reason_never_the_url_or_address(
    dns: FakeDns, caplog: pytest.LogCaptureFixture
) -> None:
    dns.answers["tenant-private-idp.test"] = [["10.77.66.55"]]
    caplog.set_level(logging.DEBUG)
    with pytest.raises(EgressRefusedError) as exc:
        EgressGuard().vet("https://tenant-private-idp.test/secret-path-8812")
    assert isinstance(exc.value, InvalidInputError)
    assert exc.value.reason == "private"
    said = str(exc.value) + exc.value.message + caplog.text
    for leak in ("tenant-private-idp", "secret-path-8812", "10.77.66.55"):
        assert leak not in said
    assert "private" in caplog.text
