"""SAML IdP metadata by URL through the admin API: fetched through the egress guard only.

The real SAML adapter parses the metadata; the IdP is an HTTPS server on
127.0.0.1 (``tests/unit/egress/_server.py``). The installation's guard (from
settings) refuses it as loopback; a guard with the test-only loopback switch,
installed on the app as ``sso_egress_guard``, fetches from it.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault import sso
from callvault.api.app import create_fastapi
from callvault.api.middleware import Guard
from callvault.bootstrap import create_tenant_with_owner
from callvault.config import load_settings
from callvault.egress import EgressGuard
from callvault.runtime import Runtime
from callvault.sso import _metadata_url
from callvault.sso.saml import _metadata
from callvault.store.models import SsoConnection
from tests.integration.simplesamlphp import KeyPair
from tests.unit.api._harness import audit_entries, auth, problem_json, row_counts
from tests.unit.egress._server import Answer, HttpsServer, running_https
from tests.unit.sso.saml.conftest import metadata

BASE = "https://cv.example.test"
URL = "/v1/tenant/sso/connections"
FIELD = "config.idp_metadata_url"
ENTITY = "https://idp.customer.test/saml"
#: In every metadata path: a refusal must never repeat the tenant's URL.
TOKEN = "tenant-private-7c1f"


@pytest.fixture(scope="module")
def idp_keys() -> KeyPair:
    return KeyPair.generate("metadata-by-url test IdP")


@pytest.fixture(scope="module")
def https_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsServer]:
    with running_https(tmp_path_factory.mktemp("idp"), ["127.0.0.1", "localhost"]) as server:
        yield server


@pytest.fixture
def idp(https_idp: HttpsServer, idp_keys: KeyPair) -> HttpsServer:
    https_idp.routes.clear()
    https_idp.seen.clear()
    https_idp.routes[f"/{TOKEN}/metadata"] = Answer(
        200,
        metadata(idp_keys.cert_b64, entity_id=ENTITY).encode(),
        headers={"Content-Type": "application/samlmetadata+xml"},
    )
    return https_idp


@pytest.fixture
def rt(tmp_path: Path, idp: HttpsServer) -> Iterator[Runtime]:
    # The installation allows the test server's port, so only the address can refuse it.
    settings = load_settings(
        {}, data_dir=tmp_path / "data", public_base_url=BASE, egress_allow_ports=f"443,{idp.port}"
    )
    runtime = Runtime.open(settings, create_key=True)
    yield runtime
    runtime.close()


def _client(rt: Runtime, guard: EgressGuard | None) -> TestClient:
    app = create_fastapi(rt)
    if guard is not None:
        app.state.sso_egress_guard = guard
    asgi = Guard(
        app,
        max_body_bytes=rt.settings.max_body_bytes,
        hsts_max_age_seconds=rt.settings.hsts_max_age_seconds,
    )
    return TestClient(asgi, base_url="https://testserver")


@pytest.fixture
def installation_client(rt: Runtime) -> Iterator[TestClient]:
    """The app as deployed: the guard comes from the installation's settings."""
    with _client(rt, None) as c:
        yield c


@pytest.fixture
def client(rt: Runtime, idp: HttpsServer) -> Iterator[TestClient]:
    """The app with a guard that may reach the loopback test IdP (tests only)."""
    guard = EgressGuard(
        ports={443, idp.port}, ssl_context=idp.client_context(), timeout_s=5, allow_loopback=True
    )
    with _client(rt, guard) as c:
        yield c


@pytest.fixture
def owner(rt: Runtime) -> tuple[str, dict[str, str]]:
    init = create_tenant_with_owner(rt, tenant_name="acme", owner_name="acme-owner")
    return init.tenant_id, auth(init.token)


def body(**config: Any) -> dict[str, Any]:
    return {
        "protocol": "saml",
        "name": "Customer IdP",
        "config": config,
        "role_mappings": [{"group": "cv-admins", "role": "admin"}],
    }


def _reason(r: Any) -> str:
    problem = problem_json(r)
    error = problem["errors"][0]
    assert error["field"] == FIELD
    assert error["message"].endswith(")")
    return str(error["message"].rsplit("(reason: ", 1)[1].rstrip(")"))


