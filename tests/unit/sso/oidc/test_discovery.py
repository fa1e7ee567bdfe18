"""Discovery and key sets: issuer pinned, fetches bounded, keys cached and refreshed sparingly."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from joserfc.jwk import OctKey

from callvault.errors import SsoError
from callvault.sso.oidc import OidcAdapter, ProviderCache, parse_discovery
from callvault.sso.oidc._discovery import JWKS_MIN_REFRESH_S, parse_jwks
from tests.unit.sso.oidc.conftest import FakeIdp, config, login, rsa_key


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _adapter(idp: FakeIdp, clock: Clock) -> OidcAdapter:
    http = idp.client()
    return OidcAdapter(http=http, cache=ProviderCache(http, clock=clock))


def test_discovery_with_another_issuer_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    idp.discovery_overrides["issuer"] = "https://attacker.example"
    with pytest.raises(SsoError) as info:
        adapter.start_login(config(adapter), tenant_id="t", connection_id="c")
    assert info.value.reason == "issuer"


@pytest.mark.parametrize("endpoint", ["authorization_endpoint", "token_endpoint", "jwks_uri"])
def test_plain_http_endpoint_is_rejected(endpoint: str) -> None:
    doc = FakeIdp().discovery()
    doc[endpoint] = "http://idp.example.test/x"
    with pytest.raises(SsoError) as info:
        parse_discovery(doc, expected_issuer=doc["issuer"], allow_http_loopback=True)
    assert info.value.reason == "discovery"


def test_provider_without_pkce_s256_is_rejected() -> None:
    doc = {**FakeIdp().discovery(), "code_challenge_methods_supported": ["plain"]}
    with pytest.raises(SsoError) as info:
        parse_discovery(doc, expected_issuer=doc["issuer"], allow_http_loopback=False)
    assert info.value.reason == "discovery"


def test_oversized_discovery_document_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"{" + b" " * (300 * 1024) + b"}")

    adapter = OidcAdapter(http=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(SsoError) as info:
        adapter.start_login(config(adapter), tenant_id="t", connection_id="c")
    assert info.value.reason == "discovery"
    assert "too-large" in str(info.value)


def test_redirect_from_discovery_is_not_followed() -> None:
    hits: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hits.append(str(request.url))
        return httpx.Response(302, headers={"location": "https://attacker.example/d"})

    adapter = OidcAdapter(http=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(SsoError) as info:
        adapter.start_login(config(adapter), tenant_id="t", connection_id="c")
    assert info.value.reason == "discovery"
    assert len(hits) == 1


def test_unreachable_provider_is_a_clear_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    adapter = OidcAdapter(http=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(SsoError) as info:
        adapter.start_login(config(adapter), tenant_id="t", connection_id="c")
    assert info.value.reason == "discovery"


def test_non_json_discovery_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>")

    adapter = OidcAdapter(http=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(SsoError) as info:
        adapter.start_login(config(adapter), tenant_id="t", connection_id="c")
    assert info.value.reason == "discovery"


def test_discovery_and_keys_are_cached(adapter: OidcAdapter, idp: FakeIdp) -> None:
    cfg = config(adapter)
    login(adapter, cfg, idp)
    login(adapter, cfg, idp)
    assert idp.fetches["openid-configuration"] == 1
    assert idp.fetches["keys"] == 1


def test_concurrent_logins_fetch_discovery_once(idp: FakeIdp) -> None:
    gate = threading.Barrier(8)
    inner = idp.handler

    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.05)  # widen the window in which an unlocked cache would fetch twice
        return inner(request)

    http = httpx.Client(transport=httpx.MockTransport(slow))
    adapter = OidcAdapter(http=http)
    cfg = config(adapter)

    def start(_: int) -> str:
        gate.wait()
        return adapter.start_login(cfg, tenant_id="t", connection_id="c").pending["state"]

    with ThreadPoolExecutor(8) as pool:
        states = list(pool.map(start, range(8)))
    assert len(set(states)) == 8
    assert idp.fetches["openid-configuration"] == 1


def test_rotated_key_triggers_one_refresh(idp: FakeIdp) -> None:
    clock = Clock()
    adapter = _adapter(idp, clock)
    cfg = config(adapter)
    login(adapter, cfg, idp)
    new = rsa_key("k2")
    idp.keys[:] = [new]
    ident = login(adapter, cfg, idp, mint=lambda n: idp.sign(idp.claims(n), key=new))
    assert ident.subject == "subject-1"
    assert idp.fetches["keys"] == 2


def test_unknown_kids_cannot_make_us_hammer_the_provider(idp: FakeIdp) -> None:
    clock = Clock()
    adapter = _adapter(idp, clock)
    cfg = config(adapter)
    forged = rsa_key("k3")
    reasons = []
    for _ in range(5):
        with pytest.raises(SsoError) as info:
            login(adapter, cfg, idp, mint=lambda n: idp.sign(idp.claims(n), key=forged))
        reasons.append(info.value.reason)
    assert reasons == ["signature"] * 5
    assert idp.fetches["keys"] == 2
    clock.t += JWKS_MIN_REFRESH_S + 1
    with pytest.raises(SsoError):
        login(adapter, cfg, idp, mint=lambda n: idp.sign(idp.claims(n), key=forged))
    assert idp.fetches["keys"] == 3


def test_jwks_keeps_only_public_asymmetric_signing_keys() -> None:
    public = rsa_key("k1").as_dict(private=False)
    private = rsa_key("k2").as_dict(private=True)
    encryption = {**rsa_key("k4").as_dict(private=False), "use": "enc"}
    secret = OctKey.import_key("shared-secret-value-0123456789").as_dict(private=True)
    keys = parse_jwks({"keys": [public, private, encryption, secret, {"kty": "RSA"}, 7]})
    assert [k.kid for k in keys] == ["k1"]


def test_jwks_without_usable_keys_is_an_error() -> None:
    secret = OctKey.import_key("shared-secret-value-0123456789").as_dict(private=True)
    with pytest.raises(SsoError) as info:
        parse_jwks({"keys": [secret]})
    assert info.value.reason == "jwks"
