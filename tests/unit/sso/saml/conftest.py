"""Shared values for the SAML unit tests: test-only keys and a metadata builder."""

from __future__ import annotations

import pytest

from tests.integration.simplesamlphp import KeyPair

REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


@pytest.fixture(scope="session")
def idp_keys() -> KeyPair:
    return KeyPair.generate("unit test IdP")


@pytest.fixture(scope="session")
def sp_keys() -> KeyPair:
    return KeyPair.generate("unit test SP")


def metadata(
    *certs: str,
    entity_id: str = "https://idp.example.com/saml",
    sso_url: str = "https://idp.example.com/sso",
    binding: str = REDIRECT,
    use: str | None = "signing",
) -> str:
    """An IdP EntityDescriptor with ``certs`` (base64 DER) as its keys."""
    use_attr = f' use="{use}"' if use else ""
    keys = "".join(
        f"<md:KeyDescriptor{use_attr}><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{c}"
        "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        for c in certs
    )
    return (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"'
        f' xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}">'
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f'{keys}<md:SingleSignOnService Binding="{binding}" Location="{sso_url}"/>'
        "</md:IDPSSODescriptor></md:EntityDescriptor>"
    )
