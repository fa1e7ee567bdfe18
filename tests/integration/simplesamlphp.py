"""SimpleSAMLphp identity providers on loopback, one per simulated customer.

:meth:`SimpleSamlIdp.start` does, in order:

1. Find ``php`` and SimpleSAMLphp (``CV_TEST_SIMPLESAMLPHP``, else Debian's
   ``/usr/share/simplesamlphp``); raise :class:`SamlPeerUnavailableError` if
   either is missing.
2. Make a fresh directory with the instance's own ``config/config.php``
   (``baseurlpath`` is the full loopback URL, ``enable.saml20-idp``, a random
   ``secretsalt`` and admin password, store ``phpsession`` with its own save
   path, session cookies without ``Secure`` since the peer speaks plain
   HTTP), ``config/authsources.php`` (``exampleauth:UserPass`` users with
   email, display name and group attributes), ``metadata/`` and ``cert/``
   (a fresh RSA-2048 key and self-signed certificate: every instance, i.e.
   every simulated customer, signs with its own key).
3. Serve ``www/`` with ``php -S 127.0.0.1:<port>`` and
   ``SIMPLESAMLPHP_CONFIG_DIR`` pointing at the instance's config, and wait
   until its IdP metadata answers.

Service providers (our SP connections) are registered with
:meth:`SimpleSamlIdp.register_sp`, which rewrites ``saml20-sp-remote.php``;
SimpleSAMLphp reads metadata files on every request, so per-test knobs
(assertion/response signing, SHA-1, assertion or NameID encryption to our
SP's certificate, signed AuthnRequests) need no restart. The IdP's own
metadata can be signed the same way (:meth:`SimpleSamlIdp.sign_metadata`:
SimpleSAMLphp's ``metadata.sign.*`` options, its own ``Metadata\\Signer``).
:func:`browser_login` drives the IdP's login form with httpx the way a
browser would and returns the auto-POST form.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization  # noqa: TID251 - the test IdP's and test SP's RSA keys have no counterpart in callvault.crypto.hazmat
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: TID251 - same: test-only RSA and EC keys
from cryptography.x509.oid import NameOID

from callvault.sso import SsoIdentity
from callvault.sso._adapter import ReplayGuard
from callvault.sso.saml import MemoryReplayGuard, SamlAdapter, SamlConfig

_START_TIMEOUT_S = 20.0
_DEFAULT_ROOT = Path("/usr/share/simplesamlphp")

#: Users of every instance: username → (password, attributes). Test-only values.
USERS: dict[str, tuple[str, dict[str, list[str]]]] = {
    "alice": (
        "alice-pass",
        {
            "uid": ["alice"],
            "mail": ["alice@customer.example"],
            "displayName": ["Alice Example"],
            "groups": ["cv-admins", "cv-agents"],
        },
    ),
    "bob": (
        "bob-pass",
        {
            "uid": ["bob"],
            "mail": ["bob@customer.example"],
            "displayName": ["Bob Example"],
            "groups": ["cv-agents"],
        },
    ),
}


class SamlPeerUnavailableError(Exception):
    """php or SimpleSAMLphp is not on this machine."""


def find_simplesamlphp() -> tuple[Path, Path]:
    """(php binary, SimpleSAMLphp root) or :class:`SamlPeerUnavailableError`."""
    php = shutil.which("php")
    root = Path(os.environ.get("CV_TEST_SIMPLESAMLPHP", str(_DEFAULT_ROOT)))
    if php is None:
        raise SamlPeerUnavailableError("php not found (apt-get install php-cli php-xml)")
    if not (root / "www" / "saml2" / "idp" / "SSOService.php").is_file():
        raise SamlPeerUnavailableError(
            f"SimpleSAMLphp not found at {root} (apt-get install simplesamlphp php-mbstring)"
        )
    return Path(php), root


@dataclass(frozen=True)
class KeyPair:
    """A test-only key (RSA, or EC) and self-signed certificate, PEM."""

    key_pem: str
    cert_pem: str

    @property
    def cert_b64(self) -> str:
        """The certificate body (base64 DER), as metadata carries it."""
        return "".join(line for line in self.cert_pem.splitlines() if "-----" not in line)

    @classmethod
    def generate(cls, common_name: str, *, ec_p256: bool = False) -> KeyPair:
        """RSA 2048 (or, with ``ec_p256``, an EC P-256 key), valid from yesterday for 30 days."""
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
            ec.generate_private_key(ec.SECP256R1())
            if ec_p256
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return cls(key_pem=key_pem, cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode())


@dataclass
class SpRemote:
    """Our SP as this IdP knows it, with the per-test knobs."""

    entity_id: str
    acs_url: str
    sign_assertion: bool = True
    sign_response: bool = False
    #: "sha256" or "sha1" (the latter must be refused by our SP).
    signature_algorithm: str = "sha256"
    #: PEM certificate of our SP to encrypt the assertion to; None: not encrypted.
    encrypt_to_cert: str | None = None
    #: PEM certificate of our SP to encrypt the NameID to (``nameid.encryption``: an
    #: ``EncryptedID``, AES-128-CBC in SimpleSAMLphp 1.x); None: a plain NameID.
    encrypt_name_id_to_cert: str | None = None
    #: PEM certificate our SP signs AuthnRequests with; set: the IdP refuses unsigned ones.
    require_requests_signed_by: str | None = None
    name_id_format: str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


def _php_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _php_key(cert_pem: str, *, use: str) -> str:
    body = "".join(line for line in cert_pem.splitlines() if "-----" not in line)
    return (
        f"['encryption' => {_php_bool(value=use == 'encryption')},"
        f" 'signing' => {_php_bool(value=use == 'signing')},"
        f" 'type' => 'X509Certificate', 'X509Certificate' => {_php_str(body)}]"
    )


def _php_bool(*, value: bool) -> str:
    return "true" if value else "false"


_ATTR_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
_SIG_ALGS = {
    "sha256": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "sha1": "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class SimpleSamlIdp:
    """A running instance. Use :meth:`start`; always :meth:`stop` it."""

    php: Path
    root: Path
    dir: Path
    name: str
    keys: KeyPair
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    sps: dict[str, SpRemote] = field(default_factory=dict)
    #: Claimed entity id; None: the IdP's own metadata URL (SimpleSAMLphp's default).
    claimed_entity_id: str | None = None
    #: Who signs the IdP's metadata document (``metadata.sign.*``); None: unsigned.
    metadata_signer: KeyPair | None = None
    #: "sha256" or "sha1" (SimpleSAMLphp pairs the digest with the signature's hash).
    metadata_signature_algorithm: str = "sha256"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def entity_id(self) -> str:
        return self.claimed_entity_id or f"{self.base_url}saml2/idp/metadata.php"

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}saml2/idp/metadata.php"

    @property
    def idp_initiated_url(self) -> str:
        """Where a browser starts an IdP-initiated (unsolicited) login; add ``spentityid``."""
        return f"{self.base_url}saml2/idp/SSOService.php"

    @property
    def logfile(self) -> Path:
        return self.dir / "php.log"

    @classmethod
    def start(cls, name: str, *, claimed_entity_id: str | None = None) -> SimpleSamlIdp:
        """Steps (1)-(3) of the module docstring.

        ``claimed_entity_id`` makes this IdP call itself by another IdP's
        entity id (an attacker's IdP impersonating a customer's).
        """
        # (1):
        php, root = find_simplesamlphp()
        # (2):
        idp = cls(
            php=php,
            root=root,
            dir=Path(tempfile.mkdtemp(prefix=f"cv-ssp-{name}-")),
            name=name,
            keys=KeyPair.generate(f"callvault test IdP {name}"),
            port=_free_port(),
            claimed_entity_id=claimed_entity_id,
        )
        try:
            idp._write_config()
            # (3):
            idp._spawn_and_wait()
        except BaseException:
            idp.stop()
            raise
        return idp

    def _write_config(self) -> None:
        for sub in ("config", "metadata", "cert", "log", "data", "tmp", "sessions"):
            (self.dir / sub).mkdir()
        (self.dir / "cert" / "idp.key").write_text(self.keys.key_pem)
        (self.dir / "cert" / "idp.crt").write_text(self.keys.cert_pem)
        d = self.dir
        (d / "config" / "config.php").write_text(f"""<?php
