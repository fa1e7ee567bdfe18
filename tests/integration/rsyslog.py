"""A throwaway rsyslogd receiving RFC 5425 syslog over TLS on loopback, and a test PKI.

:func:`make_pki` issues, with ``cryptography``, a CA and under it a server
certificate (``localhost`` and ``127.0.0.1``) and a client certificate, as PEM.

:meth:`Rsyslog.start` does, in order:

1. Find ``rsyslogd`` (``CV_TEST_RSYSLOGD``, else ``PATH``) and its GnuTLS driver (``lmnsd_gtls.so``,
   Debian package rsyslog-gnutls); :func:`require_rsyslogd` skips the test
   without them, or fails it under ``CV_TEST_REQUIRE_POSTGRES=1`` (the flag
   ``scripts/test`` sets to demand every real peer).
2. Write a configuration into a fresh temporary directory that loads only
   ``imtcp`` with the ``gtls`` driver in TLS-only mode (anonymous clients, or
   ``x509/certvalid`` to demand a client certificate from the CA; optionally a
   GnuTLS priority string, to offer TLS 1.3 or only 1.2), listens on
   a free 127.0.0.1 port, keeps its work directory and pid file in that
   directory, and writes every ``callvault`` message as one JSON line holding
   rsyslog's own parse (raw message, structured data, MSGID, PRI, MSG). No
   ``imuxsock`` or ``imklog``: nothing touches ``/dev/log``, the kernel log or
   system files; rsyslog's internal messages go to ``internal.log`` there.
3. Run ``rsyslogd -n -f <conf> -i <pidfile>`` and wait until the port accepts.

:meth:`Rsyslog.stop` terminates it (kills it if it lingers) and keeps the
directory, so :meth:`Rsyslog.start` again brings it back on the same port with
the same output file (a receiver restart); :meth:`Rsyslog.close` also deletes
the directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization  # noqa: TID251 - a test CA issuing server and client certificates has no counterpart in callvault.crypto.hazmat
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: TID251 - same: the test PKI's keys
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_START_TIMEOUT_S = 20.0


class RsyslogUnavailableError(Exception):
    """rsyslogd or its GnuTLS driver is not on this machine."""


def find_rsyslogd() -> Path:
    """``CV_TEST_RSYSLOGD`` if set, else ``rsyslogd`` on ``PATH`` or in ``/usr/sbin``."""
    if env := os.environ.get("CV_TEST_RSYSLOGD"):
        binary: str | None = env if os.access(env, os.X_OK) else None
    else:
        binary = shutil.which("rsyslogd") or next(
            (p for p in ("/usr/sbin/rsyslogd", "/sbin/rsyslogd") if os.access(p, os.X_OK)), None
        )
    if binary is None:
        raise RsyslogUnavailableError("rsyslogd not found (apt-get install rsyslog)")
    drivers = [*Path("/usr/lib").glob("*/rsyslog/lmnsd_gtls.so")]
    if not drivers and not Path("/usr/lib/rsyslog/lmnsd_gtls.so").exists():
        raise RsyslogUnavailableError(
            "rsyslog GnuTLS driver lmnsd_gtls.so not found (apt-get install rsyslog-gnutls)"
        )
    return Path(binary)


def require_rsyslogd() -> Path:
    try:
        return find_rsyslogd()
    except RsyslogUnavailableError as exc:
        if os.environ.get("CV_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CV_TEST_REQUIRE_POSTGRES=1 but {exc}")
        pytest.skip(str(exc))


# -- PKI -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """PEM texts: a CA, a server certificate and key, a client certificate and key."""

    ca_pem: str
    server_cert_pem: str
    server_key_pem: str
    client_cert_pem: str
    client_key_pem: str

    def write(self, directory: Path) -> dict[str, Path]:
        paths = {}
        for name in ("ca_pem", "server_cert_pem", "server_key_pem"):
            path = directory / (name.removesuffix("_pem").replace("_", "-") + ".pem")
            path.write_text(getattr(self, name))
            path.chmod(0o600)
            paths[name] = path
        return paths


def _pem(obj: Any) -> str:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM).decode()
    return obj.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def make_pki(common_name: str = "callvault test CA") -> Pki:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(name: str, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]) -> tuple:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return cert, key

    server, server_key = leaf(
        "localhost",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client, client_key = leaf(
        "callvault-client", ExtendedKeyUsageOID.CLIENT_AUTH, [x509.DNSName("callvault-client")]
    )
    return Pki(_pem(ca), _pem(server), _pem(server_key), _pem(client), _pem(client_key))


# -- rsyslogd ------------------------------------------------------------------------

_CONF = """\
global(
  workDirectory="{work}"
  maxMessageSize="512k"
  net.enableDNS="off"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="{ca}"
  defaultNetstreamDriverCertFile="{cert}"
  defaultNetstreamDriverKeyFile="{key}"
)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1"
       streamDriver.authMode="{authmode}" maxFrameSize="524288")
