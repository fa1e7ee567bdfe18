"""Card numbers in transcript segments are tokenized before the text is sealed."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.calls import Segment, Word
from callvault.calls._card_text import protect_cards
from callvault.redact import Finding, Redactor
from callvault.runtime import Runtime
from callvault.store.models import PaymentToken
from tests.support.world import World

SPOKEN = "my card number is four one one one one one one one one one one one one one one one"


def _seg(speaker: str, start: int, end: int, text: str, words: tuple[Word, ...]) -> Segment:
    return Segment(speaker, start, end, is_final=True, text=text, words=words)


def _words(text: str, start_ms: int = 0, step: int = 300) -> tuple[Word, ...]:
    return tuple(
        Word(w, start_ms + i * step, start_ms + i * step + 250) for i, w in enumerate(text.split())
    )


def test_written_and_spoken_cards_become_token_displays_and_card_words() -> None:
    seen: list[str] = []

    def tokenize(digits: str) -> str:
        seen.append(digits)
        return f"[CARD tok_{len(seen)} ending {digits[-4:]}]"

    segs = [
        _seg("caller", 0, 6000, SPOKEN, _words(SPOKEN)),
        _seg("caller", 6000, 9000, "it is 4111 1111 1111 1111 thanks", ()),
        _seg("agent", 9000, 9500, "thank you", _words("thank you", 9000)),
    ]
    out, found = protect_cards(segs, Redactor(), tokenize)
    assert found == 2
    assert seen == ["4111111111111111", "4111111111111111"]
    assert out[0].text == "my card number is [CARD tok_1 ending 1111]"
    assert [w.text for w in out[0].words[:4]] == ["my", "card", "number", "is"]
    assert {w.text for w in out[0].words[4:]} == {"[CARD]"}
    assert [w.start_ms for w in out[0].words] == [w.start_ms for w in segs[0].words]
    assert out[1].text == "it is [CARD tok_2 ending 1111] thanks"
    assert out[2] == segs[2]  # nothing to protect: unchanged
    assert not any(re.search(r"\d{4} \d{4}", s.text) for s in out)


class _OneCard:
    """A stand-in engine that calls ``text[start:end]`` a card number, whatever it holds."""

    def __init__(self, start: int, end: int) -> None:
        self.span = (start, end)

    def find(self, text: str) -> list[Finding]:
        assert self.span[1] <= len(text)
        return [Finding(self.span[0], self.span[1], "CARD_NUMBER", 0.9)]


def test_a_card_with_an_impossible_length_is_withheld_not_tokenized() -> None:
    calls: list[str] = []
    text = "card 1234 5678 thanks"  # 8 digits: no card number, whatever the engine says
    out, found = protect_cards(
        [_seg("caller", 0, 1, text, _words(text))],
        _OneCard(5, 14),  # type: ignore[arg-type]
        lambda d: calls.append(d) or "unused",
    )
    assert found == 1
    assert calls == []
    assert out[0].text == "card [CARD_NUMBER] thanks"
    assert [w.text for w in out[0].words] == ["card", "[CARD]", "[CARD]", "thanks"]


def test_segments_posted_to_the_api_keep_only_the_token(
    rt: Runtime, client: TestClient, world: World
) -> None:
    ingest = {"Authorization": f"Bearer {world.a.tokens[('ingest', 'tenant')]}"}
    r = client.post(
        f"/v1/agents/{world.a.agents[0]}/calls", headers=ingest, json={"direction": "inbound"}
    )
    assert r.status_code == 201, r.text
    call = r.json()["id"]
    words = [{"text": w.text, "start_ms": w.start_ms, "end_ms": w.end_ms} for w in _words(SPOKEN)]
    seg = {"speaker": "caller", "start_ms": 0, "end_ms": 6000, "text": SPOKEN, "words": words}
    r = client.post(f"/v1/calls/{call}/segments", headers=ingest, json={"segments": [seg]})
    assert r.status_code == 201, r.text
    co = {"Authorization": f"Bearer {world.a.tokens[('compliance_officer', 'tenant')]}"}
    full = client.get(f"/v1/calls/{call}/transcript", headers=co, params={"view": "full"}).json()
    text = full["segments"][0]["text"]
    assert re.fullmatch(r"my card number is \[CARD tok_\w+ ending 1111\]", text)
    assert "one one one" not in text
    assert {w["text"] for w in full["segments"][0]["words"][4:]} == {"[CARD]"}
    with rt.db.tenant_tx(world.a.id) as s:
        tokens = list(s.execute(select(PaymentToken).where(PaymentToken.call_id == call)).scalars())
    assert [(t.last4, t.digits, t.source) for t in tokens] == [("1111", 16, "speech")]
    assert tokens[0].id in text


def test_a_security_code_is_replaced_and_never_tokenized() -> None:
    text = "my card is 4111 1111 1111 1111 and the security code is 737"
    words = tuple(Word(w, i * 100, i * 100 + 90) for i, w in enumerate(text.split()))
    tokenized: list[str] = []

    def tokenize(digits: str) -> str:
        tokenized.append(digits)
        return f"[CARD tok_x ending {digits[-4:]}]"

    out, found = protect_cards(
        [Segment("caller", 0, 2000, is_final=True, text=text, words=words)],
        Redactor(),
        tokenize,
    )
    assert found == 1
    assert tokenized == ["4111111111111111"]
    assert out[0].text == "my card is [CARD tok_x ending 1111] and the security code is [CARD_CVV]"
    assert "737" not in " ".join(w.text for w in out[0].words)