$config = [
    'baseurlpath' => {_php_str(self.base_url)},
    'certdir' => {_php_str(str(d / "cert") + "/")},
    'loggingdir' => {_php_str(str(d / "log") + "/")},
    'datadir' => {_php_str(str(d / "data") + "/")},
    'tempdir' => {_php_str(str(d / "tmp"))},
    'metadatadir' => {_php_str(str(d / "metadata") + "/")},
    'metadata.sources' => [['type' => 'flatfile']],
    'secretsalt' => {_php_str(secrets.token_hex(16))},
    'auth.adminpassword' => {_php_str(secrets.token_hex(16))},
    'technicalcontact_name' => 'callvault tests',
    'technicalcontact_email' => 'na@example.invalid',
    'timezone' => 'UTC',
    'enable.saml20-idp' => true,
    'enable.shib13-idp' => false,
    'admin.protectindexpage' => false,
    'admin.protectmetadata' => false,
    'admin.checkforupdates' => false,
    'showerrors' => true,
    'errorreporting' => false,
    'debug' => ['saml' => false, 'backtraces' => true, 'validatexml' => false],
    'logging.level' => SimpleSAML\\Logger::WARNING,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true],
    'store.type' => 'phpsession',
    'session.phpsession.savepath' => {_php_str(str(d / "sessions"))},
    'session.phpsession.cookiename' => {_php_str("SSP" + self.name)},
    'session.cookie.name' => {_php_str("SSPSession" + self.name)},
    'session.authtoken.cookiename' => {_php_str("SSPAuth" + self.name)},
    'session.cookie.secure' => false,
    'session.cookie.samesite' => null,
    'session.cookie.path' => '/',
    'language.cookie.secure' => false,
    'trusted.url.domains' => ['127.0.0.1'],
];
""")
        users = ",\n".join(
            f"        {_php_str(f'{u}:{pw}')} => ["
            + ", ".join(
                f"{_php_str(k)} => [" + ", ".join(_php_str(v) for v in vals) + "]"
                for k, vals in attrs.items()
            )
            + "]"
            for u, (pw, attrs) in USERS.items()
        )
        (d / "config" / "authsources.php").write_text(f"""<?php
