"""ID token attacks, each rejected with its stable reason (tokens signed by the fake's keys)."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from callvault.errors import SsoError
from callvault.sso.oidc import OidcAdapter
from callvault.sso.oidc._discovery import PublishedKey
from callvault.sso.oidc._tokens import Expected, at_hash, verify_id_token
from tests.unit.sso.oidc.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeIdp,
    b64url_json,
    config,
    login,
)


def _reason(adapter: OidcAdapter, idp: FakeIdp, **kwargs: object) -> str:
    with pytest.raises(SsoError) as info:
        login(adapter, config(adapter), idp, **kwargs)  # type: ignore[arg-type]
    return info.value.reason


def test_a_well_formed_token_logs_in(adapter: OidcAdapter, idp: FakeIdp) -> None:
    ident = login(adapter, config(adapter), idp)
    assert ident.subject == "subject-1"
    assert ident.groups == ("grp-a", "grp-b")
    assert ident.email == "user@customer.example"


def test_flipped_signature_byte_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    def mint(nonce: str) -> str:
        head, body, sig = idp.sign(idp.claims(nonce)).split(".")
        raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
        raw[10] ^= 0x01
        return ".".join([head, body, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()])

    assert _reason(adapter, idp, mint=mint) == "signature"


def test_edited_claims_under_the_old_signature_are_rejected(
    adapter: OidcAdapter, idp: FakeIdp
) -> None:
    def mint(nonce: str) -> str:
        head, _, sig = idp.sign(idp.claims(nonce)).split(".")
        return ".".join([head, b64url_json(idp.claims(nonce, sub="admin")), sig])

    assert _reason(adapter, idp, mint=mint) == "signature"


def test_stripped_signature_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    def mint(nonce: str) -> str:
        head, body, _ = idp.sign(idp.claims(nonce)).split(".")
        return f"{head}.{body}."

    assert _reason(adapter, idp, mint=mint) == "signature"


def test_alg_none_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    def mint(nonce: str) -> str:
        head = b64url_json({"alg": "none", "kid": idp.key.kid})
        return f"{head}.{b64url_json(idp.claims(nonce))}.c2ln"

    assert _reason(adapter, idp, mint=mint) == "weak-algorithm"


def test_hs256_signed_with_the_client_secret_is_rejected(
    adapter: OidcAdapter, idp: FakeIdp
) -> None:
    secret = OctKey.import_key(CLIENT_SECRET)

    def mint(nonce: str) -> str:
        return jwt.encode({"alg": "HS256"}, idp.claims(nonce), secret, algorithms=["HS256"])

    assert _reason(adapter, idp, mint=mint) == "weak-algorithm"


def test_key_embedded_in_the_header_is_not_trusted(adapter: OidcAdapter, idp: FakeIdp) -> None:
    attacker = RSAKey.generate_key(2048, parameters={"kid": "k1"})

    def mint(nonce: str) -> str:
        header = {
            "jwk": attacker.as_dict(private=False),
            "jku": "https://attacker.example/keys",
            "x5u": "https://attacker.example/cert",
        }
        return idp.sign(idp.claims(nonce), key=attacker, header=header)

    assert _reason(adapter, idp, mint=mint) == "signature"
    assert idp.fetches["keys"] == 1


def test_crit_header_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    def mint(nonce: str) -> str:
        _, body, sig = idp.sign(idp.claims(nonce)).split(".")
        head = b64url_json({"alg": "RS256", "kid": idp.key.kid, "crit": ["exp"], "exp": 1})
        return f"{head}.{body}.{sig}"

    assert _reason(adapter, idp, mint=mint) == "malformed"


def test_wrong_key_type_for_the_algorithm_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    ec = ECKey.generate_key("P-256", parameters={"kid": "k1"})

    def mint(nonce: str) -> str:
        return idp.sign(idp.claims(nonce), key=ec, header={"alg": "ES256"})

    assert _reason(adapter, idp, mint=mint) == "signature"


def test_token_from_another_issuer_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    assert _reason(adapter, idp, iss="https://other-idp.example.test") == "issuer"


def test_issuer_with_trailing_slash_is_another_issuer(adapter: OidcAdapter, idp: FakeIdp) -> None:
    assert _reason(adapter, idp, iss=idp.issuer + "/") == "issuer"


def test_wrong_audience_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    assert _reason(adapter, idp, aud="another-client") == "audience"


def test_several_audiences_without_azp_are_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    assert _reason(adapter, idp, aud=[CLIENT_ID, "another-client"]) == "audience"


def test_azp_of_another_party_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    assert _reason(adapter, idp, aud=[CLIENT_ID, "x"], azp="x") == "audience"


def test_several_audiences_with_our_azp_are_accepted(adapter: OidcAdapter, idp: FakeIdp) -> None:
    ident = login(adapter, config(adapter), idp, aud=[CLIENT_ID, "x"], azp=CLIENT_ID)
    assert ident.subject == "subject-1"


def test_expired_token_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    later = datetime.now(UTC) + timedelta(minutes=10)
    assert _reason(adapter, idp, now=later) == "expired"


def test_expiry_within_the_skew_is_accepted(adapter: OidcAdapter, idp: FakeIdp) -> None:
    now = int(datetime.now(UTC).timestamp())
    ident = login(adapter, config(adapter), idp, exp=now - 30)
    assert ident.subject == "subject-1"


def test_token_issued_in_the_future_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    now = int(datetime.now(UTC).timestamp())
    assert _reason(adapter, idp, iat=now + 3600, exp=now + 7200) == "not-yet-valid"


def test_not_before_in_the_future_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    now = int(datetime.now(UTC).timestamp())
    assert _reason(adapter, idp, nbf=now + 3600) == "not-yet-valid"


def test_old_token_with_a_far_expiry_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    now = int(datetime.now(UTC).timestamp())
    assert _reason(adapter, idp, iat=now - 86400, exp=now + 86400) == "expired"


@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_missing_time_claim_is_rejected(adapter: OidcAdapter, idp: FakeIdp, claim: str) -> None:
    assert _reason(adapter, idp, **{claim: None}) == "malformed"


def test_boolean_expiry_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    assert _reason(adapter, idp, exp=True) == "malformed"


def test_missing_nonce_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    def mint(nonce: str) -> str:
        claims = idp.claims(nonce)
        del claims["nonce"]
        return idp.sign(claims)

    assert _reason(adapter, idp, mint=mint) == "nonce"


def test_nonce_of_another_login_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    def mint(nonce: str) -> str:
        return idp.sign(idp.claims(nonce[::-1]))

    assert _reason(adapter, idp, mint=mint) == "nonce"


def test_at_hash_of_another_access_token_is_rejected(adapter: OidcAdapter, idp: FakeIdp) -> None:
    assert _reason(adapter, idp, at_hash="AAAAAAAAAAAAAAAAAAAAAA") == "at-hash"


def test_matching_at_hash_is_accepted(adapter: OidcAdapter, idp: FakeIdp) -> None:
    ident = login(adapter, config(adapter), idp, at_hash=at_hash(idp.access_token, "RS256"))
    assert ident.subject == "subject-1"


@pytest.mark.parametrize("sub", [None, "", 7, "x" * 256])
def test_missing_or_bad_subject_is_rejected(
    adapter: OidcAdapter, idp: FakeIdp, sub: object
) -> None:
    def mint(nonce: str) -> str:
        claims = idp.claims(nonce)
        claims.pop("sub")
        if sub is not None:
            claims["sub"] = sub
        return idp.sign(claims)

    assert _reason(adapter, idp, mint=mint) == "malformed"


def test_error_messages_never_quote_the_token(adapter: OidcAdapter, idp: FakeIdp) -> None:
    with pytest.raises(SsoError) as info:
        login(adapter, config(adapter), idp, aud="aud-secret-marker", sub="sub-secret-marker")
    text = str(info.value)
    assert "secret-marker" not in text
    assert idp.id_token.split(".")[1][:20] not in text


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "PS256"])
def test_other_asymmetric_algorithms_verify(idp: FakeIdp, alg: str) -> None:
    key: ECKey | OKPKey | RSAKey
    if alg == "ES256":
        key = ECKey.generate_key("P-256", parameters={"kid": "e1"})
    elif alg == "EdDSA":
        key = OKPKey.generate_key("Ed25519", parameters={"kid": "o1"})
    else:
        key = idp.key
    expected = Expected(
        issuer=idp.issuer,
        client_id=CLIENT_ID,
        algorithms=(alg,),
        nonce="n-1",
        now=datetime.now(UTC),
        skew=timedelta(seconds=60),
        max_age=timedelta(minutes=10),
    )
    token = jwt.encode({"alg": alg, "kid": key.kid}, idp.claims("n-1"), key, algorithms=[alg])
    published = (PublishedKey(kid=key.kid, alg=None, key=key),)
    assert verify_id_token(token, published, expected)["sub"] == "subject-1"
    other_alg = "RS256" if alg != "RS256" else "PS256"
    with pytest.raises(SsoError) as info:
        verify_id_token(token, published, replace(expected, algorithms=(other_alg,)))
    assert info.value.reason == "weak-algorithm"
