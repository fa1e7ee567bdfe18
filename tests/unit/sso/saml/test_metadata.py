"""IdP metadata parsing and fetching: what a hostile or broken metadata document gets."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from callvault.errors import SsoConfigError
from callvault.sso.saml import fetch_idp_metadata, parse_idp_metadata
from tests.integration.simplesamlphp import KeyPair
from tests.unit.sso.saml.conftest import POST, metadata


def test_good_metadata_yields_entity_sso_url_and_certificates(idp_keys: KeyPair) -> None:
    parsed = parse_idp_metadata(metadata(idp_keys.cert_b64))
    assert parsed.entity_id == "https://idp.example.com/saml"
    assert parsed.sso_url == "https://idp.example.com/sso"
    assert parsed.signing_certs == (idp_keys.cert_b64,)


def test_several_signing_certificates_are_kept_for_rollover(
    idp_keys: KeyPair, sp_keys: KeyPair
) -> None:
    parsed = parse_idp_metadata(metadata(idp_keys.cert_b64, sp_keys.cert_b64))
    assert parsed.signing_certs == (idp_keys.cert_b64, sp_keys.cert_b64)


def test_encryption_only_certificates_are_not_signing_certificates(idp_keys: KeyPair) -> None:
    with pytest.raises(SsoConfigError) as exc:
        parse_idp_metadata(metadata(idp_keys.cert_b64, use="encryption"))
    assert exc.value.field == "idp_metadata_xml"


def _dated(doc: str, until: str, *, on: str = "md:EntityDescriptor") -> str:
    return doc.replace(f"<{on} ", f'<{on} validUntil="{until}" ', 1)


def test_metadata_valid_until_in_the_future_is_accepted(idp_keys: KeyPair) -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    doc = _dated(metadata(idp_keys.cert_b64), "2026-12-01T00:00:00Z")
    assert parse_idp_metadata(doc, now=now).entity_id == "https://idp.example.com/saml"


@pytest.mark.parametrize("on", ["md:EntityDescriptor", "md:IDPSSODescriptor"])
def test_expired_metadata_is_refused(idp_keys: KeyPair, on: str) -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    doc = _dated(metadata(idp_keys.cert_b64), "2026-11-28T11:59:59.5Z", on=on)
    with pytest.raises(SsoConfigError) as exc:
        parse_idp_metadata(doc, now=now)
    assert exc.value.field == "idp_metadata_xml"
    assert "expired" in exc.value.message


def test_expired_entities_wrapper_is_refused(idp_keys: KeyPair) -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    inner = metadata(idp_keys.cert_b64)
    doc = (
        '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"'
        f' validUntil="2026-11-01T00:00:00Z">{inner}</md:EntitiesDescriptor>'
    )
    assert parse_idp_metadata(doc.replace("2026-11-01", "2026-12-01"), now=now)
    with pytest.raises(SsoConfigError):
        parse_idp_metadata(doc, now=now)


@pytest.mark.parametrize("bad", ["tomorrow", "", "2026-13-01T00:00:00Z"])
def test_malformed_valid_until_is_refused(idp_keys: KeyPair, bad: str) -> None:
    with pytest.raises(SsoConfigError) as exc:
        parse_idp_metadata(_dated(metadata(idp_keys.cert_b64), bad))
    assert exc.value.field == "idp_metadata_xml"


def test_metadata_with_external_entity_is_refused(idp_keys: KeyPair) -> None:
    doc = metadata(idp_keys.cert_b64).replace("https://idp.example.com/saml", "&xxe;")
    hostile = f'<!DOCTYPE md [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>{doc}'
    with pytest.raises(SsoConfigError) as exc:
        parse_idp_metadata(hostile)
    assert exc.value.field == "idp_metadata_xml"


def test_metadata_with_billion_laughs_is_refused() -> None:
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    hostile = f'<!DOCTYPE r [<!ENTITY l0 "lol">{entities}]><r>&l9;</r>'
    with pytest.raises(SsoConfigError) as exc:
        parse_idp_metadata(hostile)
    assert exc.value.field == "idp_metadata_xml"


def test_oversized_metadata_is_refused(idp_keys: KeyPair) -> None:
    doc = metadata(idp_keys.cert_b64)
    padded = doc.replace(
        "</md:EntityDescriptor>", "<!--" + "x" * 600_000 + "--></md:EntityDescriptor>"
    )
    with pytest.raises(SsoConfigError):
        parse_idp_metadata(padded)


def _weak_cert_b64() -> str:
    # A 1024-bit RSA certificate (test-only), made with the cryptography package.
    import datetime as dt  # noqa: PLC0415 - only this test needs a weak key

    from cryptography import x509  # noqa: PLC0415 - same
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415, TID251 - a deliberately weak test key has no counterpart in callvault.crypto.hazmat
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415, TID251 - same
    from cryptography.x509.oid import NameOID  # noqa: PLC0415 - same

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key is what the test refuses
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.mark.parametrize(
    "case",
    [
        "no_certificate",
        "weak_rsa_1024_certificate",
        "garbage_certificate",
        "http_sso_url_off_loopback",
        "post_binding_only",
        "no_entity_id",
        "not_metadata",
        "two_idps_in_an_aggregate",
        "not_xml",
    ],
)
def test_unusable_metadata_is_refused_naming_the_field(idp_keys: KeyPair, case: str) -> None:
    good = metadata(idp_keys.cert_b64)
    docs = {
        "no_certificate": metadata(),
        "weak_rsa_1024_certificate": metadata(_weak_cert_b64()),
        "garbage_certificate": metadata("bm90IGEgY2VydA=="),
        "http_sso_url_off_loopback": metadata(
            idp_keys.cert_b64, sso_url="http://idp.example.com/sso"
        ),
        "post_binding_only": metadata(idp_keys.cert_b64, binding=POST),
        "no_entity_id": good.replace('entityID="https://idp.example.com/saml"', ""),
        "not_metadata": "<html><body>login</body></html>",
        "two_idps_in_an_aggregate": (
            '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
            + good
            + good.replace("idp.example.com/saml", "idp2.example.com/saml")
            + "</md:EntitiesDescriptor>"
        ),
        "not_xml": '{"metadata": true}',
    }
    with pytest.raises(SsoConfigError) as exc:
        parse_idp_metadata(docs[case])
    assert exc.value.field == "idp_metadata_xml"


def test_error_message_does_not_quote_the_metadata(idp_keys: KeyPair) -> None:
    doc = metadata(idp_keys.cert_b64, sso_url="http://secret-host.example.com/sso")
    with pytest.raises(SsoConfigError) as exc:
        parse_idp_metadata(doc)
    assert "secret-host" not in str(exc.value)


def test_aggregate_with_exactly_one_idp_is_accepted(idp_keys: KeyPair) -> None:
    aggregate = (
        '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
        + metadata(idp_keys.cert_b64)
        + "</md:EntitiesDescriptor>"
    )
    assert parse_idp_metadata(aggregate).entity_id == "https://idp.example.com/saml"


# --- fetching, against a real HTTP server on loopback -----------------------------------------


class _Handler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.end_headers()
            return
        if self.path == "/missing":
            self.send_response(404)
            self.end_headers()
            return
        payload = self.body if self.path == "/ok" else b"<x>" + b" " * 600_000 + b"</x>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        del args  # keep the test output quiet


@pytest.fixture(scope="module")
def server(idp_keys: KeyPair) -> Iterator[str]:
    _Handler.body = metadata(idp_keys.cert_b64).encode()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_returns_the_metadata(server: str) -> None:
    with httpx.Client() as http:
        body = fetch_idp_metadata(f"{server}/ok", http=http)
    assert parse_idp_metadata(body).entity_id == "https://idp.example.com/saml"


@pytest.mark.parametrize("path", ["/redirect", "/missing", "/big"])
def test_fetch_refuses_redirects_errors_and_oversized_bodies(server: str, path: str) -> None:
    with httpx.Client() as http, pytest.raises(SsoConfigError) as exc:
        fetch_idp_metadata(f"{server}{path}", http=http)
    assert exc.value.field == "idp_metadata_url"


def test_fetch_refuses_plain_http_to_a_remote_host() -> None:
    with httpx.Client() as http, pytest.raises(SsoConfigError) as exc:
        fetch_idp_metadata("http://idp.example.com/metadata", http=http)
    assert exc.value.field == "idp_metadata_url"


def test_fetch_reports_an_unreachable_host_as_config_error() -> None:
    with httpx.Client() as http, pytest.raises(SsoConfigError) as exc:
        fetch_idp_metadata("http://127.0.0.1:9/metadata", http=http, timeout_s=2.0)
    assert exc.value.field == "idp_metadata_url"
