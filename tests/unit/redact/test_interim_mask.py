"""The interim redacted view masks every number, spoken or written, and e-mail addresses."""

from __future__ import annotations

import re

import pytest

from callvault.redact import mask_numbers


@pytest.mark.parametrize(
    "text",
    [
        "my card is 4111 1111 1111 1111",
        "four one one one one one one one",
        "oh seven seven double five nine",
        "born on the twelfth of march nineteen eighty-four",
        "NHS number 943-476-5919",
        "sort code 40-47-84",
    ],
)
def test_numbers_do_not_survive(text: str) -> None:
    out = mask_numbers(text)
    assert not re.search(r"\d", out)
    for word in ("four", "one", "seven", "double", "twelfth", "nineteen", "eighty"):
        assert word not in out.lower().split()


def test_email_addresses_are_masked() -> None:
    assert "john.smith@example.com" not in mask_numbers("mail john.smith@example.com please")


def test_homophones_are_masked_only_inside_number_runs() -> None:
    out = mask_numbers("I went to the shop for bread and my pin is one two for ate")
    assert "went to the shop for bread" in out
    assert "for ate" not in out


def test_plain_words_are_kept() -> None:
    assert mask_numbers("thank you, I have that") == "thank you, I have that"
