"""An OIDC connection's configuration: every bad field named, nothing unsafe accepted."""

from __future__ import annotations

import pytest

from callvault.errors import SsoConfigError
from callvault.sso.oidc import OidcAdapter, OidcConfig, parse_oidc_config
from tests.unit.sso.oidc.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    ENTRA_DISCOVERY,
    ENTRA_TEMPLATE,
    GOOGLE,
    ISSUER,
    REDIRECT_URI,
    TENANT_A,
)

BASE: dict[str, object] = {
    "issuer": ISSUER,
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "redirect_uri": REDIRECT_URI,
}


def _field(**changes: object) -> str | None:
    raw = {**BASE, **changes}
    for name, value in changes.items():
        if value is None:
            raw.pop(name)
    with pytest.raises(SsoConfigError) as info:
        parse_oidc_config(raw)
    return info.value.field


def test_minimal_generic_config_parses_with_safe_defaults() -> None:
    cfg = parse_oidc_config(BASE)
    assert cfg.discovery_url == f"{ISSUER}/.well-known/openid-configuration"
    assert "openid" in cfg.scopes
    assert "none" not in cfg.id_token_algorithms
    assert not any(alg.startswith("HS") for alg in cfg.id_token_algorithms)


def test_repr_masks_the_client_secret() -> None:
    assert CLIENT_SECRET not in repr(parse_oidc_config(BASE))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"issuer": "http://idp.example.test"}, "issuer"),
        ({"issuer": "http://127.0.0.1:8080"}, "issuer"),
        ({"issuer": "ftp://idp.example.test"}, "issuer"),
        ({"issuer": "https://idp.example.test/?x=1"}, "issuer"),
        ({"issuer": "https://user:pw@idp.example.test"}, "issuer"),
        ({"issuer": "https://idp.example.test/#frag"}, "issuer"),
        ({"issuer": None}, "issuer"),
        ({"client_id": ""}, "client_id"),
        ({"client_secret": None}, "client_secret"),
        ({"redirect_uri": "http://cv.example.test/cb"}, "redirect_uri"),
        ({"redirect_uri": "https://cv.example.test/cb#x"}, "redirect_uri"),
        ({"scopes": ["email", "profile"]}, "scopes"),
        ({"scopes": ["openid", "bad scope"]}, "scopes"),
        ({"id_token_algorithms": ["none"]}, "id_token_algorithms"),
        ({"id_token_algorithms": ["HS256"]}, "id_token_algorithms"),
        ({"id_token_algorithms": []}, "id_token_algorithms"),
        ({"clock_skew_seconds": 3600}, "clock_skew_seconds"),
        ({"profile": "okta"}, "profile"),
        ({"private_key_jwt": "x"}, "private_key_jwt"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "token_endpoint_auth_method"),
        ({"allowed_tenant_ids": [TENANT_A]}, "allowed_tenant_ids"),
        ({"hosted_domain": "customer.example"}, "hosted_domain"),
        ({"issuer": ENTRA_TEMPLATE}, "issuer"),
        ({"groups_claim": "has space"}, "groups_claim"),
    ],
)
def test_bad_field_is_named(changes: dict[str, object], field: str) -> None:
    assert _field(**changes) == field


def test_http_issuer_on_loopback_needs_the_explicit_flag() -> None:
    cfg = parse_oidc_config(
        {**BASE, "issuer": "http://127.0.0.1:8080", "allow_http_loopback": True}
    )
    assert cfg.issuer == "http://127.0.0.1:8080"


def test_the_flag_does_not_allow_http_beyond_loopback() -> None:
    assert _field(issuer="http://idp.example.test", allow_http_loopback=True) == "issuer"


def test_loopback_redirect_uri_may_be_http() -> None:
    cfg = parse_oidc_config({**BASE, "redirect_uri": "http://127.0.0.1:8000/cb"})
    assert cfg.redirect_uri.startswith("http://127.0.0.1")


def _entra(**changes: object) -> dict[str, object]:
    raw: dict[str, object] = {
        **BASE,
        "profile": "entra",
        "issuer": ENTRA_TEMPLATE,
        "discovery_url": ENTRA_DISCOVERY,
        "allowed_tenant_ids": [TENANT_A.upper()],
    }
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def test_entra_profile_parses_with_lowercased_tenants() -> None:
    cfg = parse_oidc_config(_entra())
    assert cfg.allowed_tenant_ids == frozenset({TENANT_A})
    assert cfg.issuer_for(TENANT_A) == f"https://login.microsoftonline.com/{TENANT_A}/v2.0"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"allowed_tenant_ids": None}, "allowed_tenant_ids"),
        ({"allowed_tenant_ids": ["common"]}, "allowed_tenant_ids"),
        ({"discovery_url": None}, "discovery_url"),
        ({"issuer": "https://login.microsoftonline.com/common/v2.0"}, "issuer"),
    ],
)
def test_entra_profile_requirements(changes: dict[str, object], field: str) -> None:
    with pytest.raises(SsoConfigError) as info:
        parse_oidc_config(_entra(**changes))
    assert info.value.field == field


def test_google_profile_needs_a_hosted_domain_and_googles_issuer() -> None:
    ok = parse_oidc_config(
        {**BASE, "profile": "google", "issuer": GOOGLE, "hosted_domain": "Customer.Example"}
    )
    assert isinstance(ok, OidcConfig)
    assert ok.hosted_domain == "customer.example"
    assert _field(profile="google", issuer=GOOGLE) == "hosted_domain"
    assert _field(profile="google", issuer=ISSUER, hosted_domain="customer.example") == "issuer"


def test_not_an_object_is_refused() -> None:
    with pytest.raises(SsoConfigError):
        parse_oidc_config(["issuer"])  # type: ignore[arg-type]


def test_error_message_never_quotes_the_secret() -> None:
    with pytest.raises(SsoConfigError) as info:
        parse_oidc_config({**BASE, "client_secret": "s" * 5000})
    assert "sss" not in str(info.value)


def test_default_adapter_refuses_http_loopback_connections() -> None:
    raw = {**BASE, "issuer": "http://127.0.0.1:8080", "allow_http_loopback": True}
    with pytest.raises(SsoConfigError) as info:
        OidcAdapter().parse_config(raw)
    assert info.value.field == "allow_http_loopback"
    assert OidcAdapter(allow_http_loopback=True).parse_config(raw).issuer == raw["issuer"]
