"""The service with real key providers: a deployment's KEK lives where its settings say.

Drives the API end to end (create a deployment on a provider, an agent, a call
with a transcript; read it back) against moto_server's KMS and an OpenBao dev
server, and checks the KEK rows and the provider-side keys.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.api import create_app
from callvault.bootstrap import create_tenant_with_owner
from callvault.config import load_settings
from callvault.runtime import Runtime
from callvault.store.models import Kek
from tests.integration.kms import MotoServer, MotoUnavailableError
from tests.integration.openbao import BaoUnavailableError, OpenBao, find_bao

pytestmark = [pytest.mark.kms, pytest.mark.vault]

TRANSCRIPT = {"speaker": "caller", "start_ms": 0, "end_ms": 900, "text": "card 4111 1111"}


def _require(exc: Exception) -> None:
    if os.environ.get("CV_TEST_REQUIRE_POSTGRES") == "1":  # the CI flag: real peers required
        pytest.fail(f"real peer missing: {exc}")
    pytest.skip(str(exc))


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    try:
        server = MotoServer.start()
    except MotoUnavailableError as exc:
        _require(exc)
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def bao() -> Iterator[OpenBao]:
    try:
        server = OpenBao.start(find_bao())
    except BaoUnavailableError as exc:
        _require(exc)
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rt(
    tmp_path: Path, moto: MotoServer, bao: OpenBao, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    # boto3's default credential chain, as in production (moto accepts any).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = load_settings(
        {},
        data_dir=tmp_path / "data",
        aws_kms_enabled=True,
        aws_kms_endpoint_url=moto.url,
        vault_addr=bao.address,
        vault_token=bao.token,
    )
    runtime = Runtime.open(settings, create_key=True)
    yield runtime
    runtime.close()


def _call_roundtrip(client: TestClient, owner: dict[str, str], body: dict[str, object]) -> str:
    r = client.post("/v1/deployments", headers=owner, json=body)
    assert r.status_code == 201, r.text
    dep = r.json()["id"]
    agent = client.post(
        f"/v1/deployments/{dep}/agents", headers=owner, json={"name": "a", "prompt": "hello"}
    ).json()["id"]
    r = client.get(f"/v1/agents/{agent}/config", headers=owner)
    assert r.status_code == 200, r.text
    assert r.json()["config"]["prompt"] == "hello"
    return dep


def _kek(rt: Runtime, tenant: str, dep: str) -> Kek:
    with rt.db.tenant_tx(tenant) as s:
        return s.execute(select(Kek).where(Kek.deployment_id == dep)).scalar_one()


def test_aws_kms_deployment_keys_live_in_kms_in_the_deployments_region(
    rt: Runtime, moto: MotoServer
) -> None:
    init = create_tenant_with_owner(rt, tenant_name="acme", owner_name="o")
    owner = {"Authorization": f"Bearer {init.token}"}
    with TestClient(create_app(rt), base_url="https://testserver") as client:
        dep = _call_roundtrip(
            client, owner, {"name": "uk", "region": "eu-west-2", "key_provider": "aws-kms"}
        )
    kek = _kek(rt, init.tenant_id, dep)
    assert kek.provider == "aws-kms:eu-west-2"
    assert kek.provider_ref.startswith("arn:aws:kms:eu-west-2:")
    meta = moto.admin_client("eu-west-2").describe_key(KeyId=kek.provider_ref)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled"


def test_bring_your_own_kms_key_is_adopted_and_checked(rt: Runtime, moto: MotoServer) -> None:
    init = create_tenant_with_owner(rt, tenant_name="acme", owner_name="o")
    owner = {"Authorization": f"Bearer {init.token}"}
    arn = moto.admin_client("eu-west-2").create_key(Description="customer key")["KeyMetadata"][
        "Arn"
    ]
    other_region = moto.admin_client("us-east-1").create_key()["KeyMetadata"]["Arn"]
    with TestClient(create_app(rt), base_url="https://testserver") as client:
        dep = _call_roundtrip(
            client,
            owner,
            {"name": "byok", "region": "eu-west-2", "key_provider": "aws-kms", "key_ref": arn},
        )
        assert _kek(rt, init.tenant_id, dep).provider_ref == arn
        r = client.post(
            "/v1/deployments",
            headers=owner,
            json={
                "name": "wrong-region",
                "region": "eu-west-2",
                "key_provider": "aws-kms",
                "key_ref": other_region,
            },
        )
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "key_ref"
        names = [d["name"] for d in client.get("/v1/deployments", headers=owner).json()]
        assert "wrong-region" not in names  # nothing half-written


def test_vault_transit_deployment_keys_live_in_openbao(rt: Runtime, bao: OpenBao) -> None:
    init = create_tenant_with_owner(rt, tenant_name="acme", owner_name="o")
    owner = {"Authorization": f"Bearer {init.token}"}
    with TestClient(create_app(rt), base_url="https://testserver") as client:
        dep = _call_roundtrip(client, owner, {"name": "v", "key_provider": "vault-transit"})
    kek = _kek(rt, init.tenant_id, dep)
    assert kek.provider == "vault-transit"
    name = kek.provider_ref.split("/", 1)[1]
    with bao.client() as admin:
        key = admin.get(f"transit/keys/{name}").json()["data"]
    assert key["type"] == "aes256-gcm96"
    assert key["exportable"] is False


def test_key_provider_cannot_be_switched_by_a_settings_edit(rt: Runtime) -> None:
    init = create_tenant_with_owner(rt, tenant_name="acme", owner_name="o")
    owner = {"Authorization": f"Bearer {init.token}"}
    with TestClient(create_app(rt), base_url="https://testserver") as client:
        dep = _call_roundtrip(client, owner, {"name": "l"})
        r = client.patch(f"/v1/deployments/{dep}", headers=owner, json={"key_provider": "aws-kms"})
    assert r.status_code == 409
    assert r.json()["errors"][0]["field"] == "key_provider"


def test_wrong_vault_token_stops_startup_with_one_line_naming_the_provider(
    tmp_path: Path, bao: OpenBao
) -> None:
    from callvault.errors import KeyUnavailableError  # noqa: PLC0415 - local to this test

    settings = load_settings(
        {}, data_dir=tmp_path / "data", vault_addr=bao.address, vault_token="not-the-token"
    )
    with pytest.raises(KeyUnavailableError) as info:
        Runtime.open(settings, create_key=True)
    message = str(info.value)
    assert message.startswith("vault-transit:")
    assert "not-the-token" not in message
    assert "\n" not in message
