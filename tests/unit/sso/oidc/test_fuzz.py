"""Hostile callback parameters and token strings: only ``SsoError``, never another exception."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callvault.errors import SsoError
from callvault.sso.oidc import OidcAdapter
from callvault.sso.oidc._discovery import PublishedKey
from callvault.sso.oidc._tokens import Expected, verify_id_token
from tests.unit.sso.oidc.conftest import CLIENT_ID, ISSUER, FakeIdp, NoReplay, config, rsa_key

_KEYS = (PublishedKey(kid="k1", alg=None, key=rsa_key("k1")),)
_EXPECTED = Expected(
    issuer=ISSUER,
    client_id=CLIENT_ID,
    algorithms=("RS256", "ES256"),
    nonce="nonce-1",
    now=datetime.now(UTC),
    skew=timedelta(seconds=60),
    max_age=timedelta(minutes=10),
    access_token="at",
)

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_CLAIM_NAMES = ["iss", "aud", "azp", "exp", "iat", "nbf", "nonce", "sub", "at_hash", "tid"]


def _b64(value: object) -> str:
    raw = json.dumps(value).encode() if not isinstance(value, bytes) else value
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_arbitrary_token_strings_raise_only_sso_error(token: str) -> None:
    with contextlib.suppress(SsoError):
        verify_id_token(token, _KEYS, _EXPECTED)


@settings(max_examples=150, deadline=None)
@given(
    header=st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jku"]), _json)
    | _json,
    claims=st.dictionaries(st.sampled_from(_CLAIM_NAMES), _json) | _json,
    signature=st.binary(max_size=300),
)
def test_structured_garbage_tokens_raise_only_sso_error(
    header: object, claims: object, signature: bytes
) -> None:
    token = f"{_b64(header)}.{_b64(claims)}.{_b64(signature)}"
    try:
        verify_id_token(token, _KEYS, _EXPECTED)
    except SsoError:
        pass
    else:
        raise AssertionError("a token with a random signature verified")


@settings(max_examples=100, deadline=None)
@given(claims=st.dictionaries(st.sampled_from(_CLAIM_NAMES), _json))
def test_validly_signed_garbage_claims_raise_only_sso_error(claims: dict[str, object]) -> None:
    idp = FakeIdp()
    token = idp.sign(dict(claims))
    with contextlib.suppress(SsoError):
        verify_id_token(token, _KEYS, _EXPECTED)


_PARAM_NAMES = ["code", "state", "error", "error_description", "iss", "session_state"]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    params=st.dictionaries(st.sampled_from(_PARAM_NAMES), st.text(max_size=60)),
    use_state=st.booleans(),
)
def test_arbitrary_callback_params_raise_only_sso_error(
    params: dict[str, str], use_state: bool
) -> None:
    idp = FakeIdp(token_status=400)
    adapter = OidcAdapter(http=idp.client())
    cfg = config(adapter)
    begun = adapter.start_login(cfg, tenant_id="t", connection_id="c")
    if use_state:
        params = {**params, "state": begun.pending["state"]}
    try:
        adapter.finish_login(
            cfg,
            tenant_id="t",
            connection_id="c",
            params=params,
            pending=begun.pending,
            now=datetime.now(UTC),
            replay=NoReplay(),
        )
    except SsoError:
        pass
    else:
        raise AssertionError("a login without a valid token succeeded")
