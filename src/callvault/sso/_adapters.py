"""Which adapter serves which protocol: the real SAML and OIDC adapters, found at first use.

An adapter that is not installed (or fails to import) is left out; a
connection of that protocol then cannot be created or used
(:class:`~callvault.errors.UnavailableError`, 503), never served by anything else.

The OIDC adapter fetches URLs a tenant administrator gave (discovery, key
set, token endpoint), so it fetches through an egress guard: the app builds
its adapters once with the installation's guard (``CALLVAULT_EGRESS_*``,
:func:`build_adapters`); :func:`default_adapters` uses the default guard.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cache
from importlib import import_module
from typing import Final

from callvault.egress import EgressGuard
from callvault.sso._adapter import SsoAdapter

log = logging.getLogger("callvault.sso")

_REAL: Final = {
    "saml": ("callvault.sso.saml", "SamlAdapter"),
    "oidc": ("callvault.sso.oidc", "OidcAdapter"),
}


def build_adapters(egress: EgressGuard) -> Mapping[str, SsoAdapter]:
    """``{"saml": SamlAdapter(), "oidc": OidcAdapter(egress=egress)}``, each if it imports."""
    found: dict[str, SsoAdapter] = {}
    for protocol, (module, name) in _REAL.items():
        try:
            cls = getattr(import_module(module), name)
            found[protocol] = cls(egress=egress) if protocol == "oidc" else cls()
        except (ImportError, AttributeError) as exc:
            log.warning("sso %s adapter unavailable: %s", protocol, type(exc).__name__)
    return found


@cache
def default_adapters() -> Mapping[str, SsoAdapter]:
    """:func:`build_adapters` under the default guard (443 only, global addresses only)."""
    return build_adapters(EgressGuard())
