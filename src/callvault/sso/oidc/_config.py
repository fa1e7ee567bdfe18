"""An OIDC connection's configuration: parsed once, never constructed invalid.

The login core stores the raw JSON object sealed and hands it (with the
``redirect_uri`` it derives) to :func:`parse_oidc_config` through
``OidcAdapter.parse_config``, which returns an :class:`OidcConfig` or raises
``SsoConfigError`` naming the field. Parsing does no network I/O: discovery
happens at login time.

Client authentication is a client secret (``client_secret_basic`` or
``client_secret_post``); ``private_key_jwt`` and mutual TLS are out of scope.

Profiles:

- ``generic``: ``issuer`` is pinned exactly; an e-mail is kept only when the
  token says ``email_verified: true``.
- ``entra`` (Microsoft Entra ID, multi-tenant app): ``issuer`` is the
  template Entra's discovery document publishes
  (``https://login.microsoftonline.com/{tenantid}/v2.0``), ``discovery_url``
  is required (``.../organizations/v2.0/.well-known/openid-configuration``),
  and ``allowed_tenant_ids`` lists the customer's directory ids: a token's
  ``tid`` MUST be one of them and its ``iss`` MUST be the template filled
  with that ``tid``.
- ``google`` (Google Workspace): ``issuer`` is ``https://accounts.google.com``,
  ``hosted_domain`` is required; a token's ``hd`` MUST equal it and
  ``email_verified`` MUST be true.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from callvault.errors import SsoConfigError

Profile = Literal["generic", "entra", "google"]
AuthMethod = Literal["auto", "client_secret_basic", "client_secret_post"]

#: Asymmetric JWS algorithms an ID token may use; ``none`` and HS* are never accepted.
ALLOWED_ALGORITHMS: Final = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
)
GOOGLE_ISSUER: Final = "https://accounts.google.com"
TENANT_PLACEHOLDER: Final = "{tenantid}"
DEFAULT_CLOCK_SKEW_S: Final = 60
MAX_CLOCK_SKEW_S: Final = 300
DEFAULT_MAX_TOKEN_AGE_S: Final = 600
#: An Entra directory (tenant) id: a GUID, compared in lower case.
GUID: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DOMAIN: Final = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
#: RFC 6749 §3.3 scope-token.
_SCOPE: Final = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$")
_CLAIM: Final = re.compile(r"^[\x21-\x7e]{1,256}$")
_SAMPLE_GUID: Final = "00000000-0000-0000-0000-000000000000"


class _Raw(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    issuer: str = Field(min_length=1, max_length=2048)
    discovery_url: str | None = Field(default=None, min_length=1, max_length=2048)
    client_id: str = Field(min_length=1, max_length=512)
    client_secret: SecretStr = Field(min_length=1, max_length=4096)
    token_endpoint_auth_method: AuthMethod = "auto"  # noqa: S105 - a method name, not a secret
    redirect_uri: str = Field(min_length=1, max_length=2048)
    scopes: tuple[str, ...] = Field(default=("openid", "email", "profile"), max_length=32)
    profile: Profile = "generic"
    allowed_tenant_ids: tuple[str, ...] = Field(default=(), max_length=256)
    hosted_domain: str | None = Field(default=None, max_length=253)
    email_claim: str | None = "email"
    name_claim: str | None = "name"
    groups_claim: str | None = "groups"
    #: Further claims whose values the identity carries (for role mapping).
    keep_claims: tuple[str, ...] = Field(default=(), max_length=32)
    id_token_algorithms: tuple[str, ...] = Field(default=ALLOWED_ALGORITHMS, min_length=1)
    clock_skew_seconds: int = Field(default=DEFAULT_CLOCK_SKEW_S, ge=0, le=MAX_CLOCK_SKEW_S)
    max_token_age_seconds: int = Field(default=DEFAULT_MAX_TOKEN_AGE_S, ge=30, le=3600)
    #: Plain http for the issuer and its endpoints on a loopback host: tests and development only.
    allow_http_loopback: bool = False


@dataclass(frozen=True, slots=True)
class OidcConfig:
    """One tenant connection's OIDC settings, validated."""

    #: Exact issuer, or (profile ``entra``) the template holding ``{tenantid}``.
    issuer: str
    discovery_url: str
    client_id: str
    client_secret: SecretStr
    token_endpoint_auth_method: AuthMethod
    redirect_uri: str
    scopes: tuple[str, ...]
    profile: Profile
    allowed_tenant_ids: frozenset[str]
    hosted_domain: str | None
    email_claim: str | None
    name_claim: str | None
    groups_claim: str | None
    keep_claims: tuple[str, ...]
    id_token_algorithms: tuple[str, ...]
    clock_skew: timedelta
    max_token_age: timedelta
    allow_http_loopback: bool

    def __repr__(self) -> str:
        return (
            f"OidcConfig(issuer={self.issuer!r}, client_id={self.client_id!r}, "
            f"profile={self.profile!r}, client_secret='***')"
        )

    def issuer_for(self, tid: str) -> str:
        """The issuer a token of directory ``tid`` must carry (profile ``entra``)."""
        return self.issuer.replace(TENANT_PLACEHOLDER, tid)


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP literals."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, field: str, allow_http_loopback: bool) -> str:
    """An absolute https URL, no fragment, no credentials (http on loopback only if allowed)."""
    if len(url) > 2048 or any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise SsoConfigError("URL is too long or contains whitespace", field=field)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        raise SsoConfigError("URL is not valid", field=field) from None
    if parts.fragment or parts.username is not None or parts.password is not None:
        raise SsoConfigError("URL must not carry a fragment or credentials", field=field)
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and allow_http_loopback and is_loopback_host(host):
        return url
    raise SsoConfigError("URL must be absolute https (http only on loopback)", field=field)


