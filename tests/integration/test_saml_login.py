"""SP-initiated SAML logins against real SimpleSAMLphp IdPs on loopback.

Two IdPs stand for two customers, each signing with its own key. Each test
registers its own SP connection (own entity id and ACS URL) at the IdP with
the knobs it needs, so tests do not share IdP-side settings.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator

import httpx
import pytest

from callvault.errors import SsoConfigError, SsoError
from callvault.sso.saml import MemoryReplayGuard, SamlAdapter, fetch_idp_metadata
from tests.integration.simplesamlphp import (
    KeyPair,
    SimpleSamlIdp,
    SpConnection,
    browser_login,
    sp_initiated_login,
    start_or_skip,
)


@pytest.fixture(scope="module")
def idp_a() -> Iterator[SimpleSamlIdp]:
    idp = start_or_skip("a")
    yield idp
    idp.stop()


@pytest.fixture(scope="module")
def idp_b() -> Iterator[SimpleSamlIdp]:
    idp = start_or_skip("b")
    yield idp
    idp.stop()


@pytest.fixture(scope="module")
def sp_keys() -> KeyPair:
    return KeyPair.generate("callvault test SP")


@pytest.fixture
def conn(sp_keys: KeyPair) -> SpConnection:
    return SpConnection(tenant_id="t-" + secrets.token_hex(4), connection_id="c1", keys=sp_keys)


@pytest.fixture
def adapter() -> SamlAdapter:
    return SamlAdapter()


def _reason(exc: pytest.ExceptionInfo[SsoError]) -> str:
    return exc.value.reason


def test_sp_initiated_login_yields_the_asserted_identity(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    captured = sp_initiated_login(adapter, idp_a, conn, user="alice")
    identity = captured.finish(adapter)
    assert identity.protocol == "saml"
    assert identity.tenant_id == conn.tenant_id
    assert identity.connection_id == conn.connection_id
    assert identity.subject == "alice"
    assert identity.email == "alice@customer.example"
    assert identity.display_name == "Alice Example"
    assert identity.groups == ("cv-admins", "cv-agents")
    assert identity.authenticated_at is not None
    assert identity.authenticated_at >= before
    assert identity.idp_session


def test_another_user_gets_their_own_identity(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    identity = sp_initiated_login(adapter, idp_a, conn, user="bob").finish(adapter)
    assert identity.subject == "bob"
    assert identity.groups == ("cv-agents",)


def test_authn_request_pending_state_carries_the_request_id(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(adapter, idp_a, conn)
    assert captured.pending["saml_request_id"].encode() in captured.xml
    assert captured.pending["connection_id"] == conn.connection_id


def test_response_only_signing_is_rejected_by_default(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(
        adapter, idp_a, conn, knobs={"sign_assertion": False, "sign_response": True}
    )
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter)
    assert _reason(exc) == "signature"


@pytest.mark.parametrize("signing", ["response", "either"])
def test_response_only_signing_is_accepted_when_the_connection_says_so(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection, signing: str
) -> None:
    captured = sp_initiated_login(
        adapter,
        idp_a,
        conn,
        knobs={"sign_assertion": False, "sign_response": True},
        overrides={"signing": signing},
    )
    assert captured.finish(adapter).subject == "alice"


def test_assertion_only_signing_is_rejected_when_response_signing_is_required(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(adapter, idp_a, conn, overrides={"signing": "response"})
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter)
    assert _reason(exc) == "signature"


@pytest.mark.parametrize("signing", ["assertion", "response", "either"])
def test_both_signed_is_accepted_under_every_policy(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection, signing: str
) -> None:
    captured = sp_initiated_login(
        adapter,
        idp_a,
        conn,
        knobs={"sign_assertion": True, "sign_response": True},
        overrides={"signing": signing},
    )
    assert captured.finish(adapter).subject == "alice"


def test_unsigned_response_is_rejected(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(
        adapter,
        idp_a,
        conn,
        knobs={"sign_assertion": False, "sign_response": False},
        overrides={"signing": "either"},
    )
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter)
    assert _reason(exc) == "signature"


def test_encrypted_assertion_is_decrypted_with_the_sp_key(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(
        adapter,
        idp_a,
        conn,
        knobs={"encrypt_to_cert": conn.keys.cert_pem},
        overrides={"allow_cbc_encryption": True},
    )
    assert b"EncryptedAssertion" in captured.xml
    assert b"alice@customer.example" not in captured.xml
    identity = captured.finish(adapter)
    assert identity.email == "alice@customer.example"


def test_encrypted_assertion_with_response_only_signing_when_allowed(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(
        adapter,
        idp_a,
        conn,
        knobs={
            "encrypt_to_cert": conn.keys.cert_pem,
            "sign_assertion": False,
            "sign_response": True,
        },
        overrides={"signing": "response", "allow_cbc_encryption": True},
    )
    assert captured.finish(adapter).subject == "alice"


def test_encrypted_assertion_to_another_key_is_rejected(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    other = KeyPair.generate("someone else")
    captured = sp_initiated_login(
        adapter,
        idp_a,
        conn,
        knobs={"encrypt_to_cert": other.cert_pem},
        overrides={"allow_cbc_encryption": True},
    )
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter)
    assert _reason(exc) == "decryption"


def test_cbc_encrypted_assertion_is_refused_unless_the_connection_allows_it(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    # SimpleSAMLphp 1.x (like ADFS) encrypts assertions with AES-CBC.
    captured = sp_initiated_login(
        adapter, idp_a, conn, knobs={"encrypt_to_cert": conn.keys.cert_pem}
    )
    assert b"xmlenc#aes128-cbc" in captured.xml
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter)
    assert _reason(exc) == "weak-algorithm"


def test_signed_authn_request_is_accepted_by_an_idp_that_requires_signatures(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(
        adapter,
        idp_a,
        conn,
        knobs={"require_requests_signed_by": conn.keys.cert_pem},
        overrides={"sign_authn_requests": True},
    )
    assert captured.finish(adapter).subject == "alice"


def _idp_page_for_request(
    adapter: SamlAdapter, idp: SimpleSamlIdp, conn: SpConnection, **overrides: object
) -> str:
    """The IdP's answer to our AuthnRequest (a login form, or its error page)."""
    config = adapter.parse_config(conn.raw_config(idp, **overrides))
    start = adapter.start_login(config, tenant_id=conn.tenant_id, connection_id=conn.connection_id)
    with httpx.Client(follow_redirects=True, timeout=10.0) as browser:
        return browser.get(start.redirect_url).text


