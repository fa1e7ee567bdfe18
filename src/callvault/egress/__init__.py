"""Outbound HTTPS to URLs a tenant supplies, guarded against reaching inside (SSRF).

:func:`check_address` is the pure decision on one IP address;
:class:`EgressGuard` holds the installation's policy (ports, an operator's
allow-list of on-premises networks, limits, trust) and makes ``httpx``
clients whose every request is checked, resolved once and connected to the
vetted address (:class:`GuardedTransport`). Refusals are
:class:`EgressRefusedError` with a reason code only. See
docs/adr/0018-egress-guard.md.
"""

from callvault.egress._address import (
    ALLOWABLE_BLOCKS,
    ALLOWABLE_REASONS,
    Address,
    Network,
    check_address,
    parse_allow_list,
)
from callvault.egress._guard import (
    ADDRESS_REASONS,
    DEFAULT_PORTS,
    RESOLVE_REASONS,
    RESPONSE_REASONS,
    URL_REASONS,
    EgressGuard,
    EgressRefusedError,
    GuardedTransport,
    Target,
    check_url,
    tls_context,
)

__all__ = [
    "ADDRESS_REASONS",
    "ALLOWABLE_BLOCKS",
    "ALLOWABLE_REASONS",
    "DEFAULT_PORTS",
    "RESOLVE_REASONS",
    "RESPONSE_REASONS",
    "URL_REASONS",
    "Address",
    "EgressGuard",
    "EgressRefusedError",
    "GuardedTransport",
    "Network",
    "Target",
    "check_address",
    "check_url",
    "parse_allow_list",
    "tls_context",
]
