"""Encrypted NameIDs from a real SimpleSAMLphp IdP (``nameid.encryption``), and attacks on them.

SimpleSAMLphp 1.x encrypts the NameID with AES-128-CBC and RSA-OAEP, always
(``SAML2\\Assertion::encryptNameId``), so the AES-GCM case is the IdP's own
response with its EncryptedID re-encrypted with GCM and the assertion
re-signed with the test IdP's key (a control shows a re-signed response is
otherwise accepted, in ``test_saml_hostile.py``).

The attacks start from a response the IdP just signed. The one that matters
most: anyone can encrypt a NameID to our SP's public certificate, so the
EncryptedID is only as good as the signature over it; every substitution and
wrapping below is also fed to our own checks as if the library had been
fooled, to show that only the EncryptedID inside the covered assertion is
ever decrypted.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import secrets
from collections.abc import Callable, Iterator

import pytest
from lxml import etree

from callvault.errors import SsoError
from callvault.sso.saml import SamlAdapter
from callvault.sso.saml._backend import VerifiedDocument
from callvault.sso.saml._checks import Expected, check_response
from callvault.sso.saml._encrypted_id import decrypt_name_id
from callvault.sso.saml._xml import NS, qname
from tests.integration.simplesamlphp import (
    Captured,
    KeyPair,
    SimpleSamlIdp,
    SpConnection,
    sp_initiated_login,
    start_or_skip,
)
from tests.integration.test_saml_hostile import ASSERTION_WRAPPING, WRAPPING_REASONS, _sign
from tests.unit.sso.saml.idp_side import encrypted_id


@pytest.fixture(scope="module")
def idp() -> Iterator[SimpleSamlIdp]:
    server = start_or_skip("encid")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sp_keys() -> KeyPair:
    return KeyPair.generate("callvault test SP")


@pytest.fixture
def conn(sp_keys: KeyPair) -> SpConnection:
    return SpConnection(tenant_id="t-" + secrets.token_hex(4), connection_id="c1", keys=sp_keys)


@pytest.fixture(scope="module")
def adapter() -> SamlAdapter:
    return SamlAdapter()


def _encrypted_login(
    adapter: SamlAdapter,
    idp: SimpleSamlIdp,
    conn: SpConnection,
    *,
    to: str | None = None,
    knobs: dict[str, object] | None = None,
    **overrides: object,
) -> Captured:
    """A login whose NameID the IdP encrypts to ``to`` (default: our SP's certificate)."""
    return sp_initiated_login(
        adapter,
        idp,
        conn,
        knobs={"encrypt_name_id_to_cert": to or conn.keys.cert_pem, **(knobs or {})},
        overrides={"allow_cbc_encryption": True, **overrides},
    )


def _root(captured: Captured) -> etree._Element:
    return etree.fromstring(captured.xml)


def _bytes(root: etree._Element) -> bytes:
    return etree.tostring(root)


def _assertion(root: etree._Element) -> etree._Element:
    found = root.find("saml:Assertion", NS)
    assert found is not None
    return found


def _encrypted_id(element: etree._Element) -> etree._Element:
    found = element.find("saml:Subject/saml:EncryptedID", NS)
    assert found is not None
    return found


def _reason(captured: Captured, adapter: SamlAdapter, xml: bytes | None = None) -> str:
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter, saml_response=xml)
    return exc.value.reason


def _expected_and_decrypter(
    captured: Captured, *, require_encrypted_name_id: bool = False
) -> tuple[Expected, Callable[[etree._Element], etree._Element]]:
    """What the adapter would expect of this login, and the SP key's NameID decrypter."""
    cfg = captured.config
    key = cfg.sp_private_key_pem
    assert key is not None
    expected = Expected(
        idp_entity_id=cfg.idp.entity_id,
        sp_entity_id=cfg.sp_entity_id,
        acs_url=cfg.acs_url,
        request_id=captured.pending["saml_request_id"],
        signing=cfg.signing,
        skew=cfg.clock_skew,
        now=dt.datetime.now(dt.UTC),
        require_encrypted_name_id=require_encrypted_name_id,
    )
    decrypt = functools.partial(
        decrypt_name_id, sp_private_key_pem=key.get_secret_value(), allow_cbc=True
    )
    return expected, decrypt


