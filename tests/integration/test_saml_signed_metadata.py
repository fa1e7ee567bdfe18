"""Signed IdP metadata from a real SimpleSAMLphp IdP: its own signer, by upload, by URL, by the API.

SimpleSAMLphp signs its metadata itself when told to (``metadata.sign.*``,
``SimpleSAML\\Metadata\\Signer``: an enveloped signature on the
EntityDescriptor, exclusive c14n, the signer's certificate in KeyInfo);
:meth:`SimpleSamlIdp.sign_metadata` turns that on per test. The signer is a
"federation" key of its own unless a test says otherwise. Hand-made
signatures and the full wrapping catalogue are in
``tests/unit/sso/saml/test_metadata_signature.py``; here the document is the
real IdP's.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from callvault import sso
from callvault.bootstrap import create_tenant_with_owner
from callvault.config import load_settings
from callvault.errors import SsoConfigError
from callvault.runtime import Runtime
from callvault.sso.saml import SamlAdapter, fetch_idp_metadata, parse_idp_metadata
from callvault.sso.saml._xml import NS, qname
from tests.integration.simplesamlphp import (
    KeyPair,
    SimpleSamlIdp,
    SpConnection,
    sp_initiated_login,
    start_or_skip,
)
from tests.integration.sso_e2e import BASE, E2e, e2e_installation
from tests.unit.api._harness import auth, problem_json

SIGNER = "idp_metadata_signing_certificate"


@pytest.fixture(scope="module")
def idp() -> Iterator[SimpleSamlIdp]:
    server = start_or_skip("signedmd")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fed() -> KeyPair:
    """The metadata signing key (a federation operator's, or the IdP's own metadata key)."""
    return KeyPair.generate("metadata signer")


@pytest.fixture
def signed_by_fed(idp: SimpleSamlIdp, fed: KeyPair) -> Iterator[SimpleSamlIdp]:
    idp.sign_metadata(fed)
    yield idp
    idp.sign_metadata(None)


@pytest.fixture(scope="module")
def sp_keys() -> KeyPair:
    return KeyPair.generate("callvault test SP")


@pytest.fixture
def conn(sp_keys: KeyPair) -> SpConnection:
    return SpConnection(tenant_id="t-" + secrets.token_hex(4), connection_id="c1", keys=sp_keys)


def _refused(idp: SimpleSamlIdp, conn: SpConnection, cert: str, xml: bytes | None = None) -> str:
    """The field a connection pinned to ``cert`` names when refusing the IdP's metadata."""
    overrides: dict[str, object] = {SIGNER: cert}
    if xml is not None:
        overrides["idp_metadata_xml"] = xml.decode()
    with pytest.raises(SsoConfigError) as exc:
        SamlAdapter().parse_config(conn.raw_config(idp, **overrides))
    assert "<" not in exc.value.message
    return str(exc.value.field)


def test_simplesamlphp_signs_its_metadata_with_the_knob(
    signed_by_fed: SimpleSamlIdp, fed: KeyPair
) -> None:
    root = etree.fromstring(signed_by_fed.metadata_xml())
    signature = root.find("ds:Signature", NS)
    assert signature is not None
    method = signature.find("ds:SignedInfo/ds:SignatureMethod", NS)
    assert method is not None
    assert method.get("Algorithm") == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    assert fed.cert_b64 in etree.tostring(signature).decode()


def test_login_works_with_metadata_verified_against_the_pinned_certificate(
    signed_by_fed: SimpleSamlIdp, fed: KeyPair, conn: SpConnection
) -> None:
    adapter = SamlAdapter()
    captured = sp_initiated_login(adapter, signed_by_fed, conn, overrides={SIGNER: fed.cert_pem})
    assert captured.config.idp_metadata_signing_certificate is not None
    assert captured.config.idp.entity_id == signed_by_fed.entity_id
    # The configuration is parsed again for the login, so the signature is checked again.
    config = adapter.parse_config(conn.raw_config(signed_by_fed, **{SIGNER: fed.cert_pem}))
    assert captured.finish(adapter, config=config).subject == "alice"


def test_metadata_signed_with_the_idps_own_key_is_accepted_pinned_to_it(
    idp: SimpleSamlIdp, conn: SpConnection
) -> None:
    idp.sign_metadata(idp.keys)
    try:
        cfg = SamlAdapter().parse_config(conn.raw_config(idp, **{SIGNER: idp.keys.cert_pem}))
        assert cfg.idp.signing_certs == (idp.keys.cert_b64,)
    finally:
        idp.sign_metadata(None)


def test_metadata_signed_by_another_key_is_refused(
    signed_by_fed: SimpleSamlIdp, conn: SpConnection
) -> None:
    other = KeyPair.generate("another federation")
    assert _refused(signed_by_fed, conn, other.cert_pem) == "idp_metadata_xml"