def test_unsigned_authn_request_is_refused_by_an_idp_that_requires_signatures(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    # The control for the test above: the IdP really checks the signature.
    idp_a.register_sp(conn.remote(require_requests_signed_by=conn.keys.cert_pem))
    page = _idp_page_for_request(adapter, idp_a, conn)
    assert "AuthState" not in page
    assert "no signature found on message" in page


def test_authn_request_signed_with_another_key_is_refused_by_the_idp(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    other = KeyPair.generate("someone else")
    idp_a.register_sp(conn.remote(require_requests_signed_by=other.cert_pem))
    signed = _idp_page_for_request(adapter, idp_a, conn, sign_authn_requests=True)
    assert "AuthState" not in signed
    assert "Unable to validate signature on query string" in signed


def test_plain_assertion_is_rejected_when_encryption_is_required(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(
        adapter, idp_a, conn, overrides={"require_encrypted_assertion": True}
    )
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter)
    assert _reason(exc) == "encryption"


def test_sha1_signing_idp_is_rejected(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(adapter, idp_a, conn, knobs={"signature_algorithm": "sha1"})
    assert b"xmldsig#rsa-sha1" in captured.xml
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter)
    assert _reason(exc) == "weak-algorithm"


def test_second_customers_idp_is_rejected_by_the_first_customers_connection(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, idp_b: SimpleSamlIdp, conn: SpConnection
) -> None:
    # Customer B's IdP is set up to log users into customer A's connection.
    captured = sp_initiated_login(adapter, idp_b, conn)
    config_a = adapter.parse_config(conn.raw_config(idp_a))
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter, config=config_a)
    assert _reason(exc) in {"issuer", "signature"}


def test_idp_impersonating_the_customers_entity_id_fails_on_the_signature(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    # An attacker's IdP calls itself by customer A's entity id but has its own key.
    impostor = start_or_skip("impostor", claimed_entity_id=idp_a.entity_id)
    try:
        captured = sp_initiated_login(adapter, impostor, conn)
        assert idp_a.entity_id.encode() in captured.xml
        config_a = adapter.parse_config(conn.raw_config(idp_a))
        with pytest.raises(SsoError) as exc:
            captured.finish(adapter, config=config_a)
        assert _reason(exc) == "signature"
    finally:
        impostor.stop()


def test_rolled_over_metadata_with_two_certificates_accepts_the_current_key(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, idp_b: SimpleSamlIdp, conn: SpConnection
) -> None:
    # Metadata listing the IdP's next certificate (here: B's) before its current one.
    metadata = idp_a.metadata_xml().decode()
    marker = "<md:KeyDescriptor"
    extra = (
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
        f"{idp_b.keys.cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
        "</md:KeyDescriptor>"
    )
    rolled = metadata.replace(marker, extra + marker, 1)
    captured = sp_initiated_login(adapter, idp_a, conn, overrides={"idp_metadata_xml": rolled})
    assert len(captured.config.idp.signing_certs) == 2
    assert captured.finish(adapter).subject == "alice"


def test_idp_initiated_unsolicited_response_is_rejected(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(adapter, idp_a, conn)  # registers conn, gives a config
    url = str(httpx.URL(idp_a.idp_initiated_url, params={"spentityid": conn.entity_id}))
    form = browser_login(url, username="alice", password="alice-pass")
    unsolicited = form.fields["SAMLResponse"]
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter, saml_response=unsolicited)
    assert _reason(exc) == "in-response-to"


def test_response_to_another_pending_request_is_rejected(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(adapter, idp_a, conn)
    other = adapter.start_login(
        captured.config, tenant_id=conn.tenant_id, connection_id=conn.connection_id
    )
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter, pending=other.pending)
    assert _reason(exc) == "in-response-to"


def test_pending_state_of_another_connection_is_rejected(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(adapter, idp_a, conn)
    foreign = {**captured.pending, "connection_id": "another-connection"}
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter, pending=foreign)
    assert _reason(exc) == "state"


def test_replayed_response_is_rejected(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(adapter, idp_a, conn)
    guard = MemoryReplayGuard()
    assert captured.finish(adapter, replay=guard).subject == "alice"
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter, replay=guard)
    assert _reason(exc) == "replay"


def test_response_for_another_connections_audience_is_rejected(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, sp_keys: KeyPair
) -> None:
    # Two connections share an ACS URL shape; the IdP's assertion names connection 2.
    one = SpConnection(tenant_id="t-aud", connection_id="c1", keys=sp_keys)
    two = SpConnection(tenant_id="t-aud", connection_id="c2", keys=sp_keys)
    captured = sp_initiated_login(adapter, idp_a, two)
    config_one = adapter.parse_config(two.raw_config(idp_a, sp_entity_id=one.entity_id))
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter, config=config_one)
    assert _reason(exc) == "audience"


def test_response_for_another_acs_url_is_rejected(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(adapter, idp_a, conn)
    elsewhere = adapter.parse_config(
        conn.raw_config(idp_a, acs_url="https://callvault.example/sso/other/c9/saml/acs")
    )
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter, config=elsewhere)
    assert _reason(exc) == "destination"


def test_expired_response_is_rejected(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(adapter, idp_a, conn)
    # SimpleSAMLphp gives assertions 300 s; the connection's skew is 60 s.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=300 + 60 + 5)
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter, now=later)
    assert _reason(exc) == "expired"


def test_response_within_the_clock_skew_is_accepted(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(adapter, idp_a, conn, overrides={"clock_skew_seconds": 120})
    # Past NotOnOrAfter (300 s) by 60 s, inside the 120 s skew.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=300 + 60)
    assert captured.finish(adapter, now=later).subject == "alice"


def test_not_yet_valid_response_is_rejected(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    captured = sp_initiated_login(adapter, idp_a, conn)
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60 + 60)
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter, now=earlier)
    assert _reason(exc) == "not-yet-valid"


def test_transient_name_id_is_rejected(
    adapter: SamlAdapter, idp_a: SimpleSamlIdp, conn: SpConnection
) -> None:
    transient = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
    captured = sp_initiated_login(adapter, idp_a, conn, knobs={"name_id_format": transient})
    assert transient.encode() in captured.xml
    with pytest.raises(SsoError) as exc:
        captured.finish(adapter)
    assert _reason(exc) == "subject"


def test_metadata_is_fetched_from_the_idp(idp_a: SimpleSamlIdp) -> None:
    with httpx.Client() as http:
        body = fetch_idp_metadata(idp_a.metadata_url, http=http)
    assert idp_a.entity_id.encode() in body


def test_metadata_fetch_refuses_plain_http_beyond_loopback() -> None:
    with httpx.Client() as http, pytest.raises(SsoConfigError) as exc:
        fetch_idp_metadata("http://idp.example.com/metadata", http=http)
    assert exc.value.field == "idp_metadata_url"
