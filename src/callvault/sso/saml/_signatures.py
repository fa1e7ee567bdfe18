"""Our own checks on the XML signatures and encryption of a SAML response.

These run whatever the backend library does, because libraries differ (and
python3-saml only refuses the SHA-1 family when asked, and only looks at the
first algorithm of each signature).

:func:`check_algorithms` (run on the response as received, and again on the
decrypted response):

1. Every ``ds:SignatureMethod`` is RSA or ECDSA with SHA-256 or stronger.
2. Every reference ``ds:DigestMethod`` is SHA-256 or stronger.
3. Every ``ds:CanonicalizationMethod`` and reference ``ds:Transform`` is one
   of the canonicalisations or the enveloped-signature transform (no XPath,
   XSLT or base64 transforms that make a signature cover less than its
   element, or run code).
4. Every ``xenc:EncryptionMethod`` is RSA-OAEP (never RSA PKCS#1 v1.5, the
   Bleichenbacher oracle) for keys, AES-GCM for data; AES-CBC only when the
   connection allows it (``allow_cbc_encryption``: ADFS and SimpleSAMLphp 1.x
   encrypt with CBC, and unauthenticated CBC is what the XML Encryption
   padding-oracle attacks of Jager and Somorovsky (CCS 2011) exploit).
5. Nothing may make xmlsec read outside the document (it resolves URIs,
   ``file:`` included, and python3-saml decrypts an encrypted assertion
   before any signature is checked, so anyone posting to the ACS could make
   the server read a local file or a URL): every ``ds:Reference`` URI is
   empty or ``#``-local, every ``ds:RetrievalMethod`` URI is ``#``-local,
   and ``xenc:CipherReference`` is refused (``external-reference``).

:func:`signature_covers` decides whether a verified signature covers an
element (used by the response checks for the ``signing`` policy):

6. The element has exactly one ``ds:Signature`` as a direct child, with
   exactly one ``ds:Reference`` whose URI is ``#`` + the element's ``ID``.
7. No other element in the document carries that ``ID`` (a duplicate is how
   a wrapped copy gets the verifier and the reader to look at different
   elements).
"""

from __future__ import annotations

from typing import Final

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no stubs (lxml-stubs is not a dependency)

from callvault.errors import SsoError
from callvault.sso.saml._xml import NS, qname

_SIGNATURE_METHODS: Final = frozenset(
    {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    }
)
_DIGEST_METHODS: Final = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
)
_C14N: Final = frozenset(
    {
        "http://www.w3.org/2001/10/xml-exc-c14n#",
        "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
        "http://www.w3.org/2006/12/xml-c14n11",
        "http://www.w3.org/2006/12/xml-c14n11#WithComments",
    }
)
_TRANSFORMS: Final = _C14N | {"http://www.w3.org/2000/09/xmldsig#enveloped-signature"}
_KEY_TRANSPORT: Final = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
        "http://www.w3.org/2009/xmlenc11#rsa-oaep",
    }
)
_AEAD_CIPHERS: Final = frozenset(
    {
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        "http://www.w3.org/2009/xmlenc11#aes192-gcm",
        "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    }
)
#: Accepted only where the connection says so (``allow_cbc_encryption``).
_CBC_CIPHERS: Final = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
        "http://www.w3.org/2001/04/xmlenc#aes192-cbc",
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
    }
)


def _all(root: etree._Element, xpath: str) -> list[etree._Element]:
    found = root.xpath(xpath, namespaces=NS)
    if not isinstance(found, list):
        return []
    return [e for e in found if isinstance(e, etree._Element)]


def check_algorithms(root: etree._Element, *, allow_cbc: bool = False) -> None:
    """Steps (1)-(5) of the module docstring; ``SsoError`` on the first refusal."""
    ciphers = _AEAD_CIPHERS | _CBC_CIPHERS if allow_cbc else _AEAD_CIPHERS
    # (1):
    for node in _all(root, "//ds:SignatureMethod"):
        if node.get("Algorithm") not in _SIGNATURE_METHODS:
            raise SsoError("signature algorithm refused", reason="weak-algorithm")
    # (2):
    for node in _all(root, "//ds:Reference/ds:DigestMethod"):
        if node.get("Algorithm") not in _DIGEST_METHODS:
            raise SsoError("digest algorithm refused", reason="weak-algorithm")
    # (3):
    for node in _all(root, "//ds:CanonicalizationMethod"):
        if node.get("Algorithm") not in _C14N:
            raise SsoError("canonicalization method refused", reason="signature")
    for node in _all(root, "//ds:Reference/ds:Transforms/*"):
        if node.tag != qname("ds", "Transform") or node.get("Algorithm") not in _TRANSFORMS:
            raise SsoError("signature transform refused", reason="signature")
    # (4):
    for node in _all(root, "//xenc:EncryptedKey/xenc:EncryptionMethod"):
        if node.get("Algorithm") not in _KEY_TRANSPORT:
            raise SsoError("key transport algorithm refused", reason="weak-algorithm")
    for node in _all(root, "//xenc:EncryptedData/xenc:EncryptionMethod"):
        if node.get("Algorithm") not in ciphers:
            raise SsoError("content encryption algorithm refused", reason="weak-algorithm")
    # (5):
    _check_local_only(root)


def _check_local_only(root: etree._Element) -> None:
    """Step (5): no URI that would make xmlsec read outside the document."""
    refused = "a reference outside the document is refused"
    if _all(root, "//xenc:CipherReference"):
        raise SsoError(refused, reason="external-reference")
    for node in _all(root, "//ds:Reference"):
        uri = node.get("URI")
        if uri is not None and uri != "" and not uri.startswith("#"):
            raise SsoError(refused, reason="external-reference")
    for node in _all(root, "//ds:RetrievalMethod"):
        if not (node.get("URI") or "").startswith("#"):
            raise SsoError(refused, reason="external-reference")


def signature_covers(element: etree._Element) -> bool:
    """Steps (6)-(7) of the module docstring: is ``element`` covered by its own signature?

    This is structural only: that the signature *verifies* against the IdP's
    certificates is the backend's job and has been done before this runs.
    """
    # (5):
    element_id = element.get("ID")
    if not element_id:
        return False
    signatures = element.findall("ds:Signature", NS)
    if len(signatures) != 1:
        return False
    references = signatures[0].findall("ds:SignedInfo/ds:Reference", NS)
    if len(references) != 1 or references[0].get("URI") != "#" + element_id:
        return False
    # (6):
    same_id = _all(element.getroottree().getroot(), "//*[@ID]")
    return sum(1 for e in same_id if e.get("ID") == element_id) == 1