def test_unsigned_metadata_is_refused_when_a_signer_is_pinned(
    idp: SimpleSamlIdp, fed: KeyPair, conn: SpConnection
) -> None:
    assert b"Signature" not in idp.metadata_xml()
    assert _refused(idp, conn, fed.cert_pem) == "idp_metadata_xml"


def test_sha1_signed_metadata_is_refused(
    idp: SimpleSamlIdp, fed: KeyPair, conn: SpConnection
) -> None:
    idp.sign_metadata(fed, algorithm="sha1")
    try:
        xml = idp.metadata_xml()
        assert b"xmldsig#rsa-sha1" in xml
        assert b"xmldsig#sha1" in xml
        with pytest.raises(SsoConfigError) as exc:
            parse_idp_metadata(xml, signing_certificate=fed.cert_pem)
        assert exc.value.message.endswith("(weak-algorithm)")
        assert _refused(idp, conn, fed.cert_pem, xml) == "idp_metadata_xml"
    finally:
        idp.sign_metadata(None)


def test_simplesamlphp_metadata_edited_after_signing_is_refused(
    signed_by_fed: SimpleSamlIdp, fed: KeyPair, conn: SpConnection
) -> None:
    root = etree.fromstring(signed_by_fed.metadata_xml())
    sso_service = root.find(".//md:SingleSignOnService", NS)
    assert sso_service is not None
    sso_service.set("Location", "https://evil.example/sso")
    edited = etree.tostring(root)
    with pytest.raises(SsoConfigError) as exc:
        parse_idp_metadata(edited, signing_certificate=fed.cert_pem)
    assert exc.value.message.endswith("(signature)")
    assert _refused(signed_by_fed, conn, fed.cert_pem, edited) == "idp_metadata_xml"


def test_simplesamlphp_signed_entity_wrapped_in_an_aggregate_is_refused(
    signed_by_fed: SimpleSamlIdp, fed: KeyPair, conn: SpConnection
) -> None:
    # The signed EntityDescriptor is still in there, intact, but it is not the root.
    wrapper = etree.Element(qname("md", "EntitiesDescriptor"), nsmap={"md": NS["md"]})
    wrapper.append(etree.fromstring(signed_by_fed.metadata_xml()))
    wrapped = etree.tostring(wrapper)
    with pytest.raises(SsoConfigError) as exc:
        parse_idp_metadata(wrapped, signing_certificate=fed.cert_pem)
    assert exc.value.message.endswith("(unsigned)")
    assert _refused(signed_by_fed, conn, fed.cert_pem, wrapped) == "idp_metadata_xml"


def test_simplesamlphp_signed_entity_hidden_in_the_signature_of_an_evil_root_is_refused(
    signed_by_fed: SimpleSamlIdp, fed: KeyPair
) -> None:
    original = signed_by_fed.metadata_xml()
    evil = etree.fromstring(original)
    sso_service = evil.find(".//md:SingleSignOnService", NS)
    assert sso_service is not None
    sso_service.set("Location", "https://evil.example/sso")
    signature = evil.find("ds:Signature", NS)
    assert signature is not None
    etree.SubElement(signature, qname("ds", "Object")).append(etree.fromstring(original))
    with pytest.raises(SsoConfigError) as exc:
        parse_idp_metadata(etree.tostring(evil), signing_certificate=fed.cert_pem)
    assert exc.value.message.endswith("(wrapped)")


# --- by URL ---------------------------------------------------------------------------------------


def test_fetch_by_url_checks_the_signature_when_given_the_certificate(
    signed_by_fed: SimpleSamlIdp, fed: KeyPair
) -> None:
    other = KeyPair.generate("another federation")
    with httpx.Client() as http:
        body = fetch_idp_metadata(
            signed_by_fed.metadata_url, http=http, signing_certificate=fed.cert_pem
        )
        assert b"Signature" in body
        with pytest.raises(SsoConfigError) as exc:
            fetch_idp_metadata(
                signed_by_fed.metadata_url, http=http, signing_certificate=other.cert_pem
            )
    assert exc.value.field == "idp_metadata_url"


@pytest.fixture
def store_rt(tmp_path: Path) -> Iterator[tuple[Runtime, str, sso.ConnectionStore]]:
    """A runtime, a tenant, and a connection store fetching metadata URLs directly (the
    egress guard's own suite covers the guard; this is what happens to the fetched bytes)."""
    rt = Runtime.open(
        load_settings({}, data_dir=tmp_path / "data", public_base_url=BASE), create_key=True
    )
    try:
        tenant_id = create_tenant_with_owner(rt, tenant_name="acme", owner_name="o").tenant_id

        def fetch(url: str) -> bytes:
            with httpx.Client() as http:
                return fetch_idp_metadata(url, http=http)

        store = sso.ConnectionStore(
            rt.keys, rt.sealer, sso.default_adapters(), BASE, fetch_metadata=fetch
        )
        yield rt, tenant_id, store
    finally:
        rt.close()


