"""Sink settings fail closed, name the bad field, and never echo a value or a secret."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from callvault.audit.sinks import (
    SinkConfigError,
    SplunkHecTransport,
    SyslogTlsConfig,
    SyslogTlsTransport,
    WebhookTransport,
    build_transport,
    canonical_config,
    parse_sink_config,
)
from callvault.crypto.hazmat import generate_self_signed
from callvault.errors import InvalidInputError

HEC_TOKEN = "8c5e3f0a-3b7e-4a61-9b8e-0d6f1c2a4e55"
WEBHOOK_SECRET = "whsec_" + "q" * 40


@cache
def _pem() -> tuple[str, str]:
    cert, key = generate_self_signed(["localhost"], days=1)
    return cert.decode(), key.decode()


def _error(kind: str, config: dict[str, Any], secret: str | None = None) -> SinkConfigError:
    with pytest.raises(SinkConfigError) as info:
        build_transport(kind, config, secret, sink_id="snk_1")
    return info.value


def test_each_kind_builds_its_transport() -> None:
    syslog = build_transport("syslog-tls", {"host": "siem.example.org"}, None, sink_id="s1")
    hec = build_transport(
        "splunk-hec", {"url": "https://splunk.example.org:8088"}, HEC_TOKEN, sink_id="s2"
    )
    hook = build_transport(
        "webhook", {"url": "https://hooks.example.org/a"}, WEBHOOK_SECRET, sink_id="s3"
    )
    assert isinstance(syslog, SyslogTlsTransport)
    assert isinstance(hec, SplunkHecTransport)
    assert isinstance(hook, WebhookTransport)
    for transport in (syslog, hec, hook):
        transport.close()


def test_defaults_are_documented_values() -> None:
    cfg = parse_sink_config("syslog-tls", {"host": "SIEM.Example.org."})
    assert isinstance(cfg, SyslogTlsConfig)
    assert (cfg.host, cfg.port, cfg.facility, cfg.tls_min_version) == (
        "siem.example.org",
        6514,
        13,
        "1.2",
    )
    assert json.loads(canonical_config(cfg))["port"] == 6514


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("syslog-tls", {}, "host"),
        ("syslog-tls", {"host": "bad host"}, "host"),
        ("syslog-tls", {"host": "-lead.example.org"}, "host"),
        ("syslog-tls", {"host": "a" * 64 + ".org"}, "host"),
        ("syslog-tls", {"host": "h.example.org", "port": 0}, "port"),
        ("syslog-tls", {"host": "h.example.org", "port": 65536}, "port"),
        ("syslog-tls", {"host": "h.example.org", "port": "6514"}, "port"),
        ("syslog-tls", {"host": "h.example.org", "facility": 24}, "facility"),
        ("syslog-tls", {"host": "h.example.org", "ca_pem": "not a pem"}, "ca_pem"),
        ("syslog-tls", {"host": "h.example.org", "tls_min_version": "1.1"}, "tls_min_version"),
        ("syslog-tls", {"host": "h.example.org", "hostname": "two words"}, "hostname"),
        ("syslog-tls", {"host": "h.example.org", "timeout_seconds": 0}, "timeout_seconds"),
        ("syslog-tls", {"host": "h.example.org", "verify": False}, "verify"),
        ("splunk-hec", {"url": "http://splunk.example.org:8088"}, "url"),
        ("splunk-hec", {"url": "https://user:pw@splunk.example.org"}, "url"),
        ("splunk-hec", {"url": "https://splunk.example.org/?token=x"}, "url"),
        ("splunk-hec", {"url": "https://splunk.example.org/#frag"}, "url"),
        ("splunk-hec", {"url": "https://splunk.example.org:99999"}, "url"),
        ("splunk-hec", {"url": "splunk.example.org"}, "url"),
        ("splunk-hec", {"url": "https://splunk.example.org", "index": "Main Index"}, "index"),
        ("webhook", {"url": "ftp://hooks.example.org"}, "url"),
        (
            "webhook",
            {"url": "https://hooks.example.org", "timeout_seconds": 1000},
            "timeout_seconds",
        ),
        ("nope", {}, "kind"),
    ],
)
def test_bad_settings_name_their_field(kind: str, config: dict[str, Any], field: str) -> None:
    error = _error(kind, config, secret=WEBHOOK_SECRET if kind != "syslog-tls" else None)
    assert error.field == field
    assert field in str(error)
    assert isinstance(error, ValueError)
    assert isinstance(error, InvalidInputError)
    for value in config.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in str(error)


@pytest.mark.parametrize(
    ("kind", "config", "secret"),
    [
        ("splunk-hec", {"url": "https://splunk.example.org"}, None),
        ("splunk-hec", {"url": "https://splunk.example.org"}, "token with spaces"),
        ("splunk-hec", {"url": "https://splunk.example.org"}, ""),
        ("webhook", {"url": "https://hooks.example.org"}, None),
        ("webhook", {"url": "https://hooks.example.org"}, "too-short-secret"),
        ("syslog-tls", {"host": "h.example.org"}, "a key without a certificate"),
    ],
)
def test_bad_secrets_name_the_secret_field_and_not_the_secret(
    kind: str, config: dict[str, Any], secret: str | None
) -> None:
    error = _error(kind, config, secret)
    assert error.field == "secret"
    if secret:
        assert secret not in str(error)


def test_client_certificate_needs_its_matching_key() -> None:
    cert, key = _pem()
    other_key = generate_self_signed(["localhost"], days=1)[1].decode()
    config = {"host": "h.example.org", "client_cert_pem": cert}
    assert _error("syslog-tls", config, None).field == "secret"
    error = _error("syslog-tls", config, other_key)
    assert error.field == "secret"
    assert "PRIVATE KEY" not in str(error)
    build_transport("syslog-tls", config, key, sink_id="snk_1").close()


def test_a_secret_never_reaches_the_repr_of_a_transport() -> None:
    hec = build_transport(
        "splunk-hec", {"url": "https://splunk.example.org"}, HEC_TOKEN, sink_id="s"
    )
    hook = build_transport("webhook", {"url": "https://h.example.org"}, WEBHOOK_SECRET, sink_id="s")
    assert HEC_TOKEN not in repr(vars(hec))
    assert WEBHOOK_SECRET not in repr(vars(hook))
    hec.close()
    hook.close()


def test_config_object_of_another_kind_is_refused() -> None:
    cfg = parse_sink_config("syslog-tls", {"host": "h.example.org"})
    assert _error_for_object(cfg).field == "kind"


def _error_for_object(cfg: Any) -> SinkConfigError:
    with pytest.raises(SinkConfigError) as info:
        build_transport("webhook", cfg, WEBHOOK_SECRET, sink_id="s")
    return info.value
