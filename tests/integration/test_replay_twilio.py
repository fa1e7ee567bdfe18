"""`callvault replay twilio` against a real `callvault serve` (wss://, TLS 1.3).

The data directory is prepared in-process (tenant, deployment, agent, an
ingest key), the server is started as a process, a WAV with keypad presses
laid over it is replayed by the CLI as a Twilio Media Stream, and after the
server stops the call is read back: completed, recording sealed, the keypad
tones silent in it, their digits nowhere in the database.
"""

from __future__ import annotations

import math
import re
import sqlite3
import wave
from array import array
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callvault import access
from callvault.access import Role, ScopeKind
from callvault.bootstrap import initialise
from callvault.calls._recording import open_recording, recording_context
from callvault.config import load_settings
from callvault.keys import KeyOwner
from callvault.redact import mulaw_decode
from callvault.runtime import Runtime
from callvault.store.models import Call, Recording
from tests.integration.test_serve_tls import child_env, run_cli, start_server, stop_server

pytestmark = pytest.mark.server

RATE = 16_000  # the WAV's rate: replay converts to 8 kHz μ-law


def _write_wav(path: Path, seconds: float) -> None:
    """A 16 kHz hum (not DTMF: one tone at 300 Hz with a slow wobble)."""
    n = round(seconds * RATE)
    pcm = array(
        "h",
        (
            round(5000 * math.sin(2 * math.pi * 300 * k / RATE) * (0.6 + 0.4 * math.sin(k / 900)))
            for k in range(n)
        ),
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def _prepare(data: Path) -> tuple[str, str, str, str]:
    """tenant, deployment, agent, ingest key."""
    settings = load_settings(child_env(data_dir=data))
    init = initialise(settings, tenant_name="replay", owner_name="owner")
    rt = Runtime.open(settings)
    try:
        with rt.db.tenant_tx(init.tenant_id) as s:
            from callvault import tenancy  # noqa: PLC0415 - test set-up only
            from callvault.tenancy import DeploymentSettings  # noqa: PLC0415

            change = tenancy.Change(actor_id=init.principal_id, request_id=None)
            dep = tenancy.create_deployment(
                s, rt.sealer, rt.audit, init.tenant_id, DeploymentSettings(name="d"), change
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
                created_by="test",
            )
            key = access.issue_key(s, init.tenant_id, p.id, label="t", ttl=timedelta(days=1))
            return init.tenant_id, dep.id, agent.id, key.token
    finally:
        rt.close()


def test_a_replayed_wav_becomes_a_sealed_call_without_its_keypad_tones(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tenant, dep, agent, token = _prepare(data)
    wav = tmp_path / "call.wav"
    _write_wav(wav, 10.0)
    server = start_server(data, tmp_path, "replay")
    try:
        env = child_env(data_dir=data) | {
            "CALLVAULT_URL": server.url,
            "CALLVAULT_API_KEY": token,
            "CALLVAULT_CA_FILE": str(server.cert),
        }
        done = run_cli(
            "replay",
            "twilio",
            str(wav),
            "--agent",
            agent,
            "--deployment",
            dep,
            "--dtmf-at",
            "1.0:9018",  # digits 0, 1, 8, 9 never occur in base32 ids
            "--fast",
            env=env,
        )
        assert done.returncode == 0, done.stderr
        assert "server closed with 1000" in done.stdout
        refused = run_cli(
            "replay",
            "twilio",
            str(wav),
            "--agent",
            "agt_unknown",
            "--deployment",
            dep,
            "--fast",
            env=env,
        )
        assert refused.returncode == 1
        assert "1008" in refused.stdout
    finally:
        stop_server(server)

    settings = load_settings(child_env(data_dir=data))
    rt = Runtime.open(settings)
    try:
        with rt.db.tenant_tx(tenant) as s:
            calls = list(s.execute(select(Call)).scalars())
            assert len(calls) == 1  # the refused stream made no call
            call = calls[0]
            assert call.status == "completed"
            rec = s.execute(select(Recording).where(Recording.call_id == call.id)).scalar_one()
            key = rt.keys.data_key(s, KeyOwner(tenant, dep, "call", call.id), create=False)
        ctx = recording_context(tenant, dep, call.id)
        audio = bytes(
            open_recording(key, rt.objects.for_region("eu-west-2").get(rec.object_ref), ctx)
        )
    finally:
        rt.close()
    assert rec.complete
    assert abs(len(audio) - 10 * 8000) <= 160
    # Four presses of 100 ms from 1.0 s, 180 ms apart: all silent (padding included).
    pcm = array("h", mulaw_decode(audio))
    for i in range(4):
        start = 8000 + i * 1440
        assert max(abs(v) for v in pcm[start : start + 800]) == 0, i
    # The hum around them is there.
    # Keypad entry opens a secure capture: silent from a second before the first key's
    # report until 5 s after the last key (4 digits: not a card, discarded, still silenced).
    first_report, last_report = 8000 + 800, 8000 + 3 * 1440 + 800
    assert max(abs(v) for v in pcm[first_report - 8000 + 160 : last_report + 5 * 8000 - 160]) == 0
    # The hum before and after is there.
    assert max(abs(v) for v in pcm[:1000]) > 1000
    assert max(abs(v) for v in pcm[-2 * 8000 :]) > 1000
    # No digits in the database: the DTMF event holds counts only.
    raw = sqlite3.connect(data / "callvault.db")
    try:
        dumped = "\n".join(raw.iterdump())
    finally:
        raw.close()
    # Blobs are sealed (and print as hex, where any digits may occur), and timestamps are
    # digits too: look at the rest.
    rest = re.sub(r"X'[0-9A-F]*'", "X''", dumped)
    rest = re.sub(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?", "<time>", rest)
    assert "9018" not in rest
