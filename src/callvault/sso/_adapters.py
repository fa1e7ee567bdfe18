"""Which adapter serves which protocol: the real SAML and OIDC adapters, found at first use.

An adapter that is not installed (or fails to import) is left out; a
connection of that protocol then cannot be created or used
(:class:`~callvault.errors.UnavailableError`, 503), never served by anything else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cache
from importlib import import_module
from typing import Final

from callvault.sso._adapter import SsoAdapter

log = logging.getLogger("callvault.sso")

_REAL: Final = {
    "saml": ("callvault.sso.saml", "SamlAdapter"),
    "oidc": ("callvault.sso.oidc", "OidcAdapter"),
}


@cache
def default_adapters() -> Mapping[str, SsoAdapter]:
    """``{"saml": SamlAdapter(), "oidc": OidcAdapter()}``, each if it imports."""
    found: dict[str, SsoAdapter] = {}
    for protocol, (module, name) in _REAL.items():
        try:
            found[protocol] = getattr(import_module(module), name)()
        except (ImportError, AttributeError) as exc:
            log.warning("sso %s adapter unavailable: %s", protocol, type(exc).__name__)
    return found
