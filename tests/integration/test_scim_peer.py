"""The scim2-tester compliance suite (run by scim2-cli) against callvault on loopback.

A data directory is made by ``callvault init``; a server process runs the
application with the SCIM routers under uvicorn on 127.0.0.1 (plain HTTP on
loopback: TLS is covered by test_serve_tls.py); the tenant owner creates a
SCIM token through /v1; then ``scim --url … -h "Authorization: Bearer …" test``
must report every check SUCCESS (scim2-cli exits 1 on anything else,
skipped checks included).

Skipped only when scim2-cli is not installed and CV_TEST_REQUIRE_POSTGRES is
not set (the pinned dev dependencies install it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.test_serve_tls import child_env, free_port, line_value, run_cli

pytestmark = pytest.mark.server

_BIN = Path(sys.executable).parent / "scim"
SCIM_CLI = str(_BIN) if _BIN.exists() else shutil.which("scim")
PEER_TIMEOUT_S = 600
READY_TIMEOUT_S = 30.0

# The application as `callvault serve` builds it, plus the SCIM routers when
# app.py does not include them yet; uvicorn on loopback.
_LAUNCHER = """
import sys
from pathlib import Path
import uvicorn
from callvault.api.app import create_fastapi
from callvault.api.middleware import Guard
from callvault.api.routers import scim, scim_tokens
from callvault.config import load_settings
from callvault.runtime import Runtime

rt = Runtime.open(load_settings())
app = create_fastapi(rt)
paths = {getattr(r, "path", None) for r in app.router.routes}
if "/v1/tenant/scim-tokens" not in paths:
    app.include_router(scim_tokens.router)
if "/scim/v2/{tenant}/{path:path}" not in paths:
    app.include_router(scim.router)
guarded = Guard(app, max_body_bytes=rt.settings.max_body_bytes,
                hsts_max_age_seconds=rt.settings.hsts_max_age_seconds)
uvicorn.run(guarded, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@dataclass
class ScimServer:
    proc: subprocess.Popen[bytes]
    port: int
    tenant_id: str
    owner_key: str
    stderr_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _wait_ready(server: ScimServer) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"server exited early:\n{server.stderr_path.read_text(errors='replace')}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail("server not ready")


@pytest.fixture(scope="module")
def scim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScimServer]:
    if SCIM_CLI is None:
        if os.environ.get("CV_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail("scim2-cli is not installed (pip install the dev dependencies)")
        pytest.skip("scim2-cli is not installed")
    root = tmp_path_factory.mktemp("scim-peer")
    env = child_env(data_dir=root / "data")
    init = run_cli("init", env=env)
    assert init.returncode == 0, init.stderr
    port = free_port()
    err = root / "server.stderr"
    with err.open("wb") as fe:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=fe,
            stdin=subprocess.DEVNULL,
        )
    server = ScimServer(
        proc, port, line_value(init.stdout, "tenant"), line_value(init.stdout, "api key"), err
    )
    try:
        _wait_ready(server)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _scim_token(server: ScimServer) -> str:
    r = httpx.post(
        f"{server.url}/v1/tenant/scim-tokens",
        headers={"Authorization": f"Bearer {server.owner_key}"},
        json={"label": "scim2-tester"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


_STATUS_LINE = re.compile(r"^([A-Z]+) ")


def test_scim2_tester_passes_with_no_failure(scim_server: ScimServer) -> None:
    assert SCIM_CLI is not None
    token = _scim_token(scim_server)
    proc = subprocess.run(
        [
            SCIM_CLI,
            "--url",
            f"{scim_server.url}/scim/v2/{scim_server.tenant_id}",
            "-h",
            f"Authorization: Bearer {token}",
            "test",
        ],
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=PEER_TIMEOUT_S,
        check=False,
    )
    statuses = [m.group(1) for line in proc.stdout.splitlines() if (m := _STATUS_LINE.match(line))]
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(f"scim2-tester: {counts}")  # shown with -s: the summary of the peer run
    not_success = [
        line
        for line in proc.stdout.splitlines()
        if _STATUS_LINE.match(line) and not line.startswith("SUCCESS")
    ]
    assert not_success == [], proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The suite reaches every resource type and the discovery endpoints.
    assert counts.get("SUCCESS", 0) >= 50, counts
    assert "Traceback" not in scim_server.stderr_path.read_text(errors="replace")


def test_the_peer_runs_token_is_refused_on_another_tenants_path(scim_server: ScimServer) -> None:
    token = _scim_token(scim_server)
    other = "ten_" + "a" * 26
    r = httpx.get(
        f"{scim_server.url}/scim/v2/{other}/Users",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 401
    assert r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
