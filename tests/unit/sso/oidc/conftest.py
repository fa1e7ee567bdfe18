"""A FAKE OpenID provider behind ``httpx.MockTransport``, for what no real peer here can do.

The real-provider tests (``tests/integration/test_oidc_*.py``) log in against
``oidc-provider-mock`` on loopback. That provider cannot act as Microsoft
Entra (``tid``, an issuer template) or Google Workspace (``hd``), cannot
rotate its key, and signs whatever it signs; these unit tests need tokens
with chosen claims, headers and keys. :class:`FakeIdp` therefore serves a
discovery document, a JWKS and a token endpoint from memory and signs ID
tokens with keys the test holds (joserfc). It is a test fake, not a
provider: it checks nothing the relying party sends except what a test
asserts on.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from callvault.sso import SsoIdentity
from callvault.sso.oidc import OidcAdapter, OidcConfig

CLIENT_ID = "callvault-test-client"
CLIENT_SECRET = "test-client-secret-0123456789"
REDIRECT_URI = "https://cv.example.test/sso/ten_x/sso_y/oidc/callback"
ISSUER = "https://idp.example.test"
ENTRA_HOST = "https://login.microsoftonline.com"
ENTRA_TEMPLATE = f"{ENTRA_HOST}/{{tenantid}}/v2.0"
ENTRA_DISCOVERY = f"{ENTRA_HOST}/organizations/v2.0/.well-known/openid-configuration"
TENANT_A = "11111111-2222-3333-4444-555555555555"
TENANT_B = "99999999-8888-7777-6666-555555555555"
GOOGLE = "https://accounts.google.com"


_KEYS: dict[str, RSAKey] = {}


def rsa_key(kid: str) -> RSAKey:
    """A test RSA key per kid, generated once per session (2048-bit generation is slow)."""
    if kid not in _KEYS:
        _KEYS[kid] = RSAKey.generate_key(2048, parameters={"kid": kid})
    return _KEYS[kid]


def b64url_json(value: object) -> str:
    raw = json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class FakeIdp:
    """Discovery, JWKS and token endpoint from memory (see the module docstring)."""

    base: str = ISSUER
    #: What discovery says the issuer is (the template, for Entra).
    issuer: str = ISSUER
    keys: list[RSAKey] = field(default_factory=list)
    auth_methods: list[str] | None = None
    #: The ID token the token endpoint returns next (set by :func:`login`).
    id_token: str = ""
    access_token: str = "test-access-token"
    token_status: int = 200
    fetches: Counter[str] = field(default_factory=Counter)
    token_requests: list[httpx.Request] = field(default_factory=list)
    discovery_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.keys:
            self.keys.append(rsa_key("k1"))

    @property
    def key(self) -> RSAKey:
        return self.keys[0]

    def discovery(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{self.base}/oauth2/v2.0/token",
            "jwks_uri": f"{self.base}/discovery/v2.0/keys",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }
        if self.auth_methods is not None:
            doc["token_endpoint_auth_methods_supported"] = self.auth_methods
        doc.update(self.discovery_overrides)
        return doc

    def handler(self, request: httpx.Request) -> httpx.Response:
        last = request.url.path.rsplit("/", 1)[-1]
        self.fetches[last] += 1
        if last == "openid-configuration":
            return httpx.Response(200, json=self.discovery())
        if last == "keys":
            return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in self.keys]})
        if last == "token":
            self.token_requests.append(request)
            if self.token_status != 200:
                return httpx.Response(self.token_status, json={"error": "invalid_grant"})
            return httpx.Response(
                200,
                json={
                    "access_token": self.access_token,
                    "token_type": "Bearer",
                    "id_token": self.id_token,
                },
            )
        return httpx.Response(404)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))

    def claims(self, nonce: str, **overrides: object) -> dict[str, Any]:
        now = int(datetime.now(UTC).timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "subject-1",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "email": "user@customer.example",
            "email_verified": True,
            "name": "Test User",
            "groups": ["grp-a", "grp-b"],
        }
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def sign(
        self,
        claims: dict[str, Any],
        *,
        key: RSAKey | None = None,
        header: dict[str, Any] | None = None,
    ) -> str:
        use = key or self.key
        head = {"alg": "RS256", "kid": use.kid, **(header or {})}
        return jwt.encode(head, claims, use, algorithms=[head["alg"]])

    def token_form(self, index: int = -1) -> dict[str, str]:
        return dict(parse_qsl(self.token_requests[index].content.decode()))


def config(adapter: OidcAdapter, **overrides: object) -> OidcConfig:
    raw: dict[str, object] = {
        "issuer": ISSUER,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uri": REDIRECT_URI,
    }
    raw.update(overrides)
    return adapter.parse_config(raw)


def login(
    adapter: OidcAdapter,
    cfg: OidcConfig,
    idp: FakeIdp,
    *,
    mint: Callable[[str], str] | None = None,
    now: datetime | None = None,
    **claims: object,
) -> SsoIdentity:
    """Start a login, have the fake sign a token for its nonce, finish it."""
    begun = adapter.start_login(cfg, tenant_id="ten_x", connection_id="sso_y")
    nonce = begun.pending["nonce"]
    idp.id_token = mint(nonce) if mint else idp.sign(idp.claims(nonce, **claims))
    return adapter.finish_login(
        cfg,
        tenant_id="ten_x",
        connection_id="sso_y",
        params={"code": "authz-code-1", "state": begun.pending["state"]},
        pending=begun.pending,
        now=now or datetime.now(UTC),
        replay=NoReplay(),
    )


class NoReplay:
    """The OIDC adapter never consults the replay guard; this one fails the test if it does."""

    def first_use(
        self,
        connection_id: str,  # noqa: ARG002 - the ReplayGuard signature
        assertion_id: str,  # noqa: ARG002 - the ReplayGuard signature
        not_on_or_after: datetime,  # noqa: ARG002 - the ReplayGuard signature
    ) -> bool:
        raise AssertionError("the OIDC adapter must not need the SAML replay guard")


@pytest.fixture
def idp() -> FakeIdp:
    return FakeIdp()


@pytest.fixture
def adapter(idp: FakeIdp) -> OidcAdapter:
    return OidcAdapter(http=idp.client())