def _entity_id(rt: Runtime, tenant_id: str, connection_id: str) -> str:
    store = sso.ConnectionStore(rt.keys, rt.sealer, sso.default_adapters(), BASE)
    with rt.db.tenant_tx(tenant_id) as s:
        return str(store.get(s, tenant_id, connection_id, parse=True).parsed.idp.entity_id)


def test_the_guard_limit_is_the_saml_adapters_metadata_limit() -> None:
    # The guard must refuse an oversized body first, so the refusal carries its reason.
    assert _metadata_url.MAX_METADATA_BYTES == _metadata.MAX_METADATA_BYTES


# --- refused --------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_metadata_url_on_loopback_is_refused_and_nothing_is_created(
    rt: Runtime,
    installation_client: TestClient,
    idp: HttpsServer,
    owner: tuple[str, dict[str, str]],
    host: str,
) -> None:
    _, headers = owner
    before = row_counts(rt)
    url = idp.url(f"/{TOKEN}/metadata", host=host)
    r = installation_client.post(URL, headers=headers, json=body(idp_metadata_url=url))
    assert r.status_code == 422, r.text
    assert _reason(r) == "loopback"
    assert TOKEN not in r.text
    assert str(idp.port) not in r.text
    assert row_counts(rt) == before  # no connection, no key, no audit entry
    assert idp.seen == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://169.254.169.254/latest/meta-data/iam", "link-local"),
        ("https://[fd00:ec2::254]/latest/meta-data", "unique-local"),
        ("https://10.1.2.3/adfs/metadata", "private"),
        ("http://idp.customer.test/metadata", "scheme"),
        ("https://admin:pw@idp.customer.test/metadata", "credentials"),
        ("https://idp.customer.test:22/metadata", "port"),
    ],
)
def test_internal_or_unsafe_metadata_urls_are_refused_with_a_reason(
    rt: Runtime,
    installation_client: TestClient,
    owner: tuple[str, dict[str, str]],
    url: str,
    reason: str,
) -> None:
    _, headers = owner
    before = row_counts(rt)
    r = installation_client.post(URL, headers=headers, json=body(idp_metadata_url=url))
    assert r.status_code == 422, r.text
    assert _reason(r) == reason
    assert row_counts(rt) == before


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Answer(200, b"<x>" + b" " * 600_000 + b"</x>"), "too-large"),
        (Answer(200, b"<x>" + b" " * 600_000 + b"</x>", trickle=65536), "too-large"),
        (Answer(404, b"not here"), "http-status"),
        (Answer(500, b"oops"), "http-status"),
        (Answer(302, headers={"Location": "https://169.254.169.254/"}), "redirect"),
        (Answer(301, headers={"Location": "/elsewhere"}), "redirect"),
        (Answer(200, b"<html><body>Sign in</body></html>"), "not-metadata"),
        (Answer(200, b"\xff\xfe<\x00"), "not-metadata"),
        (Answer(200, gzip.compress(b"<x/>"), headers={"Content-Encoding": "gzip"}), "encoding"),
    ],
)
def test_unusable_answers_are_refused_and_nothing_is_created(
    rt: Runtime,
    client: TestClient,
    idp: HttpsServer,
    owner: tuple[str, dict[str, str]],
    answer: Answer,
    reason: str,
) -> None:
    _, headers = owner
    idp.routes[f"/{TOKEN}/bad"] = answer
    before = row_counts(rt)
    r = client.post(URL, headers=headers, json=body(idp_metadata_url=idp.url(f"/{TOKEN}/bad")))
    assert r.status_code == 422, r.text
    assert _reason(r) == reason
    assert TOKEN not in r.text
    assert row_counts(rt) == before
    assert len(idp.seen) == 1  # one GET, no redirect followed


def test_a_certificate_the_installation_does_not_trust_is_refused(
    rt: Runtime, idp: HttpsServer, owner: tuple[str, dict[str, str]]
) -> None:
    _, headers = owner
    guard = EgressGuard(ports={idp.port}, allow_loopback=True)  # system trust store only
    with _client(rt, guard) as c:
        r = c.post(URL, headers=headers, json=body(idp_metadata_url=idp.url(f"/{TOKEN}/metadata")))
    assert r.status_code == 422, r.text
    assert _reason(r) == "tls"


