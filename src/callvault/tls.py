"""TLS for ``callvault serve``: TLS 1.3 only, and a self-signed certificate on first start."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from callvault.config import Settings
from callvault.crypto.hazmat import cert_fingerprint, generate_self_signed
from callvault.errors import ConfigError


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: Path
    key: Path
    fingerprint: str
    generated: bool


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def ensure_tls_files(settings: Settings) -> TlsFiles:
    """The configured certificate, or the data directory's (generated on first start)."""
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        cert, key, generated = settings.tls_cert_file, settings.tls_key_file, False
        for name, path in (("CALLVAULT_TLS_CERT_FILE", cert), ("CALLVAULT_TLS_KEY_FILE", key)):
            if not path.is_file():
                raise ConfigError(f"{name} does not name a readable file", field=name)
    else:
        tls_dir = settings.data_dir / "tls"
        cert, key = tls_dir / "cert.pem", tls_dir / "key.pem"
        generated = not cert.exists()
        if generated:
            tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            hosts = sorted({"localhost", "127.0.0.1", "::1", settings.host} - {"0.0.0.0", "::"})  # noqa: S104 - filtered out, not bound
            cert_pem, key_pem = generate_self_signed(hosts)
            _write_private(key, key_pem)
            _write_private(cert, cert_pem)
    try:
        fingerprint = cert_fingerprint(cert.read_bytes())
    except ValueError:
        raise ConfigError("TLS certificate is not PEM", field="CALLVAULT_TLS_CERT_FILE") from None
    return TlsFiles(cert=cert, key=key, fingerprint=fingerprint, generated=generated)


def restrict_to_tls13(context: ssl.SSLContext) -> None:
    """Minimum and maximum TLS 1.3: a TLS 1.2 client fails the handshake."""
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
