"""Encrypted NameIDs (``saml:EncryptedID``, SAML Core §2.2.4): decrypted here, checked as plain.

The response checks (``_checks``) hand :func:`decrypt_name_id` the
``EncryptedID`` of the one assertion they established as signed (after the
backend verified the signature that covers it, and after the wrapping
checks), so the ciphertext is the IdP's: an ``EncryptedID`` someone made with
our public certificate and put elsewhere is never decrypted, and, as every
signing policy's signature covers the ``EncryptedID``, decryption is never an
oracle on altered ciphertext. Working on a private copy:

1. The ``EncryptedID`` holds exactly one ``xenc:EncryptedData`` and, besides
   it, only ``xenc:EncryptedKey`` elements; the data's ``Type``, if any, is
   ``Element`` (SAML Core §2.2.4); the data and each key have exactly one
   ``xenc:EncryptionMethod`` and carry their ciphertext inline (one
   ``xenc:CipherValue``; a ``CipherReference`` would make xmlsec read a URI)
   (``decryption``).
2. Exactly one ``xenc:EncryptedKey`` carries the content key: inside the
   data's ``ds:KeyInfo`` (how SimpleSAMLphp, ADFS and Shibboleth send it), or
   beside the data in the ``EncryptedID`` and named by the data's one
   ``ds:RetrievalMethod`` (moved inline, as python3-saml does for encrypted
   assertions). The data's ``KeyInfo`` then holds that key and nothing else,
   and the key's own ``KeyInfo`` is dropped: the SP key is the only key
   there is, and nothing in the document may name a key or URI to fetch
   (``decryption``).
3. The algorithms are those of encrypted assertions
   (:func:`~callvault.sso.saml._signatures.check_algorithms`): RSA-OAEP key
   transport, AES-GCM content, AES-CBC only when the connection allows it
   (``weak-algorithm``).
4. xmlsec decrypts with the connection's SP private key, the only key it is
   given, to bytes: ``Type`` is dropped on the copy so that xmlsec does not
   parse the plaintext itself (libxml2 would print a malformed plaintext, the
   user's identifier, on stderr). Any failure is ``decryption``, by type only.
5. The plaintext parses with :func:`~callvault.sso.saml._xml.parse_untrusted`
   (no DTD, no entities, at most :data:`MAX_PLAINTEXT_BYTES`) into exactly one
   ``saml:NameID``, returned for the caller to check like a plain one
   (``decryption``).
"""

from __future__ import annotations

import copy
from typing import Final

import xmlsec
from lxml import etree  # type: ignore[import-untyped]  # lxml ships no stubs (lxml-stubs is not a dependency)

from callvault.errors import SsoError
from callvault.sso.saml._signatures import check_algorithms
from callvault.sso.saml._xml import NS, XmlRejectedError, parse_untrusted, qname

#: A NameID is at most 1024 characters (``_checks``); its element, with attributes, fits in this.
MAX_PLAINTEXT_BYTES: Final = 16 * 1024
_ELEMENT_TYPE: Final = "http://www.w3.org/2001/04/xmlenc#Element"
_ENCRYPTED_KEY_TYPE: Final = "http://www.w3.org/2001/04/xmlenc#EncryptedKey"
_DATA: Final = qname("xenc", "EncryptedData")
_KEY: Final = qname("xenc", "EncryptedKey")


def _refused(message: str, reason: str = "decryption") -> SsoError:
    return SsoError(message, reason=reason)


def _check_encrypted_part(element: etree._Element) -> None:
    """One ``EncryptionMethod`` and inline ciphertext (step 1)."""
    if len(element.findall("xenc:EncryptionMethod", NS)) != 1:
        raise _refused("encrypted NameID must name exactly one algorithm per part")
    values = element.findall("xenc:CipherData/xenc:CipherValue", NS)
    cipher_data = element.findall("xenc:CipherData", NS)
    if len(cipher_data) != 1 or len(values) != 1 or len(cipher_data[0]) != 1:
        raise _refused("encrypted NameID must carry its ciphertext inline")