def _our_checks_alone(captured: Captured, root: etree._Element) -> str:
    """Our checks on ``root`` as if a backend had verified every signature in it, with the
    SP key's decrypter (the attacker's EncryptedIDs would decrypt if they were reached)."""
    expected, decrypt = _expected_and_decrypter(captured)
    doc = VerifiedDocument(
        document=root, signed_response=True, signed_assertion=True, encrypted=False
    )
    with pytest.raises(SsoError) as exc:
        check_response(doc, expected, decrypt_name_id=decrypt)
    return exc.value.reason


# --- logins ------------------------------------------------------------------------------------


def test_login_with_an_encrypted_name_id_yields_the_subject(
    adapter: SamlAdapter, idp: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = _encrypted_login(adapter, idp, conn)
    subject = _assertion(_root(captured)).find("saml:Subject", NS)
    assert subject is not None
    assert subject.find("saml:EncryptedID/xenc:EncryptedData", NS) is not None
    assert subject.find("saml:NameID", NS) is None
    identity = captured.finish(adapter)
    assert identity.subject == "alice"
    assert identity.email == "alice@customer.example"
    assert identity.groups == ("cv-admins", "cv-agents")


def test_another_user_gets_their_own_decrypted_subject(
    adapter: SamlAdapter, idp: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(
        adapter,
        idp,
        conn,
        user="bob",
        knobs={"encrypt_name_id_to_cert": conn.keys.cert_pem},
        overrides={"allow_cbc_encryption": True, "want_name_id_encrypted": True},
    )
    assert captured.finish(adapter).subject == "bob"


def test_connection_wanting_encryption_accepts_an_encrypted_name_id(
    adapter: SamlAdapter, idp: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = _encrypted_login(adapter, idp, conn, want_name_id_encrypted=True)
    assert captured.finish(adapter).subject == "alice"


def test_plain_name_id_is_refused_when_the_connection_wants_it_encrypted(
    adapter: SamlAdapter, idp: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(adapter, idp, conn, overrides={"want_name_id_encrypted": True})
    assert _assertion(_root(captured)).find("saml:Subject/saml:NameID", NS) is not None
    assert _reason(captured, adapter) == "encryption"


def test_name_id_encrypted_to_another_key_is_refused(
    adapter: SamlAdapter, idp: SimpleSamlIdp, conn: SpConnection
) -> None:
    other = KeyPair.generate("someone else")
    captured = _encrypted_login(adapter, idp, conn, to=other.cert_pem)
    assert _reason(captured, adapter) == "decryption"


def test_cbc_encrypted_name_id_is_refused_unless_the_connection_allows_it(
    adapter: SamlAdapter, idp: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = _encrypted_login(adapter, idp, conn, allow_cbc_encryption=False)
    assert b"xmlenc#aes128-cbc" in captured.xml
    assert _reason(captured, adapter) == "weak-algorithm"


def test_gcm_encrypted_name_id_is_accepted_without_allowing_cbc(
    adapter: SamlAdapter, idp: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = _encrypted_login(adapter, idp, conn, allow_cbc_encryption=False)
    root = _root(captured)
    assertion = _assertion(root)
    subject = assertion.find("saml:Subject", NS)
    assert subject is not None
    subject.replace(_encrypted_id(assertion), encrypted_id("alice", conn.keys.cert_pem))
    _sign(assertion, idp.keys)
    xml = _bytes(root)
    assert b"xmlenc11#aes128-gcm" in xml
    assert b"xmlenc#aes128-cbc" not in xml
    assert captured.finish(adapter, saml_response=xml).subject == "alice"


def test_encrypted_assertion_holding_an_encrypted_name_id(
    adapter: SamlAdapter, idp: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = _encrypted_login(
        adapter,
        idp,
        conn,
        knobs={"encrypt_to_cert": conn.keys.cert_pem},
        want_name_id_encrypted=True,
        require_encrypted_assertion=True,
    )
    assert b"EncryptedAssertion" in captured.xml
    assert captured.finish(adapter).subject == "alice"


def test_response_signature_covers_the_encrypted_name_id(
    adapter: SamlAdapter, idp: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = _encrypted_login(
        adapter,
        idp,
        conn,
        knobs={"sign_assertion": False, "sign_response": True},
        signing="response",
    )
    assert captured.finish(adapter).subject == "alice"


# --- attacks on the EncryptedID ----------------------------------------------------------------


@pytest.fixture(params=["assertion", "response"])
def signed(
    request: pytest.FixtureRequest, adapter: SamlAdapter, idp: SimpleSamlIdp, conn: SpConnection
) -> Captured:
    """An encrypted-NameID login under each signing policy."""
    if request.param == "assertion":
        return _encrypted_login(adapter, idp, conn)
    return _encrypted_login(
        adapter,
        idp,
        conn,
        knobs={"sign_assertion": False, "sign_response": True},
        signing="response",
    )


def _attackers_id(captured: Captured) -> etree._Element:
    """What anyone can make: "administrator", encrypted to our SP's public certificate."""
    return encrypted_id("administrator", captured.conn.keys.cert_pem, cipher="aes128-cbc")


def test_encrypted_id_swapped_for_one_made_with_our_public_certificate_is_refused(
    adapter: SamlAdapter, signed: Captured
) -> None:
    root = _root(signed)
    assertion = _assertion(root)
    _encrypted_id(assertion).getparent().replace(_encrypted_id(assertion), _attackers_id(signed))
    assert _reason(signed, adapter, _bytes(root)) == "signature"


def test_plain_name_id_substituted_for_the_encrypted_id_is_refused(
    adapter: SamlAdapter, signed: Captured
) -> None:
    root = _root(signed)
    assertion = _assertion(root)
    plain = etree.Element(qname("saml", "NameID"))
    plain.text = "administrator"
    _encrypted_id(assertion).getparent().replace(_encrypted_id(assertion), plain)
    assert _reason(signed, adapter, _bytes(root)) == "signature"


def test_plain_name_id_added_beside_the_encrypted_id_is_refused(
    adapter: SamlAdapter, signed: Captured
) -> None:
    root = _root(signed)
    encrypted = _encrypted_id(_assertion(root))
    plain = etree.Element(qname("saml", "NameID"))
    plain.text = "administrator"
    encrypted.addprevious(plain)
    # python3-saml's schema check refuses the pair first (malformed); else the signature would.
    assert _reason(signed, adapter, _bytes(root)) in {"malformed", "signature"}
    assert _our_checks_alone(signed, root) == "subject"


ENCRYPTED_WRAPPING = {
    name: attack for name, attack in ASSERTION_WRAPPING.items() if not name.startswith("xsw5")
}


@pytest.mark.parametrize("attack", list(ENCRYPTED_WRAPPING))
def test_wrapped_assertion_with_the_attackers_encrypted_id_is_refused(
    adapter: SamlAdapter, idp: SimpleSamlIdp, conn: SpConnection, attack: str
) -> None:
    # XSW3-XSW8 as in test_saml_hostile, the evil assertion carrying an EncryptedID of
    # "administrator" made with our public certificate.
    captured = _encrypted_login(adapter, idp, conn)
    root = _root(captured)
    ENCRYPTED_WRAPPING[attack](root)
    planted = 0
    for assertion in list(root.iter(qname("saml", "Assertion"))):
        if str(assertion.get("ID")).startswith("_evil"):
            original = _encrypted_id(assertion)
            original.getparent().replace(original, _attackers_id(captured))
            planted += 1
    assert planted == (0 if attack == "xsw7_signed_assertion_moved_into_extensions" else 1)
    assert _reason(captured, adapter, _bytes(root)) in WRAPPING_REASONS
    assert _our_checks_alone(captured, root) in WRAPPING_REASONS


def test_untouched_encrypted_capture_passes_our_checks_alone(
    adapter: SamlAdapter, idp: SimpleSamlIdp, conn: SpConnection
) -> None:
    # The control for the two tests above: our checks with the decrypter accept the real thing.
    captured = _encrypted_login(adapter, idp, conn)
    expected, decrypt = _expected_and_decrypter(captured, require_encrypted_name_id=True)
    doc = VerifiedDocument(
        document=copy.deepcopy(_root(captured)),
        signed_response=False,
        signed_assertion=True,
        encrypted=False,
    )
    assert check_response(doc, expected, decrypt_name_id=decrypt).name_id == "alice"


def test_errors_never_quote_the_decrypted_subject(
    adapter: SamlAdapter, idp: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = _encrypted_login(adapter, idp, conn, allow_cbc_encryption=False)
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter)
    text = str(exc.value) + repr(exc.value.args)
    assert "alice" not in text
    assert "<" not in text
