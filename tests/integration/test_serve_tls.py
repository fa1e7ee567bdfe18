"""`callvault serve` as a real process: TLS 1.3 only, security headers, fail-closed startup.

One server is started per module (``served``) from a data directory made by
``callvault init``; tests that need a start of their own (a second start on the
same data, a bad setting, a missing root key) run ``callvault serve`` themselves.

The child environment is the test's own minus every ``CALLVAULT_*`` variable
(unknown ones are rejected on purpose) and minus ``COLUMNS``/``LINES``, so the
CLI sees what it sees under a service manager or a pipe: no terminal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes  # noqa: TID251 - an independent oracle for the fingerprint, not the code under test

pytestmark = pytest.mark.server

_BIN = Path(sys.executable).parent / "callvault"
CALLVAULT = str(_BIN) if _BIN.exists() else (shutil.which("callvault") or "callvault")

READY_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 60.0
FINGERPRINT_LABEL = "TLS certificate SHA-256 fingerprint:"
GENERATED_LABEL = "generated a self-signed TLS certificate"
_FINGERPRINT_RE = re.compile(r"^(?:[0-9A-F]{2}:){31}[0-9A-F]{2}$")
_TOKEN_RE = re.compile(r"cv1\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_-]{43}")


# -- helpers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**callvault: str | os.PathLike[str]) -> dict[str, str]:
    """os.environ without CALLVAULT_* (and terminal size), plus the given CALLVAULT_* values."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CALLVAULT_") and k not in {"COLUMNS", "LINES"}
    }
    env.update({f"CALLVAULT_{k.upper()}": str(v) for k, v in callvault.items()})
    return env


