"""Secrets in tokens and cookies have exactly one text: the other encodings are refused."""

from __future__ import annotations

import base64
import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.access import parse_token
from callvault.crypto.encoding import secret_from_text, secret_to_text
from callvault.errors import AuthenticationError
from callvault.operators._realm import parse_operator_token
from callvault.scim import parse_scim_token
from callvault.sessions._cookies import parse_cookie


@given(st.binary(min_size=1, max_size=64))
def test_round_trip(secret: bytes) -> None:
    assert secret_from_text(secret_to_text(secret)) == secret


def _aliases(text: str) -> list[str]:
    """Other texts that plain base64 decoding reads as the same secret (unused low bits)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    secret = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    out = []
    for ch in alphabet:
        other = text[:-1] + ch
        if other != text and base64.urlsafe_b64decode(other + "=") == secret:
            out.append(other)
    return out


def test_non_canonical_texts_of_a_secret_are_refused() -> None:
    text = secret_to_text(secrets.token_bytes(32))
    aliases = _aliases(text)
    assert len(aliases) == 3  # 2 unused bits: three other spellings decode the same
    assert all(secret_from_text(a) is None for a in aliases)


@pytest.mark.parametrize(
    ("parse", "prefix"),
    [
        (parse_token, "cv1.ten_" + "a" * 26 + ".key_" + "b" * 26 + "."),
        (parse_scim_token, "cvscim1.ten_" + "a" * 26 + ".sct_" + "b" * 26 + "."),
        (parse_cookie, "cvs1.ten_" + "a" * 26 + ".ses_" + "b" * 26 + "."),
        (parse_operator_token, "cvop1.opk_" + "b" * 26 + "."),
    ],
)
def test_every_token_parser_takes_only_the_canonical_text(parse: object, prefix: str) -> None:
    text = secret_to_text(secrets.token_bytes(32))
    parse(prefix + text)  # type: ignore[operator]
    for alias in _aliases(text):
        with pytest.raises(AuthenticationError):
            parse(prefix + alias)  # type: ignore[operator]
