"""Speech synthesised with espeak-ng, word by word, and recognised again with pocketsphinx.

:func:`require_espeak` finds ``espeak-ng`` (``CV_TEST_ESPEAK_NG``, else
``PATH``, else ``/usr/bin``); without it the test skips, unless it runs as
root or under ``CV_TEST_REQUIRE_POSTGRES=1`` (the flag ``scripts/test`` sets
to demand every real peer), where it fails: ``scripts/test`` installs it.

:func:`synthesise` speaks each word on its own and joins the words with short
gaps, so every word's timing is known exactly; the result is 16 kHz mono
PCM16, what pocketsphinx's English model expects. :func:`recognise` decodes
with a JSGF grammar over a small vocabulary (any sequence of its words, with
silence and noise between): pocketsphinx's open-vocabulary model mostly hears
espeak's digits as other words, while this digit recogniser hears them.
:func:`recognise_slots` decodes each word's own time slot alone.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import wave
from array import array
from dataclasses import dataclass
from pathlib import Path

import pytest
from pocketsphinx import Decoder

from callvault.redact import Word

#: The sample rate pocketsphinx's English acoustic model is trained on.
RATE = 16_000
_ESPEAK_RATE = 22_050
_VOICE = "en-us"
_WPM = 160
_GAP_S = 0.12  # between words
_EDGE_S = 0.3  # before the first word and after the last
_TRIM = 200  # |sample| below this at a word's ends is espeak's own padding


class EspeakUnavailableError(Exception):
    """espeak-ng is not on this machine."""


def find_espeak() -> Path:
    if env := os.environ.get("CV_TEST_ESPEAK_NG"):
        binary: str | None = env if os.access(env, os.X_OK) else None
    else:
        binary = shutil.which("espeak-ng") or (
            "/usr/bin/espeak-ng" if os.access("/usr/bin/espeak-ng", os.X_OK) else None
        )
    if binary is None:
        raise EspeakUnavailableError("espeak-ng not found (apt-get install espeak-ng)")
    return Path(binary)


def require_espeak() -> Path:
    """The espeak-ng binary; skips without it, but fails as root or in CI (which install it)."""
    try:
        return find_espeak()
    except EspeakUnavailableError as exc:
        if os.environ.get("CV_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CV_TEST_REQUIRE_POSTGRES=1 but {exc}")
        if os.geteuid() == 0:
            pytest.fail(f"running as root, so scripts/test would have installed it, but {exc}")
        pytest.skip(str(exc))


@dataclass(frozen=True)
class Recording:
    """16 kHz mono PCM16 speech and the exact timing of each spoken word."""

    pcm: bytes
    words: tuple[Word, ...]

    @property
    def duration(self) -> float:
        return len(self.pcm) / 2 / RATE


def _speak(espeak: Path, word: str) -> array[int]:
    out = subprocess.run(
        [str(espeak), "-v", _VOICE, "-s", str(_WPM), "--stdout", word],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    with wave.open(io.BytesIO(out)) as w:  # the header's sizes are unset (a stream)
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, _ESPEAK_RATE)
        samples = array("h", w.readframes(w.getnframes()))
    first = next(i for i, v in enumerate(samples) if abs(v) >= _TRIM)
    last = next(i for i in range(len(samples) - 1, -1, -1) if abs(samples[i]) >= _TRIM)
    return samples[first : last + 1]


def synthesise(espeak: Path, text: str) -> Recording:
    """``text`` spoken word by word (space-separated words), resampled to 16 kHz."""
    pcm = array("h", bytes(2 * round(_EDGE_S * _ESPEAK_RATE)))
    gap = array("h", bytes(2 * round(_GAP_S * _ESPEAK_RATE)))
    words = []
    for i, token in enumerate(text.split()):
        if i:
            pcm.extend(gap)
        start = len(pcm) / _ESPEAK_RATE
        pcm.extend(_speak(espeak, token))
        words.append(Word(token, start, len(pcm) / _ESPEAK_RATE))
    pcm.extend(array("h", bytes(2 * round(_EDGE_S * _ESPEAK_RATE))))
    return Recording(resample(pcm.tobytes(), _ESPEAK_RATE, RATE), tuple(words))


def resample(pcm: bytes, src: int, dst: int) -> bytes:
    """PCM16 from ``src`` Hz to ``dst`` Hz by linear interpolation (crude, and enough here)."""
    x = array("h", pcm)
    n = len(x) * dst // src
    last = len(x) - 1
    out = array("h", bytes(2 * n))
    step = src / dst
    for i in range(n):
        p = i * step
        j = int(p)
        a = x[j]
        out[i] = int(a + (x[min(j + 1, last)] - a) * (p - j))
    return out.tobytes()


def halve_rate(pcm: bytes) -> bytes:
    """PCM16 at half the rate: a [1, 2, 1] / 4 low-pass, then every other sample."""
    x = array("h", pcm)
    last = len(x) - 1
    return array(
        "h", ((x[max(i - 1, 0)] + 2 * x[i] + x[min(i + 1, last)]) // 4 for i in range(0, len(x), 2))
    ).tobytes()


def double_rate(pcm: bytes) -> bytes:
    """PCM16 at twice the rate, by linear interpolation."""
    x = array("h", pcm)
    last = len(x) - 1
    out = array("h", bytes(4 * len(x)))
    out[0::2] = x
    out[1::2] = array("h", ((x[i] + x[min(i + 1, last)]) // 2 for i in range(len(x))))
    return out.tobytes()


@dataclass(frozen=True)
class Heard:
    """One word pocketsphinx recognised, with its timing in seconds."""

    word: str
    start: float
    end: float

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


@functools.lru_cache(maxsize=4)
def _decoder(vocabulary: tuple[str, ...]) -> Decoder:
    grammar = (
        "#JSGF V1.0;\ngrammar vocabulary;\npublic <utterance> = <word>*;\n"
        f"<word> = {' | '.join(vocabulary)};\n"
    )
    decoder = Decoder(lm=None, loglevel="FATAL", samprate=RATE)
    decoder.add_jsgf_string("vocabulary", grammar)
    decoder.activate_search("vocabulary")
    return decoder


def _decode(decoder: Decoder, pcm: bytes, vocabulary: tuple[str, ...]) -> list[Heard]:
    """One utterance, from a fresh front end (noise and cepstral-mean estimates carry over else)."""
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    frame_s = 1 / decoder.config["frate"]
    return [
        Heard(s.word.split("(")[0], s.start_frame * frame_s, (s.end_frame + 1) * frame_s)
        for s in decoder.seg() or ()
        if s.word.split("(")[0] in vocabulary  # not <s>, <sil>, [NOISE]
    ]


@functools.lru_cache(maxsize=32)
def recognise(pcm: bytes, vocabulary: tuple[str, ...]) -> tuple[Heard, ...]:
    """The words of ``vocabulary`` pocketsphinx hears in the whole recording (16 kHz PCM16).

    One utterance: the model normalises its features over the whole of it
    (``-cmn batch``), so a long beep disturbs the words around it too; see
    :func:`recognise_slots` for a listener that a beep cannot disturb.
    Cached, as is :func:`recognise_slots`: the same audio (the unmasked
    sentences, masks equal to the stand-in's) is decoded once per process.
    """
    return tuple(_decode(_decoder(vocabulary), pcm, vocabulary))


@functools.lru_cache(maxsize=32)
def recognise_slots(
    pcm: bytes, words: tuple[Word, ...], vocabulary: tuple[str, ...]
) -> tuple[tuple[str, ...], ...]:
    """The words heard in each word's own time slot, decoded alone.

    The slot is the word's timing widened by half the gap on each side. This
    listener knows where every word was (it is given the true timings) and
    hears each in isolation, so audio elsewhere cannot disturb it: the
    strongest of the two at recovering a masked word.
    """
    decoder = _decoder(vocabulary)
    margin = _GAP_S / 2
    out = []
    for w in words:
        first = max(0, round((w.start - margin) * RATE))
        stop = round((w.end + margin) * RATE)
        out.append(tuple(h.word for h in _decode(decoder, pcm[2 * first : 2 * stop], vocabulary)))
    return tuple(out)