$config = [
    'admin' => ['core:AdminPassword'],
    'example-userpass' => [
        'exampleauth:UserPass',
{users},
    ],
];
""")
        self._write_hosted()
        self._write_sps()

    def _write_hosted(self) -> None:
        d = self.dir
        key = _php_str(self.claimed_entity_id) if self.claimed_entity_id else "'__DYNAMIC:1__'"
        signing = ""
        if self.metadata_signer is not None:
            (d / "cert" / "metadata-signer.key").write_text(self.metadata_signer.key_pem)
            (d / "cert" / "metadata-signer.crt").write_text(self.metadata_signer.cert_pem)
            algorithm = _SIG_ALGS[self.metadata_signature_algorithm]
            signing = f"""    'metadata.sign.enable' => true,
    'metadata.sign.privatekey' => 'metadata-signer.key',
    'metadata.sign.certificate' => 'metadata-signer.crt',
    'metadata.sign.algorithm' => {_php_str(algorithm)},
"""
        text = f"""<?php
$metadata[{key}] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.key',
    'certificate' => 'idp.crt',
    'auth' => 'example-userpass',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
{signing}];
"""
        tmp = d / "metadata" / "saml20-idp-hosted.php.tmp"
        tmp.write_text(text)
        tmp.replace(d / "metadata" / "saml20-idp-hosted.php")

    def sign_metadata(self, signer: KeyPair | None, *, algorithm: str = "sha256") -> None:
        """Serve the IdP's metadata signed by ``signer`` (None: unsigned), from the next request.

        SimpleSAMLphp's own signer: an enveloped signature on the EntityDescriptor,
        referenced by an ``ID`` it adds, exclusive c14n, ``algorithm`` for both the
        signature and the digest, the signer's certificate in ``KeyInfo``.
        """
        self.metadata_signer = signer
        self.metadata_signature_algorithm = algorithm
        self._write_hosted()

    def _write_sps(self) -> None:
        entries = []
        for sp in self.sps.values():
            lines = [
                f"    'AssertionConsumerService' => {_php_str(sp.acs_url)},",
                f"    'NameIDFormat' => {_php_str(sp.name_id_format)},",
                "    'simplesaml.nameidattribute' => 'uid',",
                f"    'saml20.sign.assertion' => {_php_bool(value=sp.sign_assertion)},",
                f"    'saml20.sign.response' => {_php_bool(value=sp.sign_response)},",
                f"    'signature.algorithm' => {_php_str(_SIG_ALGS[sp.signature_algorithm])},",
                f"    'attributes.NameFormat' => {_php_str(_ATTR_BASIC)},",
            ]
            keys = []
            # SimpleSAMLphp encrypts assertion and NameID to the SP's first encryption key.
            encryption = {sp.encrypt_to_cert, sp.encrypt_name_id_to_cert} - {None}
            if len(encryption) > 1:
                raise ValueError("SimpleSAMLphp has one encryption key per SP")
            if sp.encrypt_to_cert is not None:
                lines.append("    'assertion.encryption' => true,")
            if sp.encrypt_name_id_to_cert is not None:
                lines.append("    'nameid.encryption' => true,")
            keys.extend(_php_key(str(cert), use="encryption") for cert in encryption)
            if sp.require_requests_signed_by is not None:
                lines.append("    'validate.authnrequest' => true,")
                keys.append(_php_key(sp.require_requests_signed_by, use="signing"))
            if keys:
                lines.append("    'keys' => [" + ", ".join(keys) + "],")
            entries.append(f"$metadata[{_php_str(sp.entity_id)}] = [\n" + "\n".join(lines) + "\n];")
        text = "<?php\n" + "\n".join(entries) + "\n"
        tmp = self.dir / "metadata" / "saml20-sp-remote.php.tmp"
        tmp.write_text(text)
        tmp.replace(self.dir / "metadata" / "saml20-sp-remote.php")

    def register_sp(self, sp: SpRemote) -> None:
        """Add or replace our SP's entry (knobs take effect on the next request)."""
        self.sps[sp.entity_id] = sp
        self._write_sps()

    def _spawn_and_wait(self) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SIMPLESAMLPHP_CONFIG_DIR": str(self.dir / "config"),
            "HOME": str(self.dir),
        }
        log = self.logfile.open("wb")
        self.process = subprocess.Popen(
            [
                str(self.php),
                "-d",
                "display_errors=stderr",
                "-d",
                f"session.save_path={self.dir / 'sessions'}",
                "-S",
                f"127.0.0.1:{self.port}",
                "-t",
                str(self.root / "www"),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(self.dir),
        )
        log.close()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                r = httpx.get(self.metadata_url, timeout=2.0)
                if r.status_code == 200 and b"EntityDescriptor" in r.content:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        tail = self.logfile.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"SimpleSAMLphp {self.name} did not start: {tail}")

    def metadata_xml(self) -> bytes:
        """The IdP's SAML 2.0 metadata as it serves it."""
        r = httpx.get(self.metadata_url, timeout=5.0)
        r.raise_for_status()
        return r.content

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass(frozen=True)
class PostForm:
    """The IdP's auto-submitting form: where it posts and what."""

    action: str
    fields: dict[str, str]


