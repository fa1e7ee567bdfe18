"""Hostile SAML responses, derived from real SimpleSAMLphp responses captured here.

Every attack starts from a response the real IdP just signed for a real
pending request, so the only thing wrong with it is the attack. Signature
wrapping variants follow the XSW1-XSW8 family of Somorovsky et al., "On
Breaking SAML: Be Whoever You Want to Be" (USENIX Security 2012), as SAML
Raider names them; each is also fed straight to our own checks
(``_checks.check_response``) as if a library had been fooled into calling it
verified, to show our wall holds on its own.

Where a test needs a response the IdP would not produce (no audience, a
Recipient that merely contains our ACS URL, SHA-1 digests), it is signed
with the test IdP's own key, and a control test shows such a re-signed
response is otherwise accepted.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import secrets
from collections.abc import Callable, Iterator

import pytest
import xmlsec
from lxml import etree

from callvault.errors import SsoError
from callvault.sso.saml import MemoryReplayGuard, SamlAdapter
from callvault.sso.saml._backend import VerifiedDocument
from callvault.sso.saml._checks import Expected, check_response
from callvault.sso.saml._xml import NS, qname
from tests.integration.simplesamlphp import (
    Captured,
    KeyPair,
    SimpleSamlIdp,
    SpConnection,
    sp_initiated_login,
    start_or_skip,
)

WRAPPING_REASONS = {"assertion-count", "signature", "malformed"}


@pytest.fixture(scope="module")
def idp() -> Iterator[SimpleSamlIdp]:
    server = start_or_skip("hostile")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def adapter() -> SamlAdapter:
    return SamlAdapter()


@pytest.fixture(scope="module")
def sp_keys() -> KeyPair:
    return KeyPair.generate("callvault test SP")


def _capture(
    adapter: SamlAdapter, idp: SimpleSamlIdp, keys: KeyPair, **kw: dict[str, object]
) -> Captured:
    conn = SpConnection(tenant_id="t-" + secrets.token_hex(4), connection_id="c1", keys=keys)
    return sp_initiated_login(adapter, idp, conn, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def assertion_signed(adapter: SamlAdapter, idp: SimpleSamlIdp, sp_keys: KeyPair) -> Captured:
    return _capture(adapter, idp, sp_keys)


@pytest.fixture(scope="module")
def response_signed(adapter: SamlAdapter, idp: SimpleSamlIdp, sp_keys: KeyPair) -> Captured:
    return _capture(
        adapter,
        idp,
        sp_keys,
        knobs={"sign_assertion": False, "sign_response": True},
        overrides={"signing": "response"},
    )


def _root(captured: Captured) -> etree._Element:
    return etree.fromstring(captured.xml)


def _bytes(root: etree._Element) -> bytes:
    return etree.tostring(root)


def _assertion(root: etree._Element) -> etree._Element:
    found = root.find("saml:Assertion", NS)
    assert found is not None
    return found


def _name_id(element: etree._Element) -> etree._Element:
    found = element.find("saml:Subject/saml:NameID", NS)
    assert found is not None
    return found


def _evil_copy(element: etree._Element, *, keep_signature: bool = False) -> etree._Element:
    """A copy claiming to be the administrator, under a fresh ID, unsigned unless asked."""
    evil = copy.deepcopy(element)
    evil.set("ID", "_evil" + secrets.token_hex(8))
    if not keep_signature:
        for sig in evil.findall("ds:Signature", NS):
            evil.remove(sig)
    for name_id in evil.iter(qname("saml", "NameID")):
        name_id.text = "administrator"
    return evil


def _without_signature(element: etree._Element) -> etree._Element:
    clean = copy.deepcopy(element)
    for sig in clean.findall("ds:Signature", NS):
        clean.remove(sig)
    return clean


def _rejected(captured: Captured, adapter: SamlAdapter, xml: bytes | str) -> str:
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter, saml_response=xml)
    return exc.value.reason


def _our_checks_alone(captured: Captured, root: etree._Element) -> str:
    """Our checks on ``root`` as if a backend had verified every signature in it."""
    cfg = captured.config
    expected = Expected(
        idp_entity_id=cfg.idp.entity_id,
        sp_entity_id=cfg.sp_entity_id,
        acs_url=cfg.acs_url,
        request_id=captured.pending["saml_request_id"],
        signing=cfg.signing,
        skew=cfg.clock_skew,
        now=dt.datetime.now(dt.UTC),
    )
    doc = VerifiedDocument(
        document=root, signed_response=True, signed_assertion=True, encrypted=False
    )
    with pytest.raises(SsoError) as exc:
        check_response(doc, expected)
    return exc.value.reason


# --- controls: the captured responses are good ---------------------------------------------


def test_captured_responses_are_accepted_untouched(
    adapter: SamlAdapter, assertion_signed: Captured, response_signed: Captured
) -> None:
    assert assertion_signed.finish(adapter).subject == "alice"
    assert response_signed.finish(adapter).subject == "alice"


def test_our_checks_accept_the_untouched_response(assertion_signed: Captured) -> None:
    cfg = assertion_signed.config
    expected = Expected(
        idp_entity_id=cfg.idp.entity_id,
        sp_entity_id=cfg.sp_entity_id,
        acs_url=cfg.acs_url,
        request_id=assertion_signed.pending["saml_request_id"],
        signing=cfg.signing,
        skew=cfg.clock_skew,
        now=dt.datetime.now(dt.UTC),
    )
    doc = VerifiedDocument(
        document=_root(assertion_signed),
        signed_response=False,
        signed_assertion=True,
        encrypted=False,
    )
    assert check_response(doc, expected).name_id == "alice"


# --- signature wrapping (assertion signature: XSW3-XSW8) -------------------------------------


def _xsw3(root: etree._Element) -> None:
    original = _assertion(root)
    root.insert(root.index(original), _evil_copy(original))


def _xsw4(root: etree._Element) -> None:
    original = _assertion(root)
    evil = _evil_copy(original)
    root.replace(original, evil)
    evil.append(original)


def _xsw5(root: etree._Element) -> None:
    original = _assertion(root)
    pristine = copy.deepcopy(original)
    _name_id(original).text = "administrator"
    original.set("ID", "_evil" + secrets.token_hex(8))
    root.append(_without_signature(pristine))


def _xsw5_same_id(root: etree._Element) -> None:
    original = _assertion(root)
    pristine = copy.deepcopy(original)
    _name_id(original).text = "administrator"
    root.append(_without_signature(pristine))


def _xsw6(root: etree._Element) -> None:
    original = _assertion(root)
    evil = _evil_copy(original, keep_signature=True)
    root.replace(original, evil)
    signature = evil.find("ds:Signature", NS)
    assert signature is not None
    signature.append(original)


def _xsw7(root: etree._Element) -> None:
    original = _assertion(root)
    extensions = etree.Element(qname("samlp", "Extensions"))
    root.insert(1, extensions)
    extensions.append(copy.deepcopy(original))
    root.replace(original, _evil_copy(original))


def _xsw7_only_in_extensions(root: etree._Element) -> None:
    original = _assertion(root)
    extensions = etree.Element(qname("samlp", "Extensions"))
    root.insert(1, extensions)
    root.remove(original)
    extensions.append(original)


def _xsw8(root: etree._Element) -> None:
    original = _assertion(root)
    evil = _evil_copy(original, keep_signature=True)
    root.replace(original, evil)
    signature = evil.find("ds:Signature", NS)
    assert signature is not None
    obj = etree.SubElement(signature, qname("ds", "Object"))
    obj.append(_without_signature(original))


def _in_advice(root: etree._Element) -> None:
    original = _assertion(root)
    evil = _evil_copy(original)
    root.replace(original, evil)
    advice = etree.Element(qname("saml", "Advice"))
    conditions = evil.find("saml:Conditions", NS)
    assert conditions is not None
    conditions.addnext(advice)
    advice.append(original)


def _evil_carrying_original_signature(root: etree._Element) -> None:
    original = _assertion(root)
    evil = _evil_copy(original, keep_signature=True)
    root.replace(original, evil)


ASSERTION_WRAPPING: dict[str, Callable[[etree._Element], None]] = {
    "xsw3_evil_assertion_before_the_signed_one": _xsw3,
    "xsw4_signed_assertion_inside_the_evil_one": _xsw4,
    "xsw5_edited_assertion_keeps_signature_copy_appended": _xsw5,
    "xsw5_edited_assertion_same_id_copy_appended": _xsw5_same_id,
    "xsw6_signed_assertion_inside_the_evil_signature": _xsw6,
    "xsw7_signed_assertion_in_extensions_evil_in_place": _xsw7,
    "xsw7_signed_assertion_moved_into_extensions": _xsw7_only_in_extensions,
    "xsw8_signed_assertion_in_object_of_evil_signature": _xsw8,
    "signed_assertion_in_advice_of_evil_assertion": _in_advice,
    "evil_assertion_carrying_the_original_signature": _evil_carrying_original_signature,
}


@pytest.mark.parametrize("attack", list(ASSERTION_WRAPPING))
def test_assertion_signature_wrapping_is_rejected(
    adapter: SamlAdapter, assertion_signed: Captured, attack: str
) -> None:
    root = _root(assertion_signed)
    ASSERTION_WRAPPING[attack](root)
    assert _bytes(root) != _bytes(_root(assertion_signed))
    assert _rejected(assertion_signed, adapter, _bytes(root)) in WRAPPING_REASONS
    assert _our_checks_alone(assertion_signed, root) in WRAPPING_REASONS


# --- signature wrapping (response signature: XSW1, XSW2) -------------------------------------


def _evil_response(root: etree._Element) -> etree._Element:
    evil = _evil_copy(root)
    evil.set("ID", "_evilresp" + secrets.token_hex(8))
    return evil


def _xsw1(root: etree._Element) -> etree._Element:
    evil = _evil_response(root)
    signature = copy.deepcopy(root.find("ds:Signature", NS))
    assert signature is not None
    evil.insert(1, signature)
    signature.append(_without_signature(root))
    return evil


def _xsw2(root: etree._Element) -> etree._Element:
    evil = _evil_response(root)
    signature = copy.deepcopy(root.find("ds:Signature", NS))
    assert signature is not None
    evil.insert(1, signature)
    signature.addprevious(_without_signature(root))
    return evil


RESPONSE_WRAPPING: dict[str, Callable[[etree._Element], etree._Element]] = {
    "xsw1_signed_response_inside_its_signature": _xsw1,
    "xsw2_signed_response_detached_before_signature": _xsw2,
}


@pytest.mark.parametrize("attack", list(RESPONSE_WRAPPING))
def test_response_signature_wrapping_is_rejected(
    adapter: SamlAdapter, response_signed: Captured, attack: str
) -> None:
    evil = RESPONSE_WRAPPING[attack](_root(response_signed))
    assert b"administrator" in _bytes(evil)
    assert _rejected(response_signed, adapter, _bytes(evil)) in WRAPPING_REASONS
    assert _our_checks_alone(response_signed, evil) in WRAPPING_REASONS


# --- tampering with signed content --------------------------------------------------------


def test_stripped_assertion_signature_is_rejected(
    adapter: SamlAdapter, assertion_signed: Captured
) -> None:
    root = _root(assertion_signed)
    original = _assertion(root)
    root.replace(original, _without_signature(original))
    assert _rejected(assertion_signed, adapter, _bytes(root)) == "signature"


def test_stripped_response_signature_is_rejected(
    adapter: SamlAdapter, response_signed: Captured
) -> None:
    root = _root(response_signed)
    signature = root.find("ds:Signature", NS)
    assert signature is not None
    root.remove(signature)
    assert _rejected(response_signed, adapter, _bytes(root)) == "signature"


def test_name_id_edited_after_signing_is_rejected(
    adapter: SamlAdapter, assertion_signed: Captured
) -> None:
    root = _root(assertion_signed)
    _name_id(_assertion(root)).text = "administrator"
    assert _rejected(assertion_signed, adapter, _bytes(root)) == "signature"


def test_group_attribute_edited_after_signing_is_rejected(
    adapter: SamlAdapter, response_signed: Captured
) -> None:
    root = _root(response_signed)
    for value in root.iter(qname("saml", "AttributeValue")):
        if value.text == "cv-agents":
            value.text = "cv-owners"
    assert _rejected(response_signed, adapter, _bytes(root)) == "signature"


def test_comment_injected_into_name_id_cannot_truncate_the_subject(
    adapter: SamlAdapter, assertion_signed: Captured
) -> None:
    # Exclusive c14n drops comments, so the signature still verifies; a reader taking the
    # first text node would see "ali" (CVE-2017-11427 family). python3-saml parses with
    # comments removed, so the value read is the value signed; our own checks refuse a
    # NameID with any child node outright (for a backend that keeps comments).
    root = _root(assertion_signed)
    name_id = _name_id(_assertion(root))
    name_id.text = "ali"
    comment = etree.Comment("x")
    comment.tail = "ce"
    name_id.append(comment)
    assert assertion_signed.finish(adapter, saml_response=_bytes(root)).subject == "alice"
    assert _our_checks_alone(assertion_signed, root) == "subject"


def test_two_assertions_are_rejected(adapter: SamlAdapter, assertion_signed: Captured) -> None:
    root = _root(assertion_signed)
    root.append(copy.deepcopy(_assertion(root)))
    assert _rejected(assertion_signed, adapter, _bytes(root)) in {"assertion-count", "signature"}


# --- envelope values outside the assertion signature -------------------------------------------


def test_destination_merely_starting_with_our_acs_url_is_rejected(
    adapter: SamlAdapter, assertion_signed: Captured
) -> None:
    # python3-saml accepts any Destination that starts with the ACS URL.
    root = _root(assertion_signed)
    root.set("Destination", assertion_signed.conn.acs_url + "/../../other/acs")
    assert _rejected(assertion_signed, adapter, _bytes(root)) == "destination"


def test_missing_destination_is_rejected(adapter: SamlAdapter, assertion_signed: Captured) -> None:
    # python3-saml checks Destination only when present.
    root = _root(assertion_signed)
    del root.attrib["Destination"]
    assert _rejected(assertion_signed, adapter, _bytes(root)) == "destination"


def test_missing_in_response_to_is_rejected(
    adapter: SamlAdapter, assertion_signed: Captured
) -> None:
    # python3-saml lets a response without InResponseTo through (unsolicited).
    root = _root(assertion_signed)
    del root.attrib["InResponseTo"]
    assert _rejected(assertion_signed, adapter, _bytes(root)) == "in-response-to"


def test_failed_status_is_rejected(adapter: SamlAdapter, assertion_signed: Captured) -> None:
    root = _root(assertion_signed)
    code = root.find("samlp:Status/samlp:StatusCode", NS)
    assert code is not None
    code.set("Value", "urn:oasis:names:tc:SAML:2.0:status:Requester")
    assert _rejected(assertion_signed, adapter, _bytes(root)) == "status"


# --- responses a misbehaving IdP could sign (re-signed with the test IdP's key) ---------------


def _sign(element: etree._Element, keys: KeyPair, *, digest: object = None) -> None:
    for old in element.findall("ds:Signature", NS):
        element.remove(old)
    signature = xmlsec.template.create(
        element, xmlsec.Transform.EXCL_C14N, xmlsec.Transform.RSA_SHA256, ns="ds"
    )
    issuer = element.find("saml:Issuer", NS)
    assert issuer is not None
    issuer.addnext(signature)
    ref = xmlsec.template.add_reference(
        signature, digest or xmlsec.Transform.SHA256, uri="#" + element.get("ID")
    )
    xmlsec.template.add_transform(ref, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(ref, xmlsec.Transform.EXCL_C14N)
    key_info = xmlsec.template.ensure_key_info(signature)
    xmlsec.template.add_x509_data(key_info)
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(keys.key_pem.encode(), xmlsec.constants.KeyDataFormatPem)
    ctx.key.load_cert_from_memory(keys.cert_pem.encode(), xmlsec.constants.KeyDataFormatCertPem)
    xmlsec.tree.add_ids(element, ["ID"])
    ctx.sign(signature)


def _unchanged(assertion: etree._Element) -> None:
    """No edit: re-sign the assertion as the IdP sent it."""


def _resigned(
    captured: Captured, keys: KeyPair, edit: Callable[[etree._Element], None], **kw: object
) -> bytes:
    root = _root(captured)
    assertion = _assertion(root)
    edit(assertion)
    _sign(assertion, keys, **kw)
    return _bytes(root)


def test_resigned_untouched_assertion_is_accepted(
    adapter: SamlAdapter, idp: SimpleSamlIdp, assertion_signed: Captured
) -> None:
    xml = _resigned(assertion_signed, idp.keys, _unchanged)
    assert assertion_signed.finish(adapter, saml_response=xml).subject == "alice"


def test_assertion_signed_by_another_key_with_its_own_certificate_is_rejected(
    adapter: SamlAdapter, assertion_signed: Captured
) -> None:
    attacker = KeyPair.generate("attacker")
    xml = _resigned(assertion_signed, attacker, _unchanged)
    assert _rejected(assertion_signed, adapter, xml) == "signature"


def test_assertion_signed_by_another_key_claiming_the_idp_certificate_is_rejected(
    adapter: SamlAdapter, idp: SimpleSamlIdp, assertion_signed: Captured
) -> None:
    attacker = KeyPair.generate("attacker")
    root = etree.fromstring(_resigned(assertion_signed, attacker, _unchanged))
    certs = list(root.iter(qname("ds", "X509Certificate")))
    assert len(certs) == 1
    certs[0].text = idp.keys.cert_b64
    assert _rejected(assertion_signed, adapter, _bytes(root)) == "signature"


def test_signed_assertion_without_audience_restriction_is_rejected(
    adapter: SamlAdapter, idp: SimpleSamlIdp, assertion_signed: Captured
) -> None:
    # python3-saml checks the audience only when one is present.
    def drop_audience(assertion: etree._Element) -> None:
        for restriction in assertion.iter(qname("saml", "AudienceRestriction")):
            restriction.getparent().remove(restriction)

    xml = _resigned(assertion_signed, idp.keys, drop_audience)
    assert _rejected(assertion_signed, adapter, xml) == "audience"


def test_signed_assertion_with_an_extra_foreign_audience_restriction_is_rejected(
    adapter: SamlAdapter, idp: SimpleSamlIdp, assertion_signed: Captured
) -> None:
    def add_restriction(assertion: etree._Element) -> None:
        conditions = assertion.find("saml:Conditions", NS)
        restriction = etree.SubElement(conditions, qname("saml", "AudienceRestriction"))
        etree.SubElement(restriction, qname("saml", "Audience")).text = "https://other.example"

    xml = _resigned(assertion_signed, idp.keys, add_restriction)
    assert _rejected(assertion_signed, adapter, xml) == "audience"


def test_signed_recipient_merely_containing_our_acs_url_is_rejected(
    adapter: SamlAdapter, idp: SimpleSamlIdp, assertion_signed: Captured
) -> None:
    # python3-saml matches Recipient by substring.
    def widen(assertion: etree._Element) -> None:
        for scd in assertion.iter(qname("saml", "SubjectConfirmationData")):
            scd.set("Recipient", "https://evil.example/?" + assertion_signed.conn.acs_url)

    xml = _resigned(assertion_signed, idp.keys, widen)
    assert _rejected(assertion_signed, adapter, xml) == "subject-confirmation"


def test_signed_subject_confirmation_without_in_response_to_is_rejected(
    adapter: SamlAdapter, idp: SimpleSamlIdp, assertion_signed: Captured
) -> None:
    def drop(assertion: etree._Element) -> None:
        for scd in assertion.iter(qname("saml", "SubjectConfirmationData")):
            del scd.attrib["InResponseTo"]

    xml = _resigned(assertion_signed, idp.keys, drop)
    assert _rejected(assertion_signed, adapter, xml) == "subject-confirmation"


def test_sha1_digest_under_a_sha256_signature_is_rejected(
    adapter: SamlAdapter, idp: SimpleSamlIdp, assertion_signed: Captured
) -> None:
    xml = _resigned(assertion_signed, idp.keys, _unchanged, digest=xmlsec.Transform.SHA1)
    assert b"xmldsig#sha1" in xml
    assert _rejected(assertion_signed, adapter, xml) == "weak-algorithm"


# --- malformed and hostile XML ---------------------------------------------------------------


def test_external_entity_xxe_is_rejected(adapter: SamlAdapter, assertion_signed: Captured) -> None:
    body = assertion_signed.xml.decode()
    name_id = _name_id(_assertion(_root(assertion_signed))).text
    xxe = '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
    xml = (xxe + body.replace(f">{name_id}<", ">&x;<", 1)).encode()
    with pytest.raises(SsoError) as exc:
        assertion_signed.finish(adapter, saml_response=xml)
    assert exc.value.reason == "malformed"
    assert "root:" not in str(exc.value)


def test_billion_laughs_is_rejected(adapter: SamlAdapter, assertion_signed: Captured) -> None:
    entities = ['<!ENTITY l0 "lol">'] + [
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    ]
    xml = (
        f"<?xml version='1.0'?><!DOCTYPE r [{''.join(entities)}]>"
        '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&l9;</samlp:Response>'
    ).encode()
    assert _rejected(assertion_signed, adapter, xml) == "malformed"


def test_oversized_response_is_rejected_before_decoding(
    adapter: SamlAdapter, assertion_signed: Captured
) -> None:
    huge = "A" * (256 * 1024 + 4)
    assert _rejected(assertion_signed, adapter, huge) == "too-large"


def test_garbage_base64_is_rejected(adapter: SamlAdapter, assertion_signed: Captured) -> None:
    assert _rejected(assertion_signed, adapter, "not*base64!!") == "malformed"


def test_non_xml_is_rejected(adapter: SamlAdapter, assertion_signed: Captured) -> None:
    plain = base64.b64encode(b"hello, this is not XML").decode()
    assert _rejected(assertion_signed, adapter, plain) == "malformed"


def test_other_xml_root_is_rejected(adapter: SamlAdapter, assertion_signed: Captured) -> None:
    assert _rejected(assertion_signed, adapter, b"<a><b/></a>") == "malformed"


def test_missing_saml_response_is_rejected(
    adapter: SamlAdapter, assertion_signed: Captured
) -> None:
    with pytest.raises(SsoError) as exc:
        adapter.finish_login(
            assertion_signed.config,
            tenant_id=assertion_signed.conn.tenant_id,
            connection_id=assertion_signed.conn.connection_id,
            params={"RelayState": "x"},
            pending=assertion_signed.pending,
            now=dt.datetime.now(dt.UTC),
            replay=MemoryReplayGuard(),
        )
    assert exc.value.reason == "malformed"


def test_error_messages_never_quote_the_response(
    adapter: SamlAdapter, assertion_signed: Captured
) -> None:
    root = _root(assertion_signed)
    _name_id(_assertion(root)).text = "secret-subject-value"
    with pytest.raises(SsoError) as exc:
        assertion_signed.finish(adapter, saml_response=_bytes(root))
    text = str(exc.value) + repr(exc.value.args)
    assert "secret-subject-value" not in text
    assert "alice" not in text
    assert "<" not in text
