"""RedactionStream: split entities, the hold window, forced release, interims, bounds.

Written digits exercise the stream with any engine (the skeleton finds Luhn
card numbers); spoken forms wait for the engine's recognisers.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.errors import InvalidInputError, PayloadTooLargeError
from callvault.redact import ENTITIES, Finding, Pseudonyms, Redactor, Segment, Word, word_spans
from callvault.redact._stream import WITHHELD, RedactionStream, Released

WORD_SECONDS = 0.3


class Written(Redactor):
    """A fixed stand-in for the engine, so the stream's mechanics have exact answers.

    Finds written Luhn-valid card numbers only; a trailing run of written
    digits is pending. Refuses text over ``max_chars`` like the engine.
    """

    _RUN = re.compile(r"\d(?:[ -]?\d){11,18}")
    _TAIL = re.compile(r"(?:\b\d+\W*)+$")

    def find(self, text: str) -> list[Finding]:
        if len(text) > self.max_chars:
            raise PayloadTooLargeError("over the limit")
        out = []
        for m in self._RUN.finditer(text):
            digits = [int(c) for c in m.group() if c.isdigit()]
            total = sum(
                d if i % 2 == 0 else (2 * d - 9 if d > 4 else 2 * d)
                for i, d in enumerate(reversed(digits))
            )
            if total % 10 == 0:
                out.append(Finding(m.start(), m.end(), "CARD_NUMBER", 0.9))
        return out

    def open_tail(self, text: str) -> int:
        if len(text) > self.max_chars:
            raise PayloadTooLargeError("over the limit")
        m = self._TAIL.search(text)
        return m.start() if m else len(text)


def seg(sid: str, text: str, start: float = 0.0, *, final: bool = True) -> Segment:
    """A segment of ``text``'s words, each 0.25 s long, one every 0.3 s from ``start``."""
    words = tuple(
        Word(w, start + i * WORD_SECONDS, start + i * WORD_SECONDS + 0.25)
        for i, w in enumerate(text.split())
    )
    return Segment(sid, words, final)


def check(r: Released) -> None:
    """Offsets, labels, the word mask and the redacted text agree with each other."""
    original = " ".join(w.text for w in r.words)
    spans = sorted([(f.start, f.end) for f in r.findings] + list(r.withheld))
    pos = 0
    pattern = ""
    for a, b in spans:
        assert pos <= a < b <= len(original)
        pattern += re.escape(original[pos:a]) + r"\[[A-Z_]+(?:_\d+)?\]"
        pos = b
    pattern += re.escape(original[pos:])
    assert re.fullmatch(pattern, r.text), (r.text, original)
    assert all(f.entity in ENTITIES for f in r.findings)
    assert len(r.masked_words) == len(r.words)
    for (ws, we), masked in zip(word_spans(r.words), r.masked_words, strict=True):
        assert masked == any(ws < b and a < we for a, b in spans)


def push_all(stream: RedactionStream, segments: list[Segment]) -> list[Released]:
    out: list[Released] = []
    for s in segments:
        out.extend(stream.push(s))
    out.extend(stream.flush())
    for r in out:
        check(r)
    return out


# -- split entities ------------------------------------------------------------------------


def test_written_card_split_across_segments_is_caught() -> None:
    stream = RedactionStream(Redactor())
    assert stream.push(seg("1", "my card number is 4111 1111", 0.0)) == []
    assert stream.held == 1
    out = stream.push(seg("2", "1111 1111 thanks", 2.0))
    assert [r.segment_id for r in out] == ["1", "2"]
    for r in out:
        check(r)
        assert not re.search(r"\d", r.text)
        assert [f.entity for f in r.findings] == ["CARD_NUMBER"]
    assert out[0].text == "my card number is [CARD_NUMBER]"
    assert out[0].findings[0] == Finding(18, 27, "CARD_NUMBER", out[0].findings[0].score)
    assert out[1].text == "[CARD_NUMBER] thanks"
    assert out[0].masked_words == (False, False, False, False, True, True)
    assert out[1].masked_words == (True, True, False)
    assert stream.held == 0