input(type="imtcp" address="127.0.0.1" port="{port}"{input_extra})
template(name="callvault_json" type="list" option.jsonf="on") {{
  property(outname="raw" name="rawmsg" format="jsonf")
  property(outname="pri" name="pri" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}}
if $app-name == "callvault" then {{
  action(type="omfile" file="{out}" template="callvault_json")
  stop
}}
action(type="omfile" file="{internal}")
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Rsyslog:
    """A running receiver. Use :meth:`start`; always :meth:`close` it."""

    binary: Path
    root: Path
    pki: Pki
    authmode: str = "anon"
    priority: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(
        cls, binary: Path, pki: Pki, *, authmode: str = "anon", priority: str | None = None
    ) -> Rsyslog:
        """Configure (not start) a receiver; ``priority`` is a GnuTLS priority string."""
        root = Path(tempfile.mkdtemp(prefix="cv-rsyslog-"))
        (root / "work").mkdir()
        server = cls(binary, root, pki, authmode, priority)
        extra = f' gnutlsPriorityString="{priority}"' if priority else ""
        paths = pki.write(root)
        (root / "rsyslog.conf").write_text(
            _CONF.format(
                work=root / "work",
                ca=paths["ca_pem"],
                cert=paths["server_cert_pem"],
                key=paths["server_key_pem"],
                authmode=authmode,
                port=server.port,
                input_extra=extra,
                out=server.output,
                internal=root / "internal.log",
            )
        )
        return server

    @property
    def output(self) -> Path:
        return self.root / "messages.jsonl"

    def start(self) -> Rsyslog:
        if self.process is not None:
            return self
        self.process = subprocess.Popen(
            [
                str(self.binary),
                "-n",
                "-f",
                str(self.root / "rsyslog.conf"),
                "-i",
                str(self.root / "rsyslogd.pid"),
            ],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=(self.root / "stdout.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.root / "stdout.log").read_text(errors="replace")
                self.process = None
                raise RuntimeError(f"rsyslogd exited at start:\n{log}")
            if self._listening():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("rsyslogd did not start listening")

    def _listening(self) -> bool:
        # /proc/net/tcp lists the listener without connecting (a probe
        # connection would make rsyslog log a failed TLS handshake).
        want = f"0100007F:{self.port:04X}"
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            parts = line.split()
            if parts[1] == want and parts[3] == "0A":  # 0A: LISTEN
                return True
        return False

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- reading what arrived -----------------------------------------------------

    def messages(self) -> list[dict[str, Any]]:
        if not self.output.exists():
            return []
        text = self.output.read_text(encoding="utf-8")
        # A line is complete once its newline is written.
        return [json.loads(line) for line in text.split("\n")[:-1]]

    def wait_for(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 10.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            messages = self.messages()
            if done(messages) or time.monotonic() > deadline:
                return messages
            time.sleep(0.02)