# --- fetched ----------------------------------------------------------------------------------


def test_metadata_is_fetched_and_the_connection_created_with_its_idp(
    rt: Runtime, client: TestClient, idp: HttpsServer, owner: tuple[str, dict[str, str]]
) -> None:
    tenant_id, headers = owner
    url = idp.url(f"/{TOKEN}/metadata")
    r = client.post(URL, headers=headers, json=body(idp_metadata_url=url))
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["config"]["idp_metadata_url"] == url
    assert f'entityID="{ENTITY}"' in out["config"]["idp_metadata_xml"]
    assert _entity_id(rt, tenant_id, out["id"]) == ENTITY
    assert [s.path for s in idp.seen] == [f"/{TOKEN}/metadata"]
    with rt.db.tenant_tx(tenant_id) as s:
        row = s.execute(select(SsoConnection).where(SsoConnection.id == out["id"])).scalar_one()
        assert ENTITY.encode() not in row.settings_sealed  # sealed like the rest
        assert TOKEN.encode() not in row.settings_sealed
    created = [e for e in audit_entries(rt, tenant_id) if e["action"] == "sso_connection.create"]
    assert "idp_metadata_xml" in created[0]["detail"]["config_fields"]
    assert TOKEN not in repr(created)


def test_an_upload_wins_over_the_url_and_nothing_is_fetched(
    rt: Runtime,
    client: TestClient,
    idp: HttpsServer,
    idp_keys: KeyPair,
    owner: tuple[str, dict[str, str]],
) -> None:
    tenant_id, headers = owner
    uploaded = metadata(idp_keys.cert_b64, entity_id="https://uploaded.customer.test/saml")
    r = client.post(
        URL,
        headers=headers,
        json=body(idp_metadata_url=idp.url(f"/{TOKEN}/metadata"), idp_metadata_xml=uploaded),
    )
    assert r.status_code == 201, r.text
    assert _entity_id(rt, tenant_id, r.json()["id"]) == "https://uploaded.customer.test/saml"
    assert idp.seen == []


def test_patch_with_the_url_fetches_again_and_other_patches_do_not(
    rt: Runtime,
    client: TestClient,
    idp: HttpsServer,
    idp_keys: KeyPair,
    owner: tuple[str, dict[str, str]],
) -> None:
    tenant_id, headers = owner
    url = idp.url(f"/{TOKEN}/metadata")
    conn = client.post(URL, headers=headers, json=body(idp_metadata_url=url)).json()
    path = f"{URL}/{conn['id']}"
    # The IdP rolls over to a new entity id (and key).
    rolled = metadata(KeyPair.generate("rolled").cert_b64, entity_id=ENTITY + "/v2")
    idp.routes[f"/{TOKEN}/metadata"] = Answer(200, rolled.encode())
    r = client.patch(path, headers=headers, json={"name": "Renamed"})
    assert r.status_code == 200, r.text
    assert len(idp.seen) == 1
    assert _entity_id(rt, tenant_id, conn["id"]) == ENTITY
    r = client.patch(path, headers=headers, json={"config": {"idp_metadata_url": url}})
    assert r.status_code == 200, r.text
    assert len(idp.seen) == 2
    assert _entity_id(rt, tenant_id, conn["id"]) == ENTITY + "/v2"
    updates = [e for e in audit_entries(rt, tenant_id) if e["action"] == "sso_connection.update"]
    assert updates[-1]["detail"]["config_fields"] == ["idp_metadata_xml"]
    # A refused re-fetch changes nothing.
    before = row_counts(rt)
    r = client.patch(
        path, headers=headers, json={"config": {"idp_metadata_url": idp.url(f"/{TOKEN}/gone")}}
    )
    assert r.status_code == 422, r.text
    assert _reason(r) == "http-status"
    assert row_counts(rt) == before
    got = client.get(path, headers=headers).json()
    assert got["config"]["idp_metadata_url"] == url
    assert _entity_id(rt, tenant_id, conn["id"]) == ENTITY + "/v2"