def test_split_card_gets_one_pseudonym() -> None:
    stream = RedactionStream(Redactor(), pseudonyms=Pseudonyms())
    out = push_all(stream, [seg("1", "card 4111 1111", 0), seg("2", "1111 1111 ok", 1)])
    assert [r.text for r in out] == ["card [CARD_NUMBER_1]", "[CARD_NUMBER_1] ok"]


def test_settled_text_is_released_at_once() -> None:
    stream = RedactionStream(Redactor())
    out = stream.push(seg("1", "card 4111 1111 1111 1111 thanks"))
    assert [r.text for r in out] == ["card [CARD_NUMBER] thanks"]
    assert stream.push(seg("2", "hello there", 3))[0].text == "hello there"
    assert stream.held == 0


def test_card_across_four_segments_with_no_hold() -> None:
    stream = RedactionStream(Written(), max_hold_segments=0)
    texts = ["it's 4111", "1111", "1111", "1111 thanks"]  # no keyword announces the value
    out = [stream.push(seg(str(i), t, i)) for i, t in enumerate(texts)]
    assert all(len(o) == 1 for o in out)  # nothing is ever held
    released = [o[0] for o in out]
    for r in released:
        check(r)
        assert not re.search(r"\d", r.text)
    # Forced out while pending: the number words are withheld, the rest kept.
    assert released[0].text == f"it's {WITHHELD}"
    assert released[0].withheld == ((5, 9),)
    assert released[0].findings == ()
    # The last part is found through the released context.
    assert released[3].text == "[CARD_NUMBER] thanks"
    assert released[3].findings[0].start == 0


# -- the hold window -----------------------------------------------------------------------


def test_never_more_than_max_hold_segments_held() -> None:
    stream = RedactionStream(Written(), max_hold_segments=2, max_hold_seconds=100)
    texts = ["numbers 1234", "5678", "9012", "3456", "7890"]  # never a card, no keyword
    released: list[Released] = []
    for i, t in enumerate(texts):
        released.extend(stream.push(seg(str(i), t, i * 0.5)))
        assert stream.held <= 2
    assert [r.segment_id for r in released] == ["0", "1", "2"]
    for r in released:
        check(r)
        assert not re.search(r"\d", r.text)
        assert r.withheld
    assert released[0].text == f"numbers {WITHHELD}"


def test_time_bound_counts_from_each_segments_end() -> None:
    stream = RedactionStream(Written(), max_hold_segments=10, max_hold_seconds=3.0)
    assert stream.push(seg("a", "number 1234", 0.2)) == []  # ends at 0.75
    assert stream.push(seg("b", "5678", 2.0)) == []  # ends at 2.25
    # Ends at 3.75: a has waited 3.0 s, not more.
    assert stream.push(seg("c", "9012", 3.5)) == []
    # Ends at 4.0: a is forced out; b (1.75 s) and c stay.
    out = stream.push(seg("d", "3456", 3.75))
    assert [r.segment_id for r in out] == ["a"]
    assert out[0].text == f"number {WITHHELD}"
    assert stream.held == 3


def test_advance_forces_out_after_a_silence() -> None:
    stream = RedactionStream(Written(), max_hold_seconds=3.0)
    assert stream.push(seg("a", "my code is 4111 1111", 10.0)) == []  # ends at 11.45
    assert stream.advance(14.4) == []
    assert stream.advance(5.0) == []  # the clock never goes back
    out = stream.advance(14.5)
    assert [(r.segment_id, r.text) for r in out] == [("a", f"my code is {WITHHELD}")]
    assert out[0].masked_words == (False, False, False, True, True)
    # The continuation is still caught through the context.
    (r,) = stream.push(seg("b", "1111 1111 thanks", 15.0))
    assert r.text == "[CARD_NUMBER] thanks"