_FORM_RE = re.compile(r"<form[^>]*action=\"([^\"]+)\"", re.IGNORECASE)
_INPUT_RE = re.compile(r"<input[^>]*>", re.IGNORECASE)
_ATTR_RE = re.compile(r"(\w+)=\"([^\"]*)\"")


def _inputs(page: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for tag in _INPUT_RE.findall(page):
        attrs = {k.lower(): html.unescape(v) for k, v in _ATTR_RE.findall(tag)}
        if "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


def browser_login(redirect_url: str, *, username: str, password: str) -> PostForm:
    """Follow our AuthnRequest redirect, fill in the IdP's login form, return its POST form."""
    with httpx.Client(follow_redirects=True, timeout=10.0) as browser:
        page = browser.get(redirect_url)
        page.raise_for_status()
        fields = _inputs(page.text)
        if "AuthState" not in fields:
            raise RuntimeError(f"no login form (HTTP {page.status_code})")
        fields.update(username=username, password=password)
        action_match = _FORM_RE.search(page.text)
        action = html.unescape(action_match.group(1)) if action_match else "?"
        done = browser.post(httpx.URL(str(page.url)).join(action), data=fields)
        done.raise_for_status()
        post = _inputs(done.text)
        form_match = _FORM_RE.search(done.text)
        if "SAMLResponse" not in post or form_match is None:
            raise RuntimeError(f"no SAMLResponse form (HTTP {done.status_code})")
        return PostForm(action=html.unescape(form_match.group(1)), fields=post)


def start_or_skip(name: str, *, claimed_entity_id: str | None = None) -> SimpleSamlIdp:
    """Start an instance; skip if the peer is absent, fail if ``CV_TEST_REQUIRE_SAML`` is set."""
    try:
        find_simplesamlphp()
    except SamlPeerUnavailableError as exc:
        if os.environ.get("CV_TEST_REQUIRE_SAML"):
            pytest.fail(f"CV_TEST_REQUIRE_SAML is set but {exc}")
        pytest.skip(f"SimpleSAMLphp IdP unavailable: {exc}")
    return SimpleSamlIdp.start(name, claimed_entity_id=claimed_entity_id)


@dataclass(frozen=True)
class SpConnection:
    """One tenant connection of our SP (its entity id, ACS URL and decryption key)."""

    tenant_id: str
    connection_id: str
    keys: KeyPair

    @property
    def entity_id(self) -> str:
        return f"https://callvault.example/sso/{self.tenant_id}/{self.connection_id}"

    @property
    def acs_url(self) -> str:
        return f"{self.entity_id}/saml/acs"

    def raw_config(self, idp: SimpleSamlIdp, **overrides: object) -> dict[str, object]:
        """The connection's JSON configuration, as the login core would store it."""
        raw: dict[str, object] = {
            "sp_entity_id": self.entity_id,
            "acs_url": self.acs_url,
            "idp_metadata_xml": idp.metadata_xml().decode(),
            "sp_private_key_pem": self.keys.key_pem,
            "sp_certificate_pem": self.keys.cert_pem,
            "email_attribute": "mail",
            "display_name_attribute": "displayName",
            "groups_attribute": "groups",
        }
        raw.update(overrides)
        return raw

    def remote(self, **knobs: object) -> SpRemote:
        """This connection as the IdP should know it, with test knobs (see :class:`SpRemote`)."""
        return SpRemote(entity_id=self.entity_id, acs_url=self.acs_url, **knobs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Captured:
    """A real IdP response to one of our AuthnRequests, with what is needed to finish it."""

    conn: SpConnection
    config: SamlConfig
    pending: Mapping[str, str]
    fields: dict[str, str]

    @property
    def xml(self) -> bytes:
        return base64.b64decode(self.fields["SAMLResponse"])

    def finish(
        self,
        adapter: SamlAdapter,
        *,
        saml_response: bytes | str | None = None,
        now: dt.datetime | None = None,
        replay: ReplayGuard | None = None,
        config: SamlConfig | None = None,
        pending: Mapping[str, str] | None = None,
    ) -> SsoIdentity:
        """``finish_login`` with this capture, or with a tampered ``saml_response`` (XML bytes)."""
        fields = dict(self.fields)
        if isinstance(saml_response, bytes):
            fields["SAMLResponse"] = base64.b64encode(saml_response).decode()
        elif isinstance(saml_response, str):
            fields["SAMLResponse"] = saml_response
        return adapter.finish_login(
            config or self.config,
            tenant_id=self.conn.tenant_id,
            connection_id=self.conn.connection_id,
            params=fields,
            pending=self.pending if pending is None else pending,
            now=now or dt.datetime.now(dt.UTC),
            replay=MemoryReplayGuard() if replay is None else replay,
        )


def sp_initiated_login(
    adapter: SamlAdapter,
    idp: SimpleSamlIdp,
    conn: SpConnection,
    *,
    user: str = "alice",
    knobs: dict[str, object] | None = None,
    overrides: dict[str, object] | None = None,
) -> Captured:
    """Register ``conn`` at ``idp`` with ``knobs``, start a login, log in as ``user``."""
    idp.register_sp(conn.remote(**(knobs or {})))
    config = adapter.parse_config(conn.raw_config(idp, **(overrides or {})))
    start = adapter.start_login(config, tenant_id=conn.tenant_id, connection_id=conn.connection_id)
    form = browser_login(start.redirect_url, username=user, password=USERS[user][0])
    if form.action != conn.acs_url:
        raise RuntimeError("the IdP posted to another ACS URL")
    return Captured(conn=conn, config=config, pending=start.pending, fields=form.fields)
