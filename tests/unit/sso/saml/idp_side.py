"""What an IdP or a federation operator does with xmlsec, done by tests.

- :func:`sign_metadata`: an enveloped XML-DSig signature on a metadata
  document's root, as SimpleSAMLphp's and Shibboleth's metadata signers make
  it (exclusive c14n, the signer's certificate in ``KeyInfo``).
- :func:`encrypted_id`: a ``saml:EncryptedID`` holding a NameID encrypted to
  an SP certificate, inline ``EncryptedKey``, algorithms of the test's
  choosing; :func:`encrypted_id_of_bytes` for a plaintext no IdP would send.

Test-only keys and values; callvault itself uses none of this.
"""

from __future__ import annotations

from typing import Any

import xmlsec
from lxml import etree

from tests.integration.simplesamlphp import KeyPair

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
XENC = "http://www.w3.org/2001/04/xmlenc#"
DS = "http://www.w3.org/2000/09/xmldsig#"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
T = xmlsec.constants

#: Content ciphers by name: (transform, key data, bits).
CIPHERS = {
    "aes128-gcm": (T.TransformAes128Gcm, T.KeyDataAes, 128),
    "aes256-gcm": (T.TransformAes256Gcm, T.KeyDataAes, 256),
    "aes128-cbc": (T.TransformAes128Cbc, T.KeyDataAes, 128),
    "aes256-cbc": (T.TransformAes256Cbc, T.KeyDataAes, 256),
    "tripledes-cbc": (T.TransformDes3Cbc, T.KeyDataDes, 192),
}
#: Key transports by name.
KEY_TRANSPORTS = {"rsa-oaep-mgf1p": T.TransformRsaOaep, "rsa-1_5": T.TransformRsaPkcs1}


def sign_metadata(
    xml: str | bytes,
    signer: KeyPair,
    *,
    method: Any = T.TransformRsaSha256,
    digest: Any = T.TransformSha256,
    reference: str | None = None,
    root_id: str = "_md-signed",
) -> bytes:
    """``xml`` with an enveloped signature by ``signer`` as the root's first child.

    ``reference``: the Reference URI (default ``#`` + the root's ID, which is
    added as ``root_id`` if the root has none); ``""`` is the whole document.
    """
    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    if root.get("ID") is None:
        root.set("ID", root_id)
    uri = "#" + str(root.get("ID")) if reference is None else reference
    signature = xmlsec.template.create(root, T.TransformExclC14N, method, ns="ds")
    root.insert(0, signature)
    ref = xmlsec.template.add_reference(signature, digest, uri=uri)
    xmlsec.template.add_transform(ref, T.TransformEnveloped)
    xmlsec.template.add_transform(ref, T.TransformExclC14N)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(signer.key_pem.encode(), T.KeyDataFormatPem, None)
    ctx.key.load_cert_from_memory(signer.cert_pem.encode(), T.KeyDataFormatCertPem)
    if uri:
        for element in root.iter(etree.Element):
            if "#" + str(element.get("ID")) == uri:
                ctx.register_id(element, "ID")
    ctx.sign(signature)
    return etree.tostring(root)


def _template(
    holder: etree._Element, cert_pem: str, cipher: str, key_transport: str
) -> tuple[etree._Element, xmlsec.EncryptionContext]:
    transform, key_data, bits = CIPHERS[cipher]
    data = xmlsec.template.encrypted_data_create(
        holder, transform, type=T.TypeEncElement, ns="xenc"
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(data)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(data, ns="ds")
    key = xmlsec.template.add_encrypted_key(key_info, KEY_TRANSPORTS[key_transport])
    xmlsec.template.encrypted_data_ensure_cipher_value(key)
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(cert_pem.encode(), T.KeyDataFormatCertPem, None))
    ctx = xmlsec.EncryptionContext(manager)
    ctx.key = xmlsec.Key.generate(key_data, bits, T.KeyDataTypeSession)
    return data, ctx


def _wrap(encrypted_data: etree._Element) -> etree._Element:
    wrapper = etree.Element(f"{{{SAML}}}EncryptedID", nsmap={"saml": SAML})
    wrapper.append(encrypted_data)
    # Round-trip: what a receiver parses, with every namespace declared where it is used.
    return etree.fromstring(etree.tostring(wrapper))


def encrypted_id(
    value: str,
    cert_pem: str,
    *,
    cipher: str = "aes128-gcm",
    key_transport: str = "rsa-oaep-mgf1p",
    name_id_format: str = PERSISTENT,
    element: str = "NameID",
) -> etree._Element:
    """A ``saml:EncryptedID`` whose plaintext is ``<saml:{element}>value</…>`` (its own
    namespace declaration, as IdPs serialise it), encrypted to ``cert_pem``."""
    plain = etree.Element(f"{{{SAML}}}{element}", nsmap={"saml": SAML}, Format=name_id_format)
    plain.text = value
    holder = etree.Element("holder")  # no namespaces: the plaintext declares its own
    holder.append(plain)
    data, ctx = _template(holder, cert_pem, cipher, key_transport)
    return _wrap(ctx.encrypt_xml(data, plain))


def encrypted_id_of_bytes(
    plaintext: bytes, cert_pem: str, *, cipher: str = "aes128-gcm"
) -> etree._Element:
    """A ``saml:EncryptedID`` of type Element whose plaintext is ``plaintext`` as given."""
    data, ctx = _template(etree.Element("holder"), cert_pem, cipher, "rsa-oaep-mgf1p")
    return _wrap(ctx.encrypt_binary(data, plaintext))
