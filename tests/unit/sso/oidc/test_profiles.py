"""Provider profiles: Entra multi-tenant ``tid`` allow-list, Google ``hd``, verified e-mail only.

There is no Microsoft Entra or Google here: the provider is the in-memory
fake of ``conftest.py`` (discovery, JWKS and token endpoint through
``httpx.MockTransport``), signing tokens shaped like Entra's and Google's
with a key the test holds.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callvault.errors import SsoError
from callvault.sso.oidc import OidcAdapter
from tests.unit.sso.oidc.conftest import (
    ENTRA_DISCOVERY,
    ENTRA_HOST,
    ENTRA_TEMPLATE,
    GOOGLE,
    TENANT_A,
    TENANT_B,
    FakeIdp,
    config,
    login,
)


@pytest.fixture
def entra() -> tuple[OidcAdapter, FakeIdp]:
    idp = FakeIdp(base=ENTRA_HOST, issuer=ENTRA_TEMPLATE)
    return OidcAdapter(http=idp.client()), idp


def _entra_cfg(adapter: OidcAdapter) -> object:
    return config(
        adapter,
        profile="entra",
        issuer=ENTRA_TEMPLATE,
        discovery_url=ENTRA_DISCOVERY,
        allowed_tenant_ids=[TENANT_A],
    )


def _entra_login(entra: tuple[OidcAdapter, FakeIdp], **claims: object) -> object:
    adapter, idp = entra
    return login(adapter, _entra_cfg(adapter), idp, **claims)  # type: ignore[arg-type]


def test_entra_token_of_an_allowed_directory_logs_in(entra: tuple[OidcAdapter, FakeIdp]) -> None:
    ident = _entra_login(entra, tid=TENANT_A, iss=f"{ENTRA_HOST}/{TENANT_A}/v2.0")
    assert getattr(ident, "subject", None) == "subject-1"


def test_entra_token_of_another_directory_is_rejected(
    entra: tuple[OidcAdapter, FakeIdp],
) -> None:
    with pytest.raises(SsoError) as info:
        _entra_login(entra, tid=TENANT_B, iss=f"{ENTRA_HOST}/{TENANT_B}/v2.0")
    assert info.value.reason == "tenant-not-allowed"


def test_entra_iss_of_another_directory_than_tid_is_rejected(
    entra: tuple[OidcAdapter, FakeIdp],
) -> None:
    with pytest.raises(SsoError) as info:
        _entra_login(entra, tid=TENANT_A, iss=f"{ENTRA_HOST}/{TENANT_B}/v2.0")
    assert info.value.reason == "issuer"


def test_entra_token_without_tid_is_rejected(entra: tuple[OidcAdapter, FakeIdp]) -> None:
    with pytest.raises(SsoError) as info:
        _entra_login(entra, iss=f"{ENTRA_HOST}/{TENANT_A}/v2.0")
    assert info.value.reason == "tenant-not-allowed"


def test_entra_literal_template_issuer_is_rejected(entra: tuple[OidcAdapter, FakeIdp]) -> None:
    with pytest.raises(SsoError) as info:
        _entra_login(entra, tid=TENANT_A, iss=ENTRA_TEMPLATE)
    assert info.value.reason == "issuer"


def test_entra_unverified_email_is_dropped(entra: tuple[OidcAdapter, FakeIdp]) -> None:
    ident = _entra_login(
        entra, tid=TENANT_A, iss=f"{ENTRA_HOST}/{TENANT_A}/v2.0", email_verified=None
    )
    assert getattr(ident, "email", "x") is None


@pytest.fixture
def google() -> tuple[OidcAdapter, FakeIdp]:
    idp = FakeIdp(base=GOOGLE, issuer=GOOGLE)
    return OidcAdapter(http=idp.client()), idp


def _google_reason(google: tuple[OidcAdapter, FakeIdp], **claims: object) -> str:
    adapter, idp = google
    cfg = config(adapter, profile="google", issuer=GOOGLE, hosted_domain="customer.example")
    with pytest.raises(SsoError) as info:
        login(adapter, cfg, idp, **claims)
    return info.value.reason


def test_google_workspace_account_of_the_domain_logs_in(
    google: tuple[OidcAdapter, FakeIdp],
) -> None:
    adapter, idp = google
    cfg = config(adapter, profile="google", issuer=GOOGLE, hosted_domain="customer.example")
    ident = login(adapter, cfg, idp, hd="customer.example")
    assert ident.email == "user@customer.example"
    assert ident.email_verified
    assert (
        "hd=customer.example"
        in adapter.start_login(cfg, tenant_id="t", connection_id="c").redirect_url
    )


def test_google_account_of_another_domain_is_rejected(
    google: tuple[OidcAdapter, FakeIdp],
) -> None:
    assert _google_reason(google, hd="attacker.example") == "hosted-domain"


def test_google_consumer_account_without_hd_is_rejected(
    google: tuple[OidcAdapter, FakeIdp],
) -> None:
    assert _google_reason(google) == "hosted-domain"


@pytest.mark.parametrize("verified", [False, "false", None])
def test_google_unverified_email_is_rejected(
    google: tuple[OidcAdapter, FakeIdp], verified: object
) -> None:
    # None removes the claim: no email_verified at all.
    reason = _google_reason(google, hd="customer.example", email_verified=verified)
    assert reason == "email-unverified"


@pytest.mark.parametrize(("verified", "kept"), [(True, True), ("true", True), (False, False)])
def test_generic_email_is_kept_only_when_verified(
    adapter: OidcAdapter, idp: FakeIdp, verified: object, kept: bool
) -> None:
    ident = login(adapter, config(adapter), idp, email_verified=verified)
    assert (ident.email is not None) is kept
    assert ident.email_verified is kept


def test_generic_email_without_verification_claim_is_dropped(
    adapter: OidcAdapter, idp: FakeIdp
) -> None:
    ident = login(adapter, config(adapter), idp, email_verified=None)
    assert ident.email is None


def test_claims_come_from_the_configured_names(adapter: OidcAdapter, idp: FakeIdp) -> None:
    cfg = config(
        adapter,
        groups_claim="roles",
        name_claim="preferred_username",
        keep_claims=["department"],
    )
    now = int(datetime.now(UTC).timestamp())
    ident = login(
        adapter,
        cfg,
        idp,
        roles=["r1"],
        preferred_username="tuser",
        department="ops",
        auth_time=now - 5,
        sid="session-1",
    )
    assert ident.groups == ("r1",)
    assert ident.display_name == "tuser"
    assert ident.attributes == {"department": ("ops",)}
    assert ident.idp_session == "session-1"
    assert ident.authenticated_at == datetime.fromtimestamp(now - 5, tz=UTC)


@pytest.mark.parametrize("groups", [{"a": 1}, [["nested"]], ["x" * 2000]])
def test_malformed_groups_claim_is_rejected(
    adapter: OidcAdapter, idp: FakeIdp, groups: object
) -> None:
    with pytest.raises(SsoError) as info:
        login(adapter, config(adapter), idp, groups=groups)
    assert info.value.reason == "malformed"