def run_cli(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CALLVAULT, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def line_value(text: str, label: str) -> str:
    """The rest of the one line that starts with ``label`` (strict: no wrapped continuation)."""
    for line in text.splitlines():
        if line.startswith(label):
            return line[len(label) :].strip()
    raise AssertionError(f"no line starting with {label!r} in:\n{text}")


def cert_fingerprint(cert_pem: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def tls13_context(ca: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def stderr_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    data: Path
    stdout_path: Path
    stderr_path: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def cert(self) -> Path:
        return self.data / "tls" / "cert.pem"

    @property
    def key(self) -> Path:
        return self.data / "tls" / "key.pem"

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=tls13_context(self.cert), timeout=10.0)


def start_server(data: Path, logs: Path, name: str) -> Server:
    """Start ``callvault serve`` on a free port and wait until /readyz answers 200."""
    port = free_port()
    out, err = logs / f"{name}.stdout", logs / f"{name}.stderr"
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(
            [CALLVAULT, "serve"],
            env=child_env(data_dir=data, port=str(port), host="127.0.0.1"),
            stdout=fo,
            stderr=fe,
            stdin=subprocess.DEVNULL,
        )
    server = Server(proc, port, data, out, err)
    try:
        wait_ready(server)
    except BaseException:
        stop_server(server)
        raise
    return server


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last: object = None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(
                f"callvault serve exited with {server.proc.returncode} before it was ready:\n"
                f"{server.stdout()}\n{server.stderr()}"
            )
        if server.cert.exists():
            try:
                with server.client() as c:
                    resp = c.get("/readyz")
                if resp.status_code == 200:
                    return
                last = resp.status_code
            except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
                last = type(exc).__name__
        time.sleep(0.1)
    pytest.fail(f"callvault serve not ready after {READY_TIMEOUT_S}s (last: {last})")


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=5)


@dataclass
class Served:
    server: Server
    init_stdout: str
    owner_key: str
    tenant_id: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("serve")
    data = root / "data"
    init = run_cli("init", env=child_env(data_dir=data))
    assert init.returncode == 0, init.stderr
    server = start_server(data, root, "first")
    try:
        yield Served(
            server=server,
            init_stdout=init.stdout,
            owner_key=line_value(init.stdout, "api key"),
            tenant_id=line_value(init.stdout, "tenant"),
        )
    finally:
        stop_server(server)


@pytest.fixture
def https(served: Served) -> Iterator[httpx.Client]:
    with served.server.client() as c:
        yield c


# -- certificate -------------------------------------------------------------------------


def test_first_start_generates_a_certificate_and_prints_its_fingerprint(served: Served) -> None:
    out = served.server.stdout()
    assert GENERATED_LABEL in out
    printed = line_value(out, FINGERPRINT_LABEL)
    assert _FINGERPRINT_RE.match(printed), f"fingerprint line is not whole: {printed!r}"
    assert printed == cert_fingerprint(served.server.cert)


def test_second_start_reuses_the_certificate(served: Served, tmp_path: Path) -> None:
    before = served.server.cert.read_bytes()
    second = start_server(served.server.data, tmp_path, "second")
    try:
        out = second.stdout()
    finally:
        stop_server(second)
    assert GENERATED_LABEL not in out
    assert served.server.cert.read_bytes() == before
    assert line_value(out, FINGERPRINT_LABEL) == cert_fingerprint(served.server.cert)


def test_private_key_file_is_owner_only(served: Served) -> None:
    assert stat.S_IMODE(served.server.key.stat().st_mode) == 0o600


def test_init_prints_the_owner_api_key_on_one_line(served: Served) -> None:
    # Operators copy the key from a pipe or a log; a key wrapped at 80 columns
    # is a different (invalid) string on each line.
    assert _TOKEN_RE.fullmatch(served.owner_key) is not None


# -- TLS ---------------------------------------------------------------------------------


def test_tls13_client_negotiates_tls13(served: Served) -> None:
    ctx = tls13_context(served.server.cert)
    with (
        socket.create_connection(("127.0.0.1", served.server.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.3"


def test_tls12_client_fails_the_handshake(served: Served) -> None:
    ctx = ssl.create_default_context(cafile=str(served.server.cert))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", served.server.port), timeout=10) as raw,
        pytest.raises((ssl.SSLError, ConnectionResetError)),
    ):
        ctx.wrap_socket(raw, server_hostname="127.0.0.1").close()


def test_plain_http_gets_no_http_response(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.server.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        received = b""
        try:
            while chunk := s.recv(4096):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    assert not received.startswith(b"HTTP/")
    assert b"healthz" not in received


# -- headers -----------------------------------------------------------------------------


def assert_security_headers(resp: httpx.Response) -> None:
    h = resp.headers
    assert re.search(r"max-age=\d+", h.get("strict-transport-security", "")), h
    assert h.get("cache-control") == "no-store"
    assert h.get("x-content-type-options") == "nosniff"
    assert h.get("x-frame-options") == "DENY"


def test_security_headers_on_healthz(https: httpx.Client) -> None:
    resp = https.get("/healthz")
    assert resp.status_code == 200
    assert_security_headers(resp)


def test_security_headers_on_an_authenticated_read(served: Served, https: httpx.Client) -> None:
    resp = https.get("/v1/tenant", headers={"Authorization": f"Bearer {served.owner_key}"})
    assert resp.status_code == 200
    assert resp.json()["id"] == served.tenant_id
    assert_security_headers(resp)


@pytest.mark.parametrize(
    ("path", "status"),
    [("/v1/no-such-thing", 404), ("/v1/tenant", 401)],
    ids=["not-found", "unauthenticated"],
)
def test_security_headers_on_problem_responses(https: httpx.Client, path: str, status: int) -> None:
    resp = https.get(path)
    assert resp.status_code == status
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["status"] == status
    assert_security_headers(resp)


def test_openapi_document_is_served(https: httpx.Client) -> None:
    resp = https.get("/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert "openapi" in doc
    assert "/v1/tenant" in doc["paths"]


def test_healthz_answers_200(https: httpx.Client) -> None:
    assert https.get("/healthz").status_code == 200


def test_readyz_reports_every_check_true(https: httpx.Client) -> None:
    resp = https.get("/readyz")
    assert resp.status_code == 200
    assert resp.json()["checks"] == {"database": True, "keys": True, "audit": True}


# -- fail-closed startup -----------------------------------------------------------------

#: case -> (CALLVAULT_* settings, the variable the one line must name). "{cert}" is a real file.
BAD_SETTINGS: dict[str, tuple[dict[str, str], str]] = {
    "port-not-a-number": ({"port": "abc"}, "CALLVAULT_PORT"),
    "port-out-of-range": ({"port": "70000"}, "CALLVAULT_PORT"),
    "unknown-setting": ({"no_such": "1"}, "CALLVAULT_NO_SUCH"),
    "cert-without-key": ({"tls_cert_file": "{cert}"}, "CALLVAULT_TLS_KEY_FILE"),
}
NO_ROOT_KEY = "no-root-key"


@pytest.fixture(scope="module")
def failed_starts(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every bad start, run concurrently (each is mostly interpreter start-up)."""
    root = tmp_path_factory.mktemp("bad-starts")
    cert = root / "cert.pem"
    cert.write_text("not used: the pair check comes first\n", encoding="ascii")
    envs: dict[str, dict[str, str]] = {}
    for case, (settings, _) in BAD_SETTINGS.items():
        values = {k: v.format(cert=cert) for k, v in settings.items()}
        values.setdefault("port", str(free_port()))
        envs[case] = child_env(data_dir=root / case, **values)
    # A data directory that exists but was never initialised: no keyring, no database.
    (root / NO_ROOT_KEY).mkdir(mode=0o700)
    envs[NO_ROOT_KEY] = child_env(data_dir=root / NO_ROOT_KEY, port=str(free_port()))

    procs = {
        case: subprocess.Popen(
            [CALLVAULT, "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for case, env in envs.items()
    }
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    try:
        for case, proc in procs.items():
            out, err = proc.communicate(timeout=CLI_TIMEOUT_S)
            results[case] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_bad_setting_stops_startup_with_one_line(
    failed_starts: dict[str, subprocess.CompletedProcess[str]], case: str
) -> None:
    proc = failed_starts[case]
    named = BAD_SETTINGS[case][1]
    assert proc.returncode != 0
    lines = stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("callvault: ")
    assert named in lines[0]


def test_serve_without_a_root_key_fails_closed_with_one_line(
    failed_starts: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    proc = failed_starts[NO_ROOT_KEY]
    assert proc.returncode != 0
    lines = stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("callvault: ")
    assert "root key" in lines[0]


# -- configuration commands through the API ----------------------------------------------


def config_env(served: Served, api_key: str) -> dict[str, str]:
    env = child_env(data_dir=served.server.data, url=served.server.url)
    env["CALLVAULT_API_KEY"] = api_key
    return env


def test_config_versions_lists_the_tenants_versions(served: Served) -> None:
    env = config_env(served, served.owner_key)
    proc = run_cli("config", "versions", "tenant", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) >= 1
    assert {r["subject_id"] for r in rows} == {served.tenant_id}
    assert rows[0]["seq"] == 1
    assert rows[0]["op"] == "create"


def test_config_versions_table_shows_whole_version_ids(served: Served) -> None:
    env = config_env(served, served.owner_key)
    as_json = run_cli("config", "versions", "tenant", "--json", env=env)
    table = run_cli("config", "versions", "tenant", env=env)
    assert table.returncode == 0, table.stderr
    # The ids are what `config diff` and `config revert` take: a truncated id is useless.
    for row in json.loads(as_json.stdout):
        assert row["id"] in table.stdout, table.stdout


def test_config_versions_with_a_wrong_key_prints_one_line_and_fails(served: Served) -> None:
    good = served.owner_key
    wrong = good[:-43] + ("A" if good[-43] != "A" else "B") + good[-42:]
    proc = run_cli("config", "versions", "tenant", env=config_env(served, wrong))
    assert proc.returncode != 0
    lines = stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert "401" in lines[0]
    assert wrong[-43:] not in proc.stdout + proc.stderr
