"""Card numbers: what the vault accepts, and what it says about them (never the digits)."""

from __future__ import annotations

import pytest

from callvault.errors import InvalidInputError
from callvault.payments import card_brand, card_facts, normalise_pan
from tests.unit.payments.cardnumbers import BAD_LUHN_PAN, PAN, SPOKEN, leaks


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4111111111111111", "visa"),
        ("4222222222222", "visa"),
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("378282246310005", "amex"),
        ("6011111111111117", "discover"),
        ("6445644564456445", "discover"),
        ("3530111333300000", "jcb"),
        ("36227206271667", "diners"),
        ("6200000000000005", "unionpay"),
        ("2200000000000004", "mir"),
        ("6759649826438453", "maestro"),
        ("501800000009", "maestro"),
        ("41111111111111", "unknown"),  # a Visa prefix at a length Visa does not issue
        ("378282246310005000", "unknown"),
        ("1234567890123452", "unknown"),
    ],
)
def test_brand_follows_the_issuer_range_and_length(number: str, brand: str) -> None:
    assert card_brand(number) == brand


def test_spaces_and_hyphens_are_dropped() -> None:
    assert normalise_pan(SPOKEN) == PAN
    assert normalise_pan("-".join(SPOKEN.split())) == PAN


def test_facts_report_luhn_failure_without_refusing_the_number() -> None:
    facts = card_facts(normalise_pan(BAD_LUHN_PAN))
    assert (facts.digits, facts.luhn_valid, facts.brand, facts.last4) == (
        16,
        False,
        "visa",
        BAD_LUHN_PAN[-4:],
    )
    assert card_facts(PAN).luhn_valid
    assert leaks(repr(facts)) == []
    assert BAD_LUHN_PAN[-4:] not in repr(facts)


@pytest.mark.parametrize(
    "number",
    [
        PAN[:11],  # 11 digits
        PAN + "1234",  # 20 digits
        PAN[:8] + "x" + PAN[8:],
        PAN[:8] + "." + PAN[8:],
        "".join(chr(0x0660 + int(d)) for d in PAN),  # Arabic-Indic digits: isdigit(), not ASCII
        PAN * 5,  # over the input limit
        "",
    ],
    ids=["short", "long", "letter", "dot", "non-ascii-digits", "huge", "empty"],
)
def test_malformed_numbers_are_refused_with_counts_only(number: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        normalise_pan(number)
    assert info.value.field == "pan"
    assert leaks(str(info.value)) == []
    assert PAN[:8] not in str(info.value)
    assert PAN[-4:] not in str(info.value)


def test_non_string_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        normalise_pan(int(PAN))  # type: ignore[arg-type]
