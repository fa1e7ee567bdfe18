"""A synthesised call with a card said aloud and another keyed: neither is stored anywhere.

The call is spoken with espeak-ng (word by word, so every word's timing is
exact), with 16 in-band DTMF key tones between the two utterances, and
streamed at 16 kHz PCM16 through the generic live-ingest WebSocket as an
agent would send it: audio frames, the recogniser's interim and final
segments (with those word timings) as the audio reaches them, and the
keypad digits as out-of-band ``dtmf`` messages. Then:

- the stored recording, decrypted, is recognised again with pocketsphinx
  (digits vocabulary, each card word's time slot alone): none of the card's
  digits is heard, while the same listener hears them in the clear audio
  (so the check can fail); the key tones' audio is silence;
- every stored byte is scanned: each file under the data directory (the
  database, the object store) raw, and every transcript segment and call
  event decrypted, for either card number (written, and as spoken words);
- both cards were tokenized (one from speech, one from the keypad), and only
  the payment connector receives a card number back: a ``payment_operator``
  hand-off delivers it there, while other roles are refused.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.calls._store import _ctx, _opened_segments, get_call
from callvault.config import Settings, load_settings
from callvault.runtime import Runtime
from callvault.store.models import CallEvent, PaymentToken
from tests.integration.audio.speech import (
    RATE,
    Recording,
    recognise_slots,
    require_espeak,
    synthesise,
)
from tests.support.processor import SECRET, Processor, running_processor
from tests.support.world import World
from tests.unit.calls.test_ingest import _stored_audio

SPOKEN_CARD = "4992739871654328"
KEYED_CARD = "5358102746930685"
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
CARRIER = ["i", "would", "like", "to", "pay", "my", "card", "number", "is", "thank", "you"]
VOCABULARY = (*NAMES, *CARRIER)
FIRST = "i would like to pay my card number is " + " ".join(NAMES[int(d)] for d in SPOKEN_CARD)
LAST = "thank you"
FRAME = RATE // 50  # 20 ms
TONE_S, GAP_S = 0.1, 0.1
KEYS = {
    "0": (941, 1336), "1": (697, 1209), "2": (697, 1336), "3": (697, 1477),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "7": (852, 1209),
    "8": (852, 1336), "9": (852, 1477),
}  # fmt: skip
#: Fewest card digits the listener must hear in the clear audio.
MIN_HEARD = 4


@pytest.fixture
def pay(tmp_path: Path) -> Iterator[Processor]:
    with running_processor(tmp_path / "processor") as processor:
        yield processor


@pytest.fixture
def settings(tmp_path: Path, pay: Processor) -> Settings:
    return load_settings(
        {},
        data_dir=tmp_path / "data",
        payment_connector_url=pay.url,
        payment_connector_secret=SECRET,
        payment_connector_ca_file=pay.ca_file,
    )


def _sine(hz: int, k: int) -> float:
    return math.sin(2 * math.pi * hz * k / RATE)


def _tones(digits: str) -> array[int]:
    out = array("h")
    for d in digits:
        lo, hi = KEYS[d]
        out.extend(
            round(
                6000
                * (math.sin(2 * math.pi * lo * k / RATE) + math.sin(2 * math.pi * hi * k / RATE))
            )
            for k in range(round(TONE_S * RATE))
        )
        out.extend([0] * round(GAP_S * RATE))
    return out


class Call:
    """The synthesised call: audio and when each part is."""

    def __init__(self, first: Recording, last: Recording) -> None:
        pcm = array("h", first.pcm)
        self.first = first
        self.tones_at = len(pcm) / RATE + 0.5
        pcm.extend([0] * round(0.5 * RATE))
        pcm.extend(_tones(KEYED_CARD))
        pcm.extend([0] * round(0.5 * RATE))
        self.last_at = len(pcm) / RATE
        self.last_words = [
            {"text": w.text, "start": w.start + self.last_at, "end": w.end + self.last_at}
            for w in last.words
        ]
        pcm.extend(array("h", last.pcm))
        self.pcm = pcm.tobytes()
        self.seconds = len(pcm) / RATE

    def card_words(self) -> tuple[Any, ...]:
        return tuple(w for w in self.first.words if w.text in NAMES)


def _words(words: Any) -> list[dict[str, int | str]]:
    out = []
    for w in words:
        text, start, end = (w["text"], w["start"], w["end"]) if isinstance(w, dict) else w
        out.append({"text": text, "start_ms": round(start * 1000), "end_ms": round(end * 1000)})
    return out


@pytest.fixture(scope="module")
def spoken() -> tuple[Recording, Recording]:
    espeak = require_espeak()
    return synthesise(espeak, FIRST), synthesise(espeak, LAST)


def _stream(client: TestClient, world: World, call: Call) -> tuple[str, list[dict[str, Any]]]:
    headers = {"Authorization": f"Bearer {world.a.tokens[('ingest', 'tenant')]}"}
    replies: list[dict[str, Any]] = []
    sent = 0
    first_words = list(call.first.words)
    digit_words = [i for i, w in enumerate(first_words) if w.text in NAMES]
    interim_upto = digit_words[0]  # "… my card number is four": a streaming recogniser's interim
    plan: list[tuple[float, dict[str, Any]]] = [
        (
            first_words[interim_upto].end + 0.3,
            {"type": "segment", "id": "u1", "final": False,
             "words": _words((w.text, w.start, w.end) for w in first_words[: interim_upto + 1])},
        ),
        (
            first_words[-1].end + 0.4,
            {"type": "segment", "id": "u1",
             "words": _words((w.text, w.start, w.end) for w in first_words)},
        ),
        *(
            (
                call.tones_at + i * (TONE_S + GAP_S) + 0.05,
                {"type": "dtmf", "digit": d,
                 "at_ms": round((call.tones_at + i * (TONE_S + GAP_S)) * 1000)},
            )
            for i, d in enumerate(KEYED_CARD)
        ),
        (
            call.last_at - 0.2,
            {"type": "dtmf", "digit": "#", "at_ms": round((call.last_at - 0.3) * 1000)},
        ),
        (
            call.last_words[-1]["end"] + 0.3,
            {"type": "segment", "id": "u2", "words": _words(call.last_words)},
        ),
    ]  # fmt: skip
    with client.websocket_connect(f"/v1/ingest/stream/{world.a.agents[0]}", headers=headers) as ws:
        ws.send_text(json.dumps({"type": "start", "codec": "pcm16", "sample_rate": RATE}))
        call_id = json.loads(ws.receive_text())["call_id"]
        for at, msg in sorted(plan, key=lambda p: p[0]):
            upto = min(len(call.pcm) // 2, round(at * RATE))
            while sent < upto:
                n = min(FRAME, upto - sent)
                ws.send_bytes(call.pcm[2 * sent : 2 * (sent + n)])
                sent += n
            ws.send_text(json.dumps(msg))
            if msg["type"] == "segment" and msg.get("final", True):
                replies.append(_until(ws, "segment", replies))
            elif msg["digit" if msg["type"] == "dtmf" else "type"] == "#":
                replies.append(_until(ws, "card", replies))
        while sent < len(call.pcm) // 2:
            n = min(FRAME, len(call.pcm) // 2 - sent)
            ws.send_bytes(call.pcm[2 * sent : 2 * (sent + n)])
            sent += n
        ws.send_text(json.dumps({"type": "stop"}))
        replies.append(_until(ws, "stopped", replies))
    return call_id, replies


def _until(ws: Any, kind: str, seen: list[dict[str, Any]]) -> dict[str, Any]:
    while True:
        reply: dict[str, Any] = json.loads(ws.receive_text())
        if reply["type"] == kind:
            return reply
        seen.append(reply)


def _forms(pan: str) -> list[bytes]:
    """The card number as it could appear in stored bytes: digits, and spoken."""
    spoken = " ".join(NAMES[int(d)] for d in pan)
    return [pan.encode(), spoken.encode(), pan.encode("utf-16-le"), spoken[:40].encode()]


def test_a_card_said_aloud_and_one_keyed_are_never_stored(
    rt: Runtime,
    client: TestClient,
    world: World,
    pay: Processor,
    spoken: tuple[Recording, Recording],
    settings: Settings,
) -> None:
    call = Call(*spoken)
    call_id, replies = _stream(client, world, call)
    assert replies[-1]["status"] == "completed"
    assert not [r for r in replies if r["type"] == "warning"], "a silencing came too late"
    said = next(r for r in replies if r["type"] == "segment" and r["id"] == "u1")
    assert "[CARD tok_" in said["text"]
    keyed = next(r for r in replies if r["type"] == "card")
    assert keyed["token"].endswith(f"ending {KEYED_CARD[-4:]}]")

    # The recording: the card's words and the key tones are silence; a listener that
    # hears the digits in the clear audio hears none of them in the stored audio.
    stored, _ = _stored_audio(rt, world.a.id, call_id)
    assert len(stored) == len(call.pcm)
    words = call.card_words()
    clear_heard = recognise_slots(call.pcm, words, VOCABULARY)
    stored_heard = recognise_slots(stored, words, VOCABULARY)
    assert sum(w.text in h for w, h in zip(words, clear_heard, strict=True)) >= MIN_HEARD
    assert not any(w.text in h for w, h in zip(words, stored_heard, strict=True))
    samples = array("h", stored)
    tones = slice(round(call.tones_at * RATE), round((call.last_at - 0.5) * RATE))
    assert max(abs(v) for v in samples[tones]) == 0
    assert max(abs(v) for v in samples[round(call.last_at * RATE) :]) > 1000  # "thank you" kept

    # Every stored byte: raw files, and every segment and event decrypted.
    for path in Path(settings.data_dir).rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            for pan in (SPOKEN_CARD, KEYED_CARD):
                assert not any(f in blob for f in _forms(pan)), path.name
    with rt.db.tenant_tx(world.a.id) as s:
        row = get_call(s, world.a.id, call_id)
        texts = [json.dumps(body) for _, body in _opened_segments(s, rt.sealer, row)]
        events = s.execute(select(CallEvent).where(CallEvent.call_id == call_id)).scalars()
        texts += [
            rt.sealer.open(
                s, ev.detail_sealed, _ctx(row, "call-event", f"{call_id}/{ev.seq}")
            ).decode()
            for ev in events
            if ev.detail_sealed is not None
        ]
        tokens = list(
            s.execute(select(PaymentToken).where(PaymentToken.call_id == call_id)).scalars()
        )
    assert len(texts) >= 3  # both finals, and the card-token and keypad-count events
    decrypted = " ".join(texts).encode()
    for pan in (SPOKEN_CARD, KEYED_CARD):
        assert not any(f in decrypted for f in _forms(pan))
    assert sorted(t.source for t in tokens) == ["dtmf", "speech"]
    assert {t.last4 for t in tokens} == {SPOKEN_CARD[-4:], KEYED_CARD[-4:]}

    # Only the payment connector gets a number back, and only through a payment operator.
    for token in tokens:
        url = f"/v1/payments/tokens/{token.id}/handoff"
        for role in ("compliance_officer", "ingest", "admin", "owner"):
            denied = client.post(url, headers=_auth(world, role))
            assert denied.status_code in (403, 404), role
        ok = client.post(url, headers=_auth(world, "payment_operator"))
        assert ok.status_code == 200, ok.text
        assert "pan" not in ok.text
    delivered = {json.loads(seen.body)["pan"] for seen in pay.seen}
    assert delivered == {SPOKEN_CARD, KEYED_CARD}


def _auth(world: World, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.a.tokens[(role, 'tenant')]}"}


def test_a_keyed_security_code_goes_once_to_the_connector_and_is_stored_nowhere(
    rt: Runtime, client: TestClient, world: World, pay: Processor, settings: Settings
) -> None:
    headers = {"Authorization": f"Bearer {world.a.tokens[('ingest', 'tenant')]}"}
    silence = bytes(2 * FRAME)
    with client.websocket_connect(f"/v1/ingest/stream/{world.a.agents[0]}", headers=headers) as ws:
        ws.send_text(json.dumps({"type": "start", "codec": "pcm16", "sample_rate": RATE}))
        call_id = json.loads(ws.receive_text())["call_id"]
        replies: list[dict[str, Any]] = []
        at = 0

        def key(digit: str) -> None:
            nonlocal at
            for _ in range(10):  # 200 ms of audio per key
                ws.send_bytes(silence)
            at += 200
            ws.send_text(json.dumps({"type": "dtmf", "digit": digit, "at_ms": at}))

        for d in KEYED_CARD + "#":
            key(d)
        card = _until(ws, "card", replies)
        ws.send_text(json.dumps({"type": "capture", "action": "begin", "kind": "cvv", "at_ms": at}))
        for d in "737#":
            key(d)
        held = _until(ws, "cvv", replies)
        ws.send_text(json.dumps({"type": "stop"}))
        _until(ws, "stopped", replies)
    assert held == {"type": "cvv", "held": True}
    with rt.db.tenant_tx(world.a.id) as s:
        token = s.execute(select(PaymentToken).where(PaymentToken.call_id == call_id)).scalar_one()
    assert card["token"].startswith(f"[CARD {token.id} ")
    url = f"/v1/payments/tokens/{token.id}/handoff"
    # A refused hand-off does not use up the code.
    assert client.post(url, headers=_auth(world, "compliance_officer")).status_code in (403, 404)
    for _ in range(2):
        assert client.post(url, headers=_auth(world, "payment_operator")).status_code == 200
    first, second = (json.loads(seen.body) for seen in pay.seen)
    assert (first["pan"], first.get("cvv")) == (KEYED_CARD, "737")
    assert "cvv" not in second  # used once
    for path in Path(settings.data_dir).rglob("*"):
        if path.is_file():
            assert KEYED_CARD.encode() not in path.read_bytes()
    assert len(rt.cvv_holds) == 0
