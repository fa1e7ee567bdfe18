"""Signed IdP metadata: only an enveloped signature on the root, by the pinned certificate.

The documents are signed here with xmlsec the way a federation operator's
tooling signs them (``idp_side.sign_metadata``); SimpleSAMLphp's own signer
is the peer in ``tests/integration/test_saml_signed_metadata.py``. Every
wrapping case starts from a document the right key really signed.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from lxml import etree

from callvault.errors import SsoConfigError
from callvault.sso.saml import SamlAdapter, parse_idp_metadata
from callvault.sso.saml._metadata_signature import verify_root_signature
from callvault.sso.saml._xml import NS, parse_untrusted, qname
from tests.integration.simplesamlphp import KeyPair
from tests.unit.sso.saml.conftest import metadata
from tests.unit.sso.saml.idp_side import T, sign_metadata
from tests.unit.sso.saml.test_config import _raw
from tests.unit.sso.saml.test_metadata import _weak_cert_b64

FIELD = "idp_metadata_xml"
SIGNER = "idp_metadata_signing_certificate"
EVIL_SSO = "https://evil.example/sso"


@pytest.fixture(scope="module")
def fed() -> KeyPair:
    """The federation operator's (or the IdP's) metadata signing key."""
    return KeyPair.generate("metadata signer")


@pytest.fixture(scope="module")
def attacker() -> KeyPair:
    return KeyPair.generate("attacker")


@pytest.fixture
def doc(idp_keys: KeyPair) -> str:
    return metadata(idp_keys.cert_b64)


def _refused(xml: str | bytes, cert: str) -> SsoConfigError:
    with pytest.raises(SsoConfigError) as exc:
        parse_idp_metadata(xml, signing_certificate=cert)
    return exc.value


def _reason(xml: str | bytes, cert: str) -> str:
    err = _refused(xml, cert)
    assert err.field == FIELD
    return err.message.rsplit("(", 1)[1].rstrip(")")


def _root(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


def _bytes(root: etree._Element) -> bytes:
    return etree.tostring(root)


def _sso(root: etree._Element) -> etree._Element:
    found = root.find(".//md:SingleSignOnService", NS)
    assert found is not None
    return found


# --- accepted ----------------------------------------------------------------------------------


def test_metadata_signed_by_the_pinned_certificate_is_accepted(
    doc: str, fed: KeyPair, idp_keys: KeyPair
) -> None:
    parsed = parse_idp_metadata(sign_metadata(doc, fed), signing_certificate=fed.cert_pem)
    assert parsed.entity_id == "https://idp.example.com/saml"
    assert parsed.signing_certs == (idp_keys.cert_b64,)


def test_connection_with_the_signer_set_accepts_signed_metadata(
    idp_keys: KeyPair, sp_keys: KeyPair, fed: KeyPair, doc: str
) -> None:
    raw = _raw(
        idp_keys,
        sp_keys,
        idp_metadata_xml=sign_metadata(doc, fed).decode(),
        idp_metadata_signing_certificate=fed.cert_pem,
    )
    cfg = SamlAdapter().parse_config(raw)
    assert cfg.idp.sso_url == "https://idp.example.com/sso"
    assert cfg.idp_metadata_signing_certificate == fed.cert_pem.strip()


def test_whole_document_reference_is_accepted(doc: str, fed: KeyPair) -> None:
    signed = sign_metadata(doc, fed, reference="")
    assert b'URI=""' in signed
    assert parse_idp_metadata(signed, signing_certificate=fed.cert_pem).entity_id


@pytest.mark.parametrize(
    ("method", "digest"),
    [
        (T.TransformRsaSha384, T.TransformSha384),
        (T.TransformRsaSha512, T.TransformSha512),
    ],
)
def test_stronger_sha2_is_accepted(doc: str, fed: KeyPair, method: Any, digest: Any) -> None:
    signed = sign_metadata(doc, fed, method=method, digest=digest)
    assert parse_idp_metadata(signed, signing_certificate=fed.cert_pem).entity_id


def _ec_signer() -> KeyPair:
    return KeyPair.generate("EC metadata signer", ec_p256=True)


def test_ecdsa_sha256_signer_is_accepted(doc: str) -> None:
    signer = _ec_signer()
    signed = sign_metadata(doc, signer, method=T.TransformEcdsaSha256)
    assert parse_idp_metadata(signed, signing_certificate=signer.cert_pem).entity_id


def test_signed_aggregate_with_one_idp_is_accepted(doc: str, fed: KeyPair) -> None:
    aggregate = (
        '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
        f"{doc}</md:EntitiesDescriptor>"
    )
    signed = sign_metadata(aggregate, fed)
    assert parse_idp_metadata(signed, signing_certificate=fed.cert_pem).entity_id


def test_without_a_pinned_signer_nothing_changes(doc: str, attacker: KeyPair) -> None:
    # Unsigned, and signed by anyone: both accepted, as before the setting existed.
    assert parse_idp_metadata(doc).entity_id
    assert parse_idp_metadata(sign_metadata(doc, attacker)).entity_id


# --- refused: who signed, and how --------------------------------------------------------------


def test_unsigned_metadata_is_refused(doc: str, fed: KeyPair) -> None:
    assert _reason(doc, fed.cert_pem) == "unsigned"


def test_metadata_signed_by_another_key_is_refused(
    doc: str, fed: KeyPair, attacker: KeyPair
) -> None:
    # The attacker's own certificate rides along in KeyInfo; it is never used.
    assert _reason(sign_metadata(doc, attacker), fed.cert_pem) == "signature"


def test_another_key_claiming_the_pinned_certificate_is_refused(
    doc: str, fed: KeyPair, attacker: KeyPair
) -> None:
    root = _root(sign_metadata(doc, attacker))
    cert = root.find("ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)
    assert cert is not None
    cert.text = fed.cert_b64
    assert _reason(_bytes(root), fed.cert_pem) == "signature"


@pytest.mark.parametrize(
    ("method", "digest"),
    [
        (T.TransformRsaSha1, T.TransformSha1),
        (T.TransformRsaSha256, T.TransformSha1),
        (T.TransformRsaSha1, T.TransformSha256),
    ],
    ids=["rsa-sha1", "sha1-digest", "rsa-sha1-signature-method"],
)
def test_sha1_is_refused(doc: str, fed: KeyPair, method: Any, digest: Any) -> None:
    signed = sign_metadata(doc, fed, method=method, digest=digest)
    assert _reason(signed, fed.cert_pem) == "weak-algorithm"


# --- refused: edited after signing --------------------------------------------------------------


def _edit_sso(root: etree._Element, fed: KeyPair) -> None:
    _sso(root).set("Location", EVIL_SSO)


def _edit_entity_id(root: etree._Element, fed: KeyPair) -> None:
    root.set("entityID", "https://evil.example/saml")


def _swap_idp_certificate(root: etree._Element, fed: KeyPair) -> None:
    for cert in root.iter(qname("ds", "X509Certificate")):
        if cert.getparent().getparent().getparent().tag == qname("md", "KeyDescriptor"):
            cert.text = fed.cert_b64


def _add_key_descriptor(root: etree._Element, fed: KeyPair) -> None:
    idp = root.find("md:IDPSSODescriptor", NS)
    assert idp is not None
    kd = copy.deepcopy(idp.find("md:KeyDescriptor", NS))
    for cert in kd.iter(qname("ds", "X509Certificate")):
        cert.text = fed.cert_b64
    idp.insert(0, kd)


EDITS = {
    "sso_url": _edit_sso,
    "entity_id": _edit_entity_id,
    "idp_signing_certificate_swapped": _swap_idp_certificate,
    "extra_signing_certificate_added": _add_key_descriptor,
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_content_edited_after_signing_is_refused(doc: str, fed: KeyPair, edit: str) -> None:
    root = _root(sign_metadata(doc, fed))
    EDITS[edit](root, fed)
    assert _reason(_bytes(root), fed.cert_pem) == "signature"


# --- refused: signature wrapping (the signed element is not the root we read) ---------------------


def _evil(signed: bytes) -> etree._Element:
    """The signed document with its SSO URL changed, keeping the (now stale) signature."""
    evil = _root(signed)
    _sso(evil).set("Location", EVIL_SSO)
    return evil


def _signed_entity_inside_an_unsigned_aggregate(signed: bytes) -> etree._Element:
    wrapper = etree.Element(qname("md", "EntitiesDescriptor"), nsmap={"md": NS["md"]})
    wrapper.append(_root(signed))
    return wrapper


def _original_in_object_of_the_evil_roots_signature(signed: bytes) -> etree._Element:
    evil = _evil(signed)
    signature = evil.find("ds:Signature", NS)
    assert signature is not None
    obj = etree.SubElement(signature, qname("ds", "Object"))
    obj.append(_root(signed))
    return evil


def _original_inside_the_evil_root_same_id(signed: bytes) -> etree._Element:
    evil = _evil(signed)
    extensions = etree.SubElement(evil, qname("md", "Extensions"))
    extensions.append(_root(signed))
    return evil


def _signature_moved_into_the_idp_role(signed: bytes) -> etree._Element:
    root = _root(signed)
    signature = root.find("ds:Signature", NS)
    idp = root.find("md:IDPSSODescriptor", NS)
    assert signature is not None
    assert idp is not None
    idp.insert(0, signature)
    return root


def _second_signature_on_the_root(signed: bytes) -> etree._Element:
    root = _root(signed)
    signature = root.find("ds:Signature", NS)
    assert signature is not None
    root.insert(1, copy.deepcopy(signature))
    return root


WRAPPING = {
    "signed_entity_inside_unsigned_aggregate": _signed_entity_inside_an_unsigned_aggregate,
    "original_in_object_of_evil_roots_signature": _original_in_object_of_the_evil_roots_signature,
    "original_inside_evil_root_same_id": _original_inside_the_evil_root_same_id,
    "signature_moved_into_idp_role": _signature_moved_into_the_idp_role,
    "second_signature_on_root": _second_signature_on_the_root,
}


@pytest.mark.parametrize("attack", list(WRAPPING))
def test_signature_wrapping_is_refused(doc: str, fed: KeyPair, attack: str) -> None:
    signed = sign_metadata(doc, fed)
    wrapped = _bytes(WRAPPING[attack](signed))
    assert _reason(wrapped, fed.cert_pem) in {"unsigned", "wrapped"}


def test_signature_over_an_inner_element_does_not_cover_the_root(doc: str, fed: KeyPair) -> None:
    # A genuine signature by the pinned key, but over the IdP role only: the root's
    # entityID (and anything else outside the role) would be the attacker's to choose.
    root = _root(doc.encode())
    idp = root.find("md:IDPSSODescriptor", NS)
    assert idp is not None
    idp.set("ID", "_role")
    signed = sign_metadata(_bytes(root), fed, reference="#_role")
    assert _reason(signed, fed.cert_pem) == "wrapped"


def test_idp_hidden_in_the_signature_of_a_signed_aggregate_is_refused(
    fed: KeyPair, idp_keys: KeyPair, attacker: KeyPair
) -> None:
    # The federation signed an aggregate with no IdP in it (say, only SPs). Content inside
    # ds:Signature is outside what an enveloped signature covers: an IdP added there must
    # never be read.
    sp_only = (
        '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
        '<md:EntityDescriptor entityID="https://sp.example.org"><md:SPSSODescriptor'
        ' protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"'
        ' Location="https://sp.example.org/acs" index="0"/></md:SPSSODescriptor>'
        "</md:EntityDescriptor></md:EntitiesDescriptor>"
    )
    root = _root(sign_metadata(sp_only, fed))
    signature = root.find("ds:Signature", NS)
    assert signature is not None
    obj = etree.SubElement(signature, qname("ds", "Object"))
    obj.append(etree.fromstring(metadata(attacker.cert_b64, sso_url=EVIL_SSO)))
    assert _reason(_bytes(root), fed.cert_pem) == "wrapped"


def test_extra_reference_transform_is_refused(doc: str, fed: KeyPair) -> None:
    root = _root(sign_metadata(doc, fed))
    transforms = root.find("ds:Signature/ds:SignedInfo/ds:Reference/ds:Transforms", NS)
    assert transforms is not None
    etree.SubElement(
        transforms,
        qname("ds", "Transform"),
        Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116",
    )
    assert _reason(_bytes(root), fed.cert_pem) in {"wrapped", "signature"}


# --- the setting itself, and what errors say -----------------------------------------------------


def _pem(b64: str) -> str:
    return f"-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    "case", ["not_pem", "garbage_body", "two_certificates", "private_key", "rsa_1024"]
)
def test_unusable_signing_certificate_is_refused_by_name(
    idp_keys: KeyPair, sp_keys: KeyPair, fed: KeyPair, doc: str, case: str
) -> None:
    values = {
        "not_pem": "not a certificate",
        "garbage_body": _pem("bm90IGEgY2VydA=="),
        "two_certificates": fed.cert_pem + idp_keys.cert_pem,
        "private_key": fed.key_pem,
        "rsa_1024": _pem(_weak_cert_b64()),
    }
    raw = _raw(
        idp_keys,
        sp_keys,
        idp_metadata_xml=sign_metadata(doc, fed).decode(),
        idp_metadata_signing_certificate=values[case],
    )
    with pytest.raises(SsoConfigError) as exc:
        SamlAdapter().parse_config(raw)
    assert exc.value.field == SIGNER
    with pytest.raises(SsoConfigError) as direct:
        parse_idp_metadata(sign_metadata(doc, fed), signing_certificate=values[case])
    assert direct.value.field == SIGNER


def test_connection_refuses_unsigned_metadata_naming_the_metadata_field(
    idp_keys: KeyPair, sp_keys: KeyPair, fed: KeyPair, doc: str
) -> None:
    raw = _raw(idp_keys, sp_keys, idp_metadata_signing_certificate=fed.cert_pem)
    with pytest.raises(SsoConfigError) as exc:
        SamlAdapter().parse_config(raw)
    assert exc.value.field == FIELD


def test_refusal_never_quotes_the_metadata(doc: str, fed: KeyPair, attacker: KeyPair) -> None:
    marker = "secret-host-7f3a.example"
    signed = sign_metadata(doc.replace("idp.example.com/sso", f"{marker}/sso"), attacker)
    err = _refused(signed, fed.cert_pem)
    text = f"{err} {err.message} {err.args!r}"
    assert marker not in text
    assert "<" not in text
    assert "BEGIN CERTIFICATE" not in text


def test_verified_signature_is_removed_before_the_metadata_is_read(doc: str, fed: KeyPair) -> None:
    # What is read is what the digest covered: the verifier takes the signature out.
    root = parse_untrusted(sign_metadata(doc, fed), max_bytes=1 << 20)
    verify_root_signature(root, fed.cert_pem)
    assert root.find("ds:Signature", NS) is None
    assert next(root.iter(qname("ds", "Signature")), None) is None
