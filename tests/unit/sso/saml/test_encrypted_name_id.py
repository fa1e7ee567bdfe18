"""Encrypted NameIDs: the decryption policy, where decryption may happen, and the setting.

``decrypt_name_id`` is fed EncryptedIDs made here with xmlsec the way an IdP
makes them (``idp_side.encrypted_id``), including the AES-GCM ones
SimpleSAMLphp 1.x cannot produce. The response checks run on a hand-built
response whose structure passes every other check (they are structural:
that the signature verifies is the backend's job, tested against the real
IdP in ``tests/integration/test_saml_encrypted_name_id.py``).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import urllib.parse
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from callvault.errors import SsoConfigError, SsoError
from callvault.sso._sp_metadata import sp_metadata
from callvault.sso.saml import SamlAdapter
from callvault.sso.saml._backend import VerifiedDocument
from callvault.sso.saml._checks import Expected, check_response
from callvault.sso.saml._encrypted_id import decrypt_name_id
from callvault.sso.saml._xml import NS, qname
from tests.integration.simplesamlphp import KeyPair
from tests.unit.sso.saml.idp_side import (
    PERSISTENT,
    SAML,
    encrypted_id,
    encrypted_id_of_bytes,
)
from tests.unit.sso.saml.test_config import _raw

TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"


def _decrypt(element: etree._Element, keys: KeyPair, *, allow_cbc: bool = False) -> str:
    name_id = decrypt_name_id(element, sp_private_key_pem=keys.key_pem, allow_cbc=allow_cbc)
    assert name_id.tag == qname("saml", "NameID")
    return str(name_id.text)


def _refused(element: etree._Element, keys: KeyPair, *, allow_cbc: bool = False) -> str:
    with pytest.raises(SsoError) as exc:
        decrypt_name_id(element, sp_private_key_pem=keys.key_pem, allow_cbc=allow_cbc)
    return exc.value.reason


# --- the decryption policy ----------------------------------------------------------------------


@pytest.mark.parametrize("cipher", ["aes128-gcm", "aes256-gcm"])
def test_gcm_encrypted_name_id_decrypts_with_the_sp_key(sp_keys: KeyPair, cipher: str) -> None:
    element = encrypted_id("alice", sp_keys.cert_pem, cipher=cipher)
    assert f"xmlenc11#{cipher}".encode() in etree.tostring(element)
    name_id = decrypt_name_id(element, sp_private_key_pem=sp_keys.key_pem, allow_cbc=False)
    assert name_id.text == "alice"
    assert name_id.get("Format") == PERSISTENT


@pytest.mark.parametrize("cipher", ["aes128-cbc", "aes256-cbc"])
def test_cbc_encrypted_name_id_needs_the_connections_consent(sp_keys: KeyPair, cipher: str) -> None:
    element = encrypted_id("alice", sp_keys.cert_pem, cipher=cipher)
    assert _refused(element, sp_keys) == "weak-algorithm"
    assert _decrypt(element, sp_keys, allow_cbc=True) == "alice"


def test_triple_des_is_refused_even_with_cbc_allowed(sp_keys: KeyPair) -> None:
    element = encrypted_id("alice", sp_keys.cert_pem, cipher="tripledes-cbc")
    assert _refused(element, sp_keys, allow_cbc=True) == "weak-algorithm"


def test_rsa_pkcs1_v15_key_transport_is_refused(sp_keys: KeyPair) -> None:
    element = encrypted_id("alice", sp_keys.cert_pem, key_transport="rsa-1_5")
    assert b"xmlenc#rsa-1_5" in etree.tostring(element)
    assert _refused(element, sp_keys, allow_cbc=True) == "weak-algorithm"


def test_name_id_encrypted_to_another_key_is_refused(sp_keys: KeyPair, idp_keys: KeyPair) -> None:
    assert _refused(encrypted_id("alice", idp_keys.cert_pem), sp_keys) == "decryption"


def test_the_callers_element_is_not_modified(sp_keys: KeyPair) -> None:
    element = encrypted_id("alice", sp_keys.cert_pem)
    before = etree.tostring(element)
    _decrypt(element, sp_keys)
    assert etree.tostring(element) == before


def _key_beside_the_data(element: etree._Element, *, uri: str = "#_k1") -> etree._Element:
    """The EncryptedKey moved next to the data and named by a RetrievalMethod."""
    moved = copy.deepcopy(element)
    key_info = moved.find("xenc:EncryptedData/ds:KeyInfo", NS)
    assert key_info is not None
    key = key_info.find("xenc:EncryptedKey", NS)
    assert key is not None
    key_info.remove(key)
    key.set("Id", "_k1")
    moved.append(key)
    etree.SubElement(
        key_info,
        qname("ds", "RetrievalMethod"),
        Type="http://www.w3.org/2001/04/xmlenc#EncryptedKey",
        URI=uri,
    )
    return moved


def test_key_beside_the_data_named_by_a_retrieval_method_is_accepted(sp_keys: KeyPair) -> None:
    element = _key_beside_the_data(encrypted_id("alice", sp_keys.cert_pem))
    assert _decrypt(element, sp_keys) == "alice"


def _retrieval_elsewhere(element: etree._Element) -> etree._Element:
    return _key_beside_the_data(element, uri="file:///etc/hostname")


def _two_data(element: etree._Element) -> etree._Element:
    changed = copy.deepcopy(element)
    data = changed.find("xenc:EncryptedData", NS)
    changed.append(copy.deepcopy(data))
    return changed


def _content_type(element: etree._Element) -> etree._Element:
    changed = copy.deepcopy(element)
    data = changed.find("xenc:EncryptedData", NS)
    assert data is not None
    data.set("Type", "http://www.w3.org/2001/04/xmlenc#Content")
    return changed


def _extra_child(element: etree._Element) -> etree._Element:
    changed = copy.deepcopy(element)
    etree.SubElement(changed, qname("saml", "NameID")).text = "administrator"
    return changed


def _no_encryption_method(element: etree._Element) -> etree._Element:
    changed = copy.deepcopy(element)
    data = changed.find("xenc:EncryptedData", NS)
    method = changed.find("xenc:EncryptedData/xenc:EncryptionMethod", NS)
    data.remove(method)
    return changed


def _key_names_another_key(element: etree._Element) -> etree._Element:
    changed = copy.deepcopy(element)
    key_info = changed.find("xenc:EncryptedData/ds:KeyInfo", NS)
    assert key_info is not None
    etree.SubElement(key_info, qname("ds", "KeyName")).text = "elsewhere"
    return changed


MALFORMED: dict[str, Callable[[etree._Element], etree._Element]] = {
    "retrieval_method_to_a_file": _retrieval_elsewhere,
    "two_encrypted_data": _two_data,
    "content_type": _content_type,
    "plain_name_id_beside_the_data": _extra_child,
    "no_encryption_method": _no_encryption_method,
    "key_info_naming_more_than_the_key": _key_names_another_key,
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_encrypted_id_is_refused_before_decryption(sp_keys: KeyPair, case: str) -> None:
    element = MALFORMED[case](encrypted_id("alice", sp_keys.cert_pem))
    assert _refused(element, sp_keys) == "decryption"


def test_ciphertext_by_reference_is_refused_even_where_it_would_decrypt(
    sp_keys: KeyPair, tmp_path: Path
) -> None:
    # xmlsec follows a CipherReference (a file:// URI here): the ciphertext moved to a
    # file would decrypt. Nothing in a response may make the SP read a URI.
    changed = encrypted_id("alice", sp_keys.cert_pem)
    cipher_data = changed.find("xenc:EncryptedData/xenc:CipherData", NS)
    assert cipher_data is not None
    (value,) = list(cipher_data)
    stored = tmp_path / "ciphertext.bin"
    stored.write_bytes(base64.b64decode(str(value.text)))
    cipher_data.remove(value)
    etree.SubElement(cipher_data, qname("xenc", "CipherReference"), URI=stored.as_uri())
    assert _refused(changed, sp_keys) == "decryption"


@pytest.mark.parametrize("element", ["Assertion", "Attribute", "Issuer"])
def test_plaintext_that_is_not_a_name_id_is_refused(sp_keys: KeyPair, element: str) -> None:
    encrypted = encrypted_id("alice", sp_keys.cert_pem, element=element)
    assert _refused(encrypted, sp_keys) == "decryption"


@pytest.mark.parametrize(
    "plaintext",
    [
        b"<saml:NameID>alice-7c1e</saml:NameID>",  # prefix declared nowhere
        b"<NameID>alice-7c1e",  # not well-formed
        b'<!DOCTYPE x [<!ENTITY e "alice-7c1e">]><x>&e;</x>',
        b"alice-7c1e",
    ],
    ids=["undeclared_prefix", "not_well_formed", "dtd", "not_xml"],
)
def test_bad_plaintext_is_refused_and_never_printed(
    sp_keys: KeyPair, capfd: pytest.CaptureFixture[str], plaintext: bytes
) -> None:
    # xmlsec parsing the plaintext itself would have libxml2 print it on stderr.
    with pytest.raises(SsoError) as exc:
        decrypt_name_id(
            encrypted_id_of_bytes(plaintext, sp_keys.cert_pem),
            sp_private_key_pem=sp_keys.key_pem,
            allow_cbc=False,
        )
    assert exc.value.reason == "decryption"
    out, err = capfd.readouterr()
    assert "alice-7c1e" not in out + err
    assert "alice-7c1e" not in str(exc.value)


# --- where decryption happens: the response checks ---------------------------------------------

SP = "https://callvault.example/sso/t1/c1"
ACS = f"{SP}/saml/acs"
IDP = "https://idp.example.com/saml"
REQUEST = "_req1"


def _instant(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _response(identifiers: list[etree._Element], now: dt.datetime) -> etree._Element:
    """A response whose assertion passes every check but the subject's identifier, with a
    signature *structure* on the assertion (the checks are structural; nothing verifies it)."""
    later = _instant(now + dt.timedelta(minutes=5))
    root = etree.fromstring(
        f'<samlp:Response xmlns:samlp="{NS["samlp"]}" xmlns:saml="{SAML}" xmlns:ds="{NS["ds"]}"'
        f' ID="_resp" Version="2.0" IssueInstant="{_instant(now)}" Destination="{ACS}"'
        f' InResponseTo="{REQUEST}"><saml:Issuer>{IDP}</saml:Issuer><samlp:Status>'
        '<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
        f'<saml:Assertion ID="_a1" Version="2.0" IssueInstant="{_instant(now)}">'
        f"<saml:Issuer>{IDP}</saml:Issuer>"
        '<ds:Signature><ds:SignedInfo><ds:Reference URI="#_a1"/></ds:SignedInfo></ds:Signature>'
        "<saml:Subject>"
        '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
        f'<saml:SubjectConfirmationData NotOnOrAfter="{later}" Recipient="{ACS}"'
        f' InResponseTo="{REQUEST}"/></saml:SubjectConfirmation></saml:Subject>'
        f'<saml:Conditions NotBefore="{_instant(now)}" NotOnOrAfter="{later}">'
        f"<saml:AudienceRestriction><saml:Audience>{SP}</saml:Audience>"
        "</saml:AudienceRestriction></saml:Conditions>"
        f'<saml:AuthnStatement AuthnInstant="{_instant(now)}"/>'
        "</saml:Assertion></samlp:Response>"
    )
    subject = root.find("saml:Assertion/saml:Subject", NS)
    assert subject is not None
    for position, identifier in enumerate(identifiers):
        subject.insert(position, copy.deepcopy(identifier))
    return root


def _plain(value: str, **attrs: str) -> etree._Element:
    element = etree.Element(qname("saml", "NameID"), nsmap={"saml": SAML}, **attrs)
    element.text = value
    return element


class _Spy:
    """A decrypter that records what it was handed."""

    def __init__(self, keys: KeyPair) -> None:
        self.seen: list[etree._Element] = []
        self._real = functools.partial(
            decrypt_name_id, sp_private_key_pem=keys.key_pem, allow_cbc=False
        )

    def __call__(self, element: etree._Element) -> etree._Element:
        self.seen.append(element)
        return self._real(element)


def _check(
    root: etree._Element,
    decrypt: Callable[[etree._Element], etree._Element] | None,
    *,
    require: bool = False,
) -> str:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expected = Expected(
        idp_entity_id=IDP,
        sp_entity_id=SP,
        acs_url=ACS,
        request_id=REQUEST,
        signing="assertion",
        skew=dt.timedelta(seconds=60),
        now=now,
        require_encrypted_name_id=require,
    )
    doc = VerifiedDocument(
        document=root, signed_response=False, signed_assertion=True, encrypted=False
    )
    return check_response(doc, expected, decrypt_name_id=decrypt).name_id


def _check_refused(
    root: etree._Element,
    decrypt: Callable[[etree._Element], etree._Element] | None,
    *,
    require: bool = False,
) -> str:
    with pytest.raises(SsoError) as exc:
        _check(root, decrypt, require=require)
    return exc.value.reason


NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def test_encrypted_name_id_of_the_signed_assertion_is_the_subject(sp_keys: KeyPair) -> None:
    spy = _Spy(sp_keys)
    root = _response([encrypted_id("alice", sp_keys.cert_pem)], NOW)
    assert _check(root, spy, require=True) == "alice"
    assert len(spy.seen) == 1


def test_plain_name_id_is_refused_when_encryption_is_wanted(sp_keys: KeyPair) -> None:
    root = _response([_plain("alice")], NOW)
    assert _check(root, _Spy(sp_keys)) == "alice"
    assert _check_refused(root, _Spy(sp_keys), require=True) == "encryption"


def test_encrypted_name_id_without_an_sp_key_is_refused(sp_keys: KeyPair) -> None:
    root = _response([encrypted_id("alice", sp_keys.cert_pem)], NOW)
    assert _check_refused(root, None) == "decryption"


@pytest.mark.parametrize("plain_first", [True, False])
def test_name_id_beside_an_encrypted_id_is_refused(sp_keys: KeyPair, plain_first: bool) -> None:
    spy = _Spy(sp_keys)
    ids = [_plain("administrator"), encrypted_id("alice", sp_keys.cert_pem)]
    root = _response(ids if plain_first else ids[::-1], NOW)
    assert _check_refused(root, spy) == "subject"
    assert spy.seen == []


def test_two_encrypted_ids_are_refused(sp_keys: KeyPair) -> None:
    ids = [encrypted_id("alice", sp_keys.cert_pem), encrypted_id("bob", sp_keys.cert_pem)]
    assert _check_refused(_response(ids, NOW), _Spy(sp_keys)) == "subject"


def test_base_id_is_not_a_subject(sp_keys: KeyPair) -> None:
    base = etree.Element(qname("saml", "BaseID"), nsmap={"saml": SAML})
    assert _check_refused(_response([base], NOW), _Spy(sp_keys)) == "subject"


@pytest.mark.parametrize(
    ("value", "attrs"),
    [
        ("alice", {"Format": TRANSIENT}),
        ("alice", {"SPNameQualifier": "https://another-sp.example"}),
        ("a" * 1025, {}),
        ("", {}),
    ],
    ids=["transient", "other_sp_qualifier", "too_long", "empty"],
)
def test_decrypted_name_id_gets_every_check_a_plain_one_gets(
    sp_keys: KeyPair, value: str, attrs: dict[str, str]
) -> None:
    assert _check_refused(_response([_plain(value, **attrs)], NOW), _Spy(sp_keys)) == "subject"
    encrypted = encrypted_id(
        value, sp_keys.cert_pem, name_id_format=attrs.get("Format", PERSISTENT)
    )
    if "SPNameQualifier" in attrs:
        plain = _plain(value, **attrs)
        encrypted = encrypted_id_of_bytes(etree.tostring(plain), sp_keys.cert_pem)
    assert _check_refused(_response([encrypted], NOW), _Spy(sp_keys)) == "subject"


def test_encrypted_id_of_an_unsigned_wrapping_assertion_is_never_decrypted(
    sp_keys: KeyPair,
) -> None:
    # XSW3-style: the attacker's assertion (its EncryptedID made with our public
    # certificate) before the signed one. The checks refuse before any decryption.
    spy = _Spy(sp_keys)
    root = _response([encrypted_id("alice", sp_keys.cert_pem)], NOW)
    signed = root.find("saml:Assertion", NS)
    evil = copy.deepcopy(signed)
    evil.set("ID", "_evil")
    evil.remove(evil.find("ds:Signature", NS))
    subject = evil.find("saml:Subject", NS)
    subject.replace(
        subject.find("saml:EncryptedID", NS), encrypted_id("administrator", sp_keys.cert_pem)
    )
    root.insert(root.index(signed), evil)
    assert _check_refused(root, spy) == "assertion-count"
    assert spy.seen == []


def test_expired_assertion_is_refused_before_decryption(sp_keys: KeyPair) -> None:
    spy = _Spy(sp_keys)
    old = NOW - dt.timedelta(hours=1)
    root = _response([encrypted_id("alice", sp_keys.cert_pem)], old)
    assert _check_refused(root, spy) == "expired"
    assert spy.seen == []


# --- the setting ---------------------------------------------------------------------------------


def test_encrypted_name_id_is_not_required_by_default(idp_keys: KeyPair, sp_keys: KeyPair) -> None:
    assert SamlAdapter().parse_config(_raw(idp_keys, sp_keys)).want_name_id_encrypted is False


def test_wanting_encrypted_name_ids_needs_an_sp_key(idp_keys: KeyPair, sp_keys: KeyPair) -> None:
    raw = _raw(
        idp_keys,
        sp_keys,
        sp_private_key_pem=None,
        sp_certificate_pem=None,
        want_name_id_encrypted=True,
    )
    with pytest.raises(SsoConfigError) as exc:
        SamlAdapter().parse_config(raw)
    assert exc.value.field == "want_name_id_encrypted"


def test_authn_request_keeps_the_configured_name_id_format(
    idp_keys: KeyPair, sp_keys: KeyPair
) -> None:
    # python3-saml's wantNameIdEncrypted would ask for the "encrypted" format instead,
    # dropping the one configured (and several IdPs refuse it).
    adapter = SamlAdapter()
    cfg = adapter.parse_config(
        _raw(idp_keys, sp_keys, want_name_id_encrypted=True, name_id_format=PERSISTENT)
    )
    url = adapter.start_login(cfg, tenant_id="t1", connection_id="c1").redirect_url
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    request = etree.fromstring(zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15))
    policy = request.find("samlp:NameIDPolicy", NS)
    assert policy is not None
    assert policy.get("Format") == PERSISTENT


def _key_uses(xml: bytes | str) -> list[str]:
    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    return sorted(str(kd.get("use")) for kd in root.iter(qname("md", "KeyDescriptor")))


def test_sp_metadata_states_what_python3_saml_states_for_encrypted_name_ids(
    sp_keys: KeyPair,
) -> None:
    # SAML metadata has no attribute for "encrypt the NameID": python3-saml's
    # wantNameIdEncrypted adds the encryption certificate and nothing else. Ours
    # publishes it for every connection with an SP key, which wanting encrypted
    # NameIDs requires.
    def library(want: bool) -> str:
        settings = OneLogin_Saml2_Settings(
            {
                "strict": True,
                "sp": {
                    "entityId": SP,
                    "assertionConsumerService": {"url": ACS},
                    "x509cert": sp_keys.cert_pem,
                    "privateKey": sp_keys.key_pem,
                },
                "idp": {"entityId": IDP, "singleSignOnService": {"url": "https://idp/sso"}},
                "security": {"wantNameIdEncrypted": want},
            },
            sp_validation_only=True,
        )
        return str(settings.get_sp_metadata().decode())

    assert _key_uses(library(want=False)) == ["signing"]
    assert _key_uses(library(want=True)) == ["encryption", "signing"]
    ours = sp_metadata(
        entity_id=SP, acs_url=ACS, certificate_pem=sp_keys.cert_pem, name_id_format=None
    )
    assert _key_uses(ours) == ["encryption"]
    root = etree.fromstring(ours)
    (cert,) = root.iter(qname("ds", "X509Certificate"))
    assert cert.text == sp_keys.cert_b64