def test_forced_release_keeps_engine_findings_in_the_tail() -> None:
    # A complete card at the end is still pending (more digits could follow).
    stream = RedactionStream(Written(), max_hold_segments=0)
    (r,) = stream.push(seg("a", "card 4111 1111 1111 1111"))
    check(r)
    assert r.text == "card [CARD_NUMBER]"
    assert [f.entity for f in r.findings] == ["CARD_NUMBER"]
    assert r.withheld == ()


def test_forced_release_withholds_whole_words() -> None:
    class MidWord(Redactor):
        def open_tail(self, text: str) -> int:
            return len(text) - 2 if text.endswith("xyz") else len(text)

    stream = RedactionStream(MidWord(), max_hold_segments=0)
    (r,) = stream.push(seg("a", "hello abcxyz"))
    assert r.text == f"hello {WITHHELD}"
    assert r.withheld == ((6, 12),)


def test_hold_defaults() -> None:
    stream = RedactionStream(Written())
    assert stream.push(seg("a", "pin 1234", 0.0)) == []
    assert stream.push(seg("b", "5678", 0.6)) == []
    assert [r.segment_id for r in stream.push(seg("c", "9012", 1.2))] == ["a"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_hold_segments": -1}, "max_hold_segments"),
        ({"max_hold_seconds": -0.1}, "max_hold_seconds"),
        ({"max_hold_seconds": float("nan")}, "max_hold_seconds"),
        ({"context_chars": -1}, "context_chars"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as e:
        RedactionStream(Redactor(), **kwargs)
    assert e.value.field == field


# -- context -------------------------------------------------------------------------------


class Phrase(Redactor):
    """Finds "alpha bravo charlie" as a PERSON; nothing is ever pending."""

    def find(self, text: str) -> list[Finding]:
        return [
            Finding(m.start(), m.end(), "PERSON", 0.8)
            for m in re.finditer(r"alpha bravo charlie", text)
        ]

    def open_tail(self, text: str) -> int:
        return len(text)


def test_finding_from_released_context_masks_only_the_new_part() -> None:
    stream = RedactionStream(Phrase())
    (a,) = stream.push(seg("a", "hello alpha"))
    assert a.text == "hello alpha"  # the engine said nothing was pending
    (b,) = stream.push(seg("b", "bravo charlie bye"))
    check(b)
    assert b.text == "[PERSON] bye"
    assert b.findings == (Finding(0, 13, "PERSON", 0.8),)


def test_finding_inside_released_context_is_not_reported_again() -> None:
    stream = RedactionStream(Phrase())
    (a,) = stream.push(seg("a", "alpha bravo charlie"))
    assert a.text == "[PERSON]"
    (b,) = stream.push(seg("b", "bye"))
    assert b.findings == ()
    assert b.text == "bye"


def test_context_is_bounded() -> None:
    stream = RedactionStream(Phrase(), context_chars=8)
    stream.push(seg("a", "alpha"))
    stream.push(seg("b", "bravo"))  # context is now "bravo"
    (c,) = stream.push(seg("c", "charlie"))
    assert c.text == "charlie"


# -- interims ------------------------------------------------------------------------------


def test_interim_previews_never_show_a_partial_number() -> None:
    stream = RedactionStream(Redactor())
    hyps = ["my card", "my card is 4", "my card is 4111 11", "my card is 4111 1111 1111 1111 ok"]
    for h in hyps:
        (r,) = stream.push(seg("1", h, final=False))
        check(r)
        assert not r.final
        assert not re.search(r"\d", r.text)
    assert stream.held == 0


def test_interim_open_tail_is_withheld() -> None:
    stream = RedactionStream(Written())
    assert stream.push(seg("1", "my code", final=False))[0].text == "my code"
    (r,) = stream.push(seg("1", "my code is 4111 11", final=False))
    assert r.text == f"my code is {WITHHELD}"
    assert r.withheld == ((11, 18),)
    assert r.findings == ()


def test_interim_reads_held_finals_and_changes_nothing() -> None:
    stream = RedactionStream(Written())
    assert stream.push(seg("1", "it's 4111 1111", 0)) == []
    (r,) = stream.push(seg("2", "1111 1111 thanks", 1, final=False))
    assert r.text == "[CARD_NUMBER] thanks"
    (r,) = stream.push(seg("2", "1111 11", 1, final=False))
    assert r.text == WITHHELD
    assert r.masked_words == (True, True)
    assert stream.held == 1
    out = stream.push(seg("2", "1111 1111 thanks", 1))
    assert [(x.segment_id, x.text, x.final) for x in out] == [
        ("1", "it's [CARD_NUMBER]", True),
        ("2", "[CARD_NUMBER] thanks", True),
    ]


def test_interim_then_final_with_the_same_id() -> None:
    stream = RedactionStream(Written())
    (p,) = stream.push(seg("x", "hello wor", final=False))
    assert (p.segment_id, p.text, p.final) == ("x", "hello wor", False)
    (f,) = stream.push(seg("x", "hello world"))
    assert (f.segment_id, f.text, f.final) == ("x", "hello world", True)
    assert stream.push(seg("x", "hello", final=False)) == []  # stale hypothesis


def test_interim_previews_use_plain_labels() -> None:
    pseudonyms = Pseudonyms()
    stream = RedactionStream(Written(), pseudonyms=pseudonyms)
    (p,) = stream.push(seg("1", "card 4111 1111 1111 1111 ok", final=False))
    assert p.text == "card [CARD_NUMBER] ok"
    (f,) = stream.push(seg("1", "card 5555 5555 5555 4444 ok"))
    assert f.text == "card [CARD_NUMBER_1] ok"  # the hypothesis took no number


# -- end of call, bounds, odd input --------------------------------------------------------


def test_flush_releases_everything_held() -> None:
    stream = RedactionStream(Written(), max_hold_segments=5, max_hold_seconds=60)
    assert stream.push(seg("1", "card 4111 1111", 0)) == []
    assert stream.push(seg("2", "1111 1111", 1)) == []
    out = stream.flush()
    assert [(r.segment_id, r.text, r.withheld) for r in out] == [
        ("1", "card [CARD_NUMBER]", ()),
        ("2", "[CARD_NUMBER]", ()),
    ]
    assert stream.held == 0
    assert stream.flush() == []


def test_flush_releases_an_unfinished_number_as_the_engine_reads_it() -> None:
    stream = RedactionStream(Written())
    assert stream.push(seg("1", "see you at 4")) == []
    assert [r.text for r in stream.flush()] == ["see you at 4"]


def test_oversized_segment_raises_and_the_stream_carries_on() -> None:
    stream = RedactionStream(Written(max_chars=40))
    assert stream.push(seg("1", "card 4111 1111", 0)) == []
    with pytest.raises(PayloadTooLargeError) as e:
        stream.push(seg("2", "x" * 41, 1))
    assert "xxx" not in str(e.value)  # counts only, never content
    with pytest.raises(PayloadTooLargeError):
        stream.push(seg("2", "y" * 41, 1, final=False))
    assert stream.held == 1
    out = stream.push(seg("2", "1111 1111 thanks", 1))
    assert [r.text for r in out] == ["card [CARD_NUMBER]", "[CARD_NUMBER] thanks"]


def test_held_text_and_a_new_segment_over_the_limit() -> None:
    stream = RedactionStream(Written(max_chars=30))
    assert stream.push(seg("1", "it's 4111 1111", 0)) == []
    out = stream.push(seg("2", "and then some more words here", 1))  # 29 characters
    assert [(r.segment_id, r.text) for r in out] == [
        ("1", f"it's {WITHHELD}"),
        ("2", "and then some more words here"),
    ]


def test_scans_stay_within_max_chars() -> None:
    seen: list[int] = []

    class Measuring(Redactor):
        def find(self, text: str) -> list[Finding]:
            seen.append(len(text))
            return super().find(text)

    stream = RedactionStream(Measuring(max_chars=50), max_hold_segments=3, max_hold_seconds=60)
    for i in range(30):
        stream.push(seg(str(i), f"word{i} {i:04d}", i))
        stream.push(seg(str(i + 100), f"hyp {i:04d} more", i, final=False))
    stream.flush()
    assert seen
    assert max(seen) <= 50


def test_empty_segments() -> None:
    stream = RedactionStream(Written(), max_hold_segments=1)
    (r,) = stream.push(Segment("e0", ()))
    assert (r.segment_id, r.text, r.findings, r.words, r.masked_words) == ("e0", "", (), (), ())
    assert stream.push(seg("1", "card 4111 1111", 0)) == []
    assert stream.push(Segment("e1", ())) == []  # waits for the segment before it
    assert stream.push(Segment("e2", ())) == []
    assert stream.held == 1  # empty segments do not count
    assert stream.push(Segment("i", (), final=False))[0].text == ""
    out = stream.push(seg("2", "1111 1111 ok", 1))
    assert [(r.segment_id, r.text) for r in out] == [
        ("1", "card [CARD_NUMBER]"),
        ("e1", ""),
        ("e2", ""),
        ("2", "[CARD_NUMBER] ok"),
    ]


def test_a_final_id_is_final_once() -> None:
    stream = RedactionStream(Written())
    assert stream.push(seg("1", "card 4111", 0)) == []
    with pytest.raises(InvalidInputError):
        stream.push(seg("1", "again", 1))
    assert stream.held == 1
    assert [r.segment_id for r in stream.flush()] == ["1"]


def test_advance_refuses_a_non_finite_time() -> None:
    with pytest.raises(InvalidInputError):
        RedactionStream(Redactor()).advance(float("inf"))


# -- properties ----------------------------------------------------------------------------

CALL = "hello my card number is 4111 1111 1111 1111 and the other is 5555 5555 5555 4444 ok bye"


@st.composite
def calls(draw: st.DrawFn, text: str = CALL) -> tuple[list[Segment], int, float]:
    """``text``'s words cut into random finals, with interim prefixes, pauses and empties."""
    words = text.split()
    cuts = draw(st.lists(st.booleans(), min_size=len(words) - 1, max_size=len(words) - 1))
    groups: list[list[str]] = [[words[0]]]
    for w, cut in zip(words[1:], cuts, strict=True):
        if cut:
            groups.append([w])
        else:
            groups[-1].append(w)
    segments: list[Segment] = []
    t = 0.0
    for i, g in enumerate(groups):
        if draw(st.booleans()):
            k = draw(st.integers(0, len(g)))
            segments.append(seg(str(i), " ".join(g[:k]), t, final=False))
        segments.append(seg(str(i), " ".join(g), t))
        if draw(st.integers(0, 4)) == 0:
            segments.append(Segment(f"e{i}", ()))
        t += len(g) * WORD_SECONDS + draw(st.floats(0, 4))
    return segments, draw(st.integers(0, 3)), draw(st.floats(0, 5))


@pytest.mark.parametrize("engine", [Redactor, Written])
@settings(max_examples=200, deadline=None)
@given(call=calls())
def test_random_segmentation_never_leaks_and_releases_each_final_once(
    engine: type[Redactor], call: tuple[list[Segment], int, float]
) -> None:
    segments, max_segments, max_seconds = call
    stream = RedactionStream(engine(), max_hold_segments=max_segments, max_hold_seconds=max_seconds)
    finals: list[Released] = []
    pending: list[Segment] = []  # pushed finals not yet released
    clock = 0.0
    for s in segments:
        out = stream.push(s)
        for r in out:
            check(r)
            assert not re.search(r"\d", r.text)
            assert r.final == s.final
        if s.final:
            clock = max([clock, *(w.end for w in s.words)])
            pending.append(s)
            for r in out:
                assert r.segment_id == pending.pop(0).id  # in order, each once
        # The window: few segments with text held, none for longer than the bound.
        held = [p for p in pending if p.words]
        assert len(held) == stream.held <= max_segments
        assert all(clock - p.words[-1].end <= max_seconds for p in held)
        finals.extend(r for r in out if r.final)
    out = stream.flush()
    for r in out:
        check(r)
        assert not re.search(r"\d", r.text)
    finals.extend(out)
    assert [r.segment_id for r in finals] == [s.id for s in segments if s.final]
    assert " ".join(w.text for r in finals for w in r.words) == CALL


# -- spoken forms (need the engine's recognisers) ------------------------------------------


def test_spoken_card_split_across_segments() -> None:
    out = push_all(
        RedactionStream(Redactor()),
        [
            seg("1", "my card number is four one one one one one one one", 0),
            seg("2", "one one one one one one one one thank you", 3),
        ],
    )
    assert [r.text for r in out] == ["my card number is [CARD_NUMBER]", "[CARD_NUMBER] thank you"]


def test_spoken_date_of_birth_after_its_context_phrase() -> None:
    out = push_all(
        RedactionStream(Redactor()),
        [seg("1", "my date of birth is", 0), seg("2", "twelfth of march nineteen eighty four", 2)],
    )
    assert "DATE_OF_BIRTH" in {f.entity for f in out[1].findings}
    for word in ("twelfth", "march", "nineteen", "eighty", "four"):
        assert word not in out[1].text.split()


def test_spoken_email_split_across_segments() -> None:
    out = push_all(
        RedactionStream(Redactor()),
        [seg("1", "my email is john dot smith", 0), seg("2", "at example dot com thanks", 2)],
    )
    assert {f.entity for r in out for f in r.findings} == {"EMAIL_ADDRESS"}
    assert "john" not in out[0].text
    assert "example" not in out[1].text


def test_spoken_interim_never_shows_what_the_final_masks() -> None:
    stream = RedactionStream(Redactor())
    final = "my card number is four one one one one one one one one one one one one one one one ok"
    words = final.split()
    for k in range(len(words) + 1):
        (r,) = stream.push(seg("1", " ".join(words[:k]), final=False))
        assert "one" not in r.text.split()
    (r,) = stream.push(seg("1", final))
    assert r.text == "my card number is [CARD_NUMBER] ok"


SPOKEN_CALL = (
    "hello my card number is four one one one one one one one one one one one one one one one "
    "and that is all ok bye"
)


@settings(max_examples=200, deadline=None)
@given(call=calls(SPOKEN_CALL))
def test_random_segmentation_of_a_spoken_card_never_leaks(
    call: tuple[list[Segment], int, float],
) -> None:
    segments, max_segments, max_seconds = call
    stream = RedactionStream(
        Redactor(), max_hold_segments=max_segments, max_hold_seconds=max_seconds
    )
    out = [r for s in segments for r in stream.push(s)] + stream.flush()
    for r in out:
        check(r)
        assert not {"four", "one"} & set(r.text.split())


def test_a_value_cut_off_by_the_window_keeps_the_label_its_keyword_announced() -> None:
    stream = RedactionStream(Redactor(), max_hold_segments=0)
    (r,) = stream.push(seg("a", "my nhs number is triple six oh one"))
    check(r)
    assert r.text == "my nhs number is [NHS_NUMBER]"
    assert [(f.entity, f.score) for f in r.findings] == [("NHS_NUMBER", 0.5)]
    assert r.withheld == ()
    (r,) = stream.push(seg("b", "three nine four one nine thanks"))
    assert r.text.startswith("[NHS_NUMBER]")
