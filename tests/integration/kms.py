"""A throwaway ``moto_server`` speaking the AWS KMS API, for the ``aws-kms`` provider tests.

:meth:`MotoServer.start`:

1. Find the binary (``CV_TEST_MOTO_SERVER``, else next to ``sys.executable``,
   else ``moto_server`` on ``PATH``).
2. Start it on a free loopback port (retrying if another process takes the
   port between probe and bind), its output in a temporary log file.
3. Wait until it answers HTTP, or fail with the end of its log.

:meth:`MotoServer.stop` terminates it (kills it if it lingers). Moto keeps its
state in memory, so a fresh server is a fresh, empty "AWS account".
Credentials are dummies and passed explicitly: nothing is read from or
written to ``os.environ``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import SecretStr

from callvault.keys._aws_kms import AwsKmsKeyProvider

REGION = "eu-west-1"
ACCESS_KEY_ID = "AKIATESTTESTTESTTEST"
SECRET_ACCESS_KEY = SecretStr("moto-dummy-secret")
_START_ATTEMPTS = 3
_READY_TIMEOUT_S = 30.0


class MotoUnavailableError(Exception):
    """``moto_server`` is not installed here."""


def find_moto_server() -> Path:
    candidates: list[Path] = []
    if env := os.environ.get("CV_TEST_MOTO_SERVER"):
        candidates.append(Path(env))
    candidates.append(Path(sys.executable).parent / "moto_server")
    if on_path := shutil.which("moto_server"):
        candidates.append(Path(on_path))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise MotoUnavailableError(
        "moto_server not found (pip install 'moto[server]', or set CV_TEST_MOTO_SERVER)"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - fixed loopback http URL
            return bool(resp.status)
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


@dataclass
class MotoServer:
    """A running ``moto_server``. Use :meth:`start`; always :meth:`stop` it."""

    proc: subprocess.Popen[bytes]
    port: int
    log: IO[bytes]
    _session: Any = None
    _admins: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, binary: Path | None = None) -> MotoServer:
        """Steps (1)-(3) of the module docstring."""
        # (1)
        binary = binary or find_moto_server()
        log = tempfile.TemporaryFile(prefix="cv-moto-")  # noqa: SIM115 - closed by stop()
        for attempt in range(_START_ATTEMPTS):
            # (2)
            port = free_port()
            proc = subprocess.Popen(
                [str(binary), "-H", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            server = cls(proc=proc, port=port, log=log)
            # (3)
            deadline = time.monotonic() + _READY_TIMEOUT_S
            while proc.poll() is None and time.monotonic() < deadline:
                if _answers(server.url):
                    return server
                time.sleep(0.1)
            server._terminate()
            if attempt == _START_ATTEMPTS - 1:
                tail = server.output()
                log.close()
                raise RuntimeError(f"moto_server did not start:\n{tail}")
        raise AssertionError("unreachable")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def _terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def stop(self) -> None:
        try:
            self._terminate()
        finally:
            self.log.close()

    def session(self) -> Any:
        """One boto3 session with the dummy credentials, shared (building one loads
        botocore's service models: most of a second)."""
        if self._session is None:
            import boto3  # noqa: PLC0415 - the aws extra is optional; only these tests need it

            self._session = boto3.session.Session(
                aws_access_key_id=ACCESS_KEY_ID,
                aws_secret_access_key=SECRET_ACCESS_KEY.get_secret_value(),
                region_name=REGION,
            )
        return self._session

    def provider(self, region: str = REGION, **options: Any) -> AwsKmsKeyProvider:
        """An ``aws-kms`` provider on this server, with the dummy credentials."""
        return AwsKmsKeyProvider(
            region=region, endpoint_url=self.url, session=self.session(), **options
        )

    def admin_client(self, region: str = REGION) -> Any:
        """A plain boto3 KMS client, for what a customer does in their own account."""
        if region not in self._admins:
            self._admins[region] = self.session().client(
                "kms", region_name=region, endpoint_url=self.url
            )
        return self._admins[region]
