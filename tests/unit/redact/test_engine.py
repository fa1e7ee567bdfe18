"""The redaction engine: ``Redactor.find``/``redact``/``open_tail``, ``apply``, ``Pseudonyms``.

Every number the tables make up is checked here (Luhn, NHS modulus 11, IBAN
mod 97) by small reference implementations, never by the engine's own helpers.
Written examples must be found with exactly their span; spoken examples must be
found with a span that covers the whole value (at most stray punctuation more).
"""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.errors import PayloadTooLargeError
from callvault.redact import ENTITIES, Finding, Pseudonyms, Redactor, apply

R = Redactor()

# --- reference checks and value builders ----------------------------------------------------

WORD = {
    "0": "oh", "1": "one", "2": "two", "3": "three", "4": "four",
    "5": "five", "6": "six", "7": "seven", "8": "eight", "9": "nine",
}  # fmt: skip
TEEN = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen"]  # fmt: skip
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
PHONETIC = {
    "A": "alpha", "B": "bravo", "C": "charlie", "D": "delta", "E": "echo", "G": "golf", "K": "kilo",
    "N": "november", "S": "sierra", "T": "tango", "W": "whiskey",
}  # fmt: skip


def ref_luhn(digits: str) -> bool:
    total = 0
    for pos, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if pos % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def luhn_complete(prefix: str, length: int) -> str:
    body = prefix.replace(" ", "").ljust(length - 1, "0")
    (number,) = [body + c for c in string.digits if ref_luhn(body + c)]
    return number


def luhn_break(number: str) -> str:
    bad = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert not ref_luhn(bad)
    return bad


def nhs_check(first9: str) -> int:
    check = 11 - sum(int(c) * (10 - i) for i, c in enumerate(first9)) % 11
    return 0 if check == 11 else check


def nhs_make(first9: str) -> str:
    check = nhs_check(first9)
    assert check != 10, "no valid NHS number has this prefix"
    return first9 + str(check)


def iban_mod97(iban: str) -> int:
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97


def iban_make(country: str, bban: str) -> str:
    iban = f"{country}{98 - iban_mod97(country + '00' + bban):02d}{bban}"
    assert iban_mod97(iban) == 1
    return iban


def groups(s: str, *sizes: int) -> str:
    out, pos = [], 0
    for n in sizes:
        out.append(s[pos : pos + n])
        pos += n
    assert pos == len(s)
    return " ".join(out)


def say(digits: str) -> str:
    """Digit by digit: "four one one one"."""
    return " ".join(WORD[d] for d in digits)


def say_repeats(digits: str) -> str:
    """Digit by digit with "double"/"triple" for repeated digits."""
    out: list[str] = []
    i = 0
    while i < len(digits):
        j = i
        while j < len(digits) and digits[j] == digits[i]:
            j += 1
        n = j - i
        while n:
            take = 3 if n >= 3 else n
            out.append({1: "", 2: "double ", 3: "triple "}[take] + WORD[digits[i]])
            n -= take
        i = j
    return " ".join(out)


def say_pairs(digits: str) -> str:
    """In pairs: "45 32" -> "forty five thirty two"."""
    out: list[str] = []
    for k in range(0, len(digits), 2):
        a, b = int(digits[k]), int(digits[k + 1])
        if a == 0:
            out.append(f"oh {WORD[str(b)]}")
        elif a == 1:
            out.append(TEEN[b])
        else:
            out.append(TENS[a] + ("" if b == 0 else f" {WORD[str(b)]}"))
    return " ".join(out)


def spell(code: str, *, phonetic: bool = False) -> str:
    """Letter by letter and digit by digit: "GB82" -> "g b eight two"."""
    return " ".join(
        WORD[c] if c.isdigit() else (PHONETIC[c] if phonetic else c.lower()) for c in code
    )


# Made-up values, valid by the reference checks above.
VISA16 = luhn_complete("453914880343676", 16)
VISA_REPEATS = luhn_complete("400011222333445", 16)
VISA_PAIRS = luhn_complete("453267891234567", 16)
VISA19 = "4000000000000000006"
MC_2SERIES = luhn_complete("272099123456789", 16)
MC_5 = luhn_complete("542523343010910", 16)
AMEX = luhn_complete("37144963539842", 15)
NHS = nhs_make("401023213")
IBAN_GB = iban_make("GB", "NWBK60161331926819")
IBAN_DE = iban_make("DE", "370400440532013000")


