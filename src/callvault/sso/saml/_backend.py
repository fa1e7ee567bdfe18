"""The seam between our SAML adapter and a SAML library.

A backend does the two things a library is for: build an AuthnRequest, and
verify a response's XML signatures against the IdP's certificates
(decrypting an encrypted assertion first). Everything else (issuer,
audience, recipient, times, InResponseTo, signing policy, algorithms,
replay) is checked by our own code on the document the backend returns, so
a second backend (pysaml2) would get the same checks. An encrypted NameID
(``EncryptedID``) is left encrypted by the backend and decrypted by our own
checks (``_encrypted_id``), inside the assertion they established as signed.
The python3-saml backend is :class:`~callvault.sso.saml._onelogin.OneLoginBackend`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no stubs (lxml-stubs is not a dependency)

from callvault.sso.saml._config import SamlConfig


@dataclass(frozen=True, slots=True)
class AuthnRequest:
    """An AuthnRequest ready to send with the HTTP-Redirect binding."""

    request_id: str
    redirect_url: str


@dataclass(frozen=True, slots=True)
class VerifiedDocument:
    """A response whose signatures the backend verified against the IdP's certificates.

    ``document`` is the response with its assertion decrypted (if it was
    encrypted); ``signed_response`` / ``signed_assertion`` say which
    signatures were found *and verified*.
    """

    document: etree._Element
    signed_response: bool
    signed_assertion: bool
    encrypted: bool


class SamlBackend(Protocol):
    """A SAML library behind our adapter."""

    def authn_request(self, config: SamlConfig) -> AuthnRequest:
        """Build an AuthnRequest for ``config``'s IdP (HTTP-Redirect binding)."""
        ...

    def verify(self, config: SamlConfig, *, encoded: str, request_id: str) -> VerifiedDocument:
        """Verify the base64 ``SAMLResponse`` ``encoded``; raise ``SsoError`` if it fails.

        The caller has already bounded the size and refused DTDs; the backend
        MUST verify signatures against ``config.idp.signing_certs`` only and
        MUST NOT trust a key or certificate carried in the response.
        """
        ...
