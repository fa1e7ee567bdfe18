"""An identity provider's SAML 2.0 metadata: parse it safely, fetch it within limits.

:func:`parse_idp_metadata` takes what an administrator uploaded (or what
:func:`fetch_idp_metadata` fetched) and keeps only what verification needs:

1. Parse with :func:`~callvault.sso.saml._xml.parse_untrusted` (size limit,
   no DTD, no entities, no network).
1a. If the connection names a metadata signing certificate
   (``idp_metadata_signing_certificate``), the root MUST carry an enveloped
   XML signature by exactly that certificate, checked before anything is
   read (:func:`~callvault.sso.saml._metadata_signature.verify_root_signature`:
   SHA-256 or stronger, the signed element is the root and nothing else);
   the signature is then removed, so every later step reads only what it
   covered. Without that setting the document's own signature, if any, is
   not relied on (the administrator's upload or an https fetch is the trust
   anchor).
2. The root is one ``md:EntityDescriptor`` (or an ``md:EntitiesDescriptor``
   holding exactly one entity with an IdP role) with an ``entityID``.
3. Exactly one ``md:IDPSSODescriptor`` supporting the SAML 2.0 protocol.
4. Its ``SingleSignOnService`` with the HTTP-Redirect binding: an ``https``
   URL (plain ``http`` only on loopback, for tests).
5. Its signing certificates (``KeyDescriptor`` with ``use="signing"`` or no
   ``use``): at least one, at most :data:`MAX_SIGNING_CERTS` (several are
   allowed for key rollover), each a parseable X.509 certificate with an
   RSA key of at least 2048 bits or an EC key of at least 256 bits. Only
   these certificates will ever verify a response of this connection.
6. No ``validUntil`` on the entities wrapper, the entity or its IdP role is
   in the past (SAML Metadata §2.3.1; expired metadata stops logins until an
   administrator uploads or fetches a current document), and each one that
   is present is a valid ``xs:dateTime``.

Any failure is ``SsoConfigError(field=...)`` with a message that never
quotes the metadata: ``idp_metadata_xml`` for the document (a refused
signature too, whether the document was uploaded or fetched by URL), and
``idp_metadata_signing_certificate`` for a certificate that is not one PEM
certificate with a key as strong as (5) asks.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

import httpx
import xmlsec
from cryptography import x509
from cryptography.x509.oid import PublicKeyAlgorithmOID
from lxml import etree  # type: ignore[import-untyped]  # lxml ships no stubs (lxml-stubs is not a dependency)

from callvault.errors import SsoConfigError
from callvault.sso.saml._metadata_signature import MetadataSignatureError, verify_root_signature
from callvault.sso.saml._xml import NS, XmlRejectedError, parse_untrusted, qname

MAX_METADATA_BYTES: Final = 512 * 1024
MAX_SIGNING_CERTS: Final = 8
FETCH_TIMEOUT_S: Final = 10.0
_MAX_CERT_B64_CHARS: Final = 16 * 1024
_BINDING_REDIRECT: Final = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
_PROTOCOL: Final = "urn:oasis:names:tc:SAML:2.0:protocol"
_FIELD: Final = "idp_metadata_xml"
SIGNER_FIELD: Final = "idp_metadata_signing_certificate"
_MAX_PEM_CHARS: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class IdpMetadata:
    """What verification needs from an IdP's metadata."""

    entity_id: str
    #: SingleSignOnService location for the HTTP-Redirect binding.
    sso_url: str
    #: Signing certificates, base64 DER (as metadata carries them); rollover allows several.
    signing_certs: tuple[str, ...]


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP literals."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, field: str) -> str:
    """An absolute https URL (http only on loopback); else ``SsoConfigError(field)``."""
    if len(url) > 2048 or any(ch.isspace() for ch in url):
        raise SsoConfigError("URL is too long or contains whitespace", field=field)
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    raise SsoConfigError("URL must be absolute https (http only on loopback)", field=field)


