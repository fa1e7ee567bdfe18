"""The spoken-number normaliser: ``number_runs(Tokens(text))`` and the span map back to text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.redact._numbers import CORRECTION, Run, number_runs
from callvault.redact._tokens import Tokens


def runs(text: str) -> list[Run]:
    return number_runs(Tokens(text))


def digits(text: str) -> list[str]:
    return [r.digits for r in runs(text)]


def whole_span(text: str, run: Run) -> str:
    s, e = run.span(Tokens(text), 0, len(run.digits))
    return text[s:e]


# --- what a run reads as ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # written digits
        ("4111", ["4111"]),
        ("it is 12345678 ok", ["12345678"]),
        ("4111 1111", ["41111111"]),
        # digit words and the zeros
        ("four one one one", ["4111"]),
        ("one oh one", ["101"]),
        ("zero seven", ["07"]),
        ("nought seven", ["07"]),
        ("oh seven seven", ["077"]),
        # repeats
        ("double five", ["55"]),
        ("triple oh", ["000"]),
        ("four double one", ["411"]),
        ("triple 7 two", ["7772"]),
        ("oh seven seven double oh nine", ["077009"]),
        # teens and tens
        ("forty two", ["42"]),
        ("forty-two", ["42"]),
        ("eleven", ["11"]),
        ("forty one eleven", ["4111"]),
        ("forty forty seven eighty four", ["404784"]),
        ("ninety", ["90"]),
        # years
        ("nineteen eighty four", ["1984"]),
        ("two thousand and five", ["2005"]),
        ("twenty twenty four", ["2024"]),
        # hundreds
        ("four hundred and twelve", ["412"]),
        ("three hundred", ["300"]),
        # written and spoken mixed in one run
        ("4111 one one one one", ["41111111"]),
    ],
)
def test_run_digits(text: str, expected: list[str]) -> None:
    assert digits(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # homophones count only between two number tokens
        ("one two to three", ["1223"]),
        ("four for four", ["444"]),
        ("one won one", ["111"]),
        ("two ate two", ["282"]),
        ("press one for sales", ["1"]),
        ("going to the shop", []),
        ("for two weeks", ["2"]),
        ("one to", ["1"]),
        ("I want to go for it", []),
        # weak zeros stand alone as words
        ("oh", []),
        ("oh really", []),
        ("oh dear, oh no", []),
        # ordinary words end runs
        ("one two and three four", ["12", "34"]),
        ("my number is four two then five five", ["42", "55"]),
        # a lone "double" is no number
        ("double or nothing", []),
        ("", []),
        ("   ", []),
    ],
)
def test_run_boundaries(text: str, expected: list[str]) -> None:
    assert digits(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4111-1111", ["41111111"]),
        ("4111-1111-1111-1111", ["4111111111111111"]),
        ("40/47/84", ["404784"]),
        ("(212) 555-0123", ["2125550123"]),
        ("four two six three, oh three one four", ["42630314"]),
        ("four one one one, one one one one", ["41111111"]),
        ("four um two er six", ["426"]),
        ("12.03.1984", ["12031984"]),
    ],
)
def test_punctuation_and_fillers_inside_runs(text: str, expected: list[str]) -> None:
    assert digits(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("it was four two. five five", ["42", "55"]),
        ("I said 42. 55 is the other", ["42", "55"]),
        ("four two.five", ["425"]),  # a dot with no space is inside the run
    ],
)
def test_full_stop_and_space_end_a_run(text: str, expected: list[str]) -> None:
    assert digits(text) == expected


def test_written_digit_groups_and_separators() -> None:
    (run,) = runs("4111-1111 2222")
    assert run.digits == "411111112222"
    assert run.groups() == [4, 4, 4]
    assert run.seps[4] == "-"
    assert run.seps[8] == " "
    assert run.boundaries() == [0, 4, 8, 12]
    assert run.spoken is False


def test_spoken_flag_set_by_words() -> None:
    (run,) = runs("4111 one")
    assert run.spoken is True


# --- self-corrections ---------------------------------------------------------------------


def test_sorry_between_written_digits_is_a_correction_separator() -> None:
    (run,) = runs("4804, sorry, 4808")
    assert run.digits == "48044808"
    assert run.seps[4] == CORRECTION
    assert run.seps.count(CORRECTION) == 1


def test_pardon_is_a_correction_too() -> None:
    (run,) = runs("4804 pardon 4808")
    assert run.seps[4] == CORRECTION


def test_plain_comma_is_not_a_correction() -> None:
    (run,) = runs("4804, 4808")
    assert CORRECTION not in run.seps


def test_sorry_between_spoken_digits_is_a_correction_separator() -> None:
    (run,) = runs("four eight oh four, sorry, four eight oh eight")
    assert run.digits == "48044808"
    assert run.seps[4] == CORRECTION


# --- the map back to the text -------------------------------------------------------------

SPAN_TEXTS = [
    ("my card is four one one one double one triple two thanks", "four", "two"),
    ("call oh seven seven double oh nine oh oh one two three please", "oh", "three"),
    ("born nineteen eighty four ok", "nineteen", "four"),
    ("it's forty one eleven, right", "forty", "eleven"),
    ("number 4111-1111-1111-1111 yes", "4111", "1111"),
    ("that is four hundred and twelve exactly", "four", "twelve"),
    ("the year two thousand and five was", "two", "five"),
    ("sort code forty-forty-seven-eighty-four please", "forty", "four"),
    ("it was (212) 555-0123 ok", "212", "0123"),
    ("one two to three", "one", "three"),
    ("four two six three, oh three one four.", "four", "four"),
]


@pytest.mark.parametrize(("text", "first", "last"), SPAN_TEXTS)
def test_whole_run_span_starts_at_first_and_ends_at_last_number_token(
    text: str, first: str, last: str
) -> None:
    (run,) = runs(text)
    covered = whole_span(text, run)
    assert covered.startswith(first)
    assert covered.endswith(last)


def test_every_digit_maps_to_its_own_tokens() -> None:
    text = "card four double one triple two forty two"
    tokens = Tokens(text)
    (run,) = number_runs(tokens)
    assert run.digits == "41122242"
    words = [text[slice(*run.span(tokens, i, i + 1))] for i in range(len(run.digits))]
    assert words == [
        "four",
        "double one",
        "double one",
        "triple two",
        "triple two",
        "triple two",
        "forty two",
        "forty two",
    ]


def test_partial_span_covers_only_its_digits() -> None:
    text = "sort code 404784 12345678"
    tokens = Tokens(text)
    (run,) = number_runs(tokens)
    assert run.digits == "40478412345678"
    assert text[slice(*run.span(tokens, 0, 6))] == "404784"
    assert text[slice(*run.span(tokens, 6, 14))] == "12345678"


# --- property: arbitrary token soup -------------------------------------------------------

_VOCAB = st.sampled_from(
    [
        # number words
        "zero", "oh", "o", "nought", "nil", "one", "two", "three", "four", "five", "six",
        "seven", "eight", "nine", "ten", "eleven", "twelve", "nineteen", "twenty", "forty",
        "ninety", "hundred", "thousand", "double", "triple", "and",
        # homophones and corrections
        "for", "to", "too", "won", "ate", "sorry", "pardon",
        # written digits
        "0", "4", "12", "4111", "007", "12345678901234567890",
        # fillers
        "um", "uh", "er", "erm",
        # punctuation
        "-", "/", ".", ",", "(", ")", ", ", ". ", "+", "'",
        # ordinary words
        "the", "card", "number", "is", "my", "press", "sales", "Hello", "o'clock",
    ]
)  # fmt: skip
_JOIN = st.sampled_from([" ", "", "  ", "\n", "-", ", "])


@st.composite
def token_soup(draw: st.DrawFn) -> str:
    words = draw(st.lists(_VOCAB, max_size=40))
    out = ""
    for w in words:
        out += draw(_JOIN) + w
    return out


@settings(max_examples=200, deadline=None)
@given(text=token_soup())
def test_number_runs_invariants(text: str) -> None:
    tokens = Tokens(text)
    found = number_runs(tokens)
    prev_end = -1
    for run in found:
        n = len(run.digits)
        assert n > 0
        assert set(run.digits) <= set("0123456789")
        assert len(run.first_tok) == n
        assert len(run.last_tok) == n
        assert len(run.seps) == n
        for i in range(n):
            assert 0 <= run.first_tok[i] <= run.last_tok[i] < len(tokens)
        assert run.first_tok == sorted(run.first_tok)
        s, e = run.span(tokens, 0, n)
        assert 0 <= s < e <= len(text)
        assert s >= prev_end  # ordered and non-overlapping between runs
        prev_end = e
        for i in range(n):
            ds, de = run.span(tokens, i, i + 1)
            assert s <= ds < de <= e
