"""The code flow around the token: PKCE, state, provider errors, the code exchange."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from callvault.errors import SsoError
from callvault.sso.oidc import OidcAdapter, OidcConfig
from tests.unit.sso.oidc.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    FakeIdp,
    NoReplay,
    config,
    login,
)


def _finish(
    adapter: OidcAdapter, cfg: OidcConfig, params: dict[str, str], pending: dict[str, str]
) -> None:
    adapter.finish_login(
        cfg,
        tenant_id="ten_x",
        connection_id="sso_y",
        params=params,
        pending=pending,
        now=datetime.now(UTC),
        replay=NoReplay(),
    )


def _reason(adapter: OidcAdapter, params: dict[str, str], **pending_changes: str) -> str:
    cfg = config(adapter)
    begun = adapter.start_login(cfg, tenant_id="ten_x", connection_id="sso_y")
    pending = {**begun.pending, **pending_changes}
    params = {k: v.replace("{state}", begun.pending["state"]) for k, v in params.items()}
    with pytest.raises(SsoError) as info:
        _finish(adapter, cfg, params, pending)
    return info.value.reason


def test_authorization_url_carries_pkce_s256_nonce_and_state(adapter: OidcAdapter) -> None:
    begun = adapter.start_login(config(adapter), tenant_id="ten_x", connection_id="sso_y")
    query = parse_qs(urlsplit(begun.redirect_url).query)
    verifier = begun.pending["code_verifier"]
    want = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert query["code_challenge"] == [want.decode()]
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == [begun.pending["state"]]
    assert query["nonce"] == [begun.pending["nonce"]]
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [REDIRECT_URI]
    assert "openid" in query["scope"][0].split()
    assert begun.redirect_url.startswith("https://idp.example.test/oauth2/v2.0/authorize?")
    assert set(begun.pending) == {"state", "nonce", "code_verifier", "redirect_uri"}


def test_state_nonce_and_verifier_are_fresh_and_long(adapter: OidcAdapter) -> None:
    cfg = config(adapter)
    seen: set[str] = set()
    for _ in range(20):
        pending = adapter.start_login(cfg, tenant_id="t", connection_id="c").pending
        for name in ("state", "nonce", "code_verifier"):
            # 128 bits or more: at least 22 base64url characters.
            assert len(pending[name]) >= 43
            seen.add(pending[name])
    assert len(seen) == 60


def test_code_exchange_sends_the_verifier_and_authenticates(
    adapter: OidcAdapter, idp: FakeIdp
) -> None:
    login(adapter, config(adapter), idp)
    form = idp.token_form()
    assert form["grant_type"] == "authorization_code"
    assert form["code"] == "authz-code-1"
    assert form["redirect_uri"] == REDIRECT_URI
    assert len(form["code_verifier"]) >= 43
    assert "client_secret" not in form
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert idp.token_requests[-1].headers["authorization"] == f"Basic {basic}"


def test_client_secret_post_when_discovery_offers_only_that() -> None:
    idp = FakeIdp(auth_methods=["client_secret_post", "private_key_jwt"])
    adapter = OidcAdapter(http=idp.client())
    login(adapter, config(adapter), idp)
    form = idp.token_form()
    assert form["client_secret"] == CLIENT_SECRET
    assert "authorization" not in idp.token_requests[-1].headers


def test_provider_without_client_secret_auth_is_refused() -> None:
    idp = FakeIdp(auth_methods=["private_key_jwt"])
    adapter = OidcAdapter(http=idp.client())
    with pytest.raises(SsoError) as info:
        login(adapter, config(adapter), idp)
    assert info.value.reason == "discovery"


def test_state_mismatch_is_rejected_before_the_code_is_used(
    adapter: OidcAdapter, idp: FakeIdp
) -> None:
    assert _reason(adapter, {"code": "c", "state": "forged-state"}) == "state"
    assert idp.token_requests == []


def test_missing_state_is_rejected(adapter: OidcAdapter) -> None:
    assert _reason(adapter, {"code": "c"}) == "state"


def test_incomplete_pending_state_is_rejected(adapter: OidcAdapter) -> None:
    assert _reason(adapter, {"code": "c", "state": "{state}"}, code_verifier="") == "state"


def test_pending_for_another_redirect_uri_is_rejected(adapter: OidcAdapter) -> None:
    params = {"code": "c", "state": "{state}"}
    assert _reason(adapter, params, redirect_uri="https://evil.example/cb") == "state"


def test_tampered_pending_nonce_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    cfg = config(adapter)
    begun = adapter.start_login(cfg, tenant_id="t", connection_id="c")
    idp.id_token = idp.sign(idp.claims(begun.pending["nonce"]))
    pending = {**begun.pending, "nonce": "tampered-nonce"}
    with pytest.raises(SsoError) as info:
        _finish(adapter, cfg, {"code": "c", "state": begun.pending["state"]}, pending)
    assert info.value.reason == "nonce"


def test_idp_error_is_reported_without_its_description(adapter: OidcAdapter) -> None:
    cfg = config(adapter)
    begun = adapter.start_login(cfg, tenant_id="t", connection_id="c")
    params = {
        "error": "access_denied",
        "error_description": "user alice@customer.example is blocked",
        "state": begun.pending["state"],
    }
    with pytest.raises(SsoError) as info:
        _finish(adapter, cfg, params, dict(begun.pending))
    assert info.value.reason == "idp-error"
    assert "alice" not in str(info.value)


def test_unknown_idp_error_code_is_not_echoed(adapter: OidcAdapter) -> None:
    params = {"error": "<script>customer-data</script>", "state": "{state}"}
    cfg = config(adapter)
    begun = adapter.start_login(cfg, tenant_id="t", connection_id="c")
    params["state"] = begun.pending["state"]
    with pytest.raises(SsoError) as info:
        _finish(adapter, cfg, params, dict(begun.pending))
    assert info.value.reason == "idp-error"
    assert "customer-data" not in str(info.value)


def test_iss_parameter_of_another_issuer_is_rejected(adapter: OidcAdapter) -> None:
    params = {"code": "c", "state": "{state}", "iss": "https://attacker.example"}
    assert _reason(adapter, params) == "issuer"


def test_missing_code_is_rejected(adapter: OidcAdapter) -> None:
    assert _reason(adapter, {"state": "{state}"}) == "malformed"


def test_refused_code_exchange_is_reported_without_the_answer(
    adapter: OidcAdapter, idp: FakeIdp
) -> None:
    idp.token_status = 400
    with pytest.raises(SsoError) as info:
        login(adapter, config(adapter), idp)
    assert info.value.reason == "token-exchange"
    assert "invalid_grant" not in str(info.value)


def test_token_response_without_id_token_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    with pytest.raises(SsoError) as info:
        login(adapter, config(adapter), idp, mint=lambda _: "")
    assert info.value.reason == "token-exchange"


def test_the_replay_guard_is_not_needed(adapter: OidcAdapter, idp: FakeIdp) -> None:
    # NoReplay fails the test if consulted; a full login must pass without it.
    assert login(adapter, config(adapter), idp).protocol == "oidc"


def test_a_saml_config_object_is_refused(adapter: OidcAdapter) -> None:
    with pytest.raises(SsoError) as info:
        adapter.start_login(object(), tenant_id="t", connection_id="c")
    assert info.value.reason == "connection-config"