def _check_cert(b64: str) -> str:
    compact = "".join(b64.split())
    if not compact or len(compact) > _MAX_CERT_B64_CHARS:
        raise SsoConfigError("signing certificate is empty or too large", field=_FIELD)
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(compact, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise SsoConfigError(
            "signing certificate is not a valid X.509 certificate", field=_FIELD
        ) from exc
    if _strong_key(cert):
        return compact
    raise SsoConfigError(
        "signing certificate key must be RSA >= 2048 bits or EC >= 256 bits", field=_FIELD
    )


def _strong_key(cert: x509.Certificate) -> bool:
    """RSA of at least 2048 bits or EC of at least 256 bits."""
    oid = cert.public_key_algorithm_oid
    key_size = int(getattr(cert.public_key(), "key_size", 0))
    if oid == PublicKeyAlgorithmOID.RSAES_PKCS1_v1_5:
        return key_size >= 2048
    return oid == PublicKeyAlgorithmOID.EC_PUBLIC_KEY and key_size >= 256


def check_signing_certificate_pem(pem: str, *, field: str = SIGNER_FIELD) -> str:
    """One PEM X.509 certificate whose key passes the policy of step (5), else
    ``SsoConfigError(field)``; the certificate is pinned as a key (dates are not checked)."""
    if len(pem) > _MAX_PEM_CHARS or pem.count("-----BEGIN") != 1:
        raise SsoConfigError("expected exactly one PEM certificate", field=field)
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
        xmlsec.Key.from_memory(pem.encode(), xmlsec.constants.KeyDataFormatCertPem, None)
    except (ValueError, xmlsec.Error) as exc:
        raise SsoConfigError("not a valid PEM X.509 certificate", field=field) from exc
    if not _strong_key(cert):
        raise SsoConfigError(
            "certificate key must be RSA >= 2048 bits or EC >= 256 bits", field=field
        )
    return pem


def _signing_certs(idp: etree._Element) -> tuple[str, ...]:
    certs: list[str] = []
    for kd in idp.findall("md:KeyDescriptor", NS):
        if kd.get("use", "signing") != "signing":
            continue
        for node in kd.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS):
            if len(node) != 0:
                raise SsoConfigError("signing certificate element has children", field=_FIELD)
            cert = _check_cert(str(node.text or ""))
            if cert not in certs:
                certs.append(cert)
    if not certs:
        raise SsoConfigError("IdP metadata has no signing certificate", field=_FIELD)
    if len(certs) > MAX_SIGNING_CERTS:
        raise SsoConfigError("IdP metadata has too many signing certificates", field=_FIELD)
    return tuple(certs)


def _check_valid_until(elements: list[etree._Element], now: datetime) -> None:
    for element in elements:
        raw = element.get("validUntil")
        if raw is None:
            continue
        try:
            until = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise SsoConfigError(
                "IdP metadata validUntil is not a dateTime", field=_FIELD
            ) from None
        if until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        if until <= now:
            raise SsoConfigError("IdP metadata has expired (validUntil)", field=_FIELD)


