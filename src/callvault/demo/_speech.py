"""The demo's calls as audio: espeak-ng speech, word by word, on a two-track timeline.

Each word is synthesised on its own (``espeak-ng --stdout``), trimmed of
espeak's own padding and resampled to 8 kHz, and the words are laid end to
end with short gaps, so every word's time in the call is known exactly: the
transcript segments the demo sends carry those times, as an ASR would.
The caller speaks on the inbound track, the agent on the outbound track;
the demo streams the two mixed into one channel (``_live.py``). Keypad
presses are tones on the inbound track plus ``dtmf`` reports
(``calls/_replay.py``'s tones).

Words repeat (digits above all), so each (voice, word) is synthesised once;
distinct words run as a few espeak-ng processes side by side.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from array import array
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

from callvault.calls._replay import PAUSE_MS, RATE, TONE_MS, DtmfAt, _resample, overlay_dtmf
from callvault.demo._scripts import CallScript, Keys, Say, Speaker
from callvault.errors import UnavailableError
from callvault.redact import mulaw_encode

ESPEAK: Final = "espeak-ng"
MISSING: Final = (
    "espeak-ng is not installed (the demo speaks its calls with it): apt-get install espeak-ng"
)
VOICES: Final[dict[Speaker, str]] = {"caller": "en-gb", "agent": "en-us"}
_WPM: Final = 210
_WORKERS: Final = 4
_TIMEOUT_S: Final = 30
_TRIM: Final = 200  # |sample| below this at a word's ends is espeak's own padding
_LEAD_MS: Final = 400  # before the first word
_WORD_GAP_MS: Final = 50
_TURN_GAP_MS: Final = 400
#: Caller silence before the first key: a keypad capture silences from a second before it.
_KEYS_LEAD_MS: Final = 1_200
_TAIL_MS: Final = 600


def find_espeak() -> str:
    """The espeak-ng on ``PATH``; :class:`UnavailableError` saying how to install it."""
    found = shutil.which(ESPEAK)
    if found is None:
        raise UnavailableError(MISSING)
    return found


@dataclass(frozen=True, slots=True)
class TimedWord:
    text: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class TimedSegment:
    speaker: Speaker
    text: str
    words: tuple[TimedWord, ...]

    @property
    def start_ms(self) -> int:
        return self.words[0].start_ms

    @property
    def end_ms(self) -> int:
        return self.words[-1].end_ms


@dataclass(frozen=True, slots=True)
class CallAudio:
    """One call ready to stream: 8 kHz μ-law per track, its transcript, its key presses."""

    script: CallScript
    inbound: bytes
    outbound: bytes
    segments: tuple[TimedSegment, ...]
    presses: tuple[DtmfAt, ...]

    @property
    def seconds(self) -> float:
        return max(len(self.inbound), len(self.outbound)) / RATE


class Synthesiser:
    """espeak-ng, one word at a time, remembered per (voice, word)."""

    def __init__(self, binary: str) -> None:
        self._binary = binary
        self._words: dict[tuple[str, str], array[int]] = {}

    def prepare(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Synthesise every (voice, word) not yet known, a few processes at a time."""
        todo = sorted(set(wanted) - self._words.keys())
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            for key, pcm in zip(todo, pool.map(self._speak, todo), strict=True):
                self._words[key] = pcm

    def word(self, voice: str, text: str) -> array[int]:
        if (voice, text) not in self._words:
            self.prepare([(voice, text)])
        return self._words[(voice, text)]

    def _speak(self, key: tuple[str, str]) -> array[int]:
        voice, text = key
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv; the word is one argument, no shell
                [self._binary, "-v", voice, "-s", str(_WPM), "--stdout", text],
                capture_output=True,
                check=False,
                timeout=_TIMEOUT_S,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UnavailableError(f"espeak-ng could not run: {type(exc).__name__}") from None
        if done.returncode != 0:
            raise UnavailableError(f"espeak-ng failed with exit status {done.returncode}")
        try:
            with wave.open(io.BytesIO(done.stdout)) as w:  # a stream: the header's sizes are unset
                rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
                samples = array("h", w.readframes(w.getnframes()))
        except (wave.Error, EOFError):
            raise UnavailableError("espeak-ng wrote no readable WAV") from None
        if width != 2 or channels != 1:
            raise UnavailableError("espeak-ng wrote audio other than 16-bit mono")
        loud = [i for i, v in enumerate(samples) if abs(v) >= _TRIM]
        if loud:
            samples = samples[loud[0] : loud[-1] + 1]
        return _resample(samples, rate, RATE)


def _ms(samples: int) -> int:
    return samples * 1000 // RATE


def _samples(ms: int) -> int:
    return ms * RATE // 1000


def render(script: CallScript, speech: Synthesiser) -> CallAudio:
    """``script`` as two tracks on one timeline, with each spoken word's time."""
    speech.prepare(
        (VOICES[t.speaker], w) for t in script.turns if isinstance(t, Say) for w in t.text.split()
    )
    tracks: dict[Speaker, array[int]] = {"caller": array("h"), "agent": array("h")}
    segments: list[TimedSegment] = []
    presses: list[DtmfAt] = []
    at = _samples(_LEAD_MS)
    for turn in script.turns:
        if isinstance(turn, Keys):
            at += _samples(_KEYS_LEAD_MS)
            presses.append(DtmfAt(at / RATE, turn.digits))
            at += len(turn.digits) * _samples(TONE_MS + PAUSE_MS)
        else:
            track = tracks[turn.speaker]
            words = []
            for i, text in enumerate(turn.text.split()):
                if i:
                    at += _samples(_WORD_GAP_MS)
                pcm = speech.word(VOICES[turn.speaker], text)
                _place(track, at, pcm)
                words.append(TimedWord(text, _ms(at), _ms(at + len(pcm))))
                at += len(pcm)
            segments.append(TimedSegment(turn.speaker, turn.text, tuple(words)))
        at += _samples(_TURN_GAP_MS)
    end = at + _samples(_TAIL_MS)
    for track in tracks.values():
        _place(track, end, array("h"))
    inbound = overlay_dtmf(mulaw_encode(tracks["caller"].tobytes()), presses)
    return CallAudio(
        script=script,
        inbound=inbound,
        outbound=mulaw_encode(tracks["agent"].tobytes()),
        segments=tuple(segments),
        presses=tuple(presses),
    )


def _place(track: array[int], at: int, pcm: array[int]) -> None:
    """Write ``pcm`` into ``track`` from sample ``at`` (silence fills any gap before it)."""
    if len(track) < at:
        track.extend(array("h", bytes(2 * (at - len(track)))))
    track[at : at + len(pcm)] = pcm
