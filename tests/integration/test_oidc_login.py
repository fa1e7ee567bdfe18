"""OIDC logins against a real provider on loopback (oidc-provider-mock), and the attacks on them.

Each module-scoped provider is started once. Where a test plays a network
attacker or a malicious party holding a real token, the
:class:`~tests.integration.oidc_provider.TamperingTransport` rewrites the
provider's real answer in flight; the signatures involved are the
provider's own.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from callvault.errors import SsoError
from callvault.sso import SsoIdentity
from callvault.sso.oidc import OidcAdapter, OidcConfig
from tests.integration.oidc_provider import OidcProvider, TamperingTransport, running_provider

CLIENT_ID = "callvault-it"
CLIENT_SECRET = "it-client-secret"
REDIRECT_URI = "http://127.0.0.1:9/sso/ten_it/sso_it/oidc/callback"
USER = "user-7f3a"
USER_CLAIMS = {
    "email": "user-7f3a@customer.example",
    "email_verified": True,
    "name": "Integration User",
    "groups": ["cv-admins", "cv-agents"],
}


class _NoReplay:
    def first_use(self, *_: object) -> bool:
        raise AssertionError("the OIDC adapter must not need the SAML replay guard")


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with running_provider() as p:
        p.set_user(USER, USER_CLAIMS)
        yield p


@pytest.fixture(scope="module")
def strict_provider() -> Iterator[OidcProvider]:
    with running_provider(require_client_registration=True, require_nonce=True) as p:
        p.set_user(USER, USER_CLAIMS)
        yield p


@pytest.fixture
def wire() -> Iterator[TamperingTransport]:
    transport = TamperingTransport()
    yield transport
    transport.close()


@pytest.fixture
def adapter(wire: TamperingTransport) -> OidcAdapter:
    return OidcAdapter(http=httpx.Client(transport=wire), allow_http_loopback=True)


def _config(
    adapter: OidcAdapter,
    provider: OidcProvider,
    *,
    client_id: str = CLIENT_ID,
    client_secret: str = CLIENT_SECRET,
    redirect_uri: str = REDIRECT_URI,
) -> OidcConfig:
    return adapter.parse_config(
        {
            "issuer": provider.issuer,
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uri": redirect_uri,
            "allow_http_loopback": True,
        }
    )


def _finish(
    adapter: OidcAdapter,
    cfg: OidcConfig,
    params: dict[str, str],
    pending: dict[str, str],
    *,
    now: datetime | None = None,
) -> SsoIdentity:
    return adapter.finish_login(
        cfg,
        tenant_id="ten_it",
        connection_id="sso_it",
        params=params,
        pending=pending,
        now=now or datetime.now(UTC),
        replay=_NoReplay(),
    )


def _begin(
    adapter: OidcAdapter, cfg: OidcConfig, provider: OidcProvider
) -> tuple[dict[str, str], dict[str, str]]:
    """Our authorization URL through the provider's form; (callback params, pending)."""
    begun = adapter.start_login(cfg, tenant_id="ten_it", connection_id="sso_it")
    return provider.login(begun.redirect_url, USER), dict(begun.pending)


def _reason(adapter: OidcAdapter, cfg: OidcConfig, provider: OidcProvider, **kwargs: Any) -> str:
    params, pending = _begin(adapter, cfg, provider)
    with pytest.raises(SsoError) as info:
        _finish(adapter, cfg, params, pending, **kwargs)
    return info.value.reason


def _real_token(provider: OidcProvider, client_id: str) -> str:
    """A genuine ID token of ``provider`` for ``client_id`` (a full login captures it)."""
    spy = TamperingTransport()
    captured: list[str] = []

    def keep(doc: dict[str, Any]) -> dict[str, Any]:
        captured.append(doc["id_token"])
        return doc

    spy.rewrites["/oauth2/token"] = keep
    other = OidcAdapter(http=httpx.Client(transport=spy), allow_http_loopback=True)
    cfg = _config(other, provider, client_id=client_id)
    params, pending = _begin(other, cfg, provider)
    _finish(other, cfg, params, pending)
    spy.close()
    return captured[0]


def _swap_id_token(token: str) -> Any:
    def rewrite(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "id_token": token}

    return rewrite


def _retoken(edit: Any) -> Any:
    def rewrite(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "id_token": edit(doc["id_token"])}

    return rewrite


# -- the happy path ----------------------------------------------------------------------


