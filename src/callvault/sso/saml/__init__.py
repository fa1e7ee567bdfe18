"""SAML 2.0 service provider: one connection per tenant, python3-saml behind our checks.

:class:`SamlAdapter` implements the login core's ``SsoAdapter`` contract.
python3-saml sits behind a small backend seam (``_backend.SamlBackend``);
every security decision beyond signature verification and decryption is
made by our own code (``_checks``, ``_signatures``), so another backend
(pysaml2) would be held to the same rules.
"""

from callvault.sso.saml._adapter import DEFAULT_MAX_RESPONSE_BYTES, SamlAdapter
from callvault.sso.saml._config import SamlConfig, parse_saml_config
from callvault.sso.saml._metadata import IdpMetadata, fetch_idp_metadata, parse_idp_metadata
from callvault.sso.saml._replay import MemoryReplayGuard

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "IdpMetadata",
    "MemoryReplayGuard",
    "SamlAdapter",
    "SamlConfig",
    "fetch_idp_metadata",
    "parse_idp_metadata",
    "parse_saml_config",
]