def _create_by_url(
    store_rt: tuple[Runtime, str, sso.ConnectionStore], url: str, cert: str
) -> sso.Connection:
    rt, tenant_id, store = store_rt
    with rt.db.tenant_tx(tenant_id) as s:
        return store.create(
            s,
            tenant_id,
            sso.ConnectionInput(
                protocol="saml",
                name="signed by url",
                config={"idp_metadata_url": url, SIGNER: cert},
                role_mappings=[{"group": "cv-admins", "role": "admin"}],
            ),
            actor="test",
        )


def test_connection_by_url_keeps_metadata_signed_by_the_pinned_certificate(
    signed_by_fed: SimpleSamlIdp, fed: KeyPair, store_rt: tuple[Runtime, str, sso.ConnectionStore]
) -> None:
    conn = _create_by_url(store_rt, signed_by_fed.metadata_url, fed.cert_pem)
    rt, tenant_id, store = store_rt
    with rt.db.tenant_tx(tenant_id) as s:
        got = store.get(s, tenant_id, conn.id, parse=True)
    assert got.parsed.idp.entity_id == signed_by_fed.entity_id
    assert got.config[SIGNER] == fed.cert_pem


def test_connection_by_url_refuses_metadata_not_signed_by_the_pinned_certificate(
    signed_by_fed: SimpleSamlIdp, store_rt: tuple[Runtime, str, sso.ConnectionStore]
) -> None:
    other = KeyPair.generate("another federation")
    rt, tenant_id, store = store_rt
    with pytest.raises(SsoConfigError) as exc:
        _create_by_url(store_rt, signed_by_fed.metadata_url, other.cert_pem)
    # The fetched document is what is stored in (and refused as) idp_metadata_xml.
    assert exc.value.field == "config.idp_metadata_xml"
    with rt.db.tenant_tx(tenant_id) as s:
        assert store.list_all(s, tenant_id) == []


# --- through the admin API (the real SAML adapter) ------------------------------------------------


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2e]:
    with e2e_installation(tmp_path_factory.mktemp("saml-signed-md") / "data") as inst:
        yield inst


URL = "/v1/tenant/sso/connections"


def _post(e2e: E2e, config: dict[str, object]) -> httpx.Response:
    tenant = e2e.world.a
    return e2e.admin.post(
        URL,
        headers=auth(tenant.tokens[("admin", "tenant")]),
        json={
            "protocol": "saml",
            "name": "signed metadata",
            "config": config,
            "role_mappings": [{"group": "cv-admins", "role": "admin"}],
        },
    )


def test_api_refuses_metadata_not_signed_by_the_pinned_certificate_with_422(
    e2e: E2e, signed_by_fed: SimpleSamlIdp, fed: KeyPair
) -> None:
    xml = signed_by_fed.metadata_xml().decode()
    other = KeyPair.generate("another federation")
    refused = _post(e2e, {"idp_metadata_xml": xml, SIGNER: other.cert_pem})
    assert refused.status_code == 422
    assert problem_json(refused)["errors"][0]["field"] == "config.idp_metadata_xml"
    for quoted in (signed_by_fed.entity_id, fed.cert_b64[:40], "EntityDescriptor", "<"):
        assert quoted not in refused.text
    bad_cert = _post(e2e, {"idp_metadata_xml": xml, SIGNER: "not a certificate"})
    assert bad_cert.status_code == 422
    assert problem_json(bad_cert)["errors"][0]["field"] == f"config.{SIGNER}"
    accepted = _post(e2e, {"idp_metadata_xml": xml, SIGNER: fed.cert_pem})
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["config"][SIGNER] == fed.cert_pem  # a certificate, not a secret


def test_api_pinning_a_signer_later_rechecks_the_stored_metadata(
    e2e: E2e, idp: SimpleSamlIdp, fed: KeyPair
) -> None:
    token = e2e.world.a.tokens[("admin", "tenant")]
    created = _post(e2e, {"idp_metadata_xml": idp.metadata_xml().decode()})  # unsigned
    assert created.status_code == 201, created.text
    patch = e2e.admin.patch(
        f"{URL}/{created.json()['id']}",
        headers=auth(token),
        json={"config": {SIGNER: fed.cert_pem}},
    )
    assert patch.status_code == 422
    assert problem_json(patch)["errors"][0]["field"] == "config.idp_metadata_xml"
    idp.sign_metadata(fed)
    try:
        both = e2e.admin.patch(
            f"{URL}/{created.json()['id']}",
            headers=auth(token),
            json={
                "config": {SIGNER: fed.cert_pem, "idp_metadata_xml": idp.metadata_xml().decode()}
            },
        )
    finally:
        idp.sign_metadata(None)
    assert both.status_code == 200, both.text
