"""Throughput of the authorised metadata read ``GET /v1/deployments/{id}`` over TLS 1.3.

Set-up (all by the script): a fresh temporary data directory, ``callvault
init``, ``callvault serve`` (one worker process, TLS 1.3 only) on a free port,
and one deployment created with the owner key. Then ``--clients`` concurrent
clients send the read over persistent (keep-alive) TLS 1.3 connections for
``--seconds`` after a ``--warmup``. Each request is the full production path:
bearer-key authentication (two database reads), Cedar ``authorize``, the
tenant-scoped row read, and the pydantic response model.

Prints one JSON object. Target: >= 1000 requests/s on a 2-core machine. On a
shared machine requests_per_second moves with other load (loadavg_1m_before is
recorded); server_cpu_ms_per_request, the server's CPU time over the requests
it answered, is the steadier figure.

Load generator: ``wrk``, chosen after measuring both. wrk (the default;
Debian package ``wrk``, installed with apt-get if missing) is one C thread on
epoll: about 0.15 ms of CPU per request here, a few percent of one core. The
alternative, ``--generator python`` (one process per core, threads each with a
persistent ``http.client.HTTPSConnection``), costs about 0.6 ms per request,
four times as much, on the same two cores as the server; side by side it
measured 145 req/s against wrk's 206 for the same server. It is kept as a
cross-check, not as the measurement. wrk does not report the TLS version it
negotiated, so the script proves it: the server refuses anything but TLS 1.3
(a TLS 1.2-only probe must fail the handshake, checked below), and a probe
with OpenSSL's default client range (what wrk uses) must negotiate TLSv1.3;
any response wrk counts was therefore served over TLS 1.3.

    python bench/api.py [--seconds 15] [--warmup 3] [--clients 16] [--generator wrk|python]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _calibration import calibration_us

ENDPOINT = "GET /v1/deployments/{id}"
_BIN = Path(sys.executable).parent / "callvault"
CALLVAULT = str(_BIN) if _BIN.exists() else (shutil.which("callvault") or "callvault")
_TOKEN_RE = re.compile(r"cv1\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_-]{43}")
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"bench/api: {msg}", file=sys.stderr, flush=True)


# -- the server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(data: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLVAULT_")}
    env |= {
        "CALLVAULT_DATA_DIR": str(data),
        "CALLVAULT_PORT": str(port),
        "CALLVAULT_HOST": "127.0.0.1",
    }
    return env


def owner_key(init_stdout: str) -> str:
    """The token on ``callvault init``'s "api key" line."""
    for line in init_stdout.splitlines():
        if line.startswith("api key") and (match := _TOKEN_RE.search(line)):
            return match.group(0)
    raise SystemExit("bench/api: no API key in `callvault init` output")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    cert: Path
    stderr: Path

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (all its threads) so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.cert))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        return ctx


