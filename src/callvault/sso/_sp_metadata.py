"""Our SAML service provider's metadata for one connection (what the customer gives their IdP).

Built from values callvault derives (entity id, ACS URL) and the connection's
SP certificate, if it has one (published for encryption, and for signing
when the connection signs its AuthnRequests). Nothing of the IdP's or of the customer's is in it.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final
from xml.sax.saxutils import quoteattr

from callvault.errors import SsoConfigError

_PEM_BODY: Final = re.compile(
    r"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----"
)


def _certificate_body(pem: str) -> str:
    m = _PEM_BODY.search(pem)
    if m is None:
        raise SsoConfigError("sp_certificate_pem is not a PEM certificate", field="config")
    body = "".join(m.group(1).split())
    try:
        base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise SsoConfigError(
            "sp_certificate_pem is not a PEM certificate", field="config"
        ) from None
    return body


def sp_metadata(
    *,
    entity_id: str,
    acs_url: str,
    certificate_pem: str | None,
    name_id_format: str | None,
    signs_requests: bool = False,
) -> bytes:
    """The ``md:EntityDescriptor`` of our SP for one connection, as UTF-8 XML."""
    key = ""
    signs = bool(certificate_pem) and signs_requests
    if certificate_pem:
        body = _certificate_body(certificate_pem)
        uses = ("signing", "encryption") if signs else ("encryption",)
        key = "".join(
            f'<md:KeyDescriptor use="{use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
            f"{body}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
            for use in uses
        )
    name_id = (
        f"<md:NameIDFormat>{_text(name_id_format)}</md:NameIDFormat>" if name_id_format else ""
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID={quoteattr(entity_id)}>'
        f'<md:SPSSODescriptor AuthnRequestsSigned="{"true" if signs else "false"}" '
        'WantAssertionsSigned="true" '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{key}{name_id}"
        '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        f'Location={quoteattr(acs_url)} index="0" isDefault="true"/>'
        "</md:SPSSODescriptor></md:EntityDescriptor>"
    )
    return xml.encode("utf-8")


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
