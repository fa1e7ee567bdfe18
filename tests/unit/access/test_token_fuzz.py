"""Fuzz the parsers callvault wrote: bearer tokens, sealed blobs, the interim mask."""

from __future__ import annotations

import contextlib
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.access import parse_token
from callvault.crypto import SealContext, open_value
from callvault.errors import AuthenticationError, DecryptionError
from callvault.redact import mask_numbers

KEY = b"\x01" * 32
CTX = SealContext(tenant_id="ten_a", purpose="fuzz", object_id="x")


@settings(max_examples=1000)
@given(st.text(max_size=200))
def test_any_text_token_parses_or_raises_authentication_error(token: str) -> None:
    try:
        parts = parse_token(token)
    except AuthenticationError as exc:
        message = str(exc)
    else:
        assert len(parts.secret) == 32
        return
    assert message == "malformed API key"  # the same words whatever came in; never the token


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_any_bytes_open_or_raise_the_one_decryption_error(blob: bytes) -> None:
    with contextlib.suppress(DecryptionError):  # any other exception fails the test
        open_value(KEY, blob, CTX)


@settings(max_examples=1000)
@given(st.text(max_size=300))
def test_mask_never_lets_a_digit_through(text: str) -> None:
    out = mask_numbers(text)
    assert not re.search(r"[0-9]", out)
