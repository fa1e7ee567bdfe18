"""Sink settings: one strict pydantic model per kind, the secret kept apart, a transport built.

The non-secret settings (address, CA, options) are what the ``audit_sinks``
row stores as canonical JSON (:func:`canonical_config`); the one secret per
sink (HEC token, webhook HMAC secret, syslog client key PEM) travels
separately so the caller can seal it, and is never echoed in an error.

Validation is strict, and fails closed with a :class:`SinkConfigError` naming
the field (its message quotes no value):

- unknown fields are rejected; types are not coerced;
- HTTP sinks: ``https`` only, a host name or IP literal, no user info, query
  or fragment (a credential in a URL would be stored unsealed);
- syslog: a host name (RFC 1123 labels) or IP literal, port 1-65535;
- CA bundles and client certificates must load as PEM;
- timeouts within (0, 120] seconds.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import httpx
import rfc8785
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError

from callvault.audit.sinks._hec import SOURCE, SOURCETYPE, SplunkHecTransport
from callvault.audit.sinks._syslog import DEFAULT_PORT, FACILITY_LOG_AUDIT, SyslogTlsTransport
from callvault.audit.sinks._transport import Transport, client_tls_context
from callvault.audit.sinks._webhook import WebhookTransport
from callvault.errors import InvalidInputError

MAX_PEM_CHARS = 64 * 1024
MAX_SECRET_CHARS = 16 * 1024
MIN_WEBHOOK_SECRET_CHARS = 32

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\.?", re.ASCII)
_TOKEN = re.compile(r"[!-~]{1,512}", re.ASCII)  # printable ASCII, no space
_FIELD_VALUE = re.compile(r"[!-~]{1,200}", re.ASCII)


class SinkConfigError(InvalidInputError, ValueError):
    """A sink's settings or secret are invalid; ``field`` names which (never the value)."""

    code = "bad-sink-config"


def _check_host(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(value):
        raise ValueError("must be a host name or an IP address")
    return value.lower().rstrip(".")


def _check_https_url(value: str) -> str:
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError):
        raise ValueError("must be an https URL") from None
    if url.scheme != "https" or not url.host:
        raise ValueError("must be an https URL")
    if url.port is not None and not 0 < url.port <= 65535:
        raise ValueError("port must be within 1-65535")
    if url.userinfo or url.query or url.fragment or "#" in value or "?" in value:
        raise ValueError("must not hold user info, a query or a fragment")
    _check_host(url.host)
    return str(url)


def _check_pem_certificates(value: str) -> str:
    if len(value) > MAX_PEM_CHARS or "-----BEGIN CERTIFICATE-----" not in value:
        raise ValueError("must be PEM certificates")
    try:
        ssl.create_default_context(cadata=value)
    except (ssl.SSLError, ValueError):
        raise ValueError("must be PEM certificates") from None
    return value


