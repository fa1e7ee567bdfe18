"""Single sign-on: SAML 2.0 service provider and OIDC relying party per tenant connection.

The protocol adapters (``sso.saml``, ``sso.oidc``) verify an IdP's response
and return an :class:`SsoIdentity`; the login core maps it to a principal and
roles and opens a browser session (``callvault.sessions``): connections are
stored sealed (:class:`ConnectionStore`), logins started and finished by
:class:`SsoLogin` with pending states bound to the browser and a database
replay cache (:class:`DbReplayGuard`); group/claim → role mapping is a pure
function (:func:`map_identity`). See docs/adr/0014-single-sign-on.md.
"""

from callvault.sso._adapter import LoginStart, ReplayGuard, SsoAdapter
from callvault.sso._adapters import build_adapters, default_adapters
from callvault.sso._connections import (
    Connection,
    ConnectionInput,
    ConnectionStore,
    ConnectionUrls,
    connection_urls,
    is_secret_field,
    new_connection_id,
)
from callvault.sso._identity import SsoIdentity
from callvault.sso._login import LoginDone, LoginRedirect, SsoDeniedError, SsoLogin
from callvault.sso._mapping import MappingPolicy, RoleRule, map_identity, parse_policy
from callvault.sso._replay import DbReplayGuard
from callvault.sso._scim_revoke import ScimGroupRevoker, revocable

__all__ = [
    "Connection",
    "ConnectionInput",
    "ConnectionStore",
    "ConnectionUrls",
    "DbReplayGuard",
    "LoginDone",
    "LoginRedirect",
    "LoginStart",
    "MappingPolicy",
    "ReplayGuard",
    "RoleRule",
    "ScimGroupRevoker",
    "SsoAdapter",
    "SsoDeniedError",
    "SsoIdentity",
    "SsoLogin",
    "build_adapters",
    "connection_urls",
    "default_adapters",
    "is_secret_field",
    "map_identity",
    "new_connection_id",
    "parse_policy",
    "revocable",
]
