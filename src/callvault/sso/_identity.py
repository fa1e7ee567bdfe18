"""What a verified single sign-on login yields, whatever the protocol.

The SAML and OIDC adapters each turn an identity provider's response into an
:class:`SsoIdentity` after every protocol check has passed; nothing upstream
of the adapters sees an unverified assertion or token. The login core maps
the identity to a principal and roles (group/claim mapping, just-in-time
creation) and opens a browser session.

An identity carries the IdP's values (subject, email, groups); they are
customer data: never log them, never put them in an error or an audit entry
(use ``subject_hash``-style HMACs there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Protocol = Literal["saml", "oidc"]


@dataclass(frozen=True, slots=True)
class SsoIdentity:
    """A login the adapter has verified (signature, audience, issuer, time, replay, nonce).

    ``subject`` is the IdP's stable identifier (SAML NameID, OIDC ``sub``);
    with ``connection_id`` it names one user for ever. ``groups`` are the
    group names or ids the IdP asserted (SAML attribute or OIDC claim named by
    the connection), used only for role mapping.
    """

    protocol: Protocol
    tenant_id: str
    connection_id: str
    subject: str
    email: str | None = None
    email_verified: bool = False
    display_name: str | None = None
    groups: tuple[str, ...] = ()
    #: When the IdP authenticated the user (SAML AuthnInstant, OIDC auth_time), if it said.
    authenticated_at: datetime | None = None
    #: Protocol-specific session handle (SAML SessionIndex, OIDC sid), for logout.
    idp_session: str | None = None
    #: Other attributes/claims the connection asked to keep (names → values).
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