def _check_issuer(cfg: _Raw) -> str:
    field = "issuer"
    issuer = cfg.issuer
    if cfg.profile == "entra":
        if issuer.count(TENANT_PLACEHOLDER) != 1:
            raise SsoConfigError("an Entra issuer must contain {tenantid} once", field=field)
        check_url(
            issuer.replace(TENANT_PLACEHOLDER, _SAMPLE_GUID),
            field=field,
            allow_http_loopback=cfg.allow_http_loopback,
        )
        return issuer
    if "{" in issuer or "}" in issuer:
        raise SsoConfigError("only the entra profile takes an issuer template", field=field)
    if cfg.profile == "google" and issuer != GOOGLE_ISSUER:
        raise SsoConfigError(f"the google profile's issuer is {GOOGLE_ISSUER}", field=field)
    parts = urlsplit(issuer)
    if parts.query:
        raise SsoConfigError("an issuer has no query component", field=field)
    return check_url(issuer, field=field, allow_http_loopback=cfg.allow_http_loopback)


def _discovery_url(cfg: _Raw, issuer: str) -> str:
    field = "discovery_url"
    if cfg.discovery_url is not None:
        return check_url(
            cfg.discovery_url, field=field, allow_http_loopback=cfg.allow_http_loopback
        )
    if cfg.profile == "entra":
        raise SsoConfigError("the entra profile needs a discovery_url", field=field)
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


def _profile_fields(cfg: _Raw) -> tuple[frozenset[str], str | None]:
    tenants = frozenset(t.lower() for t in cfg.allowed_tenant_ids)
    if cfg.profile == "entra":
        if not tenants:
            raise SsoConfigError(
                "the entra profile needs allowed_tenant_ids", field="allowed_tenant_ids"
            )
        if any(not GUID.match(t) for t in tenants):
            raise SsoConfigError(
                "allowed_tenant_ids must be directory ids (GUIDs)", field="allowed_tenant_ids"
            )
    elif tenants:
        raise SsoConfigError(
            "allowed_tenant_ids is for the entra profile", field="allowed_tenant_ids"
        )
    domain = cfg.hosted_domain.lower() if cfg.hosted_domain else None
    if cfg.profile == "google":
        if domain is None or not _DOMAIN.match(domain):
            raise SsoConfigError(
                "the google profile needs hosted_domain (a DNS domain)", field="hosted_domain"
            )
    elif domain is not None:
        raise SsoConfigError("hosted_domain is for the google profile", field="hosted_domain")
    return tenants, domain


def _check_lists(cfg: _Raw) -> None:
    if "openid" not in cfg.scopes:
        raise SsoConfigError("scopes must include openid", field="scopes")
    if any(not _SCOPE.match(s) for s in cfg.scopes):
        raise SsoConfigError("scopes must be RFC 6749 scope tokens", field="scopes")
    for name in ("email_claim", "name_claim", "groups_claim"):
        value = getattr(cfg, name)
        if value is not None and not _CLAIM.match(value):
            raise SsoConfigError("claim names are 1-256 printable characters", field=name)
    if any(not _CLAIM.match(c) for c in cfg.keep_claims):
        raise SsoConfigError("claim names are 1-256 printable characters", field="keep_claims")
    if any(alg not in ALLOWED_ALGORITHMS for alg in cfg.id_token_algorithms):
        raise SsoConfigError(
            "id_token_algorithms may only name asymmetric algorithms (no none, no HS*)",
            field="id_token_algorithms",
        )


def parse_oidc_config(raw: Mapping[str, Any]) -> OidcConfig:
    """Validate ``raw``; ``SsoConfigError(field=...)`` on the first bad field."""
    if not isinstance(raw, Mapping):
        raise SsoConfigError("OIDC configuration must be an object", field="config")
    try:
        cfg = _Raw.model_validate(dict(raw))
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        field = str(err["loc"][0]) if err["loc"] else "config"
        raise SsoConfigError(f"invalid OIDC setting: {err['msg']}", field=field) from None
    issuer = _check_issuer(cfg)
    discovery_url = _discovery_url(cfg, issuer)
    # The core derives the redirect URI from the public base URL; plain http only on loopback.
    redirect_uri = check_url(cfg.redirect_uri, field="redirect_uri", allow_http_loopback=True)
    tenants, domain = _profile_fields(cfg)
    _check_lists(cfg)
    return OidcConfig(
        issuer=issuer,
        discovery_url=discovery_url,
        client_id=cfg.client_id,
        client_secret=cfg.client_secret,
        token_endpoint_auth_method=cfg.token_endpoint_auth_method,
        redirect_uri=redirect_uri,
        scopes=tuple(dict.fromkeys(cfg.scopes)),
        profile=cfg.profile,
        allowed_tenant_ids=tenants,
        hosted_domain=domain,
        email_claim=cfg.email_claim,
        name_claim=cfg.name_claim,
        groups_claim=cfg.groups_claim,
        keep_claims=cfg.keep_claims,
        id_token_algorithms=tuple(dict.fromkeys(cfg.id_token_algorithms)),
        clock_skew=timedelta(seconds=cfg.clock_skew_seconds),
        max_token_age=timedelta(seconds=cfg.max_token_age_seconds),
        allow_http_loopback=cfg.allow_http_loopback,
    )
