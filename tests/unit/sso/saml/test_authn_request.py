"""Signed AuthnRequests (HTTP-Redirect binding) and the SP metadata that announces them."""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes  # noqa: TID251 - the test plays the IdP: it verifies our RSA redirect signature, which callvault.crypto.hazmat does not offer
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: TID251 - same: test-only IdP-side verification

from callvault.errors import SsoConfigError
from callvault.sso._sp_metadata import sp_metadata
from callvault.sso.saml import SamlAdapter
from tests.integration.simplesamlphp import KeyPair
from tests.unit.sso.saml.test_config import _raw

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


def _redirect(idp_keys: KeyPair, sp_keys: KeyPair, **overrides: Any) -> str:
    adapter = SamlAdapter()
    cfg = adapter.parse_config(_raw(idp_keys, sp_keys, **overrides))
    return adapter.start_login(cfg, tenant_id="t1", connection_id="c1").redirect_url


def _verify(cert_pem: str, query: str) -> None:
    """What the IdP does (SAML Bindings §3.4.4.1): verify over the raw query as received."""
    signed, _, sig = query.rpartition("&Signature=")
    public = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(
        base64.b64decode(urllib.parse.unquote_plus(sig)),
        signed.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_authn_requests_are_unsigned_by_default(idp_keys: KeyPair, sp_keys: KeyPair) -> None:
    query = urllib.parse.urlsplit(_redirect(idp_keys, sp_keys)).query
    assert [k for k, _ in urllib.parse.parse_qsl(query)] == ["SAMLRequest"]


def test_signed_authn_request_verifies_with_the_sp_certificate(
    idp_keys: KeyPair, sp_keys: KeyPair
) -> None:
    url = _redirect(idp_keys, sp_keys, sign_authn_requests=True)
    assert url.startswith("https://idp.example.com/sso?SAMLRequest=")
    query = urllib.parse.urlsplit(url).query
    params = urllib.parse.parse_qsl(query)
    assert [k for k, _ in params] == ["SAMLRequest", "SigAlg", "Signature"]
    assert dict(params)["SigAlg"] == RSA_SHA256
    _verify(sp_keys.cert_pem, query)


def test_signed_authn_request_does_not_verify_once_altered(
    idp_keys: KeyPair, sp_keys: KeyPair
) -> None:
    query = urllib.parse.urlsplit(_redirect(idp_keys, sp_keys, sign_authn_requests=True)).query
    altered = query.replace("SAMLRequest=", "SAMLRequest=x", 1)
    with pytest.raises(InvalidSignature):
        _verify(sp_keys.cert_pem, altered)
    with pytest.raises(InvalidSignature):
        _verify(idp_keys.cert_pem, query)


def test_signing_needs_an_sp_key(idp_keys: KeyPair, sp_keys: KeyPair) -> None:
    raw = _raw(
        idp_keys,
        sp_keys,
        sp_private_key_pem=None,
        sp_certificate_pem=None,
        sign_authn_requests=True,
    )
    with pytest.raises(SsoConfigError) as exc:
        SamlAdapter().parse_config(raw)
    assert exc.value.field == "sign_authn_requests"


def _ec_pair() -> KeyPair:
    return KeyPair.generate("ec sp", ec_p256=True)


def test_signing_needs_an_rsa_key(idp_keys: KeyPair) -> None:
    ec_keys = _ec_pair()
    adapter = SamlAdapter()
    assert adapter.parse_config(_raw(idp_keys, ec_keys))  # an EC key may still decrypt
    with pytest.raises(SsoConfigError) as exc:
        adapter.parse_config(_raw(idp_keys, ec_keys, sign_authn_requests=True))
    assert exc.value.field == "sign_authn_requests"


def test_defaults_refuse_cbc_and_do_not_sign(idp_keys: KeyPair, sp_keys: KeyPair) -> None:
    cfg = SamlAdapter().parse_config(_raw(idp_keys, sp_keys))
    assert cfg.allow_cbc_encryption is False
    assert cfg.sign_authn_requests is False


@pytest.mark.parametrize("signs", [False, True])
def test_sp_metadata_announces_request_signing(sp_keys: KeyPair, *, signs: bool) -> None:
    xml = sp_metadata(
        entity_id="https://callvault.example/sso/t1/c1",
        acs_url="https://callvault.example/sso/t1/c1/saml/acs",
        certificate_pem=sp_keys.cert_pem,
        name_id_format=None,
        signs_requests=signs,
    ).decode()
    assert f'AuthnRequestsSigned="{"true" if signs else "false"}"' in xml
    assert ('use="signing"' in xml) is signs
    assert 'use="encryption"' in xml
    assert xml.count(sp_keys.cert_b64) == (2 if signs else 1)
