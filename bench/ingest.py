"""Concurrent live calls: how many Twilio Media Streams one server process keeps up with.

Set-up (all by the script): a fresh data directory with a tenant, a
deployment, an agent and an ingest key (made in-process), then ``callvault
serve`` (one worker process, TLS 1.3, embedded SQLite, local object store).
For each N of ``--streams`` (ascending), N clients in one asyncio process
each open ``wss://…/v1/ingest/twilio/{deployment}`` and stream ``--seconds``
of inbound μ-law in 20 ms ``media`` frames at real-time pace (each stream's
frame ``i`` written at its own start plus ``i`` x 20 ms; the streams' starts
spread over 5 s), then ``stop``, and wait for the server to close the
socket. Live redaction's audio stage (the DTMF detector and silencing guard)
and sealing are on, as in production.

The client shares the machine with the server, so it is kept cheap: every
frame is encoded once, as WebSocket bytes (masked, with a mask drawn once
per frame, not per send: the server's work is the same; the masks only
matter to intermediaries, and there are none on loopback), and shared by all
streams (their ids and audio are the same; each connection is its own call
to the server); one task writes the frames of all streams, waking at most
every ``TICK_S`` for those due, so each frame leaves within about a
millisecond of its time. The handshake, ``start``, ``stop``, pings and the
close go through the websockets library as usual.

The audio is a realistic caller track, not silence: a 10 s loop of 4 s of
speech-level signal (a voiced hum with harmonics and noise at about -16
dBFS, the level the DTMF detector must examine closely), one 100 ms keypad
press, and near silence for the rest (the caller listening).

A run at N keeps up when every stream ended ``completed`` with no frame lost,
the server's per-chunk processing time p99 (measured in the server around
guard + seal, reported per call in its log) is below 20 ms, and the server
closed the sockets promptly after their ``stop``: the median within
``CLOSE_LAG_MEDIAN_S``, every one within ``CLOSE_LAG_MAX_S``. The close is
where a backlog shows: frames wait in socket buffers while the server falls
behind, and ``stop`` waits behind them. The per-chunk time cannot show it (it
times guard + seal alone, not the parsing and WebSocket work around them,
nor the wait for the event loop); a bound on the slowest close alone lets a
saturated server pass (20 s streams, starts and ends spread over 5 s: one
needing 105 % of a core ends about 1 s behind), while the median close of a
server that keeps up is a few tens of ms (the call's last seal and commit).
The client's own lateness is recorded: if the client could not send on time,
the run is marked invalid rather than counted for the server.

CPU and memory per stream are also taken in the steady part of a level
(every stream started, none ended), for the server and for this client, with
the server's CPU per frame (valid when the client was on time). The machine
may be shared: the CPU every other process used in that window (of one core)
and what the host stole from the VM are printed too. A level that failed
while other processes took a core is a level run on less than two cores, not
a verdict on the server; print the calibration, repeat, and compare A/B back
to back.

Prints one JSON object: per N the figures, and ``max_streams_kept_up``.
Target: >= 200 concurrent streams on one worker process.

    python bench/ingest.py [--streams 50,100,150,200,250] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
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
from dataclasses import dataclass, field
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
FRAME_S = 0.02
#: Calls begin (and so end) spread over this many seconds, as real calls do: a
#: level measures N calls live at once, not N call set-ups in the same instant.
STAGGER_S = 5.0
#: The sender wakes at most this often; frames due by then go out together.
TICK_S = 0.001
#: Server close after ``stop``, s: the median and the slowest allowed (see the docstring).
CLOSE_LAG_MEDIAN_S = 0.25
CLOSE_LAG_MAX_S = 2.0


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


def machine_busy_s() -> tuple[float, float]:
    """CPU time the whole machine spent busy, and stolen by the host (seconds, all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    steal = fields[7] if len(fields) > 7 else 0
    return (sum(fields[:8]) - idle - steal) / _CLK_TCK, steal / _CLK_TCK


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


@dataclass(frozen=True)
class Frames:
    """One stream's messages, encoded once and shared by every stream."""

    connected: str
    start: str
    media: list[bytes]  # whole WebSocket frames (masked), ready to write
    stop: str

    @classmethod
    def build(cls, audio: bytes, seconds: float, agent: str, key: str) -> Frames:
        from websockets.frames import Frame, Opcode  # noqa: PLC0415

        fw = FrameWriter()
        connected = fw.connected()
        start = fw.start({"agent_id": agent, "callvault_key": key})
        media = []
        for i in range(round(seconds / FRAME_S)):
            pos = (i * FRAME) % len(audio)
            text = fw.media(audio[pos : pos + FRAME]).encode()
            media.append(Frame(Opcode.TEXT, text).serialize(mask=True, extensions=[]))
        return cls(connected, start, media, fw.stop())


@dataclass
class Stream:
    t0: float  # when its first media frame is due (loop time)
    transport: asyncio.WriteTransport
    done: asyncio.Future[None]
    late: list[float] = field(default_factory=list)  # lateness of each frame, s


class Sender:
    """Writes every stream's media frames at their times, from one task."""

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames
        self.due: list[tuple[float, int, int]] = []  # (time, stream, frame index)
        self.streams: list[Stream] = []
        self.wake = asyncio.Event()

    def add(self, stream: Stream) -> None:
        heapq.heappush(self.due, (stream.t0, len(self.streams), 0))
        self.streams.append(stream)
        self.wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        frames, due, last = self.frames, self.due, len(self.frames) - 1
        while True:
            if not due:
                self.wake.clear()
                await self.wake.wait()
                continue
            now = loop.time()
            while due and due[0][0] <= now:
                at, k, i = heapq.heappop(due)
                stream = self.streams[k]
                stream.late.append(now - at)
                if stream.transport.is_closing():
                    stream.done.set_result(None)  # the server ended it: stop sending
                    continue
                stream.transport.write(frames[i])
                if i < last:
                    heapq.heappush(due, (stream.t0 + (i + 1) * FRAME_S, k, i + 1))
                else:
                    stream.done.set_result(None)
            if due:
                await asyncio.sleep(max(due[0][0] - loop.time(), TICK_S))


async def one_stream(
    url: str, ctx: ssl.SSLContext, frames: Frames, sender: Sender, start_at: float, offset_s: float
) -> dict[str, Any]:
    from websockets.asyncio.client import connect  # noqa: PLC0415
    from websockets.exceptions import ConnectionClosed  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    async with connect(
        url, ssl=ctx, open_timeout=60, close_timeout=30, max_queue=None, ping_interval=None
    ) as ws:
        await ws.send(frames.connected)
        await ws.send(frames.start)
        # A stream connected late starts late: its first frame is never overdue.
        t0 = max(start_at, loop.time()) + offset_s
        stream = Stream(t0, ws.transport, loop.create_future())
        sender.add(stream)
        await stream.done
        await ws.send(frames.stop)
        stopped = loop.time()
        code = None
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
        close_lag = loop.time() - stopped
    late = sorted(stream.late)
    return {
        "code": code,
        "late_max_s": late[-1] if late else 0.0,
        "late_p99_s": late[len(late) * 99 // 100] if late else 0.0,
        "close_lag_s": close_lag,
    }


async def run_level(
    server: Server, n: int, seconds: float, dep: str, frames: Frames
) -> dict[str, Any]:
    url = f"wss://127.0.0.1:{server.port}/v1/ingest/twilio/{dep}"
    ctx = server.context()
    loop = asyncio.get_running_loop()
    load = os.getloadavg()[0]  # the machine is shared: what else ran as the level began
    speed = calibration_us()  # and how fast the VM ran (it drifts)
    start_at = loop.time() + 2.0  # connect everyone first, then stream (staggered)
    before_logs = len(server.stream_logs())
    cpu0, rss0, client0 = server.cpu_seconds(), server.rss_bytes(), time.process_time()
    rss_peak = rss0
    steady: dict[str, float] = {}

    async def sample() -> None:
        nonlocal rss_peak
        while True:
            rss_peak = max(rss_peak, server.rss_bytes())
            now = loop.time()
            # Steady state: every stream started (the last one a frame in), none ended yet.
            if "t0" not in steady and now >= start_at + STAGGER_S + FRAME_S:
                busy, steal = machine_busy_s()
                steady.update(
                    t0=now,
                    cpu0=server.cpu_seconds(),
                    client0=time.process_time(),
                    busy0=busy,
                    steal0=steal,
                )
            if "t1" not in steady and now >= start_at + seconds - 0.5:
                busy, steal = machine_busy_s()
                steady.update(
                    t1=now,
                    cpu1=server.cpu_seconds(),
                    client1=time.process_time(),
                    busy1=busy,
                    steal1=steal,
                )
            await asyncio.sleep(0.25)

    sender = Sender(frames.media)
    tasks = [asyncio.create_task(sample()), asyncio.create_task(sender.run())]
    t0 = time.monotonic()
    results = await asyncio.gather(
        *(one_stream(url, ctx, frames, sender, start_at, i * STAGGER_S / n) for i in range(n)),
        return_exceptions=True,
    )
    wall = time.monotonic() - t0
    for task in tasks:
        task.cancel()
    cpu, client_cpu = server.cpu_seconds() - cpu0, time.process_time() - client0
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
    late_p99 = max((r["late_p99_s"] for r in ok), default=0.0)
    lags = sorted(r["close_lag_s"] for r in ok)
    lag = lags[-1] if lags else 0.0
    lag_median = lags[len(lags) // 2] if lags else 0.0
    kept_up = (
        not errors
        and len(ok) == n
        and all(r["code"] == 1000 for r in ok)
        and statuses.get("completed", 0) == n
        and lost == 0
        and (p99s[-1] if p99s else 0) < 20_000
        and lag_median < CLOSE_LAG_MEDIAN_S
        and lag < CLOSE_LAG_MAX_S
    )
    span = steady.get("t1", 0.0) - steady.get("t0", 0.0)
    steady_cpu = (steady["cpu1"] - steady["cpu0"]) / span if span > 0 else None
    steady_client = (steady["client1"] - steady["client0"]) / span if span > 0 else None
    # The machine is shared: what everything else used meanwhile (of one core), and
    # what the host took from this VM. A level run beside other work is not a verdict.
    steady_other = (
        (steady["busy1"] - steady["busy0"]) / span - (steady_cpu or 0.0) - (steady_client or 0.0)
        if span > 0
        else None
    )
    steady_steal = (steady["steal1"] - steady["steal0"]) / span if span > 0 else None
    return {
        "streams": n,
        "load_1m_before": round(load, 2),
        "calibration_us_before": speed,
        "kept_up": kept_up,
        "client_on_time": late < 0.1,
        "completed": statuses.get("completed", 0),
        "statuses": statuses,
        "client_errors": sorted(set(errors)),
        "frames_lost": lost,
        "server_chunk_p99_us_worst_call": p99s[-1] if p99s else None,
        "server_chunk_p99_us_median_call": p99s[len(p99s) // 2] if p99s else None,
        "close_lag_max_s": round(lag, 3),
        "close_lag_median_s": round(lag_median, 3),
        "client_late_max_s": round(late, 3),
        "client_late_p99_s": round(late_p99, 4),
        "server_cpu_percent": round(100 * cpu / wall, 1),
        "server_cpu_percent_per_stream": round(100 * cpu / wall / n, 3),
        "server_cpu_percent_steady": _pct(steady_cpu),
        "server_cpu_percent_per_stream_steady": _pct(steady_cpu, n),
        "client_cpu_percent": round(100 * client_cpu / wall, 1),
        "client_cpu_percent_steady": _pct(steady_client),
        "other_processes_cpu_percent_steady": _pct(steady_other),
        "host_steal_percent_steady": _pct(steady_steal),
        "server_cpu_us_per_frame_steady": (
            round(steady_cpu * 1e6 / (n / FRAME_S), 1) if steady_cpu is not None else None
        ),
        "server_rss_mb_per_stream": round((rss_peak - rss0) / n / 2**20, 3),
    }


def _pct(share: float | None, per: int = 1) -> float | None:
    return None if share is None else round(100 * share / per, 3)


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
        frames = Frames.build(audio, args.seconds, agent, key)
        server = Server(data, env)
        try:
            server.wait_ready()
            import uvloop  # noqa: PLC0415

            rows = []
            for n in levels:
                log(f"{n} streams for {args.seconds:.0f} s")
                row = uvloop.run(run_level(server, n, args.seconds, dep, frames))
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
