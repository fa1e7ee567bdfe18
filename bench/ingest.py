"""Concurrent live calls: how many Twilio Media Streams one server process keeps up with.

Set-up (all by the script): a fresh data directory with a tenant, a
deployment, an agent and an ingest key (made in-process), then ``callvault
serve`` (one worker process, TLS 1.3, embedded SQLite, local object store).
For each N of ``--streams`` (ascending), N clients in one asyncio process
each open ``wss://…/v1/ingest/twilio/{deployment}`` and stream ``--seconds``
of inbound μ-law in 20 ms ``media`` frames at real-time pace (each frame sent
at its own time, not bunched; the streams' starts spread over 5 s), then
``stop``, and wait for the server to close the socket. Live redaction's audio
stage (the DTMF detector and silencing guard) and sealing are on, as in
production.

The audio is a realistic caller track, not silence: a 10 s loop of 4 s of
speech-level signal (a voiced hum with harmonics and noise at about -16
dBFS, the level the DTMF detector must examine closely), one 100 ms keypad
press, and near silence for the rest (the caller listening).

A run at N keeps up when every stream ended ``completed`` with no frame lost,
the server's per-chunk processing time p99 (measured in the server around
guard + seal, reported per call in its log) is below 20 ms, and the server
closed every socket within 2 s of its ``stop`` (no backlog). The client's own
lateness is recorded: if the client could not send on time, the run is
marked invalid rather than counted for the server.

Prints one JSON object: per N the figures, and ``max_streams_kept_up``.
Target: >= 200 concurrent streams on one worker process.

    python bench/ingest.py [--streams 50,100,150,200,250] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from array import array
from datetime import timedelta
from pathlib import Path
from typing import Any

from _calibration import calibration_us

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from callvault import access, tenancy
from callvault.access import Role, ScopeKind
from callvault.bootstrap import initialise
from callvault.calls._twilio_frames import FrameWriter
from callvault.config import load_settings
from callvault.redact import mulaw_encode
from callvault.runtime import Runtime

_BIN = Path(sys.executable).parent / "callvault"
CALLVAULT = str(_BIN) if _BIN.exists() else (shutil.which("callvault") or "callvault")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
RATE = 8000
FRAME = 160
#: Calls begin (and so end) spread over this many seconds, as real calls do: a
#: level measures N calls live at once, not N call set-ups in the same instant.
STAGGER_S = 5.0


def log(msg: str) -> None:
    print(f"bench/ingest: {msg}", file=sys.stderr, flush=True)


def caller_audio() -> bytes:
    """10 s of μ-law: 4 s speech-level, one key press, the rest near silence."""
    rng = random.Random(7)
    pcm = array("h")
    for k in range(4 * RATE):
        f0 = 140 + 30 * math.sin(k / 2400)
        v = sum((2600 / h) * math.sin(2 * math.pi * f0 * h * k / RATE) for h in (1, 2, 3, 4, 5)) * (
            0.55 + 0.45 * math.sin(k / 1300)
        ) + rng.gauss(0, 300)
        pcm.append(max(-32768, min(32767, round(v))))
    for k in range(800):  # the '5' key
        pcm.append(
            round(
                7000 * math.sin(2 * math.pi * 770 * k / RATE)
                + 7000 * math.sin(2 * math.pi * 1336 * k / RATE)
            )
        )
    while len(pcm) < 10 * RATE:
        pcm.append(round(rng.gauss(0, 40)))
    return mulaw_encode(pcm.tobytes())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(env: dict[str, str]) -> tuple[str, str, str]:
    """deployment, agent, ingest key."""
    settings = load_settings(env)
    init = initialise(settings, tenant_name="bench", owner_name="owner")
    rt = Runtime.open(settings)
    try:
        with rt.db.tenant_tx(init.tenant_id) as s:
            change = tenancy.Change(actor_id=init.principal_id, request_id=None)
            dep = tenancy.create_deployment(
                s, rt.sealer, rt.audit, init.tenant_id, tenancy.DeploymentSettings(name="d"), change
            )
            agent = tenancy.create_agent(
                s, rt.sealer, rt.audit, dep, tenancy.AgentSettings(name="a", prompt="p"), change
            )
            p = access.create_principal(s, init.tenant_id, kind="service", name="ingest")
            access.bind_role(
                s,
                init.tenant_id,
                p.id,
                Role.INGEST,
                ScopeKind.TENANT,
                init.tenant_id,
                created_by="bench",
            )
            key = access.issue_key(s, init.tenant_id, p.id, label="b", ttl=timedelta(days=1))
            return dep.id, agent.id, key.token
    finally:
        rt.close()


class Server:
    def __init__(self, data: Path, env: dict[str, str]) -> None:
        self.data = data
        self.stderr_path = data.parent / "serve.stderr"
        self.port = int(env["CALLVAULT_PORT"])
        with (data.parent / "serve.stdout").open("wb") as fo, self.stderr_path.open("wb") as fe:
            self.proc = subprocess.Popen(
                [CALLVAULT, "serve"], env=env, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL
            )

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.data / "tls" / "cert.pem"))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        return ctx

    def wait_ready(self, timeout_s: float = 60) -> None:
        import httpx  # noqa: PLC0415

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.stderr_path.read_text()[-2000:]
                raise SystemExit(f"bench/ingest: serve exited: {tail}")
            if (self.data / "tls" / "cert.pem").exists():
                try:
                    r = httpx.get(f"https://127.0.0.1:{self.port}/readyz", verify=self.context())
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise SystemExit("bench/ingest: serve not ready")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK

    def rss_bytes(self) -> int:
        return int(Path(f"/proc/{self.proc.pid}/statm").read_text().split()[1]) * _PAGE

    def stream_logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            if "twilio stream ended" in line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def one_stream(
    url: str,
    ctx: ssl.SSLContext,
    audio: bytes,
    seconds: float,
    agent: str,
    key: str,
    start_at: float,
    offset_s: float,
) -> dict[str, Any]:
    from websockets.asyncio.client import connect  # noqa: PLC0415
    from websockets.exceptions import ConnectionClosed  # noqa: PLC0415

    fw = FrameWriter()
    frames = round(seconds * 1000 / 20)
    late_max = 0.0
    async with connect(url, ssl=ctx, open_timeout=60, close_timeout=30, max_queue=None) as ws:
        await ws.send(fw.connected())
        await ws.send(fw.start({"agent_id": agent, "callvault_key": key}))
        loop = asyncio.get_running_loop()
        t0 = max(start_at, loop.time()) + offset_s
        for i in range(frames):
            due = t0 + i * 0.02
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                late_max = max(late_max, -delay)
            pos = (i * FRAME) % len(audio)
            await ws.send(fw.media(audio[pos : pos + FRAME]))
        await ws.send(fw.stop())
        stopped = loop.time()
        code = None
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
        close_lag = loop.time() - stopped
    return {"code": code, "late_max_s": late_max, "close_lag_s": close_lag}


async def run_level(
    server: Server, n: int, seconds: float, dep: str, agent: str, key: str, audio: bytes
) -> dict[str, Any]:
    url = f"wss://127.0.0.1:{server.port}/v1/ingest/twilio/{dep}"
    ctx = server.context()
    loop = asyncio.get_running_loop()
    start_at = loop.time() + 2.0  # connect everyone first, then stream (staggered)
    before_logs = len(server.stream_logs())
    cpu0, rss0 = server.cpu_seconds(), server.rss_bytes()
    rss_peak = rss0

    async def sample_rss() -> None:
        nonlocal rss_peak
        while True:
            rss_peak = max(rss_peak, server.rss_bytes())
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_rss())
    t0 = time.monotonic()
    results = await asyncio.gather(
        *(
            one_stream(url, ctx, audio, seconds, agent, key, start_at, i * STAGGER_S / n)
            for i in range(n)
        ),
        return_exceptions=True,
    )
    wall = time.monotonic() - t0
    sampler.cancel()
    cpu = server.cpu_seconds() - cpu0
    await asyncio.sleep(1.0)
    logs = server.stream_logs()[before_logs:]
    errors = [type(r).__name__ for r in results if isinstance(r, BaseException)]
    ok = [r for r in results if isinstance(r, dict)]
    p99s = sorted(int(entry.get("chunk_p99_us", 0)) for entry in logs)
    statuses: dict[str, int] = {}
    for entry in logs:
        statuses[str(entry.get("status"))] = statuses.get(str(entry.get("status")), 0) + 1
    lost = sum(int(entry.get("lost", 0)) for entry in logs)
    late = max((r["late_max_s"] for r in ok), default=0.0)
    lag = max((r["close_lag_s"] for r in ok), default=0.0)
    kept_up = (
        not errors
        and len(ok) == n
        and all(r["code"] == 1000 for r in ok)
        and statuses.get("completed", 0) == n
        and lost == 0
        and (p99s[-1] if p99s else 0) < 20_000
        and lag < 2.0
    )
    return {
        "streams": n,
        "kept_up": kept_up,
        "client_on_time": late < 0.1,
        "completed": statuses.get("completed", 0),
        "statuses": statuses,
        "client_errors": sorted(set(errors)),
        "frames_lost": lost,
        "server_chunk_p99_us_worst_call": p99s[-1] if p99s else None,
        "server_chunk_p99_us_median_call": p99s[len(p99s) // 2] if p99s else None,
        "close_lag_max_s": round(lag, 3),
        "client_late_max_s": round(late, 3),
        "server_cpu_percent": round(100 * cpu / wall, 1),
        "server_cpu_percent_per_stream": round(100 * cpu / wall / n, 3),
        "server_rss_mb_per_stream": round((rss_peak - rss0) / n / 2**20, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", default="50,100,150,200,250")
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    levels = [int(x) for x in args.streams.split(",")]
    audio = caller_audio()
    with tempfile.TemporaryDirectory(prefix="cv-bench-ingest-") as tmp:
        data = Path(tmp) / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLVAULT_")}
        env |= {
            "CALLVAULT_DATA_DIR": str(data),
            "CALLVAULT_PORT": str(free_port()),
            "CALLVAULT_HOST": "127.0.0.1",
            "CALLVAULT_DB_POOL_SIZE": "32",
        }
        dep, agent, key = prepare(env)
        server = Server(data, env)
        try:
            server.wait_ready()
            import uvloop  # noqa: PLC0415

            rows = []
            for n in levels:
                log(f"{n} streams for {args.seconds:.0f} s")
                row = uvloop.run(run_level(server, n, args.seconds, dep, agent, key, audio))
                log(json.dumps(row))
                rows.append(row)
                if not row["kept_up"]:
                    break
        finally:
            server.stop()
    kept = [r["streams"] for r in rows if r["kept_up"] and r["client_on_time"]]
    print(
        json.dumps(
            {
                "bench": "ingest",
                "seconds_per_level": args.seconds,
                "levels": rows,
                "max_streams_kept_up": max(kept, default=0),
                "target_streams": 200,
                "cpus": os.cpu_count(),
                "calibration_us": calibration_us(),
            }
        )
    )


if __name__ == "__main__":
    main()
