"""SimpleSAMLphp's own metadata, fetched by URL through the egress guard into a connection.

SimpleSAMLphp runs on plain HTTP (``php -S``) and the guard speaks https
only, so a small TLS-terminating proxy on 127.0.0.1 (self-signed for
127.0.0.1, trusted by the test's guard alone) passes each GET through
unchanged. The guard reaches loopback only with its test-only switch.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from callvault import sso
from callvault.bootstrap import create_tenant_with_owner
from callvault.config import load_settings
from callvault.crypto.hazmat import generate_self_signed
from callvault.egress import EgressGuard
from callvault.errors import SsoConfigError
from callvault.runtime import Runtime
from callvault.sso._metadata_url import fetch_metadata_guarded
from callvault.sso.saml import parse_idp_metadata
from tests.integration.simplesamlphp import SimpleSamlIdp, start_or_skip

BASE = "https://callvault.example"


@pytest.fixture(scope="module")
def idp() -> Iterator[SimpleSamlIdp]:
    instance = start_or_skip("metadata-url")
    yield instance
    instance.stop()


def _proxy(backend: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            upstream = httpx.get(backend + self.path, timeout=10.0)
            self.send_response(upstream.status_code)
            self.send_header("Content-Type", upstream.headers.get("Content-Type", "text/plain"))
            self.send_header("Content-Length", str(len(upstream.content)))
            self.end_headers()
            self.wfile.write(upstream.content)

        def log_message(self, *_args: Any) -> None:
            return

    return Handler


@pytest.fixture(scope="module")
def front(
    idp: SimpleSamlIdp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ssl.SSLContext, int]]:
    """(https metadata URL, a client context trusting the proxy, the proxy's port)."""
    directory = tmp_path_factory.mktemp("tls-front")
    cert_pem, key_pem = generate_self_signed(["127.0.0.1"])
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _proxy(idp.base_url.rstrip("/")))
    httpd.socket = server_ctx.wrap_socket(httpd.socket, server_side=True)
    port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cafile=str(cert))
    try:
        yield f"https://127.0.0.1:{port}/saml2/idp/metadata.php", client_ctx, port
    finally:
        httpd.shutdown()
        httpd.server_close()


def _guard(front: tuple[str, ssl.SSLContext, int], *, loopback: bool) -> EgressGuard:
    _, ctx, port = front
    return EgressGuard(ports={port}, ssl_context=ctx, allow_loopback=loopback)


def test_simplesamlphp_metadata_is_fetched_through_the_guard(
    idp: SimpleSamlIdp, front: tuple[str, ssl.SSLContext, int]
) -> None:
    body = fetch_metadata_guarded(_guard(front, loopback=True))(front[0])
    parsed = parse_idp_metadata(body)
    assert parsed.entity_id == idp.entity_id
    assert parsed.signing_certs == (idp.keys.cert_b64,)


def test_the_same_idp_is_refused_without_the_test_switch(
    front: tuple[str, ssl.SSLContext, int],
) -> None:
    with pytest.raises(SsoConfigError) as exc:
        fetch_metadata_guarded(_guard(front, loopback=False))(front[0])
    assert exc.value.field == "config.idp_metadata_url"
    assert exc.value.message.endswith("(reason: loopback)")


def test_a_connection_is_created_from_simplesamlphp_metadata_by_url(
    idp: SimpleSamlIdp, front: tuple[str, ssl.SSLContext, int], tmp_path: Path
) -> None:
    rt = Runtime.open(
        load_settings({}, data_dir=tmp_path / "data", public_base_url=BASE), create_key=True
    )
    try:
        tenant_id = create_tenant_with_owner(rt, tenant_name="nhs", owner_name="o").tenant_id
        store = sso.ConnectionStore(
            rt.keys, rt.sealer, sso.default_adapters(), BASE, egress=_guard(front, loopback=True)
        )
        with rt.db.tenant_tx(tenant_id) as s:
            conn = store.create(
                s,
                tenant_id,
                sso.ConnectionInput(
                    protocol="saml",
                    name="trust ADFS stand-in",
                    config={"idp_metadata_url": front[0]},
                    role_mappings=[{"group": "cv-admins", "role": "admin"}],
                ),
                actor="test",
            )
        with rt.db.tenant_tx(tenant_id) as s:
            got = store.get(s, tenant_id, conn.id, parse=True)
        assert got.parsed.idp.entity_id == idp.entity_id
        assert got.config["idp_metadata_url"] == front[0]
    finally:
        rt.close()
