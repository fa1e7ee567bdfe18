"""Hardened XML parsing for everything SAML reads from outside (responses, IdP metadata).

:func:`parse_untrusted` is the only way XML from an IdP, a browser or an
administrator becomes a tree here:

1. The byte length is checked against the caller's limit before parsing.
2. lxml parses with entity resolution, network access, DTD loading and huge
   trees all off (``huge_tree=False`` keeps libxml2's own depth and size
   limits).
3. A document with any document type declaration is refused, whatever it
   declares: SAML never needs one, and it is where external entities (XXE)
   and entity expansion ("billion laughs") live.
4. An entity reference left unresolved in the tree is refused too.

Failures raise :class:`XmlRejectedError` carrying a reason code and never
the document's content; callers turn it into ``SsoError`` or ``SsoConfigError``.
"""

from __future__ import annotations

from typing import Final

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no stubs (lxml-stubs is not a dependency)

NS: Final = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
}


def qname(prefix: str, local: str) -> str:
    """``{namespace}local`` for one of the :data:`NS` prefixes."""
    return f"{{{NS[prefix]}}}{local}"


class XmlRejectedError(Exception):
    """Untrusted XML was refused; ``reason`` is ``too-large`` or ``malformed``."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _parser() -> etree.XMLParser:
    # A fresh parser per document: lxml parsers keep state and are not thread-safe.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        collect_ids=False,
    )


def parse_untrusted(data: bytes, *, max_bytes: int) -> etree._Element:
    """Parse ``data`` per steps (1)-(4) of the module docstring; return the root element."""
    # (1):
    if len(data) > max_bytes:
        raise XmlRejectedError("XML document exceeds the size limit", reason="too-large")
    # (2):
    try:
        root = etree.fromstring(data, parser=_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise XmlRejectedError("not well-formed XML", reason="malformed") from exc
    if root is None:
        raise XmlRejectedError("empty XML document", reason="malformed")
    tree = root.getroottree()
    # (3):
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XmlRejectedError("XML document type declarations are refused", reason="malformed")
    # (4):
    if next(root.iter(etree.Entity), None) is not None:
        raise XmlRejectedError("XML entity references are refused", reason="malformed")
    return root


def text_only(element: etree._Element) -> str | None:
    """The element's text if it has no children (elements, comments, PIs), else None.

    Values that decide identity (NameID, Issuer, Audience, attribute values)
    are read through this: a comment or child element inside them is where
    canonicalisation tricks (comment truncation of a NameID) hide.
    """
    if len(element) != 0:
        return None
    return element.text or ""
