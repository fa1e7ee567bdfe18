"""SamlAdapter.start_login and the guards of finish_login that need no IdP."""

from __future__ import annotations

import base64
import zlib
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import etree

from callvault.errors import SsoError
from callvault.sso.saml import MemoryReplayGuard, SamlAdapter, SamlConfig
from tests.integration.simplesamlphp import KeyPair
from tests.unit.sso.saml.conftest import metadata

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


def _config(idp_keys: KeyPair, sso_url: str = "https://idp.example.com/sso") -> SamlConfig:
    return SamlAdapter().parse_config(
        {
            "sp_entity_id": "https://callvault.example/sso/t1/c1",
            "acs_url": "https://callvault.example/sso/t1/c1/saml/acs",
            "idp_metadata_xml": metadata(idp_keys.cert_b64, sso_url=sso_url),
        }
    )


def _authn_request(url: str) -> etree._Element:
    query = parse_qs(urlsplit(url).query)
    raw = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    return etree.fromstring(raw)


def test_start_login_redirects_to_the_idp_with_a_bound_request(idp_keys: KeyPair) -> None:
    start = SamlAdapter().start_login(_config(idp_keys), tenant_id="t1", connection_id="c1")
    assert start.redirect_url.startswith("https://idp.example.com/sso?SAMLRequest=")
    request = _authn_request(start.redirect_url)
    assert request.tag == f"{{{SAMLP}}}AuthnRequest"
    assert request.get("ID") == start.pending["saml_request_id"]
    assert request.get("AssertionConsumerServiceURL") == (
        "https://callvault.example/sso/t1/c1/saml/acs"
    )
    assert request.get("Destination") == "https://idp.example.com/sso"
    assert request.findtext(f"{{{SAML}}}Issuer") == "https://callvault.example/sso/t1/c1"
    assert start.pending["tenant_id"] == "t1"


def test_each_login_gets_a_fresh_request_id(idp_keys: KeyPair) -> None:
    adapter = SamlAdapter()
    cfg = _config(idp_keys)
    first = adapter.start_login(cfg, tenant_id="t1", connection_id="c1")
    second = adapter.start_login(cfg, tenant_id="t1", connection_id="c1")
    assert first.pending["saml_request_id"] != second.pending["saml_request_id"]


def test_sso_url_with_a_query_keeps_it(idp_keys: KeyPair) -> None:
    cfg = _config(idp_keys, sso_url="https://idp.example.com/sso?tenant=acme")
    start = SamlAdapter().start_login(cfg, tenant_id="t1", connection_id="c1")
    query = parse_qs(urlsplit(start.redirect_url).query)
    assert query["tenant"] == ["acme"]
    assert "SAMLRequest" in query


def _finish(adapter: SamlAdapter, config: object, **kw: object) -> None:
    args: dict[str, object] = {
        "tenant_id": "t1",
        "connection_id": "c1",
        "params": {"SAMLResponse": "PHgvPg=="},
        "pending": {"saml_request_id": "_r", "tenant_id": "t1", "connection_id": "c1"},
        "now": datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
        "replay": MemoryReplayGuard(),
    }
    args.update(kw)
    adapter.finish_login(config, **args)  # type: ignore[arg-type]


def test_finish_without_pending_request_is_refused(idp_keys: KeyPair) -> None:
    with pytest.raises(SsoError) as exc:
        _finish(SamlAdapter(), _config(idp_keys), pending={})
    assert exc.value.reason == "state"


def test_pending_state_of_another_tenant_is_refused(idp_keys: KeyPair) -> None:
    pending = {"saml_request_id": "_r", "tenant_id": "t2", "connection_id": "c1"}
    with pytest.raises(SsoError) as exc:
        _finish(SamlAdapter(), _config(idp_keys), pending=pending)
    assert exc.value.reason == "state"


def test_naive_verification_time_is_refused(idp_keys: KeyPair) -> None:
    with pytest.raises(SsoError) as exc:
        _finish(SamlAdapter(), _config(idp_keys), now=datetime(2026, 1, 1))  # noqa: DTZ001 - the naive time is the point
    assert exc.value.reason == "config"


def test_unparsed_config_is_refused() -> None:
    with pytest.raises(SsoError) as exc:
        _finish(SamlAdapter(), {"sp_entity_id": "raw dict"})
    assert exc.value.reason == "config"


def test_size_limit_applies_to_the_encoded_form_value(idp_keys: KeyPair) -> None:
    adapter = SamlAdapter(max_response_bytes=1024)
    with pytest.raises(SsoError) as exc:
        _finish(adapter, _config(idp_keys), params={"SAMLResponse": "=" * 1025})
    assert exc.value.reason == "too-large"