def test_made_up_values_are_what_the_tables_claim() -> None:
    for card in (VISA16, VISA_REPEATS, VISA_PAIRS, VISA19, MC_2SERIES, MC_5, AMEX):
        assert ref_luhn(card)
    assert ref_luhn("4111111111111111")
    assert (len(VISA19), VISA19[0]) == (19, "4")
    assert 2221 <= int(MC_2SERIES[:4]) <= 2720
    assert (len(AMEX), AMEX[:2]) == (15, "37")
    assert nhs_check("943476591") == 9
    assert NHS[-1] == str(nhs_check(NHS[:9]))
    assert iban_mod97("GB82WEST12345698765432") == 1
    assert say_repeats("4000112") == "four triple oh double one two"
    assert say_pairs("4111") == "forty one eleven"


# --- checking one example ------------------------------------------------------------------


def only_finding(text: str, label: str) -> Finding:
    found = R.find(text)
    assert [f.entity for f in found] == [label], [(f.entity, text[f.start : f.end]) for f in found]
    return found[0]


def expect_written(text: str, value: str, label: str) -> None:
    f = only_finding(text, label)
    assert text[f.start : f.end] == value


def expect_spoken(text: str, value: str, label: str) -> None:
    """The span covers ``value`` from its first to its last word, plus punctuation at most."""
    f = only_finding(text, label)
    vs = text.index(value)
    ve = vs + len(value)
    assert f.start <= vs, "the span misses the first word"
    assert f.end >= ve, "the span misses the last word"
    assert text[f.start : vs].strip(" ,.-()+:") == ""
    assert text[ve : f.end].strip(" ,.-()+:") == ""


def check(text: str, value: str, label: str, form: str) -> None:
    assert value in text
    if form == "written":
        expect_written(text, value, label)
    else:
        expect_spoken(text, value, label)


def case(text: str, value: str, form: str = "written", *marks: Any) -> Any:
    return pytest.param(text, value, form, marks=marks, id=f"{form}:{text[:60]}")


def gap(reason: str) -> Any:
    return pytest.mark.xfail(strict=True, reason=f"engine gap: {reason}")


# --- positives, one table per entity --------------------------------------------------------

