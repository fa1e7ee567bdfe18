"""The provider's discovery document and signing keys: fetched within limits, cached, pinned.

:meth:`ProviderCache.metadata` returns a connection's provider metadata:

1. Fetch ``discovery_url`` (:func:`~callvault.sso.oidc._fetch.exchange_json`:
   no redirects, deadline, size cap).
2. Its ``issuer`` MUST equal the configured issuer exactly (for Entra: the
   template, as Entra publishes it); no trailing-slash or case leniency.
3. ``authorization_endpoint``, ``token_endpoint`` and ``jwks_uri`` MUST be
   https URLs (plain http only on loopback when the connection allows it);
   ``response_types_supported``, when given, MUST include ``code``;
   ``code_challenge_methods_supported``, when given, MUST include ``S256``.
4. Keep it for :data:`METADATA_TTL_S`.

:meth:`ProviderCache.keys` returns the provider's signing keys from
``jwks_uri`` (cached for :data:`JWKS_TTL_S`); only public asymmetric keys
meant for signatures are kept (:func:`parse_jwks`). When an ID token names a
key id the cache does not know, :meth:`ProviderCache.refresh_keys` fetches
the set again, at most once per :data:`JWKS_MIN_REFRESH_S` per provider, so
a stream of forged ``kid`` values cannot make us hammer the provider. Keys
come only from the pinned provider's ``jwks_uri``: a token's ``jku``,
``x5u``, ``jwk`` or ``x5c`` header is never used.

The cache is shared by every login of the process (the adapter is a
singleton): one lock guards the map, one lock per provider serialises its
fetches, so concurrent logins do not stampede the provider.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

from callvault.errors import SsoConfigError, SsoError
from callvault.sso.oidc._config import OidcConfig, check_url
from callvault.sso.oidc._fetch import FETCH_TIMEOUT_S, FetchError, exchange_json

MAX_DISCOVERY_BYTES: Final = 256 * 1024
MAX_JWKS_BYTES: Final = 256 * 1024
MAX_JWKS_KEYS: Final = 64
METADATA_TTL_S: Final = 3600.0
JWKS_TTL_S: Final = 3600.0
JWKS_MIN_REFRESH_S: Final = 60.0
_MIN_RSA_BITS: Final = 2048
_ASYMMETRIC: Final = frozenset({"RSA", "EC", "OKP"})
_PUBLIC_RSA: Final = frozenset({"kty", "n", "e"})

SigningKey = RSAKey | ECKey | OKPKey


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What the relying party uses from a discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    #: ``token_endpoint_auth_methods_supported`` (the spec's default when absent).
    token_auth_methods: tuple[str, ...] = ("client_secret_basic",)


@dataclass(frozen=True, slots=True)
class PublishedKey:
    """One signing key as the provider published it (``kid`` as given, maybe absent)."""

    kid: str | None
    alg: str | None
    key: SigningKey


def _endpoint(doc: Mapping[str, Any], name: str, *, allow_http_loopback: bool) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise SsoError(f"the provider's discovery document has no {name}", reason="discovery")
    try:
        return check_url(value, field=name, allow_http_loopback=allow_http_loopback)
    except SsoConfigError:
        raise SsoError(
            f"the provider's {name} is not an acceptable URL", reason="discovery"
        ) from None


def _str_list(doc: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SsoError(f"the provider's {name} is not a list of strings", reason="discovery")
    return tuple(value)


def parse_discovery(
    doc: Mapping[str, Any], *, expected_issuer: str, allow_http_loopback: bool
) -> ProviderMetadata:
    """Steps (2)-(3) of the module docstring (pure)."""
    # (2)
    if doc.get("issuer") != expected_issuer:
        raise SsoError("the provider's discovery issuer is not the pinned one", reason="issuer")
    # (3)
    authz = _endpoint(doc, "authorization_endpoint", allow_http_loopback=allow_http_loopback)
    token = _endpoint(doc, "token_endpoint", allow_http_loopback=allow_http_loopback)
    jwks = _endpoint(doc, "jwks_uri", allow_http_loopback=allow_http_loopback)
    response_types = _str_list(doc, "response_types_supported")
    if response_types is not None and "code" not in response_types:
        raise SsoError("the provider does not support the code flow", reason="discovery")
    pkce = _str_list(doc, "code_challenge_methods_supported")
    if pkce is not None and "S256" not in pkce:
        raise SsoError("the provider does not support PKCE S256", reason="discovery")
    methods = _str_list(doc, "token_endpoint_auth_methods_supported")
    return ProviderMetadata(
        issuer=expected_issuer,
        authorization_endpoint=authz,
        token_endpoint=token,
        jwks_uri=jwks,
        token_auth_methods=methods or ("client_secret_basic",),
    )


def _import(jwk: Mapping[str, Any]) -> SigningKey | None:
    kty = jwk.get("kty")
    if kty not in _ASYMMETRIC or jwk.get("use", "sig") != "sig":
        return None
    if "d" in jwk or "p" in jwk or "k" in jwk:
        return None  # a private or symmetric part: never a verification key of ours
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return None
    public = {k: v for k, v in jwk.items() if k in {"kty", "n", "e", "crv", "x", "y", "kid", "alg"}}
    try:
        key = JWKRegistry.import_key(public)
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    if isinstance(key, RSAKey):
        bits = int(getattr(key.raw_value, "key_size", 0))
        return key if bits >= _MIN_RSA_BITS else None
    return key if isinstance(key, ECKey | OKPKey) else None


def parse_jwks(doc: Mapping[str, Any]) -> tuple[PublishedKey, ...]:
    """The signing keys of a JWKS document (pure): public RSA >= 2048 bits, EC, OKP.

    Keys that are symmetric, private, for encryption, malformed or of an
    unknown type are skipped (RFC 7517 §5); a set with none left is an error.
    """
    keys = doc.get("keys")
    if not isinstance(keys, list) or len(keys) > MAX_JWKS_KEYS:
        raise SsoError("the provider's key set is malformed", reason="jwks")
    found: list[PublishedKey] = []
    for jwk in keys:
        if not isinstance(jwk, dict):
            continue
        key = _import(jwk)
        if key is None:
            continue
        kid = jwk.get("kid")
        alg = jwk.get("alg")
        found.append(
            PublishedKey(
                kid=kid if isinstance(kid, str) else None,
                alg=alg if isinstance(alg, str) else None,
                key=key,
            )
        )
    if not found:
        raise SsoError("the provider's key set has no usable signing key", reason="jwks")
    return tuple(found)


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    metadata: ProviderMetadata | None = None
    metadata_at: float = 0.0
    keys: tuple[PublishedKey, ...] | None = None
    keys_at: float = 0.0
    #: When an unknown ``kid`` last made us fetch the set (rate limit), if ever.
    refreshed_at: float | None = None


class ProviderCache:
    """Discovery documents and key sets per provider, safe to share across threads."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        clock: Callable[[], float] = time.monotonic,
        timeout_s: float = FETCH_TIMEOUT_S,
    ) -> None:
        self._http = http
        self._clock = clock
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, bool], _Entry] = {}

    def _entry(self, cfg: OidcConfig) -> _Entry:
        key = (cfg.discovery_url, cfg.issuer, cfg.allow_http_loopback)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
            return entry

    def _fetch(self, url: str, *, max_bytes: int, reason: str) -> dict[str, Any]:
        try:
            return exchange_json(
                self._http, "GET", url, max_bytes=max_bytes, timeout_s=self._timeout_s
            )
        except FetchError as exc:
            raise SsoError(
                f"the provider's {reason} document could not be fetched ({exc.cause})",
                reason=reason,
            ) from None

    def metadata(self, cfg: OidcConfig) -> ProviderMetadata:
        """Steps (1)-(4) of the module docstring."""
        entry = self._entry(cfg)
        with entry.lock:
            if entry.metadata is not None and self._clock() - entry.metadata_at < METADATA_TTL_S:
                return entry.metadata
            # (1)
            doc = self._fetch(cfg.discovery_url, max_bytes=MAX_DISCOVERY_BYTES, reason="discovery")
            # (2), (3)
            meta = parse_discovery(
                doc, expected_issuer=cfg.issuer, allow_http_loopback=cfg.allow_http_loopback
            )
            # (4)
            if entry.metadata is not None and entry.metadata.jwks_uri != meta.jwks_uri:
                entry.keys = None
            entry.metadata, entry.metadata_at = meta, self._clock()
            return meta

    def _load_keys(self, entry: _Entry, meta: ProviderMetadata) -> tuple[PublishedKey, ...]:
        doc = self._fetch(meta.jwks_uri, max_bytes=MAX_JWKS_BYTES, reason="jwks")
        keys = parse_jwks(doc)
        entry.keys, entry.keys_at = keys, self._clock()
        return keys

    def keys(self, cfg: OidcConfig, meta: ProviderMetadata) -> tuple[PublishedKey, ...]:
        """The provider's signing keys, from the cache while fresh."""
        entry = self._entry(cfg)
        with entry.lock:
            if entry.keys is not None and self._clock() - entry.keys_at < JWKS_TTL_S:
                return entry.keys
            return self._load_keys(entry, meta)

    def refresh_keys(
        self, cfg: OidcConfig, meta: ProviderMetadata, seen: tuple[PublishedKey, ...]
    ) -> tuple[PublishedKey, ...] | None:
        """Fetch the key set again after an unknown ``kid``; None if refreshed too recently.

        ``seen`` is the set the caller verified with: if another thread has
        refreshed since, its newer set is returned without a fetch.
        """
        entry = self._entry(cfg)
        with entry.lock:
            if entry.keys is not None and entry.keys is not seen:
                return entry.keys
            now = self._clock()
            if entry.refreshed_at is not None and now - entry.refreshed_at < JWKS_MIN_REFRESH_S:
                return None
            entry.refreshed_at = now
            return self._load_keys(entry, meta)