@contextmanager
def running_server(data: Path) -> Iterator[tuple[Server, str]]:
    port = free_port()
    env = child_env(data, port)
    init = subprocess.run(
        [CALLVAULT, "init"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if init.returncode != 0:
        raise SystemExit(f"bench/api: callvault init failed: {init.stderr.strip()}")
    token = owner_key(init.stdout)
    err = data.parent / "serve.stderr"
    with (data.parent / "serve.stdout").open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(
            [CALLVAULT, "serve"], env=env, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL
        )
    server = Server(proc, port, data / "tls" / "cert.pem", err)
    try:
        wait_ready(server)
        yield server, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(server: Server, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(
                f"bench/api: callvault serve exited: {server.stderr.read_text().strip()[-2000:]}"
            )
        if server.cert.exists():
            try:
                status, _ = request(server, "GET", "/readyz")
                if status == 200:
                    return
            except (OSError, ssl.SSLError, http.client.HTTPException):
                pass
        time.sleep(0.1)
    raise SystemExit("bench/api: callvault serve did not become ready")


def request(
    server: Server, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[int, Any]:
    conn = http.client.HTTPSConnection(
        "127.0.0.1", server.port, context=server.context(), timeout=10
    )
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


def probe_tls(server: Server) -> tuple[str, bool]:
    """(version negotiated by a default-range client, whether a TLS 1.2-only client fails)."""
    default = ssl.create_default_context(cafile=str(server.cert))
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        default.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        version = tls.version() or "unknown"
    old = ssl.create_default_context(cafile=str(server.cert))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
            old.wrap_socket(raw, server_hostname="127.0.0.1"),
        ):
            return version, False
    except (ssl.SSLError, ConnectionResetError):
        return version, True


# -- load generators ---------------------------------------------------------------------

_WRK_LUA = """
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["Connection"] = "keep-alive"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk not found; installing the Debian package with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        subprocess.run(argv, env=env, check=True, capture_output=True, timeout=600)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench/api: wrk is not installable here; use --generator python")
    return found


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float


def run_wrk(wrk: str, url: str, token: str, clients: int, seconds: float, lua: Path) -> Result:
    lua.write_text(_WRK_LUA % {"token": token}, encoding="ascii")
    argv = [wrk, "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--latency"]
    argv += ["--timeout", "10s", "-s", str(lua), url]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=seconds + 60)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"bench/api: wrk failed: {proc.stdout}{proc.stderr}")
    w = json.loads(line.removeprefix("WRK_JSON "))
    errors = w["connect"] + w["read"] + w["write"] + w["status"] + w["timeout"]
    return Result(
        requests=w["requests"],
        errors=errors,
        seconds=w["duration_us"] / 1e6,
        p50_ms=w["p50_us"] / 1000,
        p99_ms=w["p99_us"] / 1000,
    )


def _py_worker(
    port: int, cert: str, path: str, token: str, threads: int, seconds: float, out: Any
) -> None:
    ctx = ssl.create_default_context(cafile=cert)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    headers = {"Authorization": f"Bearer {token}"}
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        mine: list[float] = []
        ok = bad = 0
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
                continue
            mine.append(time.perf_counter() - t0)
            if resp.status == 200:
                ok += 1
            else:
                bad += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            counts["ok"] += ok
            counts["errors"] += bad

    pool = [threading.Thread(target=client) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((counts["ok"], counts["errors"], latencies))


def run_python(server: Server, path: str, token: str, clients: int, seconds: float) -> Result:
    procs_n = min(clients, max(1, os.cpu_count() or 1))
    per = [clients // procs_n + (1 if i < clients % procs_n else 0) for i in range(procs_n)]
    q: mp.Queue[tuple[int, int, list[float]]] = mp.Queue()
    procs = [
        mp.Process(
            target=_py_worker,
            args=(server.port, str(server.cert), path, token, n, seconds, q),
        )
        for n in per
    ]
    for p in procs:
        p.start()
    parts = [q.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join()
    lat = sorted(x for _, _, ls in parts for x in ls)
    ok = sum(o for o, _, _ in parts)
    q99 = statistics.quantiles(lat, n=100)[98] if len(lat) >= 100 else (lat[-1] if lat else 0.0)
    return Result(
        requests=ok + sum(e for _, e, _ in parts),
        errors=sum(e for _, e, _ in parts),
        seconds=seconds,
        p50_ms=(statistics.median(lat) if lat else 0.0) * 1000,
        p99_ms=q99 * 1000,
    )


# -- main --------------------------------------------------------------------------------


def children_cpu_seconds() -> float:
    ru = os.times()
    return ru.children_user + ru.children_system


def measure(
    args: argparse.Namespace, server: Server, token: str, path: str, work: Path
) -> dict[str, Any]:
    url = f"https://127.0.0.1:{server.port}{path}"
    wrk = ensure_wrk() if args.generator == "wrk" else ""

    def drive(seconds: float) -> Result:
        if args.generator == "wrk":
            return run_wrk(wrk, url, token, args.clients, seconds, work / "auth.lua")
        return run_python(server, path, token, args.clients, seconds)

    if args.warmup > 0:
        drive(args.warmup)
    load_before = os.getloadavg()[0]
    calibration = calibration_us()
    cpu0, gen0, wall0 = server.cpu_seconds(), children_cpu_seconds(), time.monotonic()
    result = drive(args.seconds)
    wall = time.monotonic() - wall0
    server_cpu = server.cpu_seconds() - cpu0
    generator_cpu = children_cpu_seconds() - gen0
    return {
        "result": result,
        "server_cpu_percent": round(100 * server_cpu / wall, 1),
        "server_cpu_ms_per_request": round(1000 * server_cpu / max(1, result.requests), 2),
        # wrk is a child of this process; the Python generator's workers are too.
        "generator_cpu_percent": round(100 * generator_cpu / wall, 1),
        "loadavg_1m_before": round(load_before, 2),
        "calibration_us": calibration,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured duration")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured warm-up first")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--generator", choices=("wrk", "python"), default="wrk")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cv-bench-api-") as tmp:
        work = Path(tmp)
        data = work / "data"
        with running_server(data) as (server, token):
            status, dep = request(server, "POST", "/v1/deployments", token, {"name": "bench"})
            if status != 201:
                raise SystemExit(f"bench/api: creating the deployment answered {status}: {dep}")
            path = f"/v1/deployments/{dep['id']}"
            status, _ = request(server, "GET", path, token)
            if status != 200:
                raise SystemExit(f"bench/api: {path} answered {status}")
            tls_version, refuses_tls12 = probe_tls(server)
            if tls_version != "TLSv1.3" or not refuses_tls12:
                raise SystemExit(f"bench/api: server is not TLS 1.3-only ({tls_version})")
            m = measure(args, server, token, path, work)

    r: Result = m["result"]
    print(
        json.dumps(
            {
                "endpoint": ENDPOINT,
                "tls_version": tls_version,
                "clients": args.clients,
                "seconds": round(r.seconds, 2),
                "requests": r.requests,
                "errors": r.errors,
                "requests_per_second": round(r.requests / r.seconds, 1) if r.seconds else 0.0,
                "p50_ms": round(r.p50_ms, 2),
                "p99_ms": round(r.p99_ms, 2),
                "server_workers": 1,
                "server_cpu_percent": m["server_cpu_percent"],
                "server_cpu_ms_per_request": m["server_cpu_ms_per_request"],
                "generator": args.generator,
                "generator_cpu_percent": m["generator_cpu_percent"],
                "server_refuses_tls12": refuses_tls12,
                "cpus": os.cpu_count(),
                "loadavg_1m_before": m["loadavg_1m_before"],
                "calibration_us": m["calibration_us"],
                "target_requests_per_second": 1000,
            }
        )
    )


if __name__ == "__main__":
    main()
