"""Checksums and structural rules (``callvault.redact._checks``) against independent oracles.

Every "valid" number here is either a published test value or computed by the
small reference implementations in this file, never by the module under test.
"""

from __future__ import annotations

import string
from datetime import date

import pytest

from callvault.redact._checks import (
    aba_ok,
    card_prefix_ok,
    iban_ok,
    luhn,
    nhs_ok,
    nino_prefix_ok,
    ssn_ok,
    valid_date,
)

# --- independent reference implementations --------------------------------------------------


def ref_luhn(digits: str) -> bool:
    """Luhn, written the textbook way: double every second digit from the right."""
    total = 0
    for pos, ch in enumerate(reversed(digits)):
        d = int(ch)
        if pos % 2 == 1:
            d = sum(divmod(d * 2, 10))
        total += d
    return total % 10 == 0


def luhn_complete(prefix: str, length: int) -> str:
    """``prefix`` padded with zeros to ``length - 1`` digits plus the one valid check digit."""
    body = prefix.ljust(length - 1, "0")
    valid = [body + str(c) for c in range(10) if ref_luhn(body + str(c))]
    assert len(valid) == 1
    return valid[0]


def luhn_break(number: str) -> str:
    """``number`` with its check digit changed, so it fails Luhn."""
    bad = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert not ref_luhn(bad)
    return bad