def parse_idp_metadata(
    xml: bytes | str,
    *,
    now: datetime | None = None,
    signing_certificate: str | None = None,
) -> IdpMetadata:
    """Steps (1)-(6) of the module docstring (``now`` defaults to the clock).

    ``signing_certificate`` (PEM): the metadata MUST be signed by it (step 1a).
    """
    data = xml.encode() if isinstance(xml, str) else xml
    dated: list[etree._Element] = []
    if signing_certificate is not None:
        check_signing_certificate_pem(signing_certificate)
    # (1):
    try:
        root = parse_untrusted(data, max_bytes=MAX_METADATA_BYTES)
    except XmlRejectedError as exc:
        raise SsoConfigError(f"IdP metadata refused ({exc.reason})", field=_FIELD) from exc
    # (1a):
    if signing_certificate is not None:
        try:
            verify_root_signature(root, signing_certificate)
        except MetadataSignatureError as exc:
            raise SsoConfigError(str(exc), field=_FIELD) from None
    # (2):
    if root.tag == qname("md", "EntitiesDescriptor"):
        entities = [
            e
            for e in root.iter(qname("md", "EntityDescriptor"))
            if e.find("md:IDPSSODescriptor", NS) is not None
        ]
        if len(entities) != 1:
            raise SsoConfigError(
                "IdP metadata must describe exactly one identity provider", field=_FIELD
            )
        dated.append(root)
        root = entities[0]
    if root.tag != qname("md", "EntityDescriptor"):
        raise SsoConfigError("IdP metadata root must be an EntityDescriptor", field=_FIELD)
    entity_id = (root.get("entityID") or "").strip()
    if not entity_id or len(entity_id) > 1024:
        raise SsoConfigError("IdP metadata has no valid entityID", field=_FIELD)
    # (3):
    idps = [
        d
        for d in root.findall("md:IDPSSODescriptor", NS)
        if _PROTOCOL in (d.get("protocolSupportEnumeration") or "").split()
    ]
    if len(idps) != 1:
        raise SsoConfigError(
            "IdP metadata must have exactly one SAML 2.0 IDPSSODescriptor", field=_FIELD
        )
    idp = idps[0]
    # (4):
    locations = [
        (s.get("Location") or "").strip()
        for s in idp.findall("md:SingleSignOnService", NS)
        if s.get("Binding") == _BINDING_REDIRECT
    ]
    if not locations or not locations[0]:
        raise SsoConfigError("IdP metadata has no HTTP-Redirect SingleSignOnService", field=_FIELD)
    sso_url = check_url(locations[0], field=_FIELD)
    # (5):
    certs = _signing_certs(idp)
    # (6):
    _check_valid_until([*dated, root, idp], now or datetime.now(UTC))
    return IdpMetadata(entity_id=entity_id, sso_url=sso_url, signing_certs=certs)


def fetch_idp_metadata(
    url: str,
    *,
    http: httpx.Client,
    max_bytes: int = MAX_METADATA_BYTES,
    timeout_s: float = FETCH_TIMEOUT_S,
    signing_certificate: str | None = None,
) -> bytes:
    """Fetch an IdP's metadata document and check that it parses; return its bytes.

    1. ``url`` MUST be https (plain http is accepted only for a loopback host,
       which only tests use).
    2. One GET, redirects not followed (a redirect could leave https), with
       ``timeout_s`` per network operation and as the total deadline.
    3. The body is read in chunks and abandoned beyond ``max_bytes``.
    4. The body MUST parse as IdP metadata (:func:`parse_idp_metadata`), signed
       by ``signing_certificate`` if given. (The connection's configuration
       checks the signature again whenever it is parsed, so a caller that does
       not pass the certificate here still never uses unsigned metadata.)

    The caller owns ``http`` (proxies, TLS trust store). Failures raise
    ``SsoConfigError(field="idp_metadata_url")``.
    """
    field = "idp_metadata_url"
    # (1):
    check_url(url, field=field)
    deadline = time.monotonic() + timeout_s
    chunks: list[bytes] = []
    size = 0
    # (2):
    try:
        with http.stream("GET", url, timeout=timeout_s, follow_redirects=False) as resp:
            if resp.status_code != 200:
                raise SsoConfigError(
                    f"IdP metadata URL answered HTTP {resp.status_code}", field=field
                )
            # (3):
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise SsoConfigError("IdP metadata exceeds the size limit", field=field)
                if time.monotonic() > deadline:
                    raise SsoConfigError("IdP metadata fetch timed out", field=field)
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise SsoConfigError(
            f"IdP metadata could not be fetched ({type(exc).__name__})", field=field
        ) from exc
    body = b"".join(chunks)
    # (4):
    try:
        parse_idp_metadata(body, signing_certificate=signing_certificate)
    except SsoConfigError as exc:
        raise SsoConfigError(exc.message, field=field) from exc
    return body
