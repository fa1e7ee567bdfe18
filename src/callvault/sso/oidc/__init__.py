"""OpenID Connect relying party per tenant connection: authlib for the flow, joserfc for tokens.

:class:`OidcAdapter` implements the login core's ``SsoAdapter`` contract:
the authorization code flow with PKCE S256, nonce and state, the issuer
pinned per connection (discovery's ``issuer`` and every token's ``iss``),
and provider profiles for Microsoft Entra multi-tenant apps (``tid``
allow-list) and Google Workspace (``hd``, ``email_verified``). The ID token
verification core (``_tokens``) takes values and returns values; discovery
and key sets are fetched through an injectable ``httpx.Client`` and cached
per process (``_discovery``).
"""

from callvault.sso.oidc._config import ALLOWED_ALGORITHMS, OidcConfig, parse_oidc_config
from callvault.sso.oidc._discovery import ProviderCache, ProviderMetadata, parse_discovery
from callvault.sso.oidc._flow import OidcAdapter
from callvault.sso.oidc._tokens import verify_id_token

__all__ = [
    "ALLOWED_ALGORITHMS",
    "OidcAdapter",
    "OidcConfig",
    "ProviderCache",
    "ProviderMetadata",
    "parse_discovery",
    "parse_oidc_config",
    "verify_id_token",
]
