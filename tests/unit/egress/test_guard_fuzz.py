"""Hypothesis against the address table and the URL check: no encoding of an internal
address gets through, and nothing but a reason code ever comes out."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callvault.egress import ADDRESS_REASONS, EgressGuard, EgressRefusedError, check_address
from callvault.egress._guard import RESOLVE_REASONS, URL_REASONS

GLOBAL_V6 = ipaddress.ip_network("2000::/3")
NOT_GLOBAL_INSIDE_2000 = [
    ipaddress.ip_network(n) for n in ("2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20")
]
INTERNAL_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]

v4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
v6 = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)


@st.composite
def internal_v4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    net = draw(st.sampled_from(INTERNAL_V4))
    return ipaddress.IPv4Address(
        int(net.network_address) + draw(st.integers(0, net.num_addresses - 1))
    )


@given(v4)
def test_mapped_and_nat64_forms_decide_like_the_ipv4_address(ip: ipaddress.IPv4Address) -> None:
    want = check_address(ip)
    assert check_address(ipaddress.IPv6Address(0xFFFF_0000_0000 | int(ip))) == want
    assert check_address(ipaddress.IPv6Address((0x64FF9B << 96) | int(ip))) == want


@given(v4)
def test_an_allowed_ipv4_address_is_global(ip: ipaddress.IPv4Address) -> None:
    reason = check_address(ip)
    assert reason is None or reason in ADDRESS_REASONS
    if reason is None:
        assert ip.is_global
        assert not any(ip in net for net in INTERNAL_V4)


@given(v6)
def test_an_allowed_ipv6_address_is_global_unicast_or_nat64_of_a_global_one(
    ip: ipaddress.IPv6Address,
) -> None:
    reason = check_address(ip)
    assert reason is None or reason in ADDRESS_REASONS
    if reason is None:
        if ip in ipaddress.ip_network("64:ff9b::/96") or ip.ipv4_mapped is not None:
            assert check_address(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)) is None
        else:
            assert ip in GLOBAL_V6
            assert not any(ip in net for net in NOT_GLOBAL_INSIDE_2000)


def _spellings(ip: ipaddress.IPv4Address, draw: st.DrawFn) -> str:
    n = int(ip)
    a, b, c, d = ip.packed
    forms = [
        str(ip),
        str(n),
        hex(n),
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"{a}.{b}.{(c << 8) | d}",
        ".".join(f"0{o:o}" for o in ip.packed),
        ".".join(hex(o) for o in ip.packed),
        f"[::ffff:{ip}]",
        f"[::ffff:{n >> 16:x}:{n & 0xFFFF:x}]",
        f"[0:0:0:0:0:ffff:{ip}]",
        f"[64:ff9b::{ip}]",
    ]
    return draw(st.sampled_from(forms))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300)
@given(data=st.data())
def test_no_spelling_of_an_internal_ipv4_address_gets_through(
    data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    ip = data.draw(internal_v4())
    host = _spellings(ip, data.draw)
    lookups: list[Any] = []

    def resolve(name: Any, *args: Any, **kwargs: Any) -> list[Any]:
        # Whatever a resolver would make of it, it is this internal address.
        lookups.append(name)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (str(ip), 443))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(EgressRefusedError) as exc:
        EgressGuard().vet(f"https://{host}/metadata")
    assert exc.value.reason in URL_REASONS | ADDRESS_REASONS
    assert host not in str(exc.value)


_URL_CHARS = st.sampled_from([*"aZ09.-_~:/@?#[]%\\!$&'()*+,;= \t\x00é", "%2e", "%40", "::"])
_HOSTS = st.sampled_from(
    [
        "idp.example.com",
        "127.0.0.1",
        "[::1]",
        "localhost",
        "169.254.169.254",
        "[::ffff:10.0.0.1]",
        "xn--bcher-kva.de",
        "bücher.de",
        "",
        "a@b",
        "idp.example.com.",
    ]
)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["https", "http", "HTTPS", "ftp", "", "https:"]))
    userinfo = draw(st.sampled_from(["", "user@", "user:pw@", ":@", "@"]))
    host = draw(_HOSTS)
    port = draw(st.sampled_from(["", ":443", ":8443", ":0", ":99999", ":", ":-1"]))
    tail = "".join(draw(st.lists(_URL_CHARS, max_size=12)))
    return f"{scheme}://{userinfo}{host}{port}/{tail}"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=400)
@given(url=st.one_of(urls(), st.text(max_size=80)))
def test_url_check_only_ever_refuses_with_a_reason_or_passes_a_safe_url(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def resolve(name: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    try:
        target = EgressGuard().vet(url)
    except EgressRefusedError as exc:
        reason = exc.reason
    else:
        reason = None
    if reason is not None:
        assert reason in URL_REASONS | ADDRESS_REASONS | RESOLVE_REASONS
        return
    parsed = httpx.URL(url)
    assert parsed.scheme == "https"
    assert not parsed.userinfo
    assert target.port == 443
    assert all(check_address(a) is None for a in target.addresses)
