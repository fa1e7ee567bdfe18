"""The XML signature of an IdP metadata document, checked against one configured certificate.

A connection that sets ``idp_metadata_signing_certificate`` accepts IdP
metadata only when the document's root carries an enveloped XML-DSig
signature by exactly that certificate. :func:`verify_root_signature` runs on
the tree :func:`~callvault.sso.saml._xml.parse_untrusted` returned, before
anything is read from it:

1. The root has exactly one ``ds:Signature`` child (``unsigned`` when none,
   ``wrapped`` when several).
2. That signature holds ``ds:SignedInfo``, ``ds:SignatureValue`` and at most
   one ``ds:KeyInfo``, in that order, and nothing else: a ``ds:Object`` is
   outside what an enveloped signature covers, and is where a wrapped copy
   of signed content hides (``wrapped``).
3. ``ds:SignedInfo`` has exactly one ``ds:Reference``, whose ``URI`` is
   ``#`` + the root's ``ID`` (an ID no other element of the document
   carries) or empty (the whole document): the signed element is the root
   we then read, nothing else (``wrapped``).
4. The reference's transforms are the enveloped-signature transform and at
   most one canonicalisation (``wrapped``), and every algorithm is on the
   response allow-list (:func:`~callvault.sso.saml._signatures.check_algorithms`:
   RSA or ECDSA with SHA-256 or stronger, SHA-256 or stronger digests, SHA-1
   refused) (``weak-algorithm``, ``signature``).
5. xmlsec verifies the signature with the configured certificate's public
   key only (a ``KeyInfo`` in the document is never used; the certificate's
   validity dates are not checked: it is a pinned key, like the IdP's signing
   certificates in the metadata), with only the transforms of (4) and the
   allow-listed signature methods enabled in xmlsec itself, and only the
   root's ``ID`` registered, so the reference cannot resolve to another
   element (``signature``: not signed by that key, or changed since).
6. The signature element is removed from the tree: what the caller reads
   next is exactly what the digest covered.

Failures raise :class:`MetadataSignatureError` carrying the reason code and
never the document's content.
"""

from __future__ import annotations

import copy
from typing import Final

import xmlsec
from lxml import etree  # type: ignore[import-untyped]  # lxml ships no stubs (lxml-stubs is not a dependency)

from callvault.errors import SsoError
from callvault.sso.saml._signatures import check_algorithms
from callvault.sso.saml._xml import NS, qname

_T = xmlsec.constants
_ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_C14N: Final = (
    _T.TransformExclC14N,
    _T.TransformExclC14NWithComments,
    _T.TransformInclC14N,
    _T.TransformInclC14NWithComments,
    _T.TransformInclC14N11,
    _T.TransformInclC14N11WithComments,
)
#: What xmlsec may run inside the reference (everything else is disabled in xmlsec itself).
_REFERENCE_TRANSFORMS: Final = (
    *_C14N,
    _T.TransformEnveloped,
    _T.TransformSha256,
    _T.TransformSha384,
    _T.TransformSha512,
)
#: What xmlsec may run over ``SignedInfo``: canonicalisation and the allow-listed signatures.
_SIGNATURE_TRANSFORMS: Final = (
    *_C14N,
    _T.TransformRsaSha256,
    _T.TransformRsaSha384,
    _T.TransformRsaSha512,
    _T.TransformEcdsaSha256,
    _T.TransformEcdsaSha384,
    _T.TransformEcdsaSha512,
)
_SIGNATURE_PARTS: Final = (
    qname("ds", "SignedInfo"),
    qname("ds", "SignatureValue"),
    qname("ds", "KeyInfo"),
)


class MetadataSignatureError(Exception):
    """The metadata's signature was refused; ``reason`` is a code, never content."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"IdP metadata signature refused ({reason})")
        self.reason = reason


def _signature(root: etree._Element) -> etree._Element:
    # (1):
    signatures = root.findall("ds:Signature", NS)
    if not signatures:
        raise MetadataSignatureError("unsigned")
    if len(signatures) != 1:
        raise MetadataSignatureError("wrapped")
    signature = signatures[0]
    # (2):
    parts = [child.tag for child in signature]  # comments and PIs count: nothing else belongs
    if parts not in (list(_SIGNATURE_PARTS[:2]), list(_SIGNATURE_PARTS)):
        raise MetadataSignatureError("wrapped")
    return signature


def _reference_uri(root: etree._Element, signature: etree._Element) -> str:
    # (3):
    references = signature.findall("ds:SignedInfo/ds:Reference", NS)
    if len(references) != 1:
        raise MetadataSignatureError("wrapped")
    reference = references[0]
    uri = reference.get("URI")
    root_id = root.get("ID")
    if uri != "":
        if not root_id or uri != "#" + root_id:
            raise MetadataSignatureError("wrapped")
        same_id = [e for e in root.iter(etree.Element) if e.get("ID") == root_id]
        if len(same_id) != 1:
            raise MetadataSignatureError("wrapped")
    # (4):
    transforms = [t.get("Algorithm") for t in reference.findall("ds:Transforms/*", NS)]
    if transforms.count(_ENVELOPED) != 1 or len(transforms) > 2:
        raise MetadataSignatureError("wrapped")
    try:
        # A copy is its own document, so the allow-list sees this signature and nothing else.
        check_algorithms(copy.deepcopy(signature))
    except SsoError as exc:
        raise MetadataSignatureError(exc.reason) from None
    return str(uri)


def verify_root_signature(root: etree._Element, certificate_pem: str) -> None:
    """Steps (1)-(6) of the module docstring; ``root`` loses its signature on success.

    ``certificate_pem`` MUST have been checked as a certificate already (the
    configuration does that, naming its field); one xmlsec cannot load is
    refused here as ``signature``.
    """
    signature = _signature(root)
    uri = _reference_uri(root, signature)
    # (5):
    try:
        ctx = xmlsec.SignatureContext()
        ctx.key = xmlsec.Key.from_memory(
            certificate_pem.encode(), xmlsec.constants.KeyDataFormatCertPem, None
        )
        for transform in _REFERENCE_TRANSFORMS:
            ctx.enable_reference_transform(transform)
        for transform in _SIGNATURE_TRANSFORMS:
            ctx.enable_signature_transform(transform)
        if uri:
            ctx.register_id(root, "ID")
        ctx.verify(signature)
    except xmlsec.Error:
        raise MetadataSignatureError("signature") from None
    # (6):
    root.remove(signature)
