"""Our algorithm allow-list and signature-coverage checks, on hand-built documents."""

from __future__ import annotations

import pytest
from lxml import etree

from callvault.errors import SsoError
from callvault.sso.saml._signatures import check_algorithms, signature_covers

DS = "http://www.w3.org/2000/09/xmldsig#"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"


def _doc(
    *,
    sig: str = RSA_SHA256,
    digest: str = SHA256,
    c14n: str = EXC_C14N,
    transforms: tuple[str, ...] = (ENVELOPED, EXC_C14N),
    ref: str = "#_a",
    extra: str = "",
) -> etree._Element:
    ts = "".join(f'<ds:Transform Algorithm="{t}"/>' for t in transforms)
    return etree.fromstring(
        '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"'
        ' xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"'
        f' xmlns:ds="{DS}" ID="_r">'
        '<saml:Assertion ID="_a"><saml:Issuer>i</saml:Issuer><ds:Signature><ds:SignedInfo>'
        f'<ds:CanonicalizationMethod Algorithm="{c14n}"/>'
        f'<ds:SignatureMethod Algorithm="{sig}"/>'
        f'<ds:Reference URI="{ref}"><ds:Transforms>{ts}</ds:Transforms>'
        f'<ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue>x</ds:DigestValue>'
        "</ds:Reference></ds:SignedInfo><ds:SignatureValue>x</ds:SignatureValue></ds:Signature>"
        f"</saml:Assertion>{extra}</samlp:Response>"
    )


def test_sha256_signature_passes_the_allow_list() -> None:
    check_algorithms(_doc())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sig": "http://www.w3.org/2000/09/xmldsig#rsa-sha1"}, "weak-algorithm"),
        ({"sig": "http://www.w3.org/2000/09/xmldsig#dsa-sha1"}, "weak-algorithm"),
        ({"sig": "http://www.w3.org/2001/04/xmldsig-more#rsa-md5"}, "weak-algorithm"),
        ({"sig": "http://www.w3.org/2000/09/xmldsig#hmac-sha1"}, "weak-algorithm"),
        ({"sig": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha224"}, "weak-algorithm"),
        ({"digest": "http://www.w3.org/2000/09/xmldsig#sha1"}, "weak-algorithm"),
        ({"digest": "http://www.w3.org/2001/04/xmldsig-more#md5"}, "weak-algorithm"),
        ({"c14n": "http://www.w3.org/TR/1999/REC-xslt-19991116"}, "signature"),
        ({"transforms": (ENVELOPED, "http://www.w3.org/TR/1999/REC-xpath-19991116")}, "signature"),
        ({"transforms": ("http://www.w3.org/2000/09/xmldsig#base64",)}, "signature"),
    ],
)
def test_weak_or_dangerous_algorithms_are_refused(change: dict[str, object], reason: str) -> None:
    with pytest.raises(SsoError) as exc:
        check_algorithms(_doc(**change))  # type: ignore[arg-type]
    assert exc.value.reason == reason


def test_a_second_weak_digest_is_found_not_only_the_first() -> None:
    # python3-saml's own check looks at the first DigestMethod of a signature only.
    doc = _doc()
    signed_info = doc.find(f".//{{{DS}}}SignedInfo")
    assert signed_info is not None
    second = etree.SubElement(signed_info, f"{{{DS}}}Reference", URI="#_a")
    etree.SubElement(
        second, f"{{{DS}}}DigestMethod", Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"
    )
    with pytest.raises(SsoError) as exc:
        check_algorithms(doc)
    assert exc.value.reason == "weak-algorithm"


def test_rsa_pkcs1_v15_key_transport_is_refused() -> None:
    xenc = "http://www.w3.org/2001/04/xmlenc#"
    extra = (
        f'<x:EncryptedData xmlns:x="{xenc}"><x:EncryptionMethod Algorithm="{xenc}aes128-cbc"/>'
        f'<x:EncryptedKey><x:EncryptionMethod Algorithm="{xenc}rsa-1_5"/></x:EncryptedKey>'
        "</x:EncryptedData>"
    )
    with pytest.raises(SsoError) as exc:
        check_algorithms(_doc(extra=extra), allow_cbc=True)
    assert exc.value.reason == "weak-algorithm"


