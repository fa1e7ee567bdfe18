"""The CSRF and origin checks as pure functions (the API suite drives them end to end)."""

from __future__ import annotations

import pytest

from callvault.sessions._csrf import (
    CsrfError,
    RequestFacts,
    check_csrf,
    csrf_hash,
    csrf_token,
    expected_origin,
    origin_of,
)

SECRET = bytes(range(32))
ORIGIN = "https://cv.example.test"


def _facts(method: str = "POST", **over: str | None) -> RequestFacts:
    values: dict[str, str | None] = {
        "origin": ORIGIN,
        "fetch_site": "same-origin",
        "csrf_token": csrf_token(SECRET),
    }
    values.update(over)
    return RequestFacts(method=method, expected_origin=ORIGIN, **values)  # type: ignore[arg-type]


def test_the_token_is_bound_to_the_session_secret() -> None:
    assert csrf_token(SECRET) == csrf_token(SECRET)
    assert csrf_token(SECRET) != csrf_token(bytes(32))
    assert len(csrf_token(SECRET)) == 43


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "get"])
def test_safe_methods_pass_without_anything(method: str) -> None:
    check_csrf(_facts(method, origin="https://evil.example", csrf_token=None), b"x" * 32)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_unsafe_methods_with_the_right_token_pass(method: str) -> None:
    check_csrf(_facts(method), csrf_hash(csrf_token(SECRET)))


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"csrf_token": None}, "csrf-token-missing"),
        ({"csrf_token": ""}, "csrf-token-missing"),
        ({"csrf_token": "A" * 43}, "csrf-token-mismatch"),
        ({"csrf_token": "A" * 10_000}, "csrf-token-mismatch"),
        ({"origin": "https://evil.example"}, "origin"),
        ({"origin": "null"}, "origin"),
        ({"origin": "https://cv.example.test:8443"}, "origin"),
        ({"origin": "https://cv.example.test:99999"}, "origin"),
        ({"fetch_site": "same-site"}, "cross-site-fetch"),
        ({"fetch_site": "cross-site"}, "cross-site-fetch"),
        ({"fetch_site": "none"}, "cross-site-fetch"),
    ],
)
def test_refusals_name_their_reason(over: dict[str, str | None], reason: str) -> None:
    with pytest.raises(CsrfError) as caught:
        check_csrf(_facts(**over), csrf_hash(csrf_token(SECRET)))
    assert caught.value.reason == reason
    assert caught.value.code == "csrf-failed"


def test_absent_origin_headers_leave_the_token_to_decide() -> None:
    check_csrf(_facts(origin=None, fetch_site=None), csrf_hash(csrf_token(SECRET)))


def test_origins_are_compared_normalised() -> None:
    assert origin_of("HTTPS://CV.Example.Test:443/path?q") == ORIGIN
    assert origin_of("https://cv.example.test:8443") == "https://cv.example.test:8443"
    assert expected_origin("https://cv.example.test/base/", "other:1") == ORIGIN
    assert expected_origin(None, "testserver") == "https://testserver"
