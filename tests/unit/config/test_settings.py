"""Settings fail closed with one line naming the variable, never echoing its value."""

from __future__ import annotations

import pytest

from callvault.config import load_settings
from callvault.errors import ConfigError


def test_embedded_defaults() -> None:
    s = load_settings({})
    assert s.is_sqlite
    assert s.db_url.endswith("/.callvault/callvault.db")
    assert s.port == 8443
    assert s.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"CALLVAULT_PORT": "abc"}, "CALLVAULT_PORT"),
        ({"CALLVAULT_PORT": "70000"}, "CALLVAULT_PORT"),
        ({"CALLVAULT_MAX_BODY_BYTES": "77"}, "CALLVAULT_MAX_BODY_BYTES"),
        ({"CALLVAULT_LOG_LEVEL": "loud"}, "CALLVAULT_LOG_LEVEL"),
        ({"CALLVAULT_AUTO_MIGRATE": "perhaps"}, "CALLVAULT_AUTO_MIGRATE"),
        ({"CALLVAULT_DATABSE_URL": "sqlite://"}, "CALLVAULT_DATABSE_URL"),
    ],
)
def test_bad_setting_names_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    assert name in message
    assert "\n" not in message
    for value in env.values():
        assert value not in message.replace(name, "")


def test_tls_files_must_come_together(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="TLS_KEY_FILE"):
        load_settings({"CALLVAULT_TLS_CERT_FILE": "/etc/hosts"})


def test_ingest_hold_must_fit_within_its_bound() -> None:
    with pytest.raises(ConfigError, match="INGEST_MAX_HOLD_MS must be at least"):
        load_settings({"CALLVAULT_INGEST_HOLD_MS": "20000", "CALLVAULT_INGEST_MAX_HOLD_MS": "5000"})
    ok = load_settings({"CALLVAULT_INGEST_HOLD_MS": "5000", "CALLVAULT_INGEST_MAX_HOLD_MS": "5000"})
    assert ok.ingest_max_hold_ms == 5000


def test_secret_setting_is_masked_in_repr() -> None:
    s = load_settings({"CALLVAULT_ROOT_KEY": "c2VjcmV0LXJvb3Qta2V5LXZhbHVlLWhlcmUtMzJieXRlcw=="})
    assert "c2VjcmV0" not in repr(s)


def test_client_variables_are_not_mistaken_for_unknown_settings() -> None:
    load_settings(
        {"CALLVAULT_API_KEY": "x", "CALLVAULT_URL": "https://h", "CALLVAULT_CA_FILE": "f"}
    )
