"""The contract between the login core and the protocol adapters (SAML, OIDC).

A login is two browser round trips. :meth:`SsoAdapter.start_login` returns
where to send the browser and what the server must keep, bound to that
browser, until the IdP sends it back (SAML: the AuthnRequest id; OIDC: state,
nonce and PKCE verifier). :meth:`SsoAdapter.finish_login` takes the IdP's
reply and that kept state and returns a verified :class:`SsoIdentity`, or
raises :class:`callvault.errors.SsoError` with a reason code (never the IdP's
values). The core stores the pending state, binds it to the browser, enforces
its expiry and single use, and owns the replay cache the SAML adapter consults.

Each adapter parses its own connection configuration (``parse_config``), a
JSON object the core stores sealed (it may hold a client secret or an SP
private key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from callvault.sso._identity import SsoIdentity


@dataclass(frozen=True, slots=True)
class LoginStart:
    """Where to send the browser, and what to keep server-side until it returns."""

    redirect_url: str
    #: Opaque to the core: stored sealed, bound to the browser, given back to finish_login once.
    pending: Mapping[str, str]


class ReplayGuard(Protocol):
    """Remembers assertion ids until they expire (the SAML libraries do not)."""

    def first_use(self, connection_id: str, assertion_id: str, not_on_or_after: datetime) -> bool:
        """Record ``assertion_id``; True the first time, False if it was seen before.

        MUST be atomic across processes (a unique key in the database).
        """
        ...


class SsoAdapter(Protocol):
    """One protocol (SAML 2.0 SP or OIDC RP); stateless apart from caches of IdP metadata."""

    def parse_config(self, raw: Mapping[str, Any]) -> Any:
        """Validate a connection's stored configuration.

        Raises ``SsoConfigError`` naming the field.
        """
        ...

    def start_login(self, config: Any, *, tenant_id: str, connection_id: str) -> LoginStart: ...

    def finish_login(
        self,
        config: Any,
        *,
        tenant_id: str,
        connection_id: str,
        params: Mapping[str, str],
        pending: Mapping[str, str],
        now: datetime,
        replay: ReplayGuard,
    ) -> SsoIdentity:
        """Verify the IdP's reply (SAML: the POSTed form; OIDC: the callback query)."""
        ...
