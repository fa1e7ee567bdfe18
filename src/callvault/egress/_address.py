"""Which IP addresses a tenant-supplied URL may reach: a pure decision table, no I/O.

:func:`check_address` answers ``None`` (globally routable: may be reached) or a
short reason code naming why not. It does not trust :attr:`ipaddress.IPv4Address.is_global`
alone (Python 3.11 before 3.11.10 calls 6to4 of ``10.0.0.1``, ``fec0::/10``,
``ff02::1`` and ``64:ff9b:1::/48`` global); the explicit tables below decide
first and ``is_global`` is a last catch-all. In order:

1. IPv4-mapped IPv6 (``::ffff:a.b.c.d``) is the IPv4 address it maps: a
   dual-stack socket sends it there.
2. NAT64 (``64:ff9b::/96``, RFC 6052) reaches the embedded IPv4 address
   through the translator: decided as that address.
3. 6to4 (``2002::/16``) and Teredo (``2001::/32``) are tunnels (deprecated by
   RFC 7526 / unused for servers): refused, with the embedded address's reason
   when that one is internal.
4. The tables of special-purpose blocks (IANA IPv4/IPv6 Special-Purpose
   Address Registries, RFC 6890 and its updates); IPv6 outside ``2000::/3``
   (the only block IANA allocates global unicast from) is ``reserved``.
5. Anything :attr:`is_global` still calls non-global: ``not-global``.

An installation's allow-list (``CALLVAULT_EGRESS_ALLOW_CIDRS``) can only open
addresses whose reason is one of :data:`ALLOWABLE_REASONS` (RFC 1918, shared
CGNAT space, IPv6 unique-local): an on-premises IdP behind the firewall lives
there. Loopback, link-local (cloud metadata at ``169.254.169.254``),
multicast and the rest stay shut whatever the list says. ``allow_loopback``
exists for tests only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Final

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Reasons an installation's allow-list may override (internal, but routable on-premises).
ALLOWABLE_REASONS: Final = frozenset({"private", "shared", "unique-local"})
#: The blocks an allow-list entry must lie within (see :func:`parse_allow_list`).
ALLOWABLE_BLOCKS: Final[tuple[Network, ...]] = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def _table(*rows: tuple[str, str]) -> tuple[tuple[Network, str], ...]:
    return tuple((ipaddress.ip_network(net), reason) for net, reason in rows)


_V4: Final = _table(
    ("0.0.0.0/8", "unspecified"),  # "this network"; 0.0.0.0 reaches the local host on Linux
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared"),  # RFC 6598 carrier-grade NAT
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),  # cloud instance metadata lives here
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),  # former 6to4 relay anycast
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),  # includes the limited broadcast 255.255.255.255
)
_V6: Final = _table(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/8", "reserved"),  # IPv4-compatible (deprecated) and the rest of ::/8
    ("64:ff9b:1::/48", "reserved"),  # RFC 8215 local-use NAT64: where it leads is local policy
    ("100::/64", "reserved"),  # discard-only
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("2001::/23", "reserved"),  # IETF protocol assignments
    ("5f00::/16", "reserved"),  # SRv6 SIDs
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),  # deprecated, still routed inside some sites
    ("ff00::/8", "multicast"),
)
_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR: Final = ipaddress.IPv6Network("2002::/16")
_TEREDO: Final = ipaddress.IPv6Network("2001::/32")
_GLOBAL_UNICAST: Final = ipaddress.IPv6Network("2000::/3")


def _classify_v4(ip: ipaddress.IPv4Address) -> str | None:
    for net, reason in _V4:
        if ip in net:
            return reason
    return None if ip.is_global else "not-global"


def _classify_v6(ip: ipaddress.IPv6Address) -> str | None:
    for net, reason in _V6:
        if ip in net:
            return reason
    if ip not in _GLOBAL_UNICAST:
        return "reserved"
    return None if ip.is_global else "not-global"


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)


def _reason(ip: Address) -> tuple[Address, str | None]:
    """Steps (1)-(5): the address decided on (an embedded IPv4 for steps 1-2) and its reason."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip, _classify_v4(ip)
    if ip.scope_id is not None:  # the zone does not change what the bits name
        ip = ipaddress.IPv6Address(ip.packed)
    # (1), (2):
    if ip in _MAPPED or ip in _NAT64:
        return _reason(_embedded_v4(ip))
    # (3):
    if ip in _SIX_TO_FOUR:
        embedded = ip.sixtofour
        inner = _reason(embedded)[1] if embedded is not None else None
        return ip, inner or "tunnel"
    if ip in _TEREDO:
        return ip, "tunnel"
    # (4), (5):
    return ip, _classify_v6(ip)


def check_address(
    ip: Address | str,
    *,
    allow: Sequence[Network] = (),
    allow_loopback: bool = False,
) -> str | None:
    """``None`` if ``ip`` may be reached, else the reason code (steps in the module docstring).

    ``allow`` is the installation's allow-list (entries SHOULD come from
    :func:`parse_allow_list`); it opens only :data:`ALLOWABLE_REASONS`.
    ``allow_loopback`` opens loopback and MUST only ever be set by tests.
    A string that is not an IP address is ``invalid``.
    """
    if isinstance(ip, str):
        try:
            ip = ipaddress.ip_address(ip)
        except ValueError:
            return "invalid"
    decided, reason = _reason(ip)
    if reason == "loopback" and allow_loopback:
        return None
    if reason in ALLOWABLE_REASONS and any(decided in net for net in allow):
        return None
    return reason


def parse_allow_list(entries: Iterable[str]) -> tuple[Network, ...]:
    """An installation's allow-list: CIDRs, each inside one of :data:`ALLOWABLE_BLOCKS`.

    Raises ``ValueError`` naming the entry's position (never its text) when an
    entry is not a CIDR (host bits set count as malformed) or reaches beyond
    the private, shared and unique-local blocks: a list cannot open loopback,
    link-local (cloud metadata) or public space it does not need.
    """
    networks: list[Network] = []
    for n, raw in enumerate(entries, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError:
            raise ValueError(f"entry {n} is not a CIDR network (address/prefix)") from None
        if not any(
            net.version == block.version and net.subnet_of(block)  # type: ignore[arg-type]  # versions checked just before
            for block in ALLOWABLE_BLOCKS
        ):
            raise ValueError(
                f"entry {n} must lie within 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "
                "100.64.0.0/10 or fc00::/7"
            )
        networks.append(net)
    return tuple(networks)