def ref_nhs_check(first9: str) -> int:
    """The NHS modulus 11 check value for nine digits (10 means no valid number exists)."""
    total = sum(int(c) * w for c, w in zip(first9, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    return 0 if check == 11 else check


def ref_iban_mod97(iban: str) -> int:
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97


def iban_with_check(country: str, bban: str) -> str:
    """An IBAN for ``country`` + ``bban`` with correct ISO 7064 check digits."""
    check = 98 - ref_iban_mod97(f"{country}00{bban}")
    iban = f"{country}{check:02d}{bban}"
    assert ref_iban_mod97(iban) == 1
    return iban


# --- Luhn -------------------------------------------------------------------------------------

KNOWN_LUHN_VALID = [
    "4111111111111111",  # Visa test card
    "4012888888881881",
    "5555555555554444",  # Mastercard test card
    "2223003122003222",  # Mastercard 2-series test card
    "378282246310005",  # Amex test card
    "6011111111111117",  # Discover test card
    "3530111333300000",  # JCB test card
    "4000000000000000006",  # 19-digit Visa
    "79927398713",  # the classic worked example
    "0",
]
KNOWN_LUHN_INVALID = [
    "4111111111111112",
    "5555555555554445",
    "378282246310006",
    "79927398710",
    "4000000000000000007",
    "1",
]


@pytest.mark.parametrize("number", KNOWN_LUHN_VALID)
def test_luhn_accepts_known_valid_numbers(number: str) -> None:
    assert ref_luhn(number)  # the vectors themselves are right
    assert luhn(number)


@pytest.mark.parametrize("number", KNOWN_LUHN_INVALID)
def test_luhn_rejects_known_invalid_numbers(number: str) -> None:
    assert not ref_luhn(number)
    assert not luhn(number)


def test_luhn_agrees_with_reference_on_every_single_digit_change() -> None:
    base = "4000000000000000006"
    for pos in range(len(base)):
        for d in string.digits:
            candidate = base[:pos] + d + base[pos + 1 :]
            assert luhn(candidate) == ref_luhn(candidate), candidate


def test_luhn_catches_adjacent_transposition() -> None:
    # 4111 1111 1111 1111 -> swap the 4 and the 1: Luhn detects most adjacent swaps.
    assert ref_luhn("4111111111111111")
    assert not ref_luhn("1411111111111111")
    assert not luhn("1411111111111111")


# --- issuer prefixes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "length"),
    [
        ("4", 13),
        ("4", 16),
        ("4", 19),
        ("51", 16),
        ("52", 16),
        ("53", 16),
        ("54", 16),
        ("55", 16),
        ("2221", 16),
        ("2500", 16),
        ("2720", 16),
        ("34", 15),
        ("37", 15),
        ("6011", 16),
        ("644", 16),
        ("649", 16),
        ("65", 16),
        ("65", 19),
        ("3528", 16),
        ("3589", 16),
        ("5018", 12),  # Maestro
        ("6759", 16),  # Maestro UK
        ("6759", 19),
    ],
)
def test_card_prefix_accepts_issuer_ranges(prefix: str, length: int) -> None:
    assert card_prefix_ok(luhn_complete(prefix, length))


@pytest.mark.parametrize(
    ("prefix", "length"),
    [
        ("4", 14),  # Visa is 13, 16 or 19 digits
        ("4", 15),
        ("4", 17),
        ("51", 15),  # Mastercard is 16 digits
        ("55", 19),
        ("2220", 16),  # just below the 2-series range
        ("2721", 16),  # just above it
        ("2721", 19),
        ("34", 16),  # Amex is exactly 15 digits
        ("37", 14),
        ("6011", 15),  # Discover is 16-19
        ("3527", 16),  # just below JCB
        ("3590", 16),  # just above JCB
        ("1", 16),  # no issuer starts with 1, 7 or 9
        ("7", 16),
        ("9", 16),
    ],
)
def test_card_prefix_rejects_wrong_ranges_and_lengths(prefix: str, length: int) -> None:
    assert not card_prefix_ok(luhn_complete(prefix, length))


def test_card_prefix_mastercard_two_series_boundaries_exactly() -> None:
    inside = [p for p in range(2200, 2800) if card_prefix_ok(luhn_complete(str(p), 16))]
    # Mir (2200-2204) is separate; the 2-series Mastercard range is 2221-2720 inclusive.
    assert [p for p in inside if p >= 2205] == list(range(2221, 2721))


# --- NHS number -----------------------------------------------------------------------------


def test_nhs_known_valid_number() -> None:
    assert ref_nhs_check("943476591") == 9
    assert nhs_ok("9434765919")


@pytest.mark.parametrize("last", [d for d in string.digits if d != "9"])
def test_nhs_wrong_check_digit_rejected(last: str) -> None:
    assert not nhs_ok("943476591" + last)


def test_nhs_agrees_with_reference_for_many_prefixes() -> None:
    checked = 0
    for seed in range(0, 10**9, 7_654_321):
        first9 = f"{seed:09d}"
        check = ref_nhs_check(first9)
        if first9 == first9[0] * 9:
            continue
        for last in string.digits:
            expect = check != 10 and int(last) == check
            assert nhs_ok(first9 + last) == expect, first9 + last
        checked += 1
    assert checked > 100


def test_nhs_check_value_ten_means_no_valid_number() -> None:
    prefixes = [f"{k:09d}" for k in range(100_000_000, 100_000_200)]
    tens = [p for p in prefixes if ref_nhs_check(p) == 10]
    assert tens  # the sample contains prefixes whose check value is 10
    for p in tens:
        assert not any(nhs_ok(p + d) for d in string.digits), p


def test_nhs_all_same_digits_rejected_even_when_mod11_passes() -> None:
    passing = [d * 10 for d in string.digits if ref_nhs_check(d * 9) == int(d)]
    assert passing  # e.g. 0000000000 and 1111111111 satisfy the arithmetic
    for d in string.digits:
        assert not nhs_ok(d * 10)


@pytest.mark.parametrize("number", ["943476591", "94347659190", "", "9"])
def test_nhs_wrong_length_rejected(number: str) -> None:
    assert not nhs_ok(number)


# --- US SSN -------------------------------------------------------------------------------


@pytest.mark.parametrize("ssn", ["123456789", "001010001", "665999999", "667121234", "899451234"])
def test_ssn_valid(ssn: str) -> None:
    assert ssn_ok(ssn)


@pytest.mark.parametrize(
    ("ssn", "why"),
    [
        ("000456789", "area 000"),
        ("666456789", "area 666"),
        ("900456789", "area 9xx"),
        ("950456789", "area 9xx"),
        ("999456789", "area 9xx"),
        ("123006789", "group 00"),
        ("123450000", "serial 0000"),
        ("12345678", "8 digits"),
        ("1234567890", "10 digits"),
    ],
)
def test_ssn_invalid(ssn: str, why: str) -> None:
    assert not ssn_ok(ssn), why


# --- UK National Insurance number prefixes -------------------------------------------------


def ref_nino_prefix(p: str) -> bool:
    return (
        p[0] not in "DFIQUV"
        and p[1] not in "DFIOQUV"
        and p not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
    )


def test_nino_prefix_table_matches_hmrc_rules() -> None:
    mismatches = [
        a + b
        for a in string.ascii_uppercase
        for b in string.ascii_uppercase
        if nino_prefix_ok(a + b) != ref_nino_prefix(a + b)
    ]
    assert mismatches == []


@pytest.mark.parametrize("first", list("DFIQUV"))
def test_nino_bad_first_letter(first: str) -> None:
    assert not nino_prefix_ok(first + "A")


@pytest.mark.parametrize("second", list("DFIOQUV"))
def test_nino_bad_second_letter(second: str) -> None:
    assert not nino_prefix_ok("A" + second)


@pytest.mark.parametrize("prefix", ["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"])
def test_nino_reserved_prefixes(prefix: str) -> None:
    assert not nino_prefix_ok(prefix)


@pytest.mark.parametrize("prefix", ["AB", "ab", "OA", "JG", "ZY", "YZ"])
def test_nino_good_prefixes(prefix: str) -> None:
    assert nino_prefix_ok(prefix)


@pytest.mark.parametrize("prefix", ["A", "ABC", "", "A1", "12", "ÅB", "A ", "\uff21\uff22"])
def test_nino_malformed_prefixes(prefix: str) -> None:
    assert not nino_prefix_ok(prefix)


# --- IBAN ---------------------------------------------------------------------------------

GB_IBAN = "GB82WEST12345698765432"


def test_iban_known_valid() -> None:
    assert ref_iban_mod97(GB_IBAN) == 1
    assert iban_ok(GB_IBAN)
    assert iban_ok(GB_IBAN.lower())


@pytest.mark.parametrize("pos", range(4, len(GB_IBAN)))
def test_iban_any_single_change_invalid(pos: int) -> None:
    ch = GB_IBAN[pos]
    repl = str((int(ch) + 1) % 10) if ch.isdigit() else ("A" if ch != "A" else "B")
    changed = GB_IBAN[:pos] + repl + GB_IBAN[pos + 1 :]
    assert ref_iban_mod97(changed) != 1
    assert not iban_ok(changed)


def test_iban_changed_check_digits_invalid() -> None:
    assert not iban_ok("GB83WEST12345698765432")


@pytest.mark.parametrize(
    ("country", "bban"),
    [
        ("DE", "370400440532013000"),
        ("FR", "20041010050500013M02606"),
        ("NL", "ABNA0417164300"),
        ("NO", "86011117947"),
        ("GB", "NWBK60161331926819"),
    ],
)
def test_iban_valid_for_other_countries(country: str, bban: str) -> None:
    assert iban_ok(iban_with_check(country, bban))


@pytest.mark.parametrize("bban", ["WEST1234569876543", "WEST123456987654321"])
def test_iban_wrong_length_invalid_even_with_good_checksum(bban: str) -> None:
    iban = iban_with_check("GB", bban)  # mod 97 holds, the length for GB does not
    assert len(iban) != 22
    assert not iban_ok(iban)


@pytest.mark.parametrize("country", ["XX", "QQ", "UK", "ZZ"])
def test_iban_unknown_country_invalid(country: str) -> None:
    iban = iban_with_check(country, "WEST12345698765432")  # 22 characters, mod 97 holds
    assert not iban_ok(iban)


@pytest.mark.parametrize(
    "iban",
    ["", "GB82", "GB82WEST1234569876543!", "GBXXWEST12345698765432", "GB82WEST 12345698765432"],
)
def test_iban_malformed_invalid(iban: str) -> None:
    assert not iban_ok(iban)


# --- ABA routing numbers --------------------------------------------------------------------


def ref_aba(d: str) -> bool:
    return (
        3 * (int(d[0]) + int(d[3]) + int(d[6]))
        + 7 * (int(d[1]) + int(d[4]) + int(d[7]))
        + (int(d[2]) + int(d[5]) + int(d[8]))
    ) % 10 == 0


@pytest.mark.parametrize("routing", ["021000021", "011000015", "111000025", "122105155"])
def test_aba_known_valid(routing: str) -> None:
    assert ref_aba(routing)
    assert aba_ok(routing)


@pytest.mark.parametrize("routing", ["021000022", "011000016", "123456789"])
def test_aba_bad_checksum(routing: str) -> None:
    assert not ref_aba(routing)
    assert not aba_ok(routing)


def test_aba_agrees_with_reference() -> None:
    for k in range(0, 10**9, 3_999_991):
        d = f"{k:09d}"
        assert aba_ok(d) == ref_aba(d), d


@pytest.mark.parametrize("routing", ["02100002", "0210000210", ""])
def test_aba_wrong_length(routing: str) -> None:
    assert not aba_ok(routing)


# --- calendar dates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "month", "year", "ok"),
    [
        (29, 2, 2000, True),  # divisible by 400
        (29, 2, 1900, False),  # divisible by 100 only
        (29, 2, 2100, False),
        (29, 2, 2024, True),
        (29, 2, 1984, True),
        (29, 2, 2023, False),
        (28, 2, 2023, True),
        (30, 2, 2024, False),
        (31, 4, 2020, False),
        (30, 4, 2020, True),
        (31, 12, 1999, True),
        (0, 1, 2000, False),
        (1, 0, 2000, False),
        (1, 13, 2000, False),
        (32, 1, 2000, False),
    ],
)
def test_valid_date_table(day: int, month: int, year: int, ok: bool) -> None:
    assert valid_date(day, month, year) is ok


def _real_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def test_valid_date_matches_calendar_over_supported_years() -> None:
    for year in range(1880, 2101):
        for month in range(1, 13):
            for day in (28, 29, 30, 31):
                assert valid_date(day, month, year) == _real_date(year, month, day), (
                    day,
                    month,
                    year,
                )
