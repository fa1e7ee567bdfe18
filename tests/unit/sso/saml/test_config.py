"""Connection configuration: every bad field is refused by name, defaults are the safe ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from callvault.errors import SsoConfigError
from callvault.sso.saml import SamlAdapter, SamlConfig
from tests.integration.simplesamlphp import KeyPair
from tests.unit.sso.saml.conftest import metadata


def _raw(idp_keys: KeyPair, sp_keys: KeyPair, **overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "sp_entity_id": "https://callvault.example/sso/t1/c1",
        "acs_url": "https://callvault.example/sso/t1/c1/saml/acs",
        "idp_metadata_xml": metadata(idp_keys.cert_b64),
        "sp_private_key_pem": sp_keys.key_pem,
        "sp_certificate_pem": sp_keys.cert_pem,
    }
    raw.update(overrides)
    return {k: v for k, v in raw.items() if v is not None}


def test_minimal_config_gets_the_safe_defaults(idp_keys: KeyPair, sp_keys: KeyPair) -> None:
    cfg = SamlAdapter().parse_config(
        _raw(idp_keys, sp_keys, sp_private_key_pem=None, sp_certificate_pem=None)
    )
    assert isinstance(cfg, SamlConfig)
    assert cfg.signing == "assertion"
    assert cfg.clock_skew == timedelta(seconds=60)
    assert cfg.require_encrypted_assertion is False
    assert cfg.idp.entity_id == "https://idp.example.com/saml"


def test_repr_does_not_show_the_private_key(idp_keys: KeyPair, sp_keys: KeyPair) -> None:
    cfg = SamlAdapter().parse_config(_raw(idp_keys, sp_keys))
    assert "PRIVATE KEY" not in repr(cfg)
    assert "PRIVATE KEY" not in str(cfg)


def test_loopback_http_acs_is_allowed_for_tests(idp_keys: KeyPair, sp_keys: KeyPair) -> None:
    cfg = SamlAdapter().parse_config(
        _raw(idp_keys, sp_keys, acs_url="http://127.0.0.1:8000/sso/t1/c1/saml/acs")
    )
    assert cfg.acs_url.startswith("http://127.0.0.1")


BAD: list[tuple[str, dict[str, Any]]] = [
    ("sp_entity_id", {"sp_entity_id": ""}),
    ("sp_entity_id", {"sp_entity_id": "x" * 2000}),
    ("sp_entity_id", {"sp_entity_id": "https://idp.example.com/saml"}),
    ("acs_url", {"acs_url": "http://callvault.example/acs"}),
    ("acs_url", {"acs_url": "ftp://callvault.example/acs"}),
    ("acs_url", {"acs_url": "/relative/acs"}),
    ("idp_metadata_xml", {"idp_metadata_xml": "<not-metadata/>"}),
    ("idp_metadata_xml", {"idp_metadata_xml": ""}),
    ("idp_metadata_url", {"idp_metadata_url": "http://idp.example.com/metadata"}),
    ("signing", {"signing": "none"}),
    ("signing", {"signing": "either-or-none"}),
    ("clock_skew_seconds", {"clock_skew_seconds": 301}),
    ("clock_skew_seconds", {"clock_skew_seconds": -1}),
    ("clock_skew_seconds", {"clock_skew_seconds": "lots"}),
    ("sp_private_key_pem", {"sp_private_key_pem": "not a key"}),
    ("sp_certificate_pem", {"sp_certificate_pem": "not a cert"}),
    ("sp_certificate_pem", {"sp_certificate_pem": None}),
    ("sp_private_key_pem", {"sp_private_key_pem": None}),
    ("email_attribute", {"email_attribute": ""}),
    ("groups_attribute", {"groups_attribute": 42}),
    ("keep_attributes", {"keep_attributes": [""]}),
    ("unknown_setting", {"unknown_setting": True}),
]


@pytest.mark.parametrize(("field", "change"), BAD, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD)])
def test_bad_field_is_refused_by_name(
    idp_keys: KeyPair, sp_keys: KeyPair, field: str, change: dict[str, Any]
) -> None:
    raw = _raw(idp_keys, sp_keys)
    raw.update(change)
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(SsoConfigError) as exc:
        SamlAdapter().parse_config(raw)
    assert exc.value.field == field


def test_required_encryption_without_sp_key_is_refused(idp_keys: KeyPair, sp_keys: KeyPair) -> None:
    raw = _raw(
        idp_keys,
        sp_keys,
        sp_private_key_pem=None,
        sp_certificate_pem=None,
        require_encrypted_assertion=True,
    )
    with pytest.raises(SsoConfigError) as exc:
        SamlAdapter().parse_config(raw)
    assert exc.value.field == "require_encrypted_assertion"


def test_missing_required_field_is_named(idp_keys: KeyPair, sp_keys: KeyPair) -> None:
    raw = _raw(idp_keys, sp_keys)
    del raw["acs_url"]
    with pytest.raises(SsoConfigError) as exc:
        SamlAdapter().parse_config(raw)
    assert exc.value.field == "acs_url"


def test_config_error_messages_do_not_quote_values(idp_keys: KeyPair, sp_keys: KeyPair) -> None:
    raw = _raw(idp_keys, sp_keys, signing="secret-signing-value")
    with pytest.raises(SsoConfigError) as exc:
        SamlAdapter().parse_config(raw)
    assert "secret-signing-value" not in str(exc.value)