def _inline_key(encrypted_id: etree._Element) -> etree._Element:
    """Steps (1)-(2) on ``encrypted_id`` (a copy): the ``EncryptedData``, its key inline."""
    # (1):
    children = list(encrypted_id)
    data = [c for c in children if c.tag == _DATA]
    keys_beside = [c for c in children if c.tag == _KEY]
    if len(data) != 1 or len(data) + len(keys_beside) != len(children):
        raise _refused("EncryptedID must hold one EncryptedData and only EncryptedKeys besides")
    encrypted_data = data[0]
    if encrypted_data.get("Type") not in (None, _ELEMENT_TYPE):
        raise _refused("EncryptedID data must be of type Element")
    # (2):
    key_info = encrypted_data.find("ds:KeyInfo", NS)
    if key_info is None or len(encrypted_data.findall("ds:KeyInfo", NS)) != 1:
        raise _refused("encrypted NameID names no key")
    inline = key_info.findall("xenc:EncryptedKey", NS)
    if not inline and len(keys_beside) == 1:
        retrievals = key_info.findall("ds:RetrievalMethod", NS)
        retrieval = retrievals[0] if len(retrievals) == 1 else None
        key = keys_beside[0]
        if (
            retrieval is None
            or retrieval.get("Type") != _ENCRYPTED_KEY_TYPE
            or not key.get("Id")
            or retrieval.get("URI") != "#" + str(key.get("Id"))
        ):
            raise _refused("encrypted NameID key is not where its RetrievalMethod says")
        key_info.remove(retrieval)
        key_info.append(key)
        inline = [key]
    elif keys_beside or len(inline) != 1:
        raise _refused("encrypted NameID must carry exactly one EncryptedKey")
    if len(key_info) != 1:
        raise _refused("encrypted NameID KeyInfo holds more than its EncryptedKey")
    for key_part in (encrypted_data, inline[0]):
        _check_encrypted_part(key_part)
    for own in inline[0].findall("ds:KeyInfo", NS):
        inline[0].remove(own)  # the SP key is the only key; nothing here may name another
    return encrypted_data


def decrypt_name_id(
    encrypted_id: etree._Element, *, sp_private_key_pem: str, allow_cbc: bool
) -> etree._Element:
    """Steps (1)-(5) of the module docstring: the ``saml:NameID`` inside ``encrypted_id``.

    ``encrypted_id`` MUST be the ``EncryptedID`` of the assertion a verified
    signature covers; it is not modified. ``SsoError`` on any refusal.
    """
    if encrypted_id.tag != qname("saml", "EncryptedID"):
        raise _refused("not an EncryptedID")
    work = copy.deepcopy(encrypted_id)  # its own document: the checks below see nothing else
    encrypted_data = _inline_key(work)
    # (3):
    check_algorithms(work, allow_cbc=allow_cbc)
    # (4):
    if "Type" in encrypted_data.attrib:
        del encrypted_data.attrib["Type"]
    try:
        manager = xmlsec.KeysManager()
        manager.add_key(
            xmlsec.Key.from_memory(
                sp_private_key_pem.encode(), xmlsec.constants.KeyDataFormatPem, None
            )
        )
        plaintext = xmlsec.EncryptionContext(manager).decrypt(encrypted_data)
    except xmlsec.Error as exc:
        raise _refused(f"encrypted NameID could not be decrypted ({type(exc).__name__})") from None
    if not isinstance(plaintext, bytes):
        raise _refused("encrypted NameID did not decrypt to bytes")
    # (5):
    try:
        name_id = parse_untrusted(plaintext, max_bytes=MAX_PLAINTEXT_BYTES)
    except XmlRejectedError as exc:
        raise _refused(f"decrypted NameID is not acceptable XML ({exc.reason})") from None
    if name_id.tag != qname("saml", "NameID"):
        raise _refused("EncryptedID does not hold a NameID")
    return name_id
