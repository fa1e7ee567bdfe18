"""Masked audio, recognised again, gives none of the masked digits back.

Sentences are spoken word by word with espeak-ng (so each word's timing is
exact), masked from their findings with :func:`mask_intervals` and
:func:`mask_pcm16` / :func:`mask_mulaw` (beep and silence), and decoded with
pocketsphinx restricted to digit words and the sentences' other words (see
``tests/integration/audio/speech.py``), both word slot by word slot and as a
whole. The unmasked audio must give several of the digits back, so the checks
on the masked audio can fail: leaving even the last digit of the card number
unmasked fails them.
"""

from __future__ import annotations

import pytest

from callvault.redact import Finding, Redactor, word_spans
from callvault.redact._audio import (
    mask_intervals,
    mask_mulaw,
    mask_pcm16,
    mulaw_decode,
    mulaw_encode,
)
from tests.integration.audio.speech import (
    RATE,
    Recording,
    double_rate,
    halve_rate,
    recognise,
    recognise_slots,
    require_espeak,
    synthesise,
)

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# The sentences' other words; espeak-ng spells "NHS" out as letters.
CARRIER = ["my", "card", "number", "is", "thank", "you", "n", "h", "s"]
VOCABULARY = (*DIGITS, *CARRIER)

CARD = (
    "my card number is four one one one one one one one one one one one one one one one thank you"
)
NHS = "my NHS number is nine four three four seven six five nine one nine"
SENTENCES = {"card": (CARD, "CARD_NUMBER"), "nhs": (NHS, "NHS_NUMBER")}

#: Fewest digit words the recogniser must hear in the unmasked audio.
MIN_HEARD = 4


@pytest.fixture(scope="module")
def recordings() -> dict[str, Recording]:
    espeak = require_espeak()
    return {name: synthesise(espeak, text) for name, (text, _) in SENTENCES.items()}


def digit_findings(rec: Recording, entity: str) -> list[Finding]:
    """Stand-in for the engine: one finding over each run of digit words."""
    spans = word_spans(rec.words)
    findings: list[Finding] = []
    run: list[int] = []
    for i, w in enumerate([*rec.words, None]):
        if w is not None and w.text in DIGITS:
            run.append(i)
        elif run:
            findings.append(Finding(spans[run[0]][0], spans[run[-1]][1], entity, 1.0))
            run = []
    return findings


def check_masking(
    rec: Recording, clear: bytes, masked: dict[str, bytes], intervals: list[tuple[float, float]]
) -> None:
    """The clear audio gives the digits back; the masked audio gives none of them.

    Two listeners: one decoding each word's time slot alone (it knows where
    the digits were, and a beep elsewhere cannot disturb it), and one
    decoding the whole recording. Either may hear a digit in a beep (it has
    to hear *something* in a 1 kHz tone); what it must not hear is a digit
    that was spoken there.
    """
    digits = [i for i, w in enumerate(rec.words) if w.text in DIGITS]
    spoken = {rec.words[i].text for i in digits}

    def recovered(audio: bytes) -> list[str]:
        slots = recognise_slots(audio, rec.words, VOCABULARY)
        return [rec.words[i].text for i in digits if rec.words[i].text in slots[i]]

    def heard_inside(audio: bytes) -> list[str]:
        return [
            h.word
            for h in recognise(audio, VOCABULARY)
            if h.word in spoken and any(lo <= h.middle <= hi for lo, hi in intervals)
        ]

    # The control: both listeners hear several of the digits in the clear audio.
    assert len(recovered(clear)) >= MIN_HEARD, recognise_slots(clear, rec.words, VOCABULARY)
    assert len(heard_inside(clear)) >= MIN_HEARD, recognise(clear, VOCABULARY)
    for mode, audio in masked.items():
        assert recovered(audio) == [], (mode, recognise_slots(audio, rec.words, VOCABULARY))
        assert heard_inside(audio) == [], (mode, recognise(audio, VOCABULARY))


def intervals_for(rec: Recording, findings: list[Finding]) -> list[tuple[float, float]]:
    intervals = mask_intervals(findings, rec.words, duration=rec.duration)
    digit_words = [w for w in rec.words if w.text in DIGITS]
    assert digit_words
    for w in digit_words:  # every digit word lies inside a masked interval
        assert any(lo <= w.start and w.end <= hi for lo, hi in intervals), w
    return intervals


@pytest.mark.parametrize("name", sorted(SENTENCES))
def test_pcm16_masking_hides_the_digits(recordings: dict[str, Recording], name: str) -> None:
    rec = recordings[name]
    intervals = intervals_for(rec, digit_findings(rec, SENTENCES[name][1]))
    masked = {mode: mask_pcm16(rec.pcm, RATE, intervals, mode=mode) for mode in ("beep", "silence")}
    check_masking(rec, rec.pcm, masked, intervals)


def test_mulaw_masking_hides_the_digits(recordings: dict[str, Recording]) -> None:
    """Telephony: 8 kHz μ-law, masked as stored, decoded and brought back to 16 kHz."""
    rec = recordings["card"]
    intervals = intervals_for(rec, digit_findings(rec, "CARD_NUMBER"))
    ulaw = mulaw_encode(halve_rate(rec.pcm))
    assert len(ulaw) == (len(rec.pcm) // 2 + 1) // 2

    def back(data: bytes) -> bytes:
        return double_rate(mulaw_decode(data))

    masked = {
        mode: back(mask_mulaw(ulaw, RATE // 2, intervals, mode=mode))
        for mode in ("beep", "silence")
    }
    check_masking(rec, back(ulaw), masked, intervals)


@pytest.mark.parametrize("name", sorted(SENTENCES))
def test_engine_findings_hide_the_digits(recordings: dict[str, Recording], name: str) -> None:
    """The same, from ``Redactor().find`` on the transcript instead of the stand-in."""
    rec = recordings[name]
    text = " ".join(w.text for w in rec.words)
    findings = Redactor().find(text)
    assert SENTENCES[name][1] in {f.entity for f in findings}
    intervals = intervals_for(rec, findings)
    check_masking(rec, rec.pcm, {"beep": mask_pcm16(rec.pcm, RATE, intervals)}, intervals)
