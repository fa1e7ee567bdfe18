"""Time to first byte of a masked, ranged read of a 30-minute recording, over TLS 1.3.

Set-up (all by the script, with a fixed seed): a fresh temporary data
directory, ``callvault init``; then, in this process on the same data
directory (embedded defaults: SQLite, local keyring, local object store), a
deployment, an agent, principals with keys (``ingest``, ``qa_reviewer``,
``compliance_officer`` at tenant scope) and one call of ``--minutes`` (30):

- its transcript posted through the real API route (``POST
  /v1/calls/{id}/segments``, so sealed per segment, with card numbers
  tokenized by ``calls/_card_text.py`` into ``[CARD tok_… ending NNNN]`` and
  ``[CARD]`` words): alternating caller/agent turns with word timings,
  pauses and a few holds that no segment covers, and caller turns holding
  PII (dates of birth, phone numbers, NHS numbers, account numbers, card
  numbers, written and spoken); some segments' words do not spell their
  text (punctuation) and some have no words, as ASR output does;
- its recording written through the real sealed path live ingest uses
  (``calls/_recording.py`` ``LiveRecording``, 20 ms μ-law frames, the
  recording row), then the call ended.

Then ``callvault serve`` (one worker process, TLS 1.3 only) on a free port,
and the time to first byte (TTFB: request sent on an open TLS connection →
first byte of the body read) of ``GET /v1/calls/{id}/recording``:

- ``cold``: the first request after each server start (``--cold-runs``
  starts), a masked ranged read from the middle of the recording; and
  ``cold_unmasked``, the same for the unmasked view (as many other starts),
  to tell the server's own first-request cost from the masking's;
- then, on one more server after one unmeasured request, each series on
  one keep-alive connection (p50/p99):
- ``masked_ranged``: qa_reviewer (``recording:read_masked``), ``Range:
  bytes=o-(o+65535)`` at ``--requests`` random offsets;
- ``masked_open_ended``: ``Range: bytes=o-`` (what a browser sends on a
  seek), connection closed after the first byte;
- ``unmasked_ranged``: compliance_officer (``recording:read``), as
  ``masked_ranged``;
- ``masked_unranged``: the whole masked WAV, connection closed after the
  first byte;
- ``signed_url_masked_ranged``: the qa_reviewer's signed URL (``POST
  /v1/calls/{id}/recording/url``, then ``GET /v1/playback/{token}`` with the
  same ranges).

Checks printed with the figures: the served masked ranges equal the same
bytes of the whole masked WAV; the masked view differs from the full one
where the plan beeps; every response was 206/200 with the view asked for.

Target: masked ranged TTFB < 50 ms, cold (median of the starts) and p50.
On this shared 2-core VM the figures move with other load
(``loadavg_1m_before`` and ``calibration_us`` are printed beside them).
Prints one JSON object.

    python bench/playback.py [--minutes 30] [--requests 200] [--cold-runs 3] [--seed 7]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from _calibration import calibration_us
from api import CALLVAULT, Server, child_env, free_port, owner_key, probe_tls, wait_ready

RATE = 8000
RANGE_BYTES = 65536
TARGET_MS = 50.0


def log(msg: str) -> None:
    print(f"bench/playback: {msg}", file=sys.stderr, flush=True)


# -- the transcript ----------------------------------------------------------------------

ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEENS = (
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
ORDINALS = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
    "twentieth",
)
TENS = {
    2: "twenty",
    3: "thirty",
    4: "forty",
    5: "fifty",
    6: "sixty",
    7: "seventy",
    8: "eighty",
    9: "ninety",
}
AGENT_LINES = (
    "thank you for calling the appointments line my name is sam how can I help you today",
    "of course I can help with that",
    "can I take your date of birth please",
    "and can you confirm the best phone number to reach you on",
    "could you read me your NHS number please",
    "thank you I have found your record",
    "I can see the appointment on the fourteenth is still booked",
    "would you like me to move it to a morning slot",
    "there is a space on tuesday at ten past nine with doctor patel",
    "let me just check that for you one moment please",
    "I am going to put you on hold for a moment while I check with the clinic",
    "thank you for holding",
    "the prescription charge can be paid by card today if you like",
    "can I take the long number on the front of the card please",
    "that payment has gone through thank you",
    "is there anything else I can help you with today",
    "you will get a text message to confirm the new time",
    "and which account would you like the refund to go to",
)
CALLER_LINES = (
    "hi yes I need to change an appointment for my mother",
    "yes that is right",
    "sorry could you say that again the line is a bit faint",
    "it was for the blood test at the surgery on the high street",
    "a morning would be much better for us",
    "tuesday is fine thank you",
    "okay no problem I will wait",
    "yes please that would be great",
    "no I think that is everything",
    "she has had the letter but it had the wrong date on it",
    "can you tell me if I need to fast before the test",
    "right okay and how long will it take",
    "that is lovely thank you so much for your help",
)


def nhs_number(rng: random.Random) -> str:
    while True:
        nine = rng.choice("4679") + "".join(str(rng.randint(0, 9)) for _ in range(8))
        rem = 11 - sum(int(c) * (10 - i) for i, c in enumerate(nine)) % 11
        if rem != 10:
            return nine + str(0 if rem == 11 else rem)


def card_number(rng: random.Random) -> str:
    prefix, length = rng.choice((("4", 16), ("51", 16), ("55", 16), ("37", 15)))
    body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    for c in "0123456789":
        total = 0
        for i, ch in enumerate(reversed(body + c)):
            n = int(ch) * (2 if i % 2 else 1)
            total += n - 9 if n > 9 else n
        if total % 10 == 0:
            return body + c
    raise AssertionError("unreachable")  # pragma: no cover


def spoken(digits: str) -> str:
    return " ".join("oh" if d == "0" else ONES[int(d)] for d in digits)


def year_words(year: int) -> str:
    hi, lo = divmod(year, 100)
    return f"{_two(hi)} {_two(lo) if lo >= 10 else 'oh ' + ONES[lo]}"


def _two(n: int) -> str:
    if n < 10:
        return ONES[n]
    if n < 20:
        return TEENS[n - 10]
    tens, one = divmod(n, 10)
    return TENS[tens] + (f" {ONES[one]}" if one else "")


def _say_dob(rng: random.Random) -> str:
    day, month, year = rng.randint(1, 20), rng.randint(1, 12), rng.randint(1935, 2004)
    if rng.random() < 0.5:
        return f"my date of birth is the {ORDINALS[day - 1]} of {MONTHS[month - 1]} " + (
            year_words(year)
        )
    return f"her date of birth is {day:02d}/{month:02d}/{year}"


def _say_phone(rng: random.Random) -> str:
    rest = "".join(str(rng.randint(0, 9)) for _ in range(3))
    if rng.random() < 0.5:
        return f"you can call me on oh seven seven double oh nine double oh {spoken(rest)}"
    return f"my mobile is 07700 900{rest} thanks"


def _say_nhs(rng: random.Random) -> str:
    n = nhs_number(rng)
    if rng.random() < 0.5:
        return f"my NHS number is {n[:3]} {n[3:6]} {n[6:]}"
    return f"the NHS number is {spoken(n)}"


def _say_account(rng: random.Random) -> str:
    return f"my account number is {rng.randint(10_000_000, 99_999_999)} please"


def _say_card(rng: random.Random) -> str:
    n = card_number(rng)
    if rng.random() < 0.5:
        return "the card number is " + " ".join(n[i : i + 4] for i in range(0, len(n), 4))
    return f"it is {spoken(n)}"


SAYINGS = {
    "dob": _say_dob,
    "phone": _say_phone,
    "nhs": _say_nhs,
    "account": _say_account,
    "card": _say_card,
}


def pii_line(rng: random.Random) -> tuple[str, str]:
    """(entity kind, a caller's sentence saying one value of it)."""
    kind = rng.choice(("dob", "dob", "phone", "phone", "nhs", "nhs", "account", "card"))
    return kind, SAYINGS[kind](rng)


@dataclass
class Script:
    segments: list[dict[str, Any]] = field(default_factory=list)
    said: dict[str, int] = field(default_factory=dict)


def make_script(rng: random.Random, duration_ms: int) -> Script:
    """Alternating turns with word timings over ``duration_ms`` (API segment bodies)."""
    out = Script()
    t = 1500  # ringing: no segment
    speaker = "agent"
    while True:
        if speaker == "caller" and rng.random() < 0.3:
            kind, text = pii_line(rng)
            out.said[kind] = out.said.get(kind, 0) + 1
        else:
            text = rng.choice(AGENT_LINES if speaker == "agent" else CALLER_LINES)
        words = []
        at = t
        for w in text.split():
            length = rng.randint(180, 260) + 25 * len(w)
            words.append({"text": w, "start_ms": at, "end_ms": at + length})
            at += length + rng.randint(0, 60)
        end = at + 120
        if end > duration_ms - 500:
            return out
        body: dict[str, Any] = {
            "speaker": speaker,
            "start_ms": t,
            "end_ms": end,
            "is_final": True,
            "text": text,
            "words": words,
        }
        shape = rng.random()
        if shape < 0.08:  # punctuated text: the words do not spell it
            body["text"] = text[0].upper() + text[1:] + "."
        elif shape < 0.12:  # no word timings
            body["words"] = []
        out.segments.append(body)
        hold = "hold for a moment" in text
        t = end + (rng.randint(15_000, 40_000) if hold else rng.randint(250, 1200))
        speaker = "caller" if speaker == "agent" else "agent"


# -- the audio ---------------------------------------------------------------------------


def _voice(seconds: float, f0: float, seed: int) -> bytes:
    """Speech-like μ-law: harmonics of ``f0`` with a syllable-rate envelope and noise."""
    from callvault.redact import mulaw_encode  # noqa: PLC0415 - heavy import, after argparse

    rng = random.Random(seed)
    n = int(seconds * RATE)
    pcm = array("h")
    for k in range(n):
        t = k / RATE
        env = 0.55 + 0.45 * math.sin(2 * math.pi * 4.2 * t)
        v = sum(math.sin(2 * math.pi * f0 * h * t) / h for h in (1, 2, 3, 5))
        pcm.append(round(5200 * env * v + rng.gauss(0, 300)))
    return mulaw_encode(pcm.tobytes())


def make_audio(segments: list[dict[str, Any]], duration_ms: int) -> bytes:
    """``duration_ms`` of μ-law: voice where a segment speaks, quiet noise elsewhere."""
    from callvault.redact import mulaw_encode  # noqa: PLC0415 - heavy import, after argparse

    voices = {"agent": _voice(4.0, 190.0, 1), "caller": _voice(4.0, 125.0, 2)}
    rng = random.Random(3)
    noise = mulaw_encode(array("h", (round(rng.gauss(0, 60)) for _ in range(RATE))).tobytes())
    frame = RATE // 10  # 100 ms
    speaking: list[str | None] = [None] * (duration_ms // 100)
    for seg in segments:
        for i in range(seg["start_ms"] // 100, min(len(speaking), seg["end_ms"] // 100 + 1)):
            speaking[i] = seg["speaker"]
    out = bytearray()
    for i, who in enumerate(speaking):
        src = noise if who is None else voices[who]
        at = (i * frame) % (len(src) - frame)
        out += src[at : at + frame]
    return bytes(out)


# -- the installation --------------------------------------------------------------------


@dataclass
class Setup:
    call_id: str
    qa_token: str
    compliance_token: str
    wav_bytes: int
    duration_ms: int
    transcript: dict[str, Any]


def populate(data: Path, port: int, token: str, minutes: float, seed: int) -> Setup:
    """Everything the measurement reads, through the real routes and the real sealed path."""
    from fastapi.testclient import TestClient  # noqa: PLC0415 - heavy imports, after argparse

    from callvault.access import Role  # noqa: PLC0415
    from callvault.api import create_app  # noqa: PLC0415
    from callvault.config import load_settings  # noqa: PLC0415
    from callvault.runtime import Runtime  # noqa: PLC0415

    rng = random.Random(seed)
    duration_ms = round(minutes * 60_000)
    script = make_script(rng, duration_ms)
    rt = Runtime.open(load_settings(child_env(data, port)))
    try:
        with TestClient(create_app(rt), base_url="https://testserver") as client:

            def call_api(method: str, path: str, tok: str, body: Any = None) -> Any:
                r = client.request(
                    method, path, headers={"Authorization": f"Bearer {tok}"}, json=body
                )
                if r.status_code >= 300:
                    raise SystemExit(f"bench/playback: {method} {path} answered {r.status_code}")
                return r.json()

            owner = token
            dep = call_api("POST", "/v1/deployments", owner, {"name": "bench"})["id"]
            agent = call_api(
                "POST",
                f"/v1/deployments/{dep}/agents",
                owner,
                {"name": "booking", "prompt": "You book appointments."},
            )["id"]
            tenant = call_api("GET", "/v1/tenant", owner)["id"]
            tokens = principals(rt, tenant)
            ingest = tokens[Role.INGEST]
            call = call_api(
                "POST",
                f"/v1/agents/{agent}/calls",
                ingest,
                {"direction": "inbound", "caller_number": "+44 7700 900123"},
            )["id"]
            # The agent posts final segments as they happen: a few at a time.
            for i in range(0, len(script.segments), 8):
                batch = script.segments[i : i + 8]
                call_api("POST", f"/v1/calls/{call}/segments", ingest, {"segments": batch})
            result = record(rt, tenant, call, make_audio(script.segments, duration_ms))
            call_api("POST", f"/v1/calls/{call}/end", ingest, {"status": "completed"})
            stored = call_api(
                "GET", f"/v1/calls/{call}/transcript", tokens[Role.COMPLIANCE_OFFICER]
            )
        summary = describe(stored["segments"], result.duration_ms, script)
    finally:
        rt.close()
    return Setup(
        call_id=call,
        qa_token=tokens[Role.QA_REVIEWER],
        compliance_token=tokens[Role.COMPLIANCE_OFFICER],
        wav_bytes=44 + 2 * result.samples,
        duration_ms=result.duration_ms,
        transcript=summary,
    )


def principals(rt: Any, tenant: str) -> dict[Any, str]:
    """An API key for each role the bench uses, bound at tenant scope (as world.py does)."""
    from callvault import access  # noqa: PLC0415 - heavy imports, after argparse
    from callvault.access import Role, ScopeKind  # noqa: PLC0415

    tokens: dict[Any, str] = {}
    with rt.db.tenant_tx(tenant) as s:
        for role in (Role.INGEST, Role.QA_REVIEWER, Role.COMPLIANCE_OFFICER):
            p = access.create_principal(s, tenant, kind="user", name=f"bench-{role}")
            access.bind_role(s, tenant, p.id, role, ScopeKind.TENANT, tenant, created_by="bench")
            key = access.issue_key(s, tenant, p.id, label="bench", ttl=timedelta(days=1))
            tokens[role] = key.token
    return tokens


def record(rt: Any, tenant: str, call: str, audio: bytes) -> Any:
    """``audio`` sealed as live ingest seals it (LiveRecording, 20 ms frames), and its row."""
    from callvault.calls._recording import (  # noqa: PLC0415 - heavy imports, after argparse
        LiveRecording,
        recording_context,
        recording_row,
    )
    from callvault.keys import KeyOwner  # noqa: PLC0415
    from callvault.store.models import Call, Deployment  # noqa: PLC0415

    with rt.db.tenant_tx(tenant) as s:
        row = s.get(Call, call)
        dep = s.get(Deployment, row.deployment_id) if row is not None else None
        if row is None or dep is None:
            raise SystemExit("bench/playback: the call just created is not there")
        key = rt.keys.data_key(s, KeyOwner(tenant, row.deployment_id, "call", call), create=True)
        ctx = recording_context(tenant, row.deployment_id, call)
        rec = LiveRecording.open(
            rt.objects.for_region(dep.region), key, ctx, codec="mulaw", sample_rate=RATE
        )
        for at in range(0, len(audio), 160):  # 20 ms frames, as live ingest writes them
            rec.write(audio[at : at + 160])
        result = rec.finish(complete=True)
        s.add(recording_row(tenant, call, result))
    return result


def describe(segments: list[dict[str, Any]], duration_ms: int, script: Script) -> dict[str, Any]:
    """Counts (never content) of what the stored transcript holds and the mask plan it gives."""
    from callvault.calls._playback import CARD_MARK, TimedSegment, mask_plan  # noqa: PLC0415
    from callvault.calls._store import shared_redactor  # noqa: PLC0415

    redactor = shared_redactor()
    entities: dict[str, int] = {}
    for seg in segments:
        for f in redactor.find(seg["text"]):
            entities[f.entity] = entities.get(f.entity, 0) + 1
    timed = [
        TimedSegment(
            s["start_ms"],
            s["end_ms"],
            s["text"],
            tuple((w["text"], w["start_ms"], w["end_ms"]) for w in s["words"]),
        )
        for s in segments
    ]
    beep, silence = mask_plan(timed, duration_ms, redactor)
    return {
        "segments": len(segments),
        "words": sum(len(s["words"]) for s in segments),
        "segments_without_words": sum(1 for s in segments if not s["words"]),
        "pii_said": dict(sorted(script.said.items())),
        "findings_in_stored_text": dict(sorted(entities.items())),
        "tokenized_cards": sum(len(CARD_MARK.findall(s["text"])) for s in segments),
        "card_words": sum(1 for s in segments for w in s["words"] if w["text"] == "[CARD]"),
        "beep_intervals": len(beep),
        "beep_seconds": round(sum(b - a for a, b in beep), 1),
        "silence_intervals": len(silence),
        "silence_seconds": round(sum(b - a for a, b in silence), 1),
    }


# -- the server and the client -----------------------------------------------------------


@contextmanager
def serving(data: Path, port: int) -> Iterator[Server]:
    env = child_env(data, port)
    err = data.parent / "serve.stderr"
    with (data.parent / "serve.stdout").open("ab") as fo, err.open("ab") as fe:
        proc = subprocess.Popen(
            [CALLVAULT, "serve"], env=env, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL
        )
    server = Server(proc, port, data / "tls" / "cert.pem", err)
    try:
        wait_ready(server)
        log(f"server pid {proc.pid} ready on port {port}")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Reply:
    ttfb_ms: float
    status: int
    headers: dict[str, str]
    body: bytes


class Client:
    """One keep-alive TLS 1.3 connection; reconnects (untimed) when a reply was cut short."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.conn: http.client.HTTPSConnection | None = None

    def _connected(self) -> http.client.HTTPSConnection:
        if self.conn is None:
            self.conn = http.client.HTTPSConnection(
                "127.0.0.1", self.server.port, context=self.server.context(), timeout=60
            )
            self.conn.connect()  # the TLS handshake is not part of the TTFB
        return self.conn

    def get(self, path: str, headers: dict[str, str], *, whole: bool) -> Reply:
        """TTFB of ``GET path``; the body read to the end when ``whole``, else cut after
        its first byte (the connection is then closed)."""
        conn = self._connected()
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        first = resp.read(1)
        ttfb = (time.perf_counter() - t0) * 1000
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        if whole or resp.status >= 300:
            body = first + resp.read()
        else:
            body = first
            self.close()
            time.sleep(0.05)  # let the server notice the disconnect before the next request
        return Reply(ttfb, resp.status, hdrs, body)

    def post(self, path: str, headers: dict[str, str]) -> Any:
        conn = self._connected()
        conn.request("POST", path, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise SystemExit(f"bench/playback: POST {path} answered {resp.status}")
        return json.loads(data)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ranged(offset: int, total: int, *, open_ended: bool = False) -> str:
    if open_ended:
        return f"bytes={offset}-"
    return f"bytes={offset}-{min(total, offset + RANGE_BYTES) - 1}"


def stats(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    p99 = statistics.quantiles(ordered, n=100)[98] if len(ordered) >= 100 else ordered[-1]
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(p99, 2),
        "min_ms": round(ordered[0], 2),
        "max_ms": round(ordered[-1], 2),
    }


def expect(reply: Reply, status: int, view: str, what: str) -> None:
    if reply.status != status or reply.headers.get("x-callvault-view") != view:
        raise SystemExit(
            f"bench/playback: {what} answered {reply.status} "
            f"({reply.headers.get('x-callvault-view')}), expected {status} ({view})"
        )


def measure_series(
    client: Client,
    path: str,
    headers: dict[str, str],
    offsets: list[int],
    total: int,
    view: str,
    *,
    open_ended: bool = False,
) -> tuple[list[float], dict[int, bytes]]:
    times: list[float] = []
    bodies: dict[int, bytes] = {}
    for o in offsets:
        h = headers | {"Range": ranged(o, total, open_ended=open_ended)}
        reply = client.get(path, h, whole=not open_ended)
        expect(reply, 206, view, f"range at {o}")
        times.append(reply.ttfb_ms)
        if not open_ended and len(bodies) < 8:
            bodies[o] = reply.body
    return times, bodies


@dataclass
class Warm:
    """What one running server measured after its cold request."""

    masked: list[float]
    open_ended: list[float]
    unmasked: list[float]
    unranged: list[float]
    signed: list[float]
    masked_matches: bool
    differs: float


def warm(client: Client, path: str, setup: Setup, n: int, rng: random.Random) -> Warm:
    """The warm series on one keep-alive connection, and the checks of what was served."""
    total = setup.wav_bytes
    qa, co = bearer(setup.qa_token), bearer(setup.compliance_token)

    def offsets(k: int) -> list[int]:
        return [rng.randrange(44, total - RANGE_BYTES) for _ in range(k)]

    masked_whole = client.get(path, qa, whole=True)
    expect(masked_whole, 200, "masked", "the whole masked view")
    full_whole = client.get(path, co, whole=True)
    expect(full_whole, 200, "full", "the whole full view")
    masked, bodies = measure_series(client, path, qa, offsets(n), total, "masked")
    open_ended, _ = measure_series(
        client, path, qa, offsets(max(10, n // 10)), total, "masked", open_ended=True
    )
    unmasked, _ = measure_series(client, path, co, offsets(n), total, "full")
    unranged = []
    for _ in range(max(10, n // 10)):
        reply = client.get(path, qa, whole=False)
        expect(reply, 200, "masked", "the unranged masked read")
        unranged.append(reply.ttfb_ms)
    url = client.post(f"{path}/url", qa)["url"]
    signed, signed_bodies = measure_series(client, url, {}, offsets(n), total, "masked")
    probes = range(44, total, 2000)
    return Warm(
        masked=masked,
        open_ended=open_ended,
        unmasked=unmasked,
        unranged=unranged,
        signed=signed,
        masked_matches=all(
            masked_whole.body[o : o + len(b)] == b for o, b in (bodies | signed_bodies).items()
        ),
        differs=sum(1 for i in probes if masked_whole.body[i] != full_whole.body[i]) / len(probes),
    )


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data = work / "data"
    env = child_env(data, free_port())
    t0 = time.monotonic()
    init = subprocess.run(
        [CALLVAULT, "init"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if init.returncode != 0:
        raise SystemExit(f"bench/playback: callvault init failed: {init.stderr.strip()}")
    setup = populate(
        data, int(env["CALLVAULT_PORT"]), owner_key(init.stdout), args.minutes, args.seed
    )
    log(f"set up in {time.monotonic() - t0:.1f} s: {json.dumps(setup.transcript)}")
    path = f"/v1/calls/{setup.call_id}/recording"
    middle = ranged((setup.wav_bytes // 2) & ~1, setup.wav_bytes)

    def first_request(token: str, view: str) -> float:
        with serving(data, free_port()) as server:
            client = Client(server)
            reply = client.get(path, bearer(token) | {"Range": middle}, whole=True)
            expect(reply, 206, view, f"the cold {view} request")
            client.close()
            return reply.ttfb_ms

    cold_unmasked = [first_request(setup.compliance_token, "full") for _ in range(args.cold_runs)]
    cold = [first_request(setup.qa_token, "masked") for _ in range(args.cold_runs)]
    with serving(data, free_port()) as server:
        client = Client(server)
        client.get(path, bearer(setup.qa_token) | {"Range": middle}, whole=True)  # warm-up
        tls_version, refuses_tls12 = probe_tls(server)
        load_before = os.getloadavg()[0]
        calibration = calibration_us()
        w = warm(client, path, setup, args.requests, random.Random(args.seed + 1))
        client.close()
    cold_median = statistics.median(cold)
    masked_stats = stats(w.masked)
    return {
        "endpoint": "GET /v1/calls/{id}/recording (Range, masked view, qa_reviewer)",
        "tls_version": tls_version,
        "server_refuses_tls12": refuses_tls12,
        "recording_minutes": round(setup.duration_ms / 60_000, 2),
        "wav_bytes": setup.wav_bytes,
        "range_bytes": RANGE_BYTES,
        "transcript": setup.transcript,
        "cold_ttfb_ms": [round(x, 2) for x in cold],
        "cold_ttfb_ms_median": round(cold_median, 2),
        "cold_unmasked_ttfb_ms": [round(x, 2) for x in cold_unmasked],
        "cold_unmasked_ttfb_ms_median": round(statistics.median(cold_unmasked), 2),
        "masked_ranged": masked_stats,
        "masked_open_ended": stats(w.open_ended),
        "unmasked_ranged": stats(w.unmasked),
        "masked_unranged": stats(w.unranged),
        "signed_url_masked_ranged": stats(w.signed),
        "checks": {
            "masked_ranges_match_the_whole_masked_view": w.masked_matches,
            "masked_bytes_differing_from_full_fraction": round(w.differs, 3),
        },
        "target_ms": TARGET_MS,
        "target_met": cold_median < TARGET_MS and masked_stats["p50_ms"] < TARGET_MS,
        "target_met_p99": masked_stats["p99_ms"] < TARGET_MS,
        "server_workers": 1,
        "cpus": os.cpu_count(),
        "loadavg_1m_before": round(load_before, 2),
        "calibration_us": calibration,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the call")
    parser.add_argument("--requests", type=int, default=200, help="warm requests per series")
    parser.add_argument("--cold-runs", type=int, default=3, help="server starts for cold TTFB")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.cold_runs < 1 or args.requests < 1 or args.minutes <= 0:
        parser.error("--cold-runs and --requests must be >= 1, --minutes > 0")
    with tempfile.TemporaryDirectory(prefix="cv-bench-playback-") as tmp:
        result = run(args, Path(tmp))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