def _encrypted(data_alg: str) -> str:
    xenc = "http://www.w3.org/2001/04/xmlenc#"
    return (
        f'<x:EncryptedData xmlns:x="{xenc}"><x:EncryptionMethod Algorithm="{data_alg}"/>'
        f'<x:EncryptedKey><x:EncryptionMethod Algorithm="{xenc}rsa-oaep-mgf1p"/></x:EncryptedKey>'
        "</x:EncryptedData>"
    )


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_gcm_content_encryption_is_accepted(bits: int) -> None:
    check_algorithms(_doc(extra=_encrypted(f"http://www.w3.org/2009/xmlenc11#aes{bits}-gcm")))


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_cbc_content_encryption_needs_the_connections_consent(bits: int) -> None:
    doc = _doc(extra=_encrypted(f"http://www.w3.org/2001/04/xmlenc#aes{bits}-cbc"))
    with pytest.raises(SsoError) as exc:
        check_algorithms(doc)
    assert exc.value.reason == "weak-algorithm"
    check_algorithms(doc, allow_cbc=True)


def test_triple_des_content_encryption_is_refused() -> None:
    xenc = "http://www.w3.org/2001/04/xmlenc#"
    extra = (
        f'<x:EncryptedData xmlns:x="{xenc}">'
        f'<x:EncryptionMethod Algorithm="{xenc}tripledes-cbc"/></x:EncryptedData>'
    )
    with pytest.raises(SsoError) as exc:
        check_algorithms(_doc(extra=extra), allow_cbc=True)
    assert exc.value.reason == "weak-algorithm"


def _assertion(doc: etree._Element) -> etree._Element:
    found = doc.find("{urn:oasis:names:tc:SAML:2.0:assertion}Assertion")
    assert found is not None
    return found


def test_signature_referencing_its_element_covers_it() -> None:
    assert signature_covers(_assertion(_doc())) is True


def test_signature_referencing_another_id_does_not_cover() -> None:
    assert signature_covers(_assertion(_doc(ref="#_elsewhere"))) is False


def test_duplicate_id_elsewhere_in_the_document_voids_coverage() -> None:
    doc = _doc(extra='<samlp:Extensions><x ID="_a"/></samlp:Extensions>')
    assert signature_covers(_assertion(doc)) is False


def test_response_without_its_own_signature_is_not_covered() -> None:
    assert signature_covers(_doc()) is False


XENC = "http://www.w3.org/2001/04/xmlenc#"
GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"


@pytest.mark.parametrize(
    "extra",
    [
        # The cipher text itself fetched from a URI (xmlsec reads file: and http: URIs).
        (
            f'<x:EncryptedData xmlns:x="{XENC}"><x:EncryptionMethod Algorithm="{GCM}"/>'
            '<x:CipherData><x:CipherReference URI="file:///etc/passwd"/></x:CipherData>'
            "</x:EncryptedData>"
        ),
        # The encrypted key fetched from outside the document.
        (
            f'<x:EncryptedData xmlns:x="{XENC}" xmlns:ds="{DS}">'
            f'<x:EncryptionMethod Algorithm="{GCM}"/><ds:KeyInfo>'
            f'<ds:RetrievalMethod Type="{XENC}EncryptedKey" URI="http://169.254.169.254/k"/>'
            "</ds:KeyInfo></x:EncryptedData>"
        ),
        (
            f'<x:EncryptedData xmlns:x="{XENC}" xmlns:ds="{DS}">'
            f'<x:EncryptionMethod Algorithm="{GCM}"/><ds:KeyInfo>'
            f'<ds:RetrievalMethod Type="{XENC}EncryptedKey"/></ds:KeyInfo></x:EncryptedData>'
        ),
    ],
)
def test_encryption_that_reads_outside_the_document_is_refused(extra: str) -> None:
    with pytest.raises(SsoError) as exc:
        check_algorithms(_doc(extra=extra), allow_cbc=True)
    assert exc.value.reason == "external-reference"
    assert "passwd" not in str(exc.value)
    assert "169.254" not in str(exc.value)


@pytest.mark.parametrize("ref", ["file:///etc/hostname", "http://127.0.0.1/x", "x.xml"])
def test_a_signature_reference_outside_the_document_is_refused(ref: str) -> None:
    with pytest.raises(SsoError) as exc:
        check_algorithms(_doc(ref=ref))
    assert exc.value.reason == "external-reference"


def test_local_references_and_key_retrieval_pass() -> None:
    check_algorithms(_doc(ref=""))
    key = (
        f'<x:EncryptedData xmlns:x="{XENC}" xmlns:ds="{DS}">'
        f'<x:EncryptionMethod Algorithm="{GCM}"/><ds:KeyInfo>'
        f'<ds:RetrievalMethod Type="{XENC}EncryptedKey" URI="#_k"/></ds:KeyInfo></x:EncryptedData>'
    )
    check_algorithms(_doc(extra=key))
