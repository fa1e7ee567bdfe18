"""Single sign-on: SAML 2.0 service provider and OIDC relying party per tenant connection.

The protocol adapters (``sso.saml``, ``sso.oidc``) verify an IdP's response
and return an :class:`SsoIdentity`; the login core maps it to a principal and
roles and opens a browser session (``callvault.sessions``).
"""

from callvault.sso._identity import SsoIdentity

__all__ = ["SsoIdentity"]