CARD_CASES = [
    case(f"my card number is {groups(VISA16, 4, 4, 4, 4)}", groups(VISA16, 4, 4, 4, 4)),
    case(f"Card number: {groups(VISA16, 4, 4, 4, 4).replace(' ', '-')}.",
         groups(VISA16, 4, 4, 4, 4).replace(" ", "-")),
    case(f"my card number is {VISA16}", VISA16),
    case(f"the long number on the card is {groups(MC_5, 4, 4, 4, 4)}", groups(MC_5, 4, 4, 4, 4)),
    case("my card number is 4111 1111 1111 1111 thanks", "4111 1111 1111 1111"),
    case(f"card number {groups(MC_2SERIES, 4, 4, 4, 4)}", groups(MC_2SERIES, 4, 4, 4, 4)),
    case(f"my visa is {groups(VISA19, 4, 4, 4, 4, 3)}", groups(VISA19, 4, 4, 4, 4, 3)),
    case(f"my amex card is {groups(AMEX, 4, 6, 5)}", groups(AMEX, 4, 6, 5)),
    case(f"my card number is {say(VISA16)}", say(VISA16), "spoken"),
    case(f"card number {say_repeats(VISA_REPEATS)} thank you", say_repeats(VISA_REPEATS),
         "spoken"),
    case(f"my card number is {say_pairs(VISA_PAIRS)}", say_pairs(VISA_PAIRS), "spoken"),
    case("my card number is forty one eleven eleven eleven eleven eleven eleven eleven",
         "forty one eleven eleven eleven eleven eleven eleven eleven", "spoken"),
    case("my card number is four one one one, one one one one, one one one one, one one one one.",
         "four one one one, one one one one, one one one one, one one one one", "spoken"),
    case(f"the card is {say(AMEX)}", say(AMEX), "spoken"),
    case(f"card number {say(MC_2SERIES)}", say(MC_2SERIES), "spoken"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value", "form"), CARD_CASES)
def test_card_number(text: str, value: str, form: str) -> None:
    check(text, value, "CARD_NUMBER", form)


CVV_CASES = [
    case("the security code is 123", "123"),
    case("the cvv is 1234", "1234"),
    case("security code is four five six", "four five six", "spoken"),
    case("the three digits on the back are seven three seven", "seven three seven", "spoken"),
]


@pytest.mark.parametrize(("text", "value", "form"), CVV_CASES)
def test_card_cvv(text: str, value: str, form: str) -> None:
    check(text, value, "CARD_CVV", form)


EXPIRY_CASES = [
    case("the expiry is 09/27", "09/27"),
    case("expiry date 09/2027", "09/2027"),
    case("expires 09/27", "09/27"),
    case("expiry oh nine twenty seven", "oh nine twenty seven", "spoken"),
    case("the expiry date is oh nine twenty seven", "oh nine twenty seven", "spoken"),
    case("it expires oh nine two seven", "oh nine two seven", "spoken"),
    case("expiry is september 2027", "september 2027"),
    case("the expiry date is oh nine slash twenty seven", "oh nine slash twenty seven", "spoken"),
    case("the expiry date is september twenty seven", "september twenty seven", "spoken"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value", "form"), EXPIRY_CASES)
def test_card_expiry(text: str, value: str, form: str) -> None:
    check(text, value, "CARD_EXPIRY", form)


SSN_CASES = [
    case("my social security number is 123-45-6789", "123-45-6789"),
    case("my ssn is 123 45 6789", "123 45 6789"),
    case("my social security number is 123456789", "123456789"),
    case("my social security number is one two three four five six seven eight nine",
         "one two three four five six seven eight nine", "spoken"),
    case("social security number one two three, four five, six seven eight nine.",
         "one two three, four five, six seven eight nine", "spoken"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value", "form"), SSN_CASES)
def test_us_ssn(text: str, value: str, form: str) -> None:
    check(text, value, "US_SSN", form)


NINO_CASES = [
    case("my national insurance number is AB 12 34 56 C", "AB 12 34 56 C"),
    case("my national insurance number is AB123456C", "AB123456C"),
    case("national insurance number AB 123456 C.", "AB 123456 C"),
    case("my national insurance number is a b one two three four five six c",
         "a b one two three four five six c", "spoken"),
    case("national insurance number alpha bravo one two three four five six charlie",
         "alpha bravo one two three four five six charlie", "spoken"),
    case("my ni number is j g double one two three four five d",
         "j g double one two three four five d", "spoken"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value", "form"), NINO_CASES)
def test_uk_nino(text: str, value: str, form: str) -> None:
    check(text, value, "UK_NINO", form)


NHS_CASES = [
    case("my NHS number is 943 476 5919", "943 476 5919"),
    case("my nhs number is 9434765919", "9434765919"),
    case(f"NHS number {groups(NHS, 3, 3, 4)}", groups(NHS, 3, 3, 4)),
    case("my NHS number is nine four three four seven six five nine one nine",
         "nine four three four seven six five nine one nine", "spoken"),
    case(f"my nhs number is {say(NHS)}", say(NHS), "spoken"),
    case("nhs number nine four three, four seven six, five nine one nine",
         "nine four three, four seven six, five nine one nine", "spoken"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value", "form"), NHS_CASES)
def test_nhs_number(text: str, value: str, form: str) -> None:
    check(text, value, "NHS_NUMBER", form)


SORT_CASES = [
    case("my sort code is 40-47-84", "40-47-84"),
    case("sort code 40 47 84", "40 47 84"),
    case("sort code four oh four seven eight four", "four oh four seven eight four", "spoken"),
    case("sort code forty forty seven eighty four", "forty forty seven eighty four", "spoken"),
]


@pytest.mark.parametrize(("text", "value", "form"), SORT_CASES)
def test_uk_sort_code(text: str, value: str, form: str) -> None:
    check(text, value, "UK_SORT_CODE", form)


ACCOUNT_CASES = [
    case("account number 12345678", "12345678"),
    case("my account number is 31926819", "31926819"),
    case("my account number is three one nine two six eight one nine.",
         "three one nine two six eight one nine", "spoken"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value", "form"), ACCOUNT_CASES)
def test_bank_account(text: str, value: str, form: str) -> None:
    check(text, value, "BANK_ACCOUNT", form)


def test_sort_code_and_account_in_one_sentence() -> None:
    text = "my sort code is 40-47-84 and my account number is 31926819"
    found = R.find(text)
    assert [(f.entity, text[f.start : f.end]) for f in found] == [
        ("UK_SORT_CODE", "40-47-84"),
        ("BANK_ACCOUNT", "31926819"),
    ]


def _spaced(iban: str) -> str:
    return " ".join(iban[k : k + 4] for k in range(0, len(iban), 4))


IBAN_CASES = [
    case("my IBAN is GB82 WEST 1234 5698 7654 32", "GB82 WEST 1234 5698 7654 32"),
    case("my iban is GB82WEST12345698765432", "GB82WEST12345698765432"),
    case(f"the IBAN is {_spaced(IBAN_GB)} thanks", _spaced(IBAN_GB)),
    case(f"my iban is {_spaced(IBAN_DE)}", _spaced(IBAN_DE)),
    case(f"my iban is {spell('GB82WEST12345698765432')}", spell("GB82WEST12345698765432"),
         "spoken"),
    case(f"my iban is {spell(IBAN_GB, phonetic=True)}", spell(IBAN_GB, phonetic=True),
         "spoken"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value", "form"), IBAN_CASES)
def test_iban(text: str, value: str, form: str) -> None:
    check(text, value, "IBAN", form)


DOB_CASES = [
    case("my date of birth is 12/03/1984", "12/03/1984"),
    case("DOB: 12.03.1984", "12.03.1984"),
    case("date of birth 3rd March 84", "3rd March 84"),
    case("I was born on 3rd March 84", "3rd March 84"),
    case("I was born on the 12th of March 1984.", "12th of March 1984"),
    case("my date of birth is March 3rd, 1984", "March 3rd, 1984"),
    case("my date of birth is the twelfth of march nineteen eighty four",
         "twelfth of march nineteen eighty four", "spoken"),
    case("born on the twelfth of march nineteen eighty four",
         "twelfth of march nineteen eighty four", "spoken"),
    case("date of birth twelve oh three nineteen eighty four",
         "twelve oh three nineteen eighty four", "spoken"),
    case("my date of birth is one two oh three one nine eight four",
         "one two oh three one nine eight four", "spoken"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value", "form"), DOB_CASES)
def test_date_of_birth(text: str, value: str, form: str) -> None:
    check(text, value, "DATE_OF_BIRTH", form)


PHONE_CASES = [
    case("my number is 07700 900123", "07700 900123"),
    case("my phone number is 07700900123", "07700900123"),
    case("call me on +44 20 7946 0958", "+44 20 7946 0958"),
    case("my number is 020 7946 0958", "020 7946 0958"),
    case("call me on 212-555-0123", "212-555-0123"),
    case("my number is +1 212 555 0123", "+1 212 555 0123"),
    case("you can reach me at (212) 555-0123", "(212) 555-0123", "written"),
    case("my mobile is oh seven seven double oh nine oh oh one two three",
         "oh seven seven double oh nine oh oh one two three", "spoken"),
    case("my mobile is oh seven seven double oh, nine oh oh, one two three",
         "oh seven seven double oh, nine oh oh, one two three", "spoken"),
    case("my number is plus four four seven seven oh oh nine oh oh one two three",
         "plus four four seven seven oh oh nine oh oh one two three", "spoken"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value", "form"), PHONE_CASES)
def test_phone_number(text: str, value: str, form: str) -> None:
    check(text, value, "PHONE_NUMBER", form)


def test_bracketed_us_phone_digits_are_all_covered() -> None:
    text = "you can reach me at (212) 555-0123"
    f = only_finding(text, "PHONE_NUMBER")
    assert f.start <= text.index("212")
    assert f.end == len(text)


EMAIL_CASES = [
    case("my email is john.smith@gmail.com", "john.smith@gmail.com"),
    case("my email is john.smith@gmail.com.", "john.smith@gmail.com"),
    case("email me at s.jones+nhs@example.co.uk please", "s.jones+nhs@example.co.uk"),
    case("my email is john dot smith at gmail dot com", "john dot smith at gmail dot com",
         "spoken"),
    case("email john underscore smith at yahoo dot co dot uk",
         "john underscore smith at yahoo dot co dot uk", "spoken"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value", "form"), EMAIL_CASES)
def test_email(text: str, value: str, form: str) -> None:
    check(text, value, "EMAIL_ADDRESS", form)


POSTCODE_CASES = [
    case("my postcode is SW1A 1AA", "SW1A 1AA"),
    case("my post code is SW1A1AA", "SW1A1AA"),
    case("my postcode is M1 1AE", "M1 1AE"),
    case("post code is sw1a 1aa", "sw1a 1aa"),
    case("my postcode is s w one a one a a", "s w one a one a a", "spoken"),
]


@pytest.mark.parametrize(("text", "value", "form"), POSTCODE_CASES)
def test_postcode(text: str, value: str, form: str) -> None:
    check(text, value, "POSTCODE", form)


STREET_CASES = [
    case("I live at 221B Baker Street", "221B Baker Street"),
    case("my address is 42 Wallaby Way", "42 Wallaby Way"),
    case("I live at twenty two Acacia Avenue", "twenty two Acacia Avenue", "spoken"),
]


@pytest.mark.parametrize(("text", "value", "form"), STREET_CASES)
def test_street_address(text: str, value: str, form: str) -> None:
    check(text, value, "STREET_ADDRESS", form)


PERSON_CASES = [
    case("my name is Sarah Jones", "Sarah Jones"),
    case("Hi, my name is Sarah Jones.", "Sarah Jones"),
    case("this is John Smith speaking", "John Smith"),
    case("I'm seeing Dr Patel on Monday", "Patel"),
    case("I saw Dr. Patel yesterday", "Patel"),
    case("my name is sarah jones", "sarah jones"),
    case("i spoke to dr patel yesterday", "patel", "written"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value", "form"), PERSON_CASES)
def test_person(text: str, value: str, form: str) -> None:
    check(text, value, "PERSON", form)


def test_several_entities_in_one_utterance_in_order() -> None:
    text = (
        "my name is Sarah Jones, my card number is 4111 1111 1111 1111, "
        "the expiry is 09/27 and the security code is 123"
    )
    found = R.find(text)
    assert [(f.entity, text[f.start : f.end]) for f in found] == [
        ("PERSON", "Sarah Jones"),
        ("CARD_NUMBER", "4111 1111 1111 1111"),
        ("CARD_EXPIRY", "09/27"),
        ("CARD_CVV", "123"),
    ]


# --- negatives: no finding at all ---------------------------------------------------------

ORDER_BAD_LUHN = luhn_break(VISA16)
REFERENCE_BAD_MOD11 = "943476591" + str((nhs_check("943476591") + 1) % 10)

NEGATIVES = [
    "that's forty nine ninety nine",
    "it costs £1,249.99",
    "the total is £49.99",
    "that'll be forty nine pounds ninety nine",
    "that's one hundred and twenty pounds",
    "the meeting is at 14:30",
    "see you at half past three",
    "it's about twenty past four",
    "I'd like three boxes please",
    "it weighs two hundred and fifty grams",
    "I've been waiting forty five minutes",
    "I have 3 kids aged 4, 7 and 12",
    "your appointment is on 12/03/2025",
    "it was 12345678",
    f"my order number is {groups(ORDER_BAD_LUHN, 4, 4, 4, 4)}",
    f"my loyalty code is {groups(ORDER_BAD_LUHN, 4, 4, 4, 4)}",
    f"your reference is {REFERENCE_BAD_MOD11}",
    "it's 1434765919",
    "press one for sales",
    "press one for sales, press two for support",
    "room 101",
    "version 12.3.4",
    "I was born in 1984",
    "my national insurance number is QQ 12 34 56 C",  # QQ is no valid prefix
    "hello, how can I help you today?",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_no_finding(text: str) -> None:
    found = R.find(text)
    assert found == [], [(f.entity, text[f.start : f.end]) for f in found]


def test_negative_values_really_fail_their_checks() -> None:
    assert not ref_luhn(ORDER_BAD_LUHN)
    assert len(ORDER_BAD_LUHN) == 16
    assert nhs_check(REFERENCE_BAD_MOD11[:9]) != int(REFERENCE_BAD_MOD11[9])
    assert nhs_check("143476591") != 9


def test_eight_digits_need_account_context() -> None:
    assert R.find("it was 12345678") == []
    text = "account number 12345678"
    (f,) = R.find(text)
    assert (f.entity, text[f.start : f.end]) == ("BANK_ACCOUNT", "12345678")


def test_luhn_decides_a_card_in_a_neutral_context() -> None:
    good = f"my loyalty code is {groups(VISA16, 4, 4, 4, 4)}"
    bad = f"my loyalty code is {groups(ORDER_BAD_LUHN, 4, 4, 4, 4)}"
    assert [f.entity for f in R.find(good)] == ["CARD_NUMBER"]
    assert R.find(bad) == []


def test_mod11_decides_a_bare_ten_digit_number() -> None:
    good = nhs_make("140123456")  # starts with 1: no NANP phone reading either way
    bad = good[:9] + str((int(good[9]) + 1) % 10)
    assert nhs_check(bad[:9]) != int(bad[9])
    assert [f.entity for f in R.find(f"it's {good}")] == ["NHS_NUMBER"]
    assert R.find(f"it's {bad}") == []
    # A bare 10-digit number that fails mod 11 is no NHS number (a US-shaped one may be a phone).
    assert "NHS_NUMBER" not in [f.entity for f in R.find("it's 9434765918")]


def test_date_needs_birth_context() -> None:
    assert R.find("your appointment is on 12/03/1984") == []
    assert [f.entity for f in R.find("my date of birth is 12/03/1984")] == ["DATE_OF_BIRTH"]


# --- the overlap rule ---------------------------------------------------------------------


class FixedNer:
    """A stand-in NER backend returning fixed findings."""

    def __init__(self, *findings: Finding) -> None:
        self.findings = list(findings)

    def find(self, text: str) -> list[Finding]:  # noqa: ARG002 - NerBackend's signature; the answer is fixed
        return list(self.findings)


NAME_TEXT = "my name is Sarah Jones"
NAME = (NAME_TEXT.index("Sarah"), len(NAME_TEXT))  # the engine's own PERSON, score 0.8


def test_overlap_higher_score_wins() -> None:
    ner = FixedNer(Finding(NAME[0], NAME[0] + 5, "STREET_ADDRESS", 0.95))
    found = Redactor(ner=ner).find(NAME_TEXT)
    assert found == [Finding(NAME[0], NAME[0] + 5, "STREET_ADDRESS", 0.95)]


def test_overlap_lower_score_loses() -> None:
    ner = FixedNer(Finding(0, len(NAME_TEXT), "STREET_ADDRESS", 0.6))
    found = Redactor(ner=ner).find(NAME_TEXT)
    assert [(f.start, f.end, f.entity) for f in found] == [(*NAME, "PERSON")]


def test_overlap_equal_score_longer_wins() -> None:
    ner = FixedNer(Finding(3, len(NAME_TEXT), "STREET_ADDRESS", 0.8))
    found = Redactor(ner=ner).find(NAME_TEXT)
    assert [(f.start, f.end, f.entity) for f in found] == [(3, len(NAME_TEXT), "STREET_ADDRESS")]


def test_overlap_equal_score_and_length_entity_order_wins() -> None:
    assert ENTITIES.index("CARD_NUMBER") < ENTITIES.index("PERSON")
    assert ENTITIES.index("PERSON") > ENTITIES.index("STREET_ADDRESS")
    for entity in ("CARD_NUMBER", "STREET_ADDRESS"):
        ner = FixedNer(Finding(*NAME, entity, 0.8))
        found = Redactor(ner=ner).find(NAME_TEXT)
        assert [(f.start, f.end, f.entity) for f in found] == [(*NAME, entity)]


def test_overlap_disjoint_findings_both_kept_and_sorted() -> None:
    ner = FixedNer(Finding(0, 2, "STREET_ADDRESS", 0.7))
    found = Redactor(ner=ner).find(NAME_TEXT)
    assert [(f.start, f.end, f.entity) for f in found] == [
        (0, 2, "STREET_ADDRESS"),
        (*NAME, "PERSON"),
    ]


def test_findings_below_threshold_dropped() -> None:
    ner = FixedNer(Finding(0, 2, "STREET_ADDRESS", 0.3))
    assert [f.entity for f in Redactor(ner=ner).find(NAME_TEXT)] == ["PERSON"]


def assert_well_formed(text: str, found: list[Finding]) -> None:
    assert isinstance(found, list)
    prev_end = 0
    for f in found:
        assert isinstance(f, Finding)
        assert 0 <= f.start < f.end <= len(text)
        assert f.start >= prev_end, "findings overlap or are out of order"
        prev_end = f.end
        assert f.entity in ENTITIES
        assert 0 < f.score <= 1


_EXAMPLES = [
    p.values[0]
    for p in (
        *CARD_CASES,
        *CVV_CASES,
        *EXPIRY_CASES,
        *SSN_CASES,
        *NINO_CASES,
        *NHS_CASES,
        *SORT_CASES,
        *ACCOUNT_CASES,
        *IBAN_CASES,
        *DOB_CASES,
        *PHONE_CASES,
        *EMAIL_CASES,
        *POSTCODE_CASES,
        *STREET_CASES,
        *PERSON_CASES,
    )
]
_EXAMPLES += NEGATIVES
_FILLERS = [" ", ". ", ", um, ", " and ", " sorry ", " and then ", "\n", " the ", " ok so "]


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.sampled_from(_EXAMPLES), min_size=1, max_size=6),
    joins=st.lists(st.sampled_from(_FILLERS), min_size=6, max_size=6),
)
def test_overlap_rule_on_concatenated_examples(parts: list[str], joins: list[str]) -> None:
    text = "".join(p + j for p, j in zip(parts, joins, strict=False))
    found = R.find(text)
    assert_well_formed(text, found)
    assert 0 <= R.open_tail(text) <= len(text)
    redacted = R.redact(text)
    assert redacted == apply(text, found)


# --- redact, apply and pseudonyms -----------------------------------------------------------


def test_redact_replaces_spans_with_labels() -> None:
    text = "my card number is 4111 1111 1111 1111 and my sort code is 40-47-84, thanks"
    assert (
        R.redact(text)
        == "my card number is [CARD_NUMBER] and my sort code is [UK_SORT_CODE], thanks"
    )


def test_redact_leaves_text_without_findings_unchanged() -> None:
    text = "press one for sales"
    assert R.redact(text) == text


def test_apply_uses_given_findings_only() -> None:
    text = "abc def ghi"
    found = [Finding(0, 3, "PERSON", 0.9), Finding(8, 11, "POSTCODE", 0.9)]
    assert apply(text, found) == "[PERSON] def [POSTCODE]"
    assert apply(text, []) == text


def test_pseudonyms_are_stable_per_value() -> None:
    p = Pseudonyms()
    first = R.redact(f"my card number is {groups(VISA16, 4, 4, 4, 4)}", p)
    again = R.redact(f"so that's card number {groups(VISA16, 4, 4, 4, 4)}, right", p)
    other = R.redact(f"my other card number is {groups(MC_5, 4, 4, 4, 4)}", p)
    back = R.redact(f"no, use card number {VISA16}", p)  # same digits, written without spaces
    assert first == "my card number is [CARD_NUMBER_1]"
    assert again == "so that's card number [CARD_NUMBER_1], right"
    assert other == "my other card number is [CARD_NUMBER_2]"
    assert back == "no, use card number [CARD_NUMBER_1]"


def test_pseudonyms_count_per_entity_and_per_instance() -> None:
    p = Pseudonyms()
    text = "my name is Sarah Jones and my card number is 4111 1111 1111 1111"
    assert R.redact(text, p) == "my name is [PERSON_1] and my card number is [CARD_NUMBER_1]"
    assert R.redact("my name is Tom Hardy", p) == "my name is [PERSON_2]"
    fresh = Pseudonyms()
    assert R.redact("my name is Tom Hardy", fresh) == "my name is [PERSON_1]"


def test_pseudonym_same_card_spoken_and_written() -> None:
    p = Pseudonyms()
    assert R.redact(f"card number {VISA16}", p) == "card number [CARD_NUMBER_1]"
    assert R.redact(f"card number {say(VISA16)}", p) == "card number [CARD_NUMBER_1]"


def _walk(obj: Any, seen: set[int]) -> list[Any]:
    """Every object reachable from ``obj`` through attributes and containers."""
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    out = [obj]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _walk(k, seen) + _walk(v, seen)
    elif isinstance(obj, list | tuple | set | frozenset):
        for v in obj:
            out += _walk(v, seen)
    elif hasattr(obj, "__dict__"):
        out += _walk(vars(obj), seen)
    if hasattr(obj, "__slots__"):
        for name in obj.__slots__:
            if hasattr(obj, name):
                out += _walk(getattr(obj, name), seen)
    return out


def test_pseudonyms_do_not_hold_the_raw_value() -> None:
    p = Pseudonyms()
    secret = VISA16
    R.redact(f"my card number is {groups(secret, 4, 4, 4, 4)}", p)
    R.redact("my name is Sarah Jones", p)
    reachable = _walk(p, set())
    assert len(reachable) > 3  # the walk really went inside
    needles = [secret, groups(secret, 4, 4, 4, 4), secret[-8:], "sarah", "Sarah", "jones"]
    for obj in reachable:
        if isinstance(obj, str):
            assert not any(n.lower() in obj.lower() for n in needles), obj
        elif isinstance(obj, bytes | bytearray):
            assert not any(n.lower().encode() in bytes(obj).lower() for n in needles)


# --- bad and hostile input ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "   \n\t  ", "\u00a0\u2003"])
def test_empty_and_blank_input(text: str) -> None:
    assert R.find(text) == []
    assert R.redact(text) == text
    assert R.open_tail(text) == len(text)


def test_over_limit_refused_without_echoing_the_text() -> None:
    small = Redactor(max_chars=80)
    text = f"my card number is {VISA16} and my name is Zebedee Quux"
    text += "x" * (81 - len(text))
    assert len(text) == 81
    for call in (small.find, small.redact, small.open_tail):
        with pytest.raises(PayloadTooLargeError) as e:
            call(text)
        message = str(e.value)
        for fragment in (VISA16, "Zebedee", "my card", "xxxxx"):
            assert fragment not in message
    at_limit = text[:80]
    assert_well_formed(at_limit, small.find(at_limit))  # exactly at the limit is accepted


def test_default_limit_applies() -> None:
    with pytest.raises(PayloadTooLargeError):
        R.find("a" * (R.max_chars + 1))


_ODD = st.sampled_from(
    [
        "\u0301", "e\u0301", "\u200b", "\u200d", "\u202e", "\u2066", "\ufeff",
        "\u05e9\u05dc\u05d5\u05dd", "\u0645\u0631\u062d\u0628\u0627", "😀", "👩\u200d👩\u200d👧",
        "🇬🇧", "\uff14\uff11\uff11\uff11", "\u0664\u0661\u0661\u0661", "ǅ", "ß", "İ",
        "4111", "1111", "four", "one", "double", "oh", "at", "dot", "@", "-", "/", ",", ".",
        "card number", "date of birth", "sort code", "GB82", "WEST", "SW1A", "1AA", "Dr",
        "my name is", "street", "march", "twelfth", "nineteen", "eighty", "+44", "(", ")",
    ]
)  # fmt: skip
_ANY_CHAR = st.characters(exclude_categories=("Cs",))


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(
        st.one_of(st.text(alphabet=_ANY_CHAR, max_size=12), _ODD),
        max_size=25,
    ),
    sep=st.sampled_from([" ", "", "\u00a0", "\n"]),
)
def test_fuzz_unicode_never_raises_and_spans_are_valid(parts: list[str], sep: str) -> None:
    text = sep.join(parts)
    found = R.find(text)
    assert_well_formed(text, found)
    assert 0 <= R.open_tail(text) <= len(text)
    redacted = R.redact(text)
    if not found:
        assert redacted == text


@pytest.mark.parametrize(
    "text",
    [
        "expiry \u00b9\u00b2\u00b3\u2074 5",
        "my ssn is \u00b3\u00b2\u00b9-\u2074\u2075-\u2076\u2077\u2078\u2079 1",
        "born on \u00b9\u00b2 march 1984",
    ],
)
def test_superscript_digits_do_not_crash(text: str) -> None:
    assert_well_formed(text, R.find(text))


# --- bounded work on adversarial input --------------------------------------------------------

BIG = Redactor(max_chars=65_536)


@pytest.mark.parametrize(
    "unit", ["one ", "a@", "4111 ", "x dot ", "GB82 ", "12 march ", "a b ", "born on 12 march "]
)
def test_adversarial_64k_inputs_complete(unit: str) -> None:
    text = (unit * (65_536 // len(unit) + 1))[:65_536]
    assert len(text) == 65_536
    found = BIG.find(text)
    assert_well_formed(text, found)
    assert 0 <= BIG.open_tail(text) <= len(text)
    with pytest.raises(PayloadTooLargeError):
        BIG.find(text + " ")


# --- open_tail ----------------------------------------------------------------------------


def test_open_tail_pending_spoken_number() -> None:
    text = "my card number is four one one one"
    assert R.open_tail(text) == text.index("four")


def test_open_tail_pending_written_number() -> None:
    text = "my card number is 4111 1111"
    assert R.open_tail(text) == text.index("4111")


def test_open_tail_nothing_pending() -> None:
    assert R.open_tail("hello there") == len("hello there")
    text = "my card number is 4111 1111 1111 1111 thanks"
    assert R.open_tail(text) == len(text)


def test_open_tail_spoken_email_local_part() -> None:
    text = "john dot smith"
    assert R.open_tail(text) <= text.index("john")
    text = "my email is john dot smith"
    assert R.open_tail(text) <= text.index("john")


@pytest.mark.parametrize("text", ["my card number is 4111,", "my card number is 4111, "])
def test_open_tail_comma_after_digits_is_pending(text: str) -> None:
    assert R.open_tail(text) <= text.index("4111")


def test_open_tail_joining_word_alone_is_settled() -> None:
    text = "I am thinking of the"
    assert R.open_tail(text) == len(text)


class _FakeNer:
    """A stand-in model: tags "Zaphod" as a PERSON (the rules do not know the name)."""

    def find(self, text: str) -> list[Finding]:
        start = text.find("Zaphod")
        return [] if start < 0 else [Finding(start, start + 6, "PERSON", 0.6)]


def test_an_ner_backend_adds_its_findings_under_the_same_overlap_rule() -> None:
    text = "Zaphod paid with 4111 1111 1111 1111 today"
    assert [f.entity for f in Redactor().find(text)] == ["CARD_NUMBER"]
    found = Redactor(ner=_FakeNer()).find(text)
    assert [(text[f.start : f.end], f.entity) for f in found] == [
        ("Zaphod", "PERSON"),
        ("4111 1111 1111 1111", "CARD_NUMBER"),
    ]