Timeout = Annotated[float, Field(gt=0, le=120)]
Host = Annotated[str, AfterValidator(_check_host)]
HttpsUrl = Annotated[str, AfterValidator(_check_https_url)]
PemCertificates = Annotated[str, AfterValidator(_check_pem_certificates)]
TlsVersion = Literal["1.2", "1.3"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SyslogTlsConfig(_Strict):
    """RFC 5425 syslog over TLS. The secret, if any, is the client key (PEM)."""

    host: Host
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    #: Name to verify in the server certificate, when it differs from ``host``.
    server_name: Host | None = None
    #: PEM CA bundle for the server certificate; None means the system trust store.
    ca_pem: PemCertificates | None = None
    #: PEM client certificate chain (mutual TLS); its key is the sink's secret.
    client_cert_pem: PemCertificates | None = None
    tls_min_version: TlsVersion = "1.2"
    facility: int = Field(default=FACILITY_LOG_AUDIT, ge=0, le=23)
    #: The HOSTNAME field; None means this host's name.
    hostname: str | None = Field(default=None, pattern=r"^[!-~]{1,255}$")
    timeout_seconds: Timeout = 10.0


class SplunkHecConfig(_Strict):
    """Splunk HTTP Event Collector. The secret is the HEC token."""

    #: Base URL, e.g. ``https://splunk.example.org:8088``.
    url: HttpsUrl
    ca_pem: PemCertificates | None = None
    tls_min_version: TlsVersion = "1.2"
    host: str | None = Field(default=None, pattern=_FIELD_VALUE.pattern)
    source: str = Field(default=SOURCE, pattern=_FIELD_VALUE.pattern)
    sourcetype: str = Field(default=SOURCETYPE, pattern=_FIELD_VALUE.pattern)
    index: str | None = Field(default=None, pattern=r"^[a-z0-9_][a-z0-9_-]{0,79}$")
    timeout_seconds: Timeout = 10.0


class WebhookConfig(_Strict):
    """Signed HTTPS webhook. The secret is the HMAC key."""

    url: HttpsUrl
    ca_pem: PemCertificates | None = None
    tls_min_version: TlsVersion = "1.2"
    timeout_seconds: Timeout = 10.0


SinkConfig = SyslogTlsConfig | SplunkHecConfig | WebhookConfig

CONFIG_MODELS: dict[str, type[SyslogTlsConfig] | type[SplunkHecConfig] | type[WebhookConfig]] = {
    SyslogTlsTransport.kind: SyslogTlsConfig,
    SplunkHecTransport.kind: SplunkHecConfig,
    WebhookTransport.kind: WebhookConfig,
}


def parse_sink_config(kind: str, config: Mapping[str, Any]) -> SinkConfig:
    """The validated settings of a ``kind`` sink; :class:`SinkConfigError` names a bad field."""
    model = CONFIG_MODELS.get(kind)
    if model is None:
        raise SinkConfigError("unknown sink kind", field="kind")
    if not isinstance(config, Mapping):
        raise SinkConfigError("sink config must be an object", field="config")
    try:
        return model.model_validate(dict(config))
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        name = ".".join(str(part) for part in first["loc"]) or "config"
        # pydantic's own messages quote no input here; ours never do.
        reason = first["msg"].removeprefix("Value error, ")
        raise SinkConfigError(f"sink config field {name}: {reason}", field=name) from None


def canonical_config(config: SinkConfig) -> bytes:
    """The settings as the RFC 8785 JSON the ``audit_sinks.config`` column stores."""
    data: bytes = rfc8785.dumps(config.model_dump(mode="json"))
    return data


def build_transport(
    kind: str, config: Mapping[str, Any] | SinkConfig, secret: str | None, *, sink_id: str
) -> Transport:
    """A transport for one sink, from its settings and its (unsealed) secret.

    Raises :class:`SinkConfigError` (field ``secret`` for secret problems) for
    anything unusable, so a bad sink fails when it is configured, not at its
    first delivery.
    """
    cfg = config if isinstance(config, _Strict) else parse_sink_config(kind, config)
    if CONFIG_MODELS.get(kind) is not type(cfg):
        raise SinkConfigError("config does not match the sink kind", field="kind")
    if secret is not None and (not isinstance(secret, str) or len(secret) > MAX_SECRET_CHARS):
        raise SinkConfigError("sink secret is malformed", field="secret")
    if isinstance(cfg, SyslogTlsConfig):
        return _syslog(cfg, secret, sink_id)
    if secret is None:
        raise SinkConfigError("this sink kind needs a secret", field="secret")
    context = _context(cfg.ca_pem, cfg.tls_min_version)
    if isinstance(cfg, SplunkHecConfig):
        if not _TOKEN.fullmatch(secret):
            raise SinkConfigError(
                "HEC token must be printable ASCII without spaces", field="secret"
            )
        return SplunkHecTransport(
            sink_id,
            url=cfg.url,
            token=SecretStr(secret),
            context=context,
            host=cfg.host,
            source=cfg.source,
            sourcetype=cfg.sourcetype,
            index=cfg.index,
            timeout_seconds=cfg.timeout_seconds,
        )
    if len(secret) < MIN_WEBHOOK_SECRET_CHARS or any(c < " " for c in secret):
        raise SinkConfigError(
            f"webhook secret must be at least {MIN_WEBHOOK_SECRET_CHARS} characters",
            field="secret",
        )
    return WebhookTransport(
        sink_id,
        url=cfg.url,
        secret=SecretStr(secret),
        context=context,
        timeout_seconds=cfg.timeout_seconds,
    )


def _syslog(cfg: SyslogTlsConfig, secret: str | None, sink_id: str) -> SyslogTlsTransport:
    if (cfg.client_cert_pem is None) != (secret is None):
        raise SinkConfigError(
            "a client certificate and its key (the secret) go together", field="secret"
        )
    try:
        context = client_tls_context(
            ca_pem=cfg.ca_pem,
            min_version=cfg.tls_min_version,
            client_cert_pem=cfg.client_cert_pem,
            client_key_pem=secret,
        )
    except (ssl.SSLError, ValueError, OSError):
        raise SinkConfigError(
            "client key is not PEM or does not match the certificate", field="secret"
        ) from None
    return SyslogTlsTransport(
        sink_id,
        host=cfg.host,
        port=cfg.port,
        context=context,
        server_name=cfg.server_name,
        facility=cfg.facility,
        hostname=cfg.hostname,
        timeout_seconds=cfg.timeout_seconds,
    )


def _context(ca_pem: str | None, min_version: str) -> ssl.SSLContext:
    try:
        return client_tls_context(ca_pem=ca_pem, min_version=min_version)
    except (ssl.SSLError, ValueError):
        raise SinkConfigError("CA bundle is not usable", field="ca_pem") from None
