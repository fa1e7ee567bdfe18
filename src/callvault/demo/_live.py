"""One demo call streamed as an agent with its own recogniser would: the generic live stream.

Over ``wss://…/v1/ingest/stream/{agent}`` (bearer key on the upgrade): the
call's audio (both sides mixed into one 8 kHz μ-law channel) in 20 ms binary
frames, and, as the audio passes them, what a streaming recogniser sends: an
interim hypothesis after every word and the final segment once it ends (word
timings from the synthesis), and the keypad's ``dtmf`` reports. The server
silences card numbers said aloud while that audio is still held, so the
spoken card in the demo's payment call is never stored, not even encrypted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from callvault.calls._replay import PAUSE_MS, TONE_MS, DtmfAt
from callvault.demo._speech import CallAudio, TimedSegment
from callvault.errors import UnavailableError
from callvault.redact import mulaw_decode, mulaw_encode

RATE: Final = 8000
FRAME: Final = 160  # 20 ms
#: A streaming recogniser's lag after a word ends, before it reports it (seconds).
ASR_LAG_S: Final = 0.3
_OPEN_TIMEOUT_S = 15
_STREAM_TIMEOUT_S = 120


@dataclass(frozen=True, slots=True)
class LiveResult:
    call_id: str
    status: str
    #: Silencing the server reported as too late (should be none).
    late: int


def key_reports(presses: Sequence[DtmfAt]) -> list[tuple[int, str]]:
    """(sample, key) of each keypad report: a key is reported as it is released."""
    tone, step = TONE_MS * RATE // 1000, (TONE_MS + PAUSE_MS) * RATE // 1000
    return sorted(
        (round(p.seconds * RATE) + i * step + tone, d)
        for p in presses
        for i, d in enumerate(p.digits)
    )


def mixed(audio: CallAudio) -> bytes:
    """Both tracks in one μ-law channel (the caller and the agent take turns)."""
    a = array("h", mulaw_decode(audio.inbound))
    b = array("h", mulaw_decode(audio.outbound))
    n = max(len(a), len(b))
    a.extend([0] * (n - len(a)))
    b.extend([0] * (n - len(b)))
    out = array("h", (max(-32768, min(32767, x + y)) for x, y in zip(a, b, strict=True)))
    return mulaw_encode(out.tobytes())


def _plan(audio: CallAudio) -> list[tuple[int, dict[str, Any]]]:
    """(sample, message) the recogniser and the keypad send, in order."""
    plan: list[tuple[int, dict[str, Any]]] = []
    for n, seg in enumerate(audio.segments):
        plan += _recognised(f"u{n}", seg)
    plan += [(at, {"type": "dtmf", "digit": d, "at_ms": at * 1000 // RATE}) for at, d in
             key_reports(audio.presses)]  # fmt: skip
    plan.sort(key=lambda p: p[0])
    return plan


def _recognised(sid: str, seg: TimedSegment) -> list[tuple[int, dict[str, Any]]]:
    words: list[dict[str, Any]] = [
        {"text": w.text, "start_ms": w.start_ms, "end_ms": w.end_ms} for w in seg.words
    ]
    lag = round(ASR_LAG_S * RATE)
    out: list[tuple[int, dict[str, Any]]] = []
    for k in range(1, len(words)):
        msg = {"type": "segment", "id": sid, "speaker": seg.speaker, "final": False,
               "words": words[:k]}  # fmt: skip
        out.append((words[k - 1]["end_ms"] * RATE // 1000 + lag, msg))
    final = {"type": "segment", "id": sid, "speaker": seg.speaker, "words": words}
    out.append((seg.end_ms * RATE // 1000 + lag, final))
    return out


def stream_live(url: str, audio: CallAudio, *, api_key: str, context: ssl.SSLContext) -> LiveResult:
    """Stream ``audio`` to the generic live stream at ``url``; the call's id and status."""
    return asyncio.run(_stream(url, audio, api_key=api_key, context=context))


async def _stream(
    url: str, audio: CallAudio, *, api_key: str, context: ssl.SSLContext
) -> LiveResult:
    from websockets.asyncio.client import connect  # noqa: PLC0415 - only the demo needs it
    from websockets.exceptions import ConnectionClosed, InvalidHandshake  # noqa: PLC0415

    pcm = mixed(audio)
    plan = _plan(audio)
    replies: list[dict[str, Any]] = []
    try:
        async with (
            asyncio.timeout(_STREAM_TIMEOUT_S),
            connect(
                url,
                ssl=context,
                open_timeout=_OPEN_TIMEOUT_S,
                additional_headers={"Authorization": f"Bearer {api_key}"},
            ) as ws,
        ):
            reader = asyncio.create_task(_read(ws, replies))
            await ws.send(json.dumps({"type": "start", "codec": "mulaw", "sample_rate": RATE}))
            for i in range(0, len(pcm), FRAME):
                while plan and plan[0][0] <= i:
                    await ws.send(json.dumps(plan.pop(0)[1]))
                await ws.send(pcm[i : i + FRAME])
            for _, msg in plan:
                await ws.send(json.dumps(msg))
            await ws.send(json.dumps({"type": "stop"}))
            with contextlib.suppress(ConnectionClosed):
                await reader
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise UnavailableError(f"cannot stream to the server: {type(exc).__name__}") from None
    except ConnectionClosed as exc:
        raise UnavailableError(
            f"the server ended the stream with {exc.rcvd.code if exc.rcvd else 'no code'}"
        ) from None
    stopped = [r for r in replies if r.get("type") == "stopped"]
    if not stopped:
        raise UnavailableError(f"the server did not end the {audio.script.name} call cleanly")
    late = sum(1 for r in replies if r.get("type") == "warning")
    return LiveResult(str(stopped[0]["call_id"]), str(stopped[0]["status"]), late)


async def _read(ws: Any, replies: list[dict[str, Any]]) -> None:
    async for message in ws:
        if isinstance(message, str):
            replies.append(json.loads(message))  # noqa: PERF401 - kept as they come: a drop mid-way keeps the rest