def test_full_login_with_pkce(
    adapter: OidcAdapter, provider: OidcProvider, wire: TamperingTransport
) -> None:
    cfg = _config(adapter, provider)
    begun = adapter.start_login(cfg, tenant_id="ten_it", connection_id="sso_it")
    params = provider.login(begun.redirect_url, USER)
    ident = _finish(adapter, cfg, params, dict(begun.pending))
    assert ident.subject == USER
    assert ident.email == USER_CLAIMS["email"]
    assert ident.email_verified
    assert ident.display_name == USER_CLAIMS["name"]
    assert ident.groups == ("cv-admins", "cv-agents")
    assert ident.authenticated_at is not None
    # PKCE on the wire: the verifier sent to the token endpoint hashes to the challenge
    # our authorization request carried (oidc-provider-mock 0.3.4 does not check it).
    challenge = parse_qs(urlsplit(begun.redirect_url).query)["code_challenge"][0]
    token_forms = [form for method, url, form in wire.seen if url.endswith("/oauth2/token")]
    assert len(token_forms) == 1
    verifier = token_forms[0]["code_verifier"]
    digest = hashlib.sha256(verifier.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge


def test_registered_client_logs_in_with_its_secret(
    adapter: OidcAdapter, strict_provider: OidcProvider
) -> None:
    client_id, secret = strict_provider.register_client([REDIRECT_URI])
    cfg = _config(adapter, strict_provider, client_id=client_id, client_secret=secret)
    params, pending = _begin(adapter, cfg, strict_provider)
    assert _finish(adapter, cfg, params, pending).subject == USER


def test_registered_client_with_a_wrong_secret_is_refused(
    adapter: OidcAdapter, strict_provider: OidcProvider
) -> None:
    client_id, _ = strict_provider.register_client([REDIRECT_URI])
    cfg = _config(adapter, strict_provider, client_id=client_id, client_secret="not-the-secret")
    assert _reason(adapter, cfg, strict_provider) == "token-exchange"


# -- the named attacks -----------------------------------------------------------


def test_wrong_nonce_in_the_pending_login_is_rejected(
    adapter: OidcAdapter, provider: OidcProvider
) -> None:
    cfg = _config(adapter, provider)
    params, pending = _begin(adapter, cfg, provider)
    pending["nonce"] = "nonce-of-another-login"
    with pytest.raises(SsoError) as info:
        _finish(adapter, cfg, params, pending)
    assert info.value.reason == "nonce"


def test_reused_authorization_code_is_rejected(
    adapter: OidcAdapter, provider: OidcProvider
) -> None:
    cfg = _config(adapter, provider)
    params, pending = _begin(adapter, cfg, provider)
    assert _finish(adapter, cfg, params, pending).subject == USER
    with pytest.raises(SsoError) as info:
        _finish(adapter, cfg, params, pending)
    assert info.value.reason == "token-exchange"


def test_unregistered_redirect_uri_is_refused_by_the_provider(
    adapter: OidcAdapter, strict_provider: OidcProvider
) -> None:
    client_id, secret = strict_provider.register_client([REDIRECT_URI])
    elsewhere = "http://127.0.0.1:9/not/registered"
    cfg = _config(
        adapter, strict_provider, client_id=client_id, client_secret=secret, redirect_uri=elsewhere
    )
    begun = adapter.start_login(cfg, tenant_id="ten_it", connection_id="sso_it")
    answer = strict_provider.authorize(begun.redirect_url, USER)
    # The provider shows an error page and never redirects to the unregistered URI ...
    assert answer.status_code == 400
    assert "location" not in answer.headers
    # ... and an error sent to our callback on its behalf is reported as the IdP's.
    forwarded = {"error": "invalid_request", "state": begun.pending["state"]}
    with pytest.raises(SsoError) as info:
        _finish(adapter, cfg, forwarded, dict(begun.pending))
    assert info.value.reason == "idp-error"


def test_code_issued_for_another_redirect_uri_is_refused(
    adapter: OidcAdapter, strict_provider: OidcProvider
) -> None:
    client_id, secret = strict_provider.register_client([REDIRECT_URI])
    cfg = _config(adapter, strict_provider, client_id=client_id, client_secret=secret)
    params, pending = _begin(adapter, cfg, strict_provider)
    elsewhere = "http://127.0.0.1:9/not/registered"
    other = _config(
        adapter, strict_provider, client_id=client_id, client_secret=secret, redirect_uri=elsewhere
    )
    with pytest.raises(SsoError) as info:
        _finish(adapter, other, params, {**pending, "redirect_uri": elsewhere})
    assert info.value.reason == "token-exchange"


def test_state_mismatch_is_rejected(adapter: OidcAdapter, provider: OidcProvider) -> None:
    cfg = _config(adapter, provider)
    params, pending = _begin(adapter, cfg, provider)
    _, other_pending = _begin(adapter, cfg, provider)
    with pytest.raises(SsoError) as info:
        _finish(adapter, cfg, params, {**pending, "state": other_pending["state"]})
    assert info.value.reason == "state"


def _without_nonce(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v[0]) for k, v in parse_qs(parts.query).items() if k != "nonce"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_missing_nonce_is_rejected(adapter: OidcAdapter, provider: OidcProvider) -> None:
    cfg = _config(adapter, provider)
    begun = adapter.start_login(cfg, tenant_id="ten_it", connection_id="sso_it")
    params = provider.login(_without_nonce(begun.redirect_url), USER)
    with pytest.raises(SsoError) as info:
        _finish(adapter, cfg, params, dict(begun.pending))
    assert info.value.reason == "nonce"


def test_provider_requiring_nonce_refuses_a_request_without_one(
    adapter: OidcAdapter, strict_provider: OidcProvider
) -> None:
    client_id, secret = strict_provider.register_client([REDIRECT_URI])
    cfg = _config(adapter, strict_provider, client_id=client_id, client_secret=secret)
    begun = adapter.start_login(cfg, tenant_id="ten_it", connection_id="sso_it")
    params = strict_provider.login(_without_nonce(begun.redirect_url), USER)
    assert "code" not in params
    assert params["error"] == "invalid_request"
    with pytest.raises(SsoError) as info:
        _finish(adapter, cfg, params, dict(begun.pending))
    assert info.value.reason == "idp-error"
    assert params["error_description"] not in str(info.value)


def test_expired_token_is_rejected(adapter: OidcAdapter, provider: OidcProvider) -> None:
    cfg = _config(adapter, provider)
    later = datetime.now(UTC) + timedelta(hours=2)
    assert _reason(adapter, cfg, provider, now=later) == "expired"


def test_wrong_issuer_in_discovery_is_rejected(
    adapter: OidcAdapter, provider: OidcProvider, wire: TamperingTransport
) -> None:
    wire.rewrites["/.well-known/openid-configuration"] = lambda d: {
        **d,
        "issuer": "http://127.0.0.1:1",
    }
    cfg = _config(adapter, provider)
    with pytest.raises(SsoError) as info:
        adapter.start_login(cfg, tenant_id="ten_it", connection_id="sso_it")
    assert info.value.reason == "issuer"


def test_token_from_another_issuer_is_rejected(
    adapter: OidcAdapter, provider: OidcProvider, wire: TamperingTransport
) -> None:
    with running_provider() as other:
        other.set_user(USER, USER_CLAIMS)
        foreign = _real_token(other, CLIENT_ID)
    wire.rewrites["/oauth2/token"] = _swap_id_token(foreign)
    cfg = _config(adapter, provider)
    # Signed by the other provider's key: no key of the pinned provider verifies it.
    assert _reason(adapter, cfg, provider) == "signature"


def test_token_for_another_client_is_rejected(
    adapter: OidcAdapter, provider: OidcProvider, wire: TamperingTransport
) -> None:
    wire.rewrites["/oauth2/token"] = _swap_id_token(_real_token(provider, "another-client"))
    cfg = _config(adapter, provider)
    assert _reason(adapter, cfg, provider) == "audience"


# -- a tampered ID token in the token response -------------------------------------------


def _flip(token: str) -> str:
    head, body, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[-1] ^= 0x01
    return f"{head}.{body}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


def _strip(token: str) -> str:
    head, body, _ = token.split(".")
    return f"{head}.{body}."


def _claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def _alg_none(token: str) -> str:
    head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return f"{head}.{token.split('.')[1]}."


def _hs256_with_client_secret(token: str) -> str:
    key = OctKey.import_key(CLIENT_SECRET)
    return jwt.encode({"alg": "HS256"}, _claims(token), key, algorithms=["HS256"])


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (_flip, "signature"),
        (_strip, "signature"),
        (_alg_none, "weak-algorithm"),
        (_hs256_with_client_secret, "weak-algorithm"),
    ],
    ids=["flipped-byte", "stripped-signature", "alg-none", "hs256-client-secret"],
)
def test_tampered_id_token_is_rejected(
    adapter: OidcAdapter,
    provider: OidcProvider,
    wire: TamperingTransport,
    edit: Any,
    reason: str,
) -> None:
    wire.rewrites["/oauth2/token"] = _retoken(edit)
    cfg = _config(adapter, provider)
    assert _reason(adapter, cfg, provider) == reason


def test_swapped_access_token_fails_the_at_hash(
    adapter: OidcAdapter, provider: OidcProvider, wire: TamperingTransport
) -> None:
    wire.rewrites["/oauth2/token"] = lambda d: {**d, "access_token": "attacker-access-token"}
    cfg = _config(adapter, provider)
    assert _reason(adapter, cfg, provider) == "at-hash"


def test_provider_metadata_and_keys_are_fetched_once(
    adapter: OidcAdapter, provider: OidcProvider, wire: TamperingTransport
) -> None:
    cfg = _config(adapter, provider)
    for _ in range(3):
        params, pending = _begin(adapter, cfg, provider)
        _finish(adapter, cfg, params, pending)
    paths = [urlsplit(url).path for _, url, _ in wire.seen]
    assert paths.count("/.well-known/openid-configuration") == 1
    assert paths.count("/jwks") == 1
    assert paths.count("/oauth2/token") == 3
