"""The OIDC adapter fetches through an egress guard unless a test hands it a client.

Every URL it fetches (discovery, key set, token endpoint) was given by a
tenant administrator: the shipped adapters refuse one that points inside
the installation (here, loopback and the cloud metadata address) before any
connection, with the guard's reason code and never the URL.
"""

from __future__ import annotations

import pytest

from callvault import sso
from callvault.egress import EgressGuard
from callvault.errors import SsoConfigError, SsoError
from callvault.sso.oidc import OidcAdapter
from tests.unit.sso.oidc.test_config import BASE


@pytest.mark.parametrize(
    ("issuer", "reason"),
    [
        ("https://127.0.0.1", "egress-loopback"),
        ("https://169.254.169.254", "egress-link-local"),
        ("https://10.1.2.3", "egress-private"),
    ],
)
def test_the_default_adapter_refuses_a_provider_inside(issuer: str, reason: str) -> None:
    adapter = sso.default_adapters()["oidc"]
    assert isinstance(adapter, OidcAdapter)
    cfg = adapter.parse_config({**BASE, "issuer": issuer})
    with pytest.raises(SsoError) as info:
        adapter.start_login(cfg, tenant_id="ten_x", connection_id="sso_x")
    assert info.value.reason == "discovery"
    assert reason in str(info.value)
    assert issuer.split("//")[1] not in str(info.value)


def test_a_discovery_url_on_a_port_the_installation_does_not_allow_is_a_config_error() -> None:
    raw = {**BASE, "discovery_url": "https://idp.example:8443/.well-known/openid-configuration"}
    with pytest.raises(SsoConfigError) as info:
        OidcAdapter().parse_config(raw)
    assert info.value.field == "discovery_url"
    assert "8443" not in str(info.value)
    allowed = OidcAdapter(egress=EgressGuard(ports={443, 8443}))
    assert allowed.parse_config(raw).discovery_url == raw["discovery_url"]


def test_built_adapters_use_the_guard_given() -> None:
    guard = EgressGuard(ports={8443})
    adapter = sso.build_adapters(guard)["oidc"]
    with pytest.raises(SsoConfigError):
        adapter.parse_config(BASE)  # port 443 is not in this guard's set
