"""The session cookie's value format and attributes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.responses import Response

from callvault.errors import AuthenticationError
from callvault.sessions import COOKIE_NAME, IssuedSession, parse_cookie, set_session_cookie
from callvault.sessions._cookies import cookie_value, secret_hash

TENANT = "ten_" + "a" * 26
SESSION = "ses_" + "b" * 26


def test_a_value_round_trips() -> None:
    secret = bytes(range(32))
    parts = parse_cookie(cookie_value(TENANT, SESSION, secret))
    assert (parts.tenant_id, parts.session_id, parts.secret) == (TENANT, SESSION, secret)
    assert secret_hash(secret) != secret_hash(bytes(32))


@pytest.mark.parametrize(
    "value",
    [
        "",
        f"cvs1.{TENANT}.{SESSION}",
        f"cvs1.{TENANT}.{SESSION}." + "A" * 42,
        f"cvs1.{TENANT}.{SESSION}." + "A" * 44,
        f"cvs1.{TENANT}.{SESSION}." + "A" * 42 + "=",
        f"cv1.{TENANT}.{SESSION}." + "A" * 43,
        f"cvs1.TEN_{'A' * 26}.{SESSION}." + "A" * 43,
        f"cvs1.{TENANT}.{SESSION}." + "A" * 42 + "\n",
    ],
)
def test_malformed_values_are_refused(value: str) -> None:
    with pytest.raises(AuthenticationError):
        parse_cookie(value)


def test_the_cookie_is_host_prefixed_secure_httponly_lax_and_not_persistent() -> None:
    now = datetime.now(UTC)
    issued = IssuedSession(
        id=SESSION,
        tenant_id=TENANT,
        principal_id="prn_" + "c" * 26,
        method="oidc",
        cookie_value=cookie_value(TENANT, SESSION, bytes(32)),
        csrf_token="t",
        created_at=now,
        expires_at=now,
        idle_timeout_seconds=60,
    )
    resp = Response()
    set_session_cookie(resp, issued)
    header = resp.headers["set-cookie"]
    name_value, *attrs = [a.strip() for a in header.split(";")]
    assert COOKIE_NAME.startswith("__Host-")
    assert name_value == f"{COOKIE_NAME}={issued.cookie_value}"
    lowered = {a.lower() for a in attrs}
    assert lowered == {"httponly", "path=/", "samesite=lax", "secure"}
