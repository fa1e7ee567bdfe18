"""The OIDC relying party: authorization code flow with PKCE S256, nonce and state.

:meth:`OidcAdapter.start_login`:

1. Provider metadata from the cache (discovery, issuer pinned).
2. ``state``, ``nonce`` and the PKCE ``code_verifier``: 256 bits each from
   :mod:`secrets`; the challenge is ``S256`` of the verifier (authlib).
3. The authorization URL (authlib): ``response_type=code``, client id,
   redirect URI, scopes, state, nonce, challenge (Google: ``hd`` as a hint;
   the token's ``hd`` is what is checked). ``pending`` keeps state, nonce,
   verifier and redirect URI; the core MUST keep it server-side, bound to the
   browser, single use.

:meth:`OidcAdapter.finish_login` (``params`` is the callback's query):

1. ``pending`` MUST hold the four values and name this connection's redirect URI.
2. ``state`` MUST equal the pending state (constant time), before anything
   else in the answer is believed.
3. An ``iss`` parameter (RFC 9207), if sent, MUST be the pinned issuer
   (mix-up defence; ignored for the Entra template, whose tokens say it).
4. ``error`` → ``idp-error``; the IdP's description is never repeated.
5. ``code`` MUST be present and plausible (printable ASCII, bounded).
6. Exchange it at the token endpoint (bounded request, no redirects) with
   the verifier and the redirect URI, authenticating with the client secret
   (``client_secret_basic`` or ``_post``, as configured or as discovery
   offers); any non-200 answer or a reply without ``id_token`` and a
   ``Bearer`` token type → ``token-exchange`` (a reused or foreign code ends
   here: the provider refuses it).
7. Verify the ID token (:func:`~callvault.sso.oidc._tokens.verify_id_token`);
   on an unknown ``kid`` refresh the key set once (rate-limited) and retry.
8. Map the claims (:func:`~callvault.sso.oidc._claims.identity_from_claims`).

Userinfo is not called: every claim the identity needs is in the ID token.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import httpx
from authlib.oauth2.auth import ClientAuth  # type: ignore[import-untyped]  # authlib ships no type information
from authlib.oauth2.rfc6749.parameters import (  # type: ignore[import-untyped]  # authlib ships no type information
    prepare_grant_uri,
    prepare_token_request,
)
from authlib.oauth2.rfc7636 import (  # type: ignore[import-untyped]  # authlib ships no type information
    create_s256_code_challenge,
)

from callvault.egress import EgressGuard, EgressRefusedError
from callvault.errors import SsoConfigError, SsoError
from callvault.sso._adapter import LoginStart, ReplayGuard
from callvault.sso._identity import SsoIdentity
from callvault.sso.oidc._claims import identity_from_claims
from callvault.sso.oidc._config import OidcConfig, parse_oidc_config
from callvault.sso.oidc._discovery import ProviderCache, ProviderMetadata
from callvault.sso.oidc._fetch import FETCH_TIMEOUT_S, FetchError, exchange_json
from callvault.sso.oidc._tokens import Expected, UnknownKeyError, verify_id_token

MAX_TOKEN_RESPONSE_BYTES: Final = 256 * 1024
_RANDOM_BYTES: Final = 32
_MAX_PARAM_CHARS: Final = 4096
_PRINTABLE: Final = re.compile(r"^[\x21-\x7e]{1,4096}$")
_PENDING_KEYS: Final = ("state", "nonce", "code_verifier", "redirect_uri")
#: RFC 6749 §4.1.2.1 and OIDC Core §3.1.2.6 error codes: safe to name in a message.
_KNOWN_ERRORS: Final = frozenset(
    {
        "invalid_request",
        "unauthorized_client",
        "access_denied",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
    }
)


def _config(config: Any) -> OidcConfig:
    if not isinstance(config, OidcConfig):
        raise SsoError(
            "the connection's configuration is not an OIDC one", reason="connection-config"
        )
    return config


def _param(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_PARAM_CHARS:
        raise SsoError(f"the {name} parameter is malformed", reason="malformed")
    return value


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


def _auth_method(cfg: OidcConfig, meta: ProviderMetadata) -> str:
    offered = meta.token_auth_methods
    if cfg.token_endpoint_auth_method != "auto":  # noqa: S105 - a method name, not a secret
        if cfg.token_endpoint_auth_method not in offered:
            raise SsoError(
                "the provider does not offer the configured client authentication",
                reason="discovery",
            )
        return cfg.token_endpoint_auth_method
    for method in ("client_secret_basic", "client_secret_post"):
        if method in offered:
            return method
    raise SsoError("the provider offers no client-secret authentication", reason="discovery")


class OidcAdapter:
    """``SsoAdapter`` for OpenID Connect; holds only the provider cache.

    ``http`` is the client every provider request goes through (the caller
    owns proxies and the TLS trust store; tests pass one with a mock
    transport). By default the adapter makes its own, which verifies TLS
    and does not follow redirects.

    ``allow_http_loopback`` is the installation's test/development switch: a
    connection may ask for a plain-http issuer on a loopback host
    (``allow_http_loopback`` in its configuration) only when the adapter was
    built with it; the default adapter refuses such a connection.
    """

    def __init__(
        self,
        *,
        http: httpx.Client | None = None,
        cache: ProviderCache | None = None,
        token_timeout_s: float = FETCH_TIMEOUT_S,
        allow_http_loopback: bool = False,
        egress: EgressGuard | None = None,
    ) -> None:
        """``http`` defaults to a client of ``egress`` (default: :class:`EgressGuard` ``()``):
        every URL fetched comes from a tenant administrator, so it may not point inside."""
        self._egress = egress or EgressGuard()
        self._http = http or self._egress.client()
        self._cache = cache or ProviderCache(self._http)
        self._token_timeout_s = token_timeout_s
        self._allow_http_loopback = allow_http_loopback

    def parse_config(self, raw: Mapping[str, Any]) -> OidcConfig:
        cfg = parse_oidc_config(raw)
        if cfg.allow_http_loopback and not self._allow_http_loopback:
            raise SsoConfigError(
                "plain http on loopback is for test and development installations only",
                field="allow_http_loopback",
            )
        if not cfg.allow_http_loopback:
            # The scheme and port now (no lookup: addresses are vetted on every fetch).
            try:
                self._egress.check_url(cfg.discovery_url)
            except EgressRefusedError as exc:
                raise SsoConfigError(
                    f"the discovery URL is refused by the installation's egress policy "
                    f"({exc.reason})",
                    field="discovery_url",
                ) from None
        return cfg

    # -- start -------------------------------------------------------------------------

    def start_login(
        self,
        config: Any,
        *,
        tenant_id: str,  # noqa: ARG002 - part of the SsoAdapter contract; OIDC needs no ids here
        connection_id: str,  # noqa: ARG002 - same
    ) -> LoginStart:
        """Steps (1)-(3) of :meth:`start_login` in the module docstring."""
        cfg = _config(config)
        # (1)
        meta = self._cache.metadata(cfg)
        # (2)
        state = secrets.token_urlsafe(_RANDOM_BYTES)
        nonce = secrets.token_urlsafe(_RANDOM_BYTES)
        verifier = secrets.token_urlsafe(_RANDOM_BYTES)
        # (3)
        extra: dict[str, str] = {}
        if cfg.profile == "google" and cfg.hosted_domain:
            extra["hd"] = cfg.hosted_domain
        url: str = prepare_grant_uri(
            meta.authorization_endpoint,
            cfg.client_id,
            "code",
            redirect_uri=cfg.redirect_uri,
            scope=list(cfg.scopes),
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
            **extra,
        )
        pending = {
            "state": state,
            "nonce": nonce,
            "code_verifier": verifier,
            "redirect_uri": cfg.redirect_uri,
        }
        return LoginStart(redirect_url=url, pending=pending)

    # -- finish ------------------------------------------------------------------------

    def _check_callback(
        self, cfg: OidcConfig, params: Mapping[str, str], pending: Mapping[str, str]
    ) -> str:
        # (1)
        if not all(isinstance(pending.get(k), str) and pending.get(k) for k in _PENDING_KEYS):
            raise SsoError("the pending login is incomplete", reason="state")
        if pending["redirect_uri"] != cfg.redirect_uri:
            raise SsoError("the pending login is for another redirect URI", reason="state")
        # (2)
        state = _param(params, "state")
        if state is None or not _same(state, pending["state"]):
            raise SsoError("the state does not match this browser's login", reason="state")
        # (3)
        iss = _param(params, "iss")
        if iss is not None and cfg.profile != "entra" and iss != cfg.issuer:
            raise SsoError("the authorization response names another issuer", reason="issuer")
        # (4)
        error = _param(params, "error")
        if error is not None:
            named = f" ({error})" if error in _KNOWN_ERRORS else ""
            raise SsoError(f"the identity provider returned an error{named}", reason="idp-error")
        # (5)
        code = _param(params, "code")
        if code is None or not _PRINTABLE.match(code):
            raise SsoError("the authorization response has no valid code", reason="malformed")
        return code

    def _exchange(
        self, cfg: OidcConfig, meta: ProviderMetadata, code: str, pending: Mapping[str, str]
    ) -> tuple[str, str | None]:
        # (6)
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=pending["redirect_uri"],
            code_verifier=pending["code_verifier"],
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        auth = ClientAuth(
            cfg.client_id, cfg.client_secret.get_secret_value(), _auth_method(cfg, meta)
        )
        url, headers, body = auth.prepare("POST", meta.token_endpoint, headers, body)
        try:
            doc = exchange_json(
                self._http,
                "POST",
                url,
                max_bytes=MAX_TOKEN_RESPONSE_BYTES,
                timeout_s=self._token_timeout_s,
                headers=headers,
                content=body,
            )
        except FetchError as exc:
            raise SsoError(
                f"the provider refused the code exchange ({exc.cause})", reason="token-exchange"
            ) from None
        id_token = doc.get("id_token")
        token_type = doc.get("token_type")
        access = doc.get("access_token")
        if not isinstance(id_token, str) or not id_token:
            raise SsoError("the token response has no ID token", reason="token-exchange")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise SsoError("the token response's type is not Bearer", reason="token-exchange")
        if access is not None and not isinstance(access, str):
            raise SsoError(
                "the token response's access token is malformed", reason="token-exchange"
            )
        return id_token, access

    def finish_login(
        self,
        config: Any,
        *,
        tenant_id: str,
        connection_id: str,
        params: Mapping[str, str],
        pending: Mapping[str, str],
        now: datetime,
        replay: ReplayGuard,  # noqa: ARG002 - SAML only; codes are single use at the provider
    ) -> SsoIdentity:
        """Steps (1)-(8) of :meth:`finish_login` in the module docstring.

        ``replay`` is not consulted: the provider makes the code single use
        and the core makes the pending state single use.
        """
        cfg = _config(config)
        # (1)-(5)
        code = self._check_callback(cfg, params, pending)
        meta = self._cache.metadata(cfg)
        # (6)
        id_token, access_token = self._exchange(cfg, meta, code, pending)
        # (7)
        expected = Expected(
            issuer=cfg.issuer,
            client_id=cfg.client_id,
            algorithms=cfg.id_token_algorithms,
            nonce=pending["nonce"],
            now=now,
            skew=cfg.clock_skew,
            max_age=cfg.max_token_age,
            allowed_tenant_ids=cfg.allowed_tenant_ids if cfg.profile == "entra" else None,
            access_token=access_token,
        )
        keys = self._cache.keys(cfg, meta)
        try:
            claims = verify_id_token(id_token, keys, expected)
        except UnknownKeyError:
            fresh = self._cache.refresh_keys(cfg, meta, keys)
            if fresh is None:
                raise
            claims = verify_id_token(id_token, fresh, expected)
        # (8)
        return identity_from_claims(claims, cfg, tenant_id=tenant_id, connection_id=connection_id)
