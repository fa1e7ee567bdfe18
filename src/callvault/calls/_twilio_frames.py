"""Twilio Media Streams frames as Twilio sends them (for ``callvault replay`` and tests).

The shapes follow Twilio's documented messages: ``connected``, ``start``
(``mediaFormat``, ``customParameters``), ``media`` (base64 μ-law, 8 kHz, one
``chunk`` number per track, ``timestamp`` in ms), ``dtmf``, ``mark`` and
``stop``; every frame after ``connected`` carries a ``sequenceNumber`` string.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from callvault.calls._twilio import FRAME_BYTES, FRAME_MS


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


@dataclass
class FrameWriter:
    """Builds one stream's frames with consistent ids, sequence and chunk numbers."""

    stream_sid: str = "MZ00000000000000000000000000000000"
    account_sid: str = "AC00000000000000000000000000000000"
    call_sid: str = "CA00000000000000000000000000000000"
    _seq: int = 0
    _chunks: dict[str, int] = field(default_factory=dict)

    def _next(self) -> str:
        self._seq += 1
        return str(self._seq)

    def connected(self) -> str:
        return _dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    def start(
        self, parameters: Mapping[str, str] | None = None, tracks: tuple[str, ...] = ("inbound",)
    ) -> str:
        return _dumps(
            {
                "event": "start",
                "sequenceNumber": self._next(),
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": list(tracks),
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": dict(parameters or {}),
                },
                "streamSid": self.stream_sid,
            }
        )

    def media(self, payload: bytes, track: str = "inbound") -> str:
        chunk = self._chunks.get(track, 0) + 1
        self._chunks[track] = chunk
        return _dumps(
            {
                "event": "media",
                "sequenceNumber": self._next(),
                "media": {
                    "track": track,
                    "chunk": str(chunk),
                    "timestamp": str((chunk - 1) * FRAME_MS),
                    "payload": base64.b64encode(payload).decode("ascii"),
                },
                "streamSid": self.stream_sid,
            }
        )

    def dtmf(self, digit: str, track: str = "inbound_track") -> str:
        return _dumps(
            {
                "event": "dtmf",
                "sequenceNumber": self._next(),
                "dtmf": {"track": track, "digit": digit},
                "streamSid": self.stream_sid,
            }
        )

    def stop(self) -> str:
        return _dumps(
            {
                "event": "stop",
                "sequenceNumber": self._next(),
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                "streamSid": self.stream_sid,
            }
        )

    def audio(self, mulaw: bytes, track: str = "inbound") -> Iterator[str]:
        """``media`` frames of 20 ms (160 bytes) for ``mulaw``; the last may be shorter."""
        for i in range(0, len(mulaw), FRAME_BYTES):
            yield self.media(mulaw[i : i + FRAME_BYTES], track)
