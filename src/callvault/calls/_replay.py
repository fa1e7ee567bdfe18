"""``callvault replay twilio``: play a WAV file into callvault as Twilio would stream it.

The test client of the ingest path, and a way for users to check a set-up
end to end: the WAV (PCM16, mono or stereo, any common rate) is converted to
8 kHz μ-law, keypad presses can be laid over it at given times (in-band DTMF
tones, plus the ``dtmf`` messages Twilio sends for them), and the result is
sent over ``wss://`` as ``connected``, ``start`` (with the agent id and the
API key as custom parameters, as a TwiML ``<Parameter>`` would carry them),
20 ms ``media`` frames (paced in real time unless ``fast``) and ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import ssl
import time
import wave
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from callvault.calls._twilio import FRAME_BYTES, FRAME_MS
from callvault.calls._twilio_frames import FrameWriter
from callvault.calls._twilio_ingest import AGENT_PARAMETER, KEY_PARAMETER
from callvault.errors import InvalidInputError, UnavailableError
from callvault.redact import mulaw_encode

RATE = 8000
_KEYS = "123A456B789C*0#D"
_ROW_HZ = (697, 770, 852, 941)
_COL_HZ = (1209, 1336, 1477, 1633)
_DTMF_AT = re.compile(r"^(\d+(?:\.\d+)?):([0-9*#A-D]{1,32})$")
#: Each key press: 100 ms of tone then 80 ms of quiet (well inside ITU-T Q.24).
TONE_MS, PAUSE_MS = 100, 80


@dataclass(frozen=True, slots=True)
class DtmfAt:
    seconds: float
    digits: str


@dataclass(frozen=True, slots=True)
class ReplayResult:
    frames: int
    seconds: float
    close_code: int | None
    close_reason: str


def parse_dtmf_at(value: str) -> DtmfAt:
    """``SECONDS:DIGITS``, e.g. ``12.5:4242``."""
    m = _DTMF_AT.match(value)
    if m is None:
        raise InvalidInputError("--dtmf-at must be SECONDS:DIGITS (digits 0-9 * # A-D)")
    return DtmfAt(float(m.group(1)), m.group(2))


def load_wav(path: Path) -> bytes:
    """The WAV's audio as 8 kHz mono μ-law."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error):
        raise InvalidInputError("not a readable WAV file", field="file") from None
    if width != 2 or channels not in (1, 2) or not 8000 <= rate <= 48000:
        raise InvalidInputError("WAV must be 16-bit PCM, mono or stereo, 8-48 kHz", field="file")
    samples = array("h", frames)
    if channels == 2:
        samples = array(
            "h", ((samples[i] + samples[i + 1]) // 2 for i in range(0, len(samples), 2))
        )
    return mulaw_encode(_resample(samples, rate, RATE).tobytes())


def _resample(x: array[int], src: int, dst: int) -> array[int]:
    """Linear interpolation after a moving-average low-pass when going down (a test tool's
    quality: enough for speech recognition at 8 kHz)."""
    if src == dst or not x:
        return x
    if src > dst:
        width = max(1, round(src / dst))
        acc, smooth = 0, array("h", bytes(2 * len(x)))
        for i, v in enumerate(x):
            acc += v - (x[i - width] if i >= width else 0)
            smooth[i] = acc // min(i + 1, width)
        x = smooth
    n = len(x) * dst // src
    last = len(x) - 1
    step = src / dst
    out = array("h", bytes(2 * n))
    for i in range(n):
        p = i * step
        j = int(p)
        a = x[j]
        out[i] = int(a + (x[min(j + 1, last)] - a) * (p - j))
    return out


def dtmf_tones(digits: str) -> bytes:
    """Keypad presses as 8 kHz μ-law: each a tone pair then a pause."""
    pcm = array("h")
    n_tone, n_pause = TONE_MS * RATE // 1000, PAUSE_MS * RATE // 1000
    for d in digits:
        i = _KEYS.index(d)
        row, col = _ROW_HZ[i // 4], _COL_HZ[i % 4]
        pcm.extend(
            round(
                8000
                * (math.sin(2 * math.pi * row * k / RATE) + math.sin(2 * math.pi * col * k / RATE))
            )
            for k in range(n_tone)
        )
        pcm.extend(array("h", bytes(2 * n_pause)))
    return mulaw_encode(pcm.tobytes())


def overlay_dtmf(mulaw: bytes, presses: Sequence[DtmfAt]) -> bytes:
    """``mulaw`` with each press's tones written over the audio at its time (extended
    with silence if a press runs past the end)."""
    out = bytearray(mulaw)
    for press in presses:
        start = round(press.seconds * RATE)
        tones = dtmf_tones(press.digits)
        if start + len(tones) > len(out):
            out.extend(b"\xff" * (start + len(tones) - len(out)))
        out[start : start + len(tones)] = tones
    return bytes(out)


def replay(
    url: str,
    mulaw: bytes,
    *,
    agent_id: str,
    api_key: str,
    context: ssl.SSLContext,
    presses: Sequence[DtmfAt] = (),
    realtime: bool = True,
) -> ReplayResult:
    """Stream ``mulaw`` to ``url`` as one Twilio Media Stream; return how it ended.

    On websockets' asyncio client, one thread: the sync client reads its TLS
    socket in a thread while the caller writes, and about one connection in a
    few hundred then never saw its upgrade answered and hung on close (TLS 1.3
    session tickets arriving as the request is written). The whole stream is
    bounded by the audio's length plus :data:`_SLACK_S`.
    """
    return asyncio.run(
        _replay(
            url,
            mulaw,
            agent_id=agent_id,
            api_key=api_key,
            context=context,
            presses=presses,
            realtime=realtime,
        )
    )


#: Seconds a replay may take beyond its audio's own length (connecting, the end of the call).
_SLACK_S = 60


async def _replay(
    url: str,
    mulaw: bytes,
    *,
    agent_id: str,
    api_key: str,
    context: ssl.SSLContext,
    presses: Sequence[DtmfAt],
    realtime: bool,
) -> ReplayResult:
    from websockets.asyncio.client import connect  # noqa: PLC0415 - only this command needs it
    from websockets.exceptions import ConnectionClosed, InvalidHandshake  # noqa: PLC0415

    fw = FrameWriter()
    # Twilio reports a key when it is released: each digit after its tone.
    tone, step = TONE_MS * RATE // 1000, (TONE_MS + PAUSE_MS) * RATE // 1000
    events = sorted(
        (round(p.seconds * RATE) + i * step + tone, d)
        for p in presses
        for i, d in enumerate(p.digits)
    )
    started = time.monotonic()
    sent = 0
    try:
        async with (
            asyncio.timeout(len(mulaw) / RATE + _SLACK_S),
            connect(url, ssl=context, open_timeout=15, close_timeout=15) as ws,
        ):
            await ws.send(fw.connected())
            await ws.send(fw.start({AGENT_PARAMETER: agent_id, KEY_PARAMETER: api_key}))
            for i in range(0, len(mulaw), FRAME_BYTES):
                while events and events[0][0] <= i:
                    await ws.send(fw.dtmf(events.pop(0)[1]))
                await ws.send(fw.media(mulaw[i : i + FRAME_BYTES]))
                sent += 1
                if realtime:
                    ahead = started + sent * FRAME_MS / 1000 - time.monotonic()
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            await ws.send(fw.stop())
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 30)  # the server closes after 'stop'
            code, reason = _closed(ws)
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise UnavailableError(f"cannot stream to the server: {type(exc).__name__}") from None
    except ConnectionClosed as exc:
        rcvd = exc.rcvd
        code, reason = (rcvd.code, rcvd.reason) if rcvd else (None, "connection lost")
    return ReplayResult(sent, time.monotonic() - started, code, reason)


def _closed(ws: object) -> tuple[int | None, str]:
    code = getattr(ws, "close_code", None)
    reason = getattr(ws, "close_reason", None) or ""
    return code, str(reason)
