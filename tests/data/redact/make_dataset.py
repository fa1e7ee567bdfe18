"""Make the redaction engine's labelled development data: ``dev.jsonl`` and ``holdout.jsonl``.

Everything is synthetic: names from Faker (en_GB, en_US), every number made up
here with a valid checksum where the entity has one (Luhn, NHS mod 11, IBAN
mod 97, ABA) and a failing one where a number must NOT be PII (order and
reference numbers). The phrasings are written here by hand, independently of
the engine, the way callers to banks, NHS trusts, insurers and US services talk
and the way ASR engines write it down (see README.md for the conventions).

``holdout.jsonl`` uses a different seed and, on top of the shared phrasings,
templates and value renderings that ``dev.jsonl`` never contains, so tuning on
dev and then scoring holdout shows overfitting.

    .venv/bin/python tests/data/redact/make_dataset.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

from faker import Faker

HERE = Path(__file__).resolve().parent

# split -> (records, seed, holdout-only phrasings on)
SPLITS: dict[str, tuple[int, int, bool]] = {
    "dev": (4000, 20_240_611, False),
    "holdout": (2000, 77_031_905, True),
}
NEGATIVE_SHARE = 0.43  # records with no span at all
LOCALES = ("en_GB", "en_US")

Piece = tuple[str, str | None]

# ---------------------------------------------------------------------------
# Checksums and validity rules (the definitions the labels follow)
# ---------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def luhn_complete(body: str) -> str:
    return next(body + c for c in "0123456789" if luhn_ok(body + c))


def nhs_check_digit(nine: str) -> int | None:
    rem = 11 - sum(int(c) * (10 - i) for i, c in enumerate(nine)) % 11
    if rem == 11:
        return 0
    return None if rem == 10 else rem


def nhs_ok(digits: str) -> bool:
    return len(digits) == 10 and digits.isdigit() and nhs_check_digit(digits[:9]) == int(digits[9])


IBAN_LENGTHS = {
    "GB": 22, "DE": 22, "FR": 27, "ES": 24, "IE": 22, "NL": 18, "IT": 27, "BE": 16,
    "CH": 21, "PL": 28, "PT": 25, "AT": 20, "LU": 20, "SE": 24, "DK": 18,
}  # fmt: skip


def _iban_number(s: str) -> int:
    return int("".join(str(int(c, 36)) for c in s))


def iban_ok(value: str) -> bool:
    s = re.sub(r"[^0-9A-Za-z]", "", value).upper()
    if IBAN_LENGTHS.get(s[:2]) != len(s):
        return False
    return _iban_number(s[4:] + s[:4]) % 97 == 1


def iban_make(country: str, bban: str) -> str:
    check = 98 - _iban_number(bban + country + "00") % 97
    return f"{country}{check:02d}{bban}"


def aba_ok(d: str) -> bool:
    w = (3, 7, 1) * 3
    return len(d) == 9 and sum(int(c) * k for c, k in zip(d, w, strict=True)) % 10 == 0


def nanp_ok(d: str) -> bool:
    """A dialable US number: area and exchange start 2-9 and are not N11."""
    return (
        len(d) == 10
        and d[0] in "23456789"
        and d[1:3] != "11"
        and d[3] in "23456789"
        and d[4:6] != "11"
    )


NINO_BAD_FIRST = set("DFIQUV")
NINO_BAD_SECOND = set("DFIOQUV")
NINO_BAD_PREFIX = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def nino_ok(value: str) -> bool:
    s = re.sub(r"[^0-9A-Za-z]", "", value).upper()
    return bool(
        re.fullmatch(r"[A-Z]{2}\d{6}[A-D]", s)
        and s[0] not in NINO_BAD_FIRST
        and s[1] not in NINO_BAD_SECOND
        and s[:2] not in NINO_BAD_PREFIX
    )


def ssn_ok(d: str) -> bool:
    return (
        len(d) == 9
        and d[:3] not in {"000", "666"}
        and d[0] != "9"
        and d[3:5] != "00"
        and d[5:] != "0000"
    )


def innocent_digits(d: str) -> bool:
    """True when a bare digit run cannot be a self-validating identifier."""
    n = len(d)
    bad = (
        (12 <= n <= 19 and luhn_ok(d))
        or (n == 10 and (nhs_ok(d) or nanp_ok(d) or d[0] == "0"))
        or (n == 11 and d[0] in "01")
        or (n in (12, 13) and d.startswith("44"))
    )
    return not bad


# ---------------------------------------------------------------------------
# Number words, both ways
# ---------------------------------------------------------------------------

ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
ORD_SMALL = (
    "", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
    "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
    "seventeenth", "eighteenth", "nineteenth",
)  # fmt: skip
ORD_TENS = {20: "twentieth", 30: "thirtieth"}
MONTHS = (
    "", "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
MON = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTH_ORD = ORD_SMALL[:13]


def two(n: int, hyphen: bool = False) -> str:
    """0-99 in words ("forty one"); Whisper-style output hyphenates ("forty-one")."""
    if n < 20:
        return ONES[n]
    t, u = divmod(n, 10)
    if u == 0:
        return TENS[t]
    return f"{TENS[t]}{'-' if hyphen else ' '}{ONES[u]}"


def cardinal(n: int, uk: bool = True) -> str:
    """0-999,999 in words; British English puts "and" before the tens."""
    if n < 100:
        return two(n)
    if n < 1000:
        h, rest = divmod(n, 100)
        head = f"{ONES[h]} hundred"
        if not rest:
            return head
        return f"{head} {'and ' if uk else ''}{two(rest)}"
    th, rest = divmod(n, 1000)
    head = f"{cardinal(th, uk)} thousand"
    if not rest:
        return head
    joiner = " and " if uk and rest < 100 else " "
    return head + joiner + cardinal(rest, uk)


def ordinal(n: int) -> str:
    if n < 20:
        return ORD_SMALL[n]
    if n in ORD_TENS:
        return ORD_TENS[n]
    t, u = divmod(n, 10)
    return f"{TENS[t]} {ORD_SMALL[u]}"


def ordinal_suffix(n: int) -> str:
    if 11 <= n % 100 <= 13:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def year_words(y: int, rng: random.Random, uk: bool) -> str:
    if y < 2000:
        rest = y % 100
        return f"nineteen {two(rest) if rest >= 10 else 'oh ' + ONES[rest]}"
    rest = y - 2000
    if rest == 0:
        return "two thousand"
    long_form = f"two thousand {'and ' if uk and rng.random() < 0.7 else ''}{two(rest)}"
    short = f"twenty {two(rest)}" if rest >= 10 else f"twenty oh {ONES[rest]}"
    return long_form if rng.random() < (0.6 if rest < 10 else 0.3) else short


UNIT_WORDS = {w: str(i) for i, w in enumerate(ONES[:10])} | {"oh": "0"}
HOMOPHONES = {"won": "1", "to": "2", "too": "2", "for": "4", "ate": "8"}
TEEN_WORDS = {w: str(i) for i, w in enumerate(ONES) if i >= 10}
TENS_WORDS = {w: str(i) for i, w in enumerate(TENS) if w}
FILLERS = {"um", "uh", "er", "erm", "sorry"}
NATO = {
    "A": "alpha", "B": "bravo", "C": "charlie", "D": "delta", "E": "echo", "F": "foxtrot",
    "G": "golf", "H": "hotel", "I": "india", "J": "juliet", "K": "kilo", "L": "lima",
    "M": "mike", "N": "november", "O": "oscar", "P": "papa", "Q": "quebec", "R": "romeo",
    "S": "sierra", "T": "tango", "U": "uniform", "V": "victor", "W": "whiskey", "X": "x-ray",
    "Y": "yankee", "Z": "zulu",
}  # fmt: skip
NATO_BACK = {v.replace("-", ""): k for k, v in NATO.items()}


def _tokens(text: str) -> list[str]:
    return re.sub(r"[,.\-/()+:]", " ", text.lower()).split()


def spoken_value(text: str, *, letters: bool = False, homophones: bool = True) -> str | None:
    """What a number (or IBAN/NINO) said in words or ASR numerals stands for.

    ``None`` when a token is not part of such a value. Used to check that every
    rendering the generator makes reads back to the value it labels.
    """
    toks = _tokens(text.replace("x-ray", "xray"))
    units = UNIT_WORDS | (HOMOPHONES if homophones else {})
    words = units | TEEN_WORDS
    out: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if t.isdigit():
            out.append(t)
        elif letters and t == "for" and nxt in NATO_BACK:
            i += 1  # "b for bravo": the letter was already taken
        elif t in ("double", "triple") and nxt in units:
            out.append(units[nxt] * (2 if t == "double" else 3))
            i += 1
        elif t in TENS_WORDS and units.get(nxt, "0") != "0":
            out.append(TENS_WORDS[t] + units[nxt])  # "forty one"
            i += 1
        elif t in TENS_WORDS:
            out.append(TENS_WORDS[t] + "0")
        elif t in words:
            out.append(words[t])
        elif letters and t.isalnum() and t not in FILLERS:
            out.append(NATO_BACK.get(t, t.upper()))
        elif t not in FILLERS:
            return None
        i += 1
    return "".join(out)


def split_groups(s: str, groups: list[int]) -> list[str]:
    out, pos = [], 0
    for g in groups:
        out.append(s[pos : pos + g])
        pos += g
    if pos < len(s):
        out.append(s[pos:])
    return [g for g in out if g]


# ---------------------------------------------------------------------------
# Rendering context
# ---------------------------------------------------------------------------

# Styles. Written: "typed" (forms, chat, e-mail), "typed_lower" (chat in lower case).
# Spoken (an ASR transcript of speech): "asr_raw" (Deepgram/Twilio without
# formatting: lower case, no punctuation, numbers as words), "asr_punct" (Whisper,
# Deepgram smart_format: case, punctuation, numerals or words), "asr_digits"
# (Google/Twilio style: lower case, numerals in whatever groups the pauses made).
WRITTEN_STYLES = (("typed", 0.75), ("typed_lower", 0.25))
SPOKEN_STYLES = (("asr_raw", 0.55), ("asr_punct", 0.25), ("asr_digits", 0.20))
NUM_MODES = {
    "typed": (("digits", 1.0),),
    "typed_lower": (("digits", 1.0),),
    "asr_raw": (("words", 0.9), ("mixed", 0.1)),
    "asr_punct": (("digits", 0.45), ("words", 0.45), ("mixed", 0.1)),
    "asr_digits": (("digits", 0.85), ("mixed", 0.15)),
}


@dataclass
class Persona:
    first: str
    last: str
    title: str
    dob: date
    female: bool


@dataclass
class Ctx:
    rng: random.Random
    fake: Faker
    locale: str
    form: str
    style: str
    num: str
    zero: str
    holdout: bool
    person: Persona

    @property
    def uk(self) -> bool:
        return self.locale == "en_GB"

    @property
    def lower(self) -> bool:
        return self.style in ("typed_lower", "asr_raw", "asr_digits")

    @property
    def written(self) -> bool:
        return self.form == "written"

    @property
    def numerals(self) -> bool:
        return self.num == "digits"

    def pick(self, options: list[str] | tuple[str, ...]) -> str:
        return self.rng.choice(options)

    def case(self, s: str) -> str:
        return s.lower() if self.lower else s

    def held(self, p: float) -> bool:
        """True (with probability ``p``) for a rendering only the holdout split uses."""
        return self.holdout and self.rng.random() < p


def weighted(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([o for o, _ in options], [w for _, w in options])[0]


def zero_word(ctx: Ctx) -> str:
    if ctx.rng.random() < 0.1:
        return "zero" if ctx.zero == "oh" else "oh"
    return ctx.zero


def digit_word(ctx: Ctx, d: str) -> str:
    return zero_word(ctx) if d == "0" else ONES[int(d)]


def say_singles(ctx: Ctx, g: str, doubles: bool) -> list[str]:
    out: list[str] = []
    for m in re.finditer(r"(\d)\1*", g):
        d, run = m.group(1), len(m.group())
        while run:
            if doubles and run >= 3 and ctx.rng.random() < 0.4:
                out.append(f"triple {digit_word(ctx, d)}")
                run -= 3
            elif doubles and run >= 2:
                out.append(f"double {digit_word(ctx, d)}")
                run -= 2
            else:
                out.append(digit_word(ctx, d))
                run -= 1
    return out


def say_pair(ctx: Ctx, p: str, hyphen: bool) -> str:
    if p == "00":
        return ctx.pick(["double oh", "oh oh", "zero zero", "double zero"])
    if p[0] == "0":
        return f"{zero_word(ctx)} {ONES[int(p[1])]}"
    return two(int(p), hyphen)


def say_pairs(ctx: Ctx, g: str, hyphen: bool) -> list[str]:
    out = [digit_word(ctx, g[0])] if len(g) % 2 else []
    out += [say_pair(ctx, g[i : i + 2], hyphen) for i in range(len(g) % 2, len(g), 2)]
    return out


def asr_numerals(ctx: Ctx, digits: str, parts: list[str]) -> str:
    """How an ASR engine that writes numerals transcribes a digit run."""
    options = [" ".join(parts)] * 5 + [digits] * 2 + [" ".join(digits)]
    if len(digits) % 2 == 0 and len(digits) > 4:
        options.append(" ".join(digits[i : i + 2] for i in range(0, len(digits), 2)))
    if ctx.style == "asr_punct":
        options += [", ".join(parts), "-".join(parts)]
    return ctx.pick(options)


def say_number(ctx: Ctx, digits: str, groups: list[int], *, pairs: bool = True) -> str:
    """A digit run as a caller says it and an ASR engine writes it.

    Digits one by one ("four one one one"), "oh"/"zero", "double five", "triple
    oh", pairs ("forty one eleven"), numerals mixed with words, an occasional
    hesitation between groups and an occasional numeric homophone ("for").
    """
    rng = ctx.rng
    parts = split_groups(digits, groups)
    if ctx.numerals:
        return asr_numerals(ctx, digits, parts)
    sub = weighted(rng, (("singles", 0.65), ("pairs", 0.15), ("mix", 0.2))) if pairs else "singles"
    doubles = rng.random() < 0.35
    hyphen = ctx.style == "asr_punct" and rng.random() < 0.5
    rendered = []
    for g in parts:
        if ctx.num == "mixed" and rng.random() < 0.5:
            rendered.append(g)
            continue
        mode = sub if sub != "mix" else rng.choice(["singles", "pairs"])
        toks = say_pairs(ctx, g, hyphen) if mode == "pairs" else say_singles(ctx, g, doubles)
        rendered.append(" ".join(toks))
    sep = ", " if ctx.style == "asr_punct" and rng.random() < 0.5 else " "
    if len(rendered) > 1 and rng.random() < 0.06:
        filler = ctx.pick(["um", "uh", "sorry", "er" if ctx.uk else "uh"])
        rendered.insert(rng.randint(1, len(rendered) - 1), filler)
    out = sep.join(rendered)
    if ctx.style == "asr_raw" and rng.random() < 0.05:
        words = out.split(" ")
        spots = [i for i, w in enumerate(words) if w in ("one", "two", "four", "eight")]
        if spots:
            i = rng.choice(spots)
            words[i] = {"one": "won", "two": rng.choice(["to", "too"]), "four": "for"}.get(
                words[i], "ate"
            )
            out = " ".join(words)
    if spoken_value(out) != digits:  # an ambiguous pair ("forty" + "one"): say it plainly
        out = " ".join(digit_word(ctx, d) for d in digits)
    return out


def say_letters(ctx: Ctx, letters: str, *, nato: bool = False) -> str:
    if nato:
        return " ".join(NATO[c] for c in letters)
    if ctx.style == "asr_punct":
        return ctx.pick([" ".join(letters), letters, ", ".join(letters)])
    return " ".join(letters.lower())


def say_alnum(ctx: Ctx, value: str, *, mode: str, doubles: bool) -> str:
    """A mixed letter/digit chunk (IBAN group, postcode half) said in words."""
    out = []
    for m in re.finditer(r"[A-Z]+|\d+", value):
        chunk = m.group()
        if chunk.isalpha():
            out.append(say_letters(ctx, chunk))
        elif mode == "pairs" and len(chunk) >= 2:
            out.append(" ".join(say_pairs(ctx, chunk, hyphen=False)))
        else:
            out.append(" ".join(say_singles(ctx, chunk, doubles)))
    return " ".join(out)


# ---------------------------------------------------------------------------
# Entity values
# ---------------------------------------------------------------------------

# (brand, weight): prefixes and lengths below.
CARD_BRANDS = (
    ("visa16", 28.0), ("visa13", 2.0), ("visa19", 4.0), ("mc5", 14.0), ("mc2", 9.0),
    ("amex", 10.0), ("discover", 7.0), ("jcb", 5.0), ("diners", 5.0), ("maestro", 8.0),
    ("unionpay", 6.0),
)  # fmt: skip
MAESTRO_IIN = ("5018", "5020", "5038", "5893", "6304", "6759", "6761", "6762", "6763")
CARD_GROUPS = {
    12: [4, 4, 4], 13: [4, 4, 5], 14: [4, 6, 4], 15: [4, 6, 5], 16: [4, 4, 4, 4],
    17: [4, 4, 4, 5], 18: [4, 4, 4, 6], 19: [4, 4, 4, 4, 3],
}  # fmt: skip


def card_number(rng: random.Random) -> str:
    brand = weighted(rng, CARD_BRANDS)
    r = rng.randint
    prefix, length = {
        "visa16": ("4", 16),
        "visa13": ("4", 13),
        "visa19": ("4", 19),
        "mc5": (str(r(51, 55)), 16),
        "mc2": (str(r(2221, 2720)), 16),
        "amex": (rng.choice(["34", "37"]), 15),
        "discover": (rng.choice(["6011", str(r(644, 649)), "65"]), rng.choice([16, 16, 16, 19])),
        "jcb": (str(r(3528, 3589)), 16),
        "diners": (rng.choice(["36", str(r(300, 305))]), 14),
        "maestro": (rng.choice(MAESTRO_IIN), rng.choice([12, 13, 16, 16, 16, 18, 19])),
        "unionpay": ("62" + str(r(0, 9)), rng.choice([16, 16, 17, 18, 19])),
    }[brand]
    body = prefix + "".join(str(r(0, 9)) for _ in range(length - len(prefix) - 1))
    return luhn_complete(body)


def nhs_number(rng: random.Random) -> str:
    while True:
        nine = rng.choice("44446667773") + "".join(str(rng.randint(0, 9)) for _ in range(8))
        check = nhs_check_digit(nine)
        if check is not None:
            return nine + str(check)


def ssn(rng: random.Random) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    return f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


def nino(rng: random.Random) -> str:
    first = [c for c in "ABCEGHJKLMNOPRSTWXYZ" if c not in NINO_BAD_FIRST]
    second = [c for c in "ABCEGHJKLMNPRSTWXYZ" if c not in NINO_BAD_SECOND]
    while True:
        prefix = rng.choice(first) + rng.choice(second)
        if prefix not in NINO_BAD_PREFIX:
            break
    digits = "".join(str(rng.randint(0, 9)) for _ in range(6))
    return prefix + digits + rng.choice("ABCD")


# Sort code first two digits of real UK banks.
SORT_PREFIXES = ("20", "30", "40", "60", "77", "83", "09", "11", "04", "07", "08", "16", "23")
GB_BANKS = ("NWBK", "BARC", "LOYD", "HBUK", "MIDL", "NAIA", "SRLG", "MONZ", "ABBY", "HLFX", "RBOS")
IE_BANKS = ("AIBK", "BOFI", "IPBS", "ULSB")
NL_BANKS = ("ABNA", "INGB", "RABO", "TRIO", "SNSB")


def sort_code(rng: random.Random) -> str:
    return rng.choice(SORT_PREFIXES) + f"{rng.randint(0, 9999):04d}"


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(n))


def iban(rng: random.Random, uk: bool) -> str:
    countries = ("GB",) * 6 + ("IE", "DE", "FR", "ES", "NL", "IT") if uk else ("DE", "FR", "ES")
    cc = rng.choice((*countries, "BE", "CH", "PL", "PT", "AT", "LU", "SE", "DK"))
    d = _digits
    bban = {
        "GB": lambda: rng.choice(GB_BANKS) + sort_code(rng) + d(rng, 8),
        "IE": lambda: rng.choice(IE_BANKS) + d(rng, 14),
        "NL": lambda: rng.choice(NL_BANKS) + d(rng, 10),
        "IT": lambda: rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + d(rng, 22),
    }.get(cc, lambda: d(rng, IBAN_LENGTHS[cc] - 4))()
    value = iban_make(cc, bban)
    assert iban_ok(value), value
    return value


def routing_number(rng: random.Random) -> str:
    while True:
        head = rng.choice(["0", "1", "2", "3"])
        body = head + ("1" if head == "3" else str(rng.randint(1, 2))) + _digits(rng, 6)
        full = next(body + c for c in "0123456789" if aba_ok(body + c))
        if int(full[:2]) in range(1, 13) or int(full[:2]) in range(21, 33):
            return full


def us_account(rng: random.Random) -> str:
    while True:
        value = str(rng.randint(1, 9)) + _digits(rng, rng.choice([7, 8, 9, 9, 10, 11, 13]))
        if innocent_digits(value):
            return value


def innocent_number(rng: random.Random, n: int) -> str:
    """A reference/order number of ``n`` digits that no checksum or format accepts."""
    while True:
        value = str(rng.randint(1, 9)) + _digits(rng, n - 1)
        if innocent_digits(value) and not (n == 9 and ssn_ok(value) and rng.random() < 0.5):
            return value


UK_AREAS = ("0161", "0113", "0121", "0131", "0141", "0117", "0114", "0115", "0116", "0118",
            "0151", "0191", "029", "028", "023", "024")  # fmt: skip
UK_AREAS5 = ("01632", "01223", "01865", "01273", "01904", "01392", "01752", "01603", "01482",
             "01332", "01244", "01524")  # fmt: skip
US_AREAS = ("212", "646", "718", "917", "415", "510", "312", "773", "713", "832", "305", "786",
            "206", "617", "404", "602", "303", "214", "702", "503", "612", "919", "512", "215",
            "313", "412", "615", "704", "808", "907", "201", "973", "860", "502", "816", "314",
            "405", "801", "619", "858", "916", "480", "317", "414", "901", "504")  # fmt: skip


def uk_phone(rng: random.Random) -> tuple[str, str]:
    kind = weighted(rng, (("mobile", 0.55), ("london", 0.15), ("geo4", 0.18), ("geo5", 0.12)))
    if kind == "mobile":
        return kind, "07" + rng.choice("45789") + _digits(rng, 8)
    if kind == "london":
        return kind, "020" + rng.choice("7837") + _digits(rng, 7)
    area = rng.choice(UK_AREAS) if kind == "geo4" else rng.choice(UK_AREAS5)
    if len(area) == 3:
        return "geo3", area + rng.choice("2345689") + _digits(rng, 7)
    return kind, area + rng.choice("2345689") + _digits(rng, 10 - len(area))


def us_phone(rng: random.Random) -> str:
    area = rng.choice(US_AREAS)
    if rng.random() < 0.15:
        return f"{area}55501{rng.randint(0, 99):02d}"
    while True:
        exch = f"{rng.randint(200, 999)}"
        if exch[1:] != "11" and exch != "555":
            return area + exch + _digits(rng, 4)


UK_OUTWARD = (
    "SW1A", "SW11", "SE15", "SE1", "E14", "E1", "N1", "N16", "NW3", "W1A", "W2", "WC1A", "EC1A",
    "EC2M", "CR2", "BR1", "KT2", "TW9", "HA0", "UB7", "IG1", "RM1", "DA1", "EN1", "M1", "M14",
    "M20", "B33", "B15", "B1", "LS1", "LS6", "L1", "L18", "S10", "S1", "NG7", "NG1", "LE1", "CV1",
    "BS8", "BS1", "CF10", "CF24", "EH1", "EH3", "G2", "G12", "AB10", "DD1", "IV2", "KY16", "PA1",
    "NE1", "NE6", "DH1", "SR1", "TS1", "YO1", "HU1", "DN55", "HG1", "BD1", "HX1", "WF1", "OL1",
    "BL1", "PR1", "BB1", "LA1", "CA1", "CH1", "WA1", "ST1", "DE1", "DY1", "WV1", "WS1", "SY1",
    "HR1", "WR1", "GL1", "OX1", "OX4", "RG1", "SL1", "MK9", "LU1", "AL1", "SG1", "CB2", "CB1",
    "IP1", "NR1", "CO1", "CM1", "SS1", "ME1", "CT1", "TN1", "BN1", "BN3", "RH1", "GU1", "PO1",
    "SO14", "BH1", "SP1", "BA1", "TA1", "EX4", "PL4", "TR1", "TQ1", "LL57", "SA1", "NP20", "BT9",
    "BT1", "DT1"
)  # fmt: skip
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def uk_postcode(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.03:
        return "SW1A", "1AA"
    inward = str(rng.randint(0, 9)) + rng.choice(INWARD_LETTERS) + rng.choice(INWARD_LETTERS)
    return rng.choice(UK_OUTWARD), inward


UK_TOWNS = (
    "Leeds", "Manchester", "Birmingham", "Bristol", "Sheffield", "Nottingham", "Leicester",
    "Cardiff", "Swansea", "Glasgow", "Edinburgh", "Aberdeen", "Belfast", "Newcastle", "York",
    "Norwich", "Cambridge", "Oxford", "Reading", "Brighton", "Exeter", "Plymouth", "Derby",
    "Stoke", "Bolton", "Wigan", "Croydon", "Bromley", "Harrogate", "Bath", "Truro", "Ipswich",
)  # fmt: skip
US_TOWNS = (
    ("Springfield", "IL"), ("Austin", "TX"), ("Columbus", "OH"), ("Denver", "CO"),
    ("Portland", "OR"), ("Tampa", "FL"), ("Raleigh", "NC"), ("Phoenix", "AZ"),
    ("Nashville", "TN"), ("Madison", "WI"), ("Boise", "ID"), ("Albany", "NY"),
    ("Sacramento", "CA"), ("Richmond", "VA"), ("Omaha", "NE"), ("Tulsa", "OK"),
    ("Brooklyn", "NY"), ("Seattle", "WA"), ("Atlanta", "GA"), ("Pittsburgh", "PA"),
)  # fmt: skip
UK_STREETS = (
    "High Street", "Station Road", "Church Lane", "Park Road", "Victoria Road", "Green Lane",
    "Manor Road", "Church Street", "Mill Lane", "Queens Road", "Kings Road", "New Road",
    "London Road", "North Street", "School Lane", "The Avenue", "Grange Road", "Albert Road",
    "Springfield Road", "York Road", "Chapel Street", "Elm Grove", "Acacia Avenue",
    "Windsor Close", "Orchard Way", "Meadow View", "Beech Drive", "Mount Pleasant",
)  # fmt: skip
UK_SUFFIXES = ("Road", "Street", "Lane", "Avenue", "Close", "Drive", "Gardens", "Crescent",
               "Way", "Grove", "Terrace", "Place")  # fmt: skip
US_STREETS = (
    "Main Street", "Oak Avenue", "Maple Drive", "Elm Street", "Washington Avenue",
    "Park Avenue", "Cedar Lane", "Pine Street", "Sunset Boulevard", "Hillcrest Road",
    "Lincoln Way", "Jefferson Street", "Ridge Road", "Second Street", "Third Avenue",
    "Lake Shore Drive", "Willow Court", "Highland Avenue", "Church Street", "Spring Street",
)  # fmt: skip
US_SUFFIXES = ("Street", "Avenue", "Road", "Drive", "Lane", "Boulevard", "Court", "Way",
               "Place")  # fmt: skip
UK_DOMAINS = ("gmail.com", "gmail.com", "hotmail.co.uk", "hotmail.com", "yahoo.co.uk",
              "outlook.com", "btinternet.com", "sky.com", "live.co.uk", "icloud.com", "aol.com",
              "virginmedia.com", "nhs.net", "talktalk.net", "googlemail.com")  # fmt: skip
US_DOMAINS = ("gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com", "hotmail.com",
              "icloud.com", "aol.com", "comcast.net", "att.net", "verizon.net", "msn.com",
              "protonmail.com")  # fmt: skip
SPOKEN_DOMAIN = {
    "btinternet": ("bt internet", "b t internet"),
    "virginmedia": ("virgin media",),
    "talktalk": ("talk talk", "talktalk"),
    "googlemail": ("google mail", "googlemail"),
    "protonmail": ("proton mail", "protonmail"),
    "icloud": ("icloud", "i cloud"),
    "nhs": ("n h s", "nhs"),
    "aol": ("aol", "a o l"),
    "att": ("att", "a t t"),
    "msn": ("msn", "m s n"),
}


# ---------------------------------------------------------------------------
# Renderers: each slot returns pieces (text, entity-or-None)
# ---------------------------------------------------------------------------


def r_card(ctx: Ctx, digits: str | None = None) -> str:
    digits = digits or card_number(ctx.rng)
    groups = CARD_GROUPS[len(digits)]
    if ctx.written:
        seps = [" "] * 6 + ["-"] * 2 + [""] * 2 + (["."] * 2 if ctx.holdout else [])
        return ctx.rng.choice(seps).join(split_groups(digits, groups))
    return say_number(ctx, digits, groups)


def s_card(ctx: Ctx) -> list[Piece]:
    return [(r_card(ctx), "CARD_NUMBER")]


def s_card_fix(ctx: Ctx) -> list[Piece]:
    """A false start on the first group, then the whole number again."""
    digits = card_number(ctx.rng)
    first = digits[:4]
    wrong = first[:3] + str((int(first[3]) + ctx.rng.randint(1, 8)) % 10)
    said = wrong if ctx.written or ctx.numerals else say_number(ctx, wrong, [4], pairs=False)
    fix = ctx.pick([", sorry, ", " sorry ", " no wait ", "... sorry, ", " no sorry it's "])
    if ctx.style in ("asr_raw", "asr_digits"):
        fix = fix.replace(",", "").replace(".", "")
    return [(said, None), (fix, None), (r_card(ctx, digits), "CARD_NUMBER")]


def s_cvv(ctx: Ctx, length: int = 3) -> list[Piece]:
    value = _digits(ctx.rng, length)
    if ctx.written:
        return [(value, "CARD_CVV")]
    return [(say_number(ctx, value, [length]), "CARD_CVV")]


def s_cvv4(ctx: Ctx) -> list[Piece]:
    return s_cvv(ctx, 4)


def s_expiry(ctx: Ctx) -> list[Piece]:
    rng = ctx.rng
    m, y = rng.randint(1, 12), rng.randint(2025, 2031)
    yy = y % 100
    if ctx.written or ctx.numerals:
        options = [f"{m:02d}/{yy}"] * 4 + [f"{m:02d}/{y}", f"{m}/{yy}", f"{m:02d}-{yy}"]
        options += [f"{MON[m]} {y}", f"{MONTHS[m]} {y}"]
        if not ctx.written:
            options += [f"{m:02d}{yy}", f"{m:02d} {yy}", f"{MONTHS[m]} {yy}"]
        return [(ctx.case(rng.choice(options)), "CARD_EXPIRY")]
    mm = f"{zero_word(ctx)} {ONES[m]}" if m < 10 else two(m)
    month = ctx.case(MONTHS[m])
    options = [
        f"{mm} {two(yy)}",
        f"{two(m)} {two(yy)}",
        " ".join(say_singles(ctx, f"{m:02d}{yy}", doubles=False)),
        f"{month} {two(yy)}",
        f"{month} {year_words(y, rng, ctx.uk)}",
        f"{mm} slash {two(yy)}",
    ]
    pieces: list[Piece] = []
    if rng.random() < 0.15:
        pieces.append(("the end of ", None))
        options = options[3:5]
    return [*pieces, (rng.choice(options), "CARD_EXPIRY")]


def s_ssn(ctx: Ctx, *, dashed: bool = False) -> list[Piece]:
    value = ssn(ctx.rng)
    if ctx.written:
        a, g, s = value[:3], value[3:5], value[5:]
        options = [f"{a}-{g}-{s}"] * 6 + ([] if dashed else [f"{a} {g} {s}"] * 2 + [value] * 2)
        return [(ctx.rng.choice(options), "US_SSN")]
    return [(say_number(ctx, value, [3, 2, 4]), "US_SSN")]


def s_ssn_dashed(ctx: Ctx) -> list[Piece]:
    return s_ssn(ctx, dashed=True)


def s_nino(ctx: Ctx) -> list[Piece]:
    v = nino(ctx.rng)
    pre, d, suf = v[:2], v[2:8], v[8]
    pairs = f"{d[:2]} {d[2:4]} {d[4:]}"
    if ctx.written:
        options = [v, v, f"{pre} {pairs} {suf}", f"{pre} {pairs} {suf}", f"{pre} {d} {suf}"]
        options += [f"{pre}-{d[:2]}-{d[2:4]}-{d[4:]}-{suf}"] if ctx.holdout else []
        return [(ctx.case(ctx.pick(options)), "UK_NINO")]
    if ctx.numerals:
        options = [f"{pre} {d} {suf}", f"{pre} {pairs} {suf}", v, " ".join(v)]
        return [(ctx.case(ctx.pick(options)), "UK_NINO")]
    rng = ctx.rng
    if ctx.held(0.2):  # "a for alpha b for bravo": spelling aloud, holdout only
        head = " ".join(f"{c.lower()} for {NATO[c]}" for c in pre)
    else:
        head = say_letters(ctx, pre, nato=rng.random() < 0.08)
    middle = say_number(ctx, d, rng.choice([[2, 2, 2], [6], [3, 3]]))
    text = f"{head} {middle} {say_letters(ctx, suf)}"
    return [(text if ctx.style == "asr_punct" else text.lower(), "UK_NINO")]


def s_nhs(ctx: Ctx) -> list[Piece]:
    v = nhs_number(ctx.rng)
    if ctx.written:
        options = [f"{v[:3]} {v[3:6]} {v[6:]}"] * 5 + [v] * 3 + [f"{v[:3]}-{v[3:6]}-{v[6:]}"]
        return [(ctx.pick(options), "NHS_NUMBER")]
    return [(say_number(ctx, v, [3, 3, 4]), "NHS_NUMBER")]


def s_sort(ctx: Ctx) -> list[Piece]:
    v = sort_code(ctx.rng)
    a, b, c = v[:2], v[2:4], v[4:]
    if ctx.written:
        options = [f"{a}-{b}-{c}"] * 5 + [f"{a} {b} {c}"] * 2 + [v]
        options += [f"{a}.{b}.{c}", f"{a}/{b}/{c}"] if ctx.holdout else []
        return [(ctx.pick(options), "UK_SORT_CODE")]
    return [(say_number(ctx, v, [2, 2, 2]), "UK_SORT_CODE")]


def s_ukacc(ctx: Ctx) -> list[Piece]:
    v = str(ctx.rng.randint(0, 9)) + _digits(ctx.rng, 7)
    if ctx.written:
        return [(ctx.pick([v] * 5 + [f"{v[:4]} {v[4:]}"]), "BANK_ACCOUNT")]
    return [
        (say_number(ctx, v, ctx.rng.choice([[4, 4], [8], [3, 3, 2], [2, 2, 2, 2]])), "BANK_ACCOUNT")
    ]


def s_usacc(ctx: Ctx) -> list[Piece]:
    v = us_account(ctx.rng)
    if ctx.written:
        return [(v, "BANK_ACCOUNT")]
    return [(say_number(ctx, v, [3] * (len(v) // 3)), "BANK_ACCOUNT")]


def s_routing(ctx: Ctx) -> list[Piece]:
    v = routing_number(ctx.rng)
    if ctx.written:
        return [(v, None)]
    return [(say_number(ctx, v, [3, 3, 3]), None)]


def s_iban(ctx: Ctx) -> list[Piece]:
    v = iban(ctx.rng, ctx.uk)
    groups = [v[i : i + 4] for i in range(0, len(v), 4)]
    if ctx.written:
        text = ctx.pick([" ".join(groups)] * 7 + [v] * 3)
        return [(ctx.case(text), "IBAN")]
    if ctx.numerals:
        text = ctx.pick([" ".join(groups), f"{v[:2]} {v[2:4]} {' '.join(groups[1:])}", v])
        return [(ctx.case(text), "IBAN")]
    mode = "pairs" if ctx.held(0.3) or ctx.rng.random() < 0.1 else "singles"
    doubles = ctx.rng.random() < 0.3
    said = [say_alnum(ctx, g, mode=mode, doubles=doubles) for g in groups]
    text = (", " if ctx.style == "asr_punct" and ctx.rng.random() < 0.4 else " ").join(said)
    if spoken_value(text, letters=True) != v:
        said = [say_alnum(ctx, g, mode="singles", doubles=False) for g in groups]
        text = " ".join(said)
    return [(text if ctx.style == "asr_punct" else text.lower(), "IBAN")]


# Dates -------------------------------------------------------------------


def _written_date(ctx: Ctx, d: date) -> tuple[str, str]:
    day, m, y, yy = d.day, d.month, d.year, f"{d.year % 100:02d}"
    th, mon, month = ordinal_suffix(day), MON[m], MONTHS[m]
    if ctx.uk:
        options = [f"{day:02d}/{m:02d}/{y}"] * 4 + [
            f"{day}/{m}/{y}", f"{day:02d}/{m:02d}/{yy}", f"{day:02d}.{m:02d}.{y}",
            f"{day:02d}.{m:02d}.{yy}", f"{day:02d}-{m:02d}-{y}", f"{y}-{m:02d}-{day:02d}",
            f"{day} {month} {y}", f"{th} {month} {y}", f"{th} of {month} {y}",
            f"{day} {mon} {y}", f"{th} {month} '{yy}", f"{th} {month} {yy}",
            f"{month} {day}, {y}",
        ]  # fmt: skip
    else:
        options = [f"{m:02d}/{day:02d}/{y}"] * 4 + [
            f"{m}/{day}/{y}", f"{m:02d}/{day:02d}/{yy}", f"{m:02d}-{day:02d}-{y}",
            f"{month} {day}, {y}", f"{month} {th}, {y}", f"{mon} {day}, {y}",
            f"{y}-{m:02d}-{day:02d}", f"{m}/{day}/{yy}", f"{month} {day} {y}",
        ]  # fmt: skip
    if ctx.held(0.12):
        return "the ", f"{th} day of {month} {y}"
    return "", ctx.pick(options)


def _asr_numeral_date(ctx: Ctx, d: date) -> tuple[str, str]:
    day, m, y = d.day, d.month, d.year
    th, month = ordinal_suffix(day), MONTHS[m]
    if ctx.uk:
        options = [
            ("", f"{th} of {month} {y}"), ("", f"{day} {month} {y}"),
            ("the ", f"{th} of {month}, {y}"),
            ("", f"{day:02d}/{m:02d}/{y}"), ("", f"{day:02d} {m:02d} {y % 100:02d}"),
            ("", f"{th} {month}, {y}"),
        ]  # fmt: skip
    else:
        options = [
            ("", f"{month} {th}, {y}"),
            ("", f"{month} {day}, {y}"),
            ("", f"{m}/{day}/{y}"),
            ("", f"{m:02d} {day:02d} {y}"),
            ("", f"{m} {day} {y % 100:02d}"),
        ]
    return ctx.rng.choice(options)


def _spoken_date(ctx: Ctx, d: date) -> tuple[str, str]:
    rng = ctx.rng
    day, m, y = d.day, d.month, d.year
    year = year_words(y, rng, ctx.uk)
    yy = two(y % 100) if y % 100 >= 10 else f"{zero_word(ctx)} {ONES[y % 100]}"
    yr = rng.choice([year, year, yy])
    month, nth = MONTHS[m].lower(), ordinal(day)
    mm = f"{zero_word(ctx)} {ONES[m]}" if m < 10 else two(m)
    dd = f"{zero_word(ctx)} {ONES[day]}" if day < 10 else two(day)
    singles = " ".join(say_singles(ctx, f"{day:02d}{m:02d}", doubles=False))
    us_singles = " ".join(say_singles(ctx, f"{m:02d}{day:02d}", doubles=False))
    if ctx.uk:
        options = [
            ("the ", f"{nth} of {month} {yr}"), ("", f"{nth} of {month} {yr}"),
            ("", f"{nth} {month} {yr}"), ("", f"{month} the {nth} {yr}"),
            ("", f"{two(day)} {month} {yr}"), ("", f"{two(day)} {mm} {yy}"),
            ("", f"{dd} {mm if day % 10 == 0 else two(m)} {yr}"), ("", f"{singles} {yr}"),
            ("the ", f"{nth} of the {MONTH_ORD[m]} {yr}"),
            ("", " ".join(say_singles(ctx, f"{day:02d}{m:02d}{y % 100:02d}", doubles=False))),
        ]  # fmt: skip
    else:
        options = [
            ("", f"{month} {nth} {yr}"),
            ("", f"{month} {two(day)} {yr}"),
            ("", f"{two(m)} {two(day)} {yy}"),
            ("", f"{us_singles} {yr}"),
            ("", f"{mm} {dd} {year}"),
            ("the ", f"{nth} of {month} {yr}"),
            ("", " ".join(say_singles(ctx, f"{m:02d}{day:02d}{y}", doubles=False))),
        ]
    if ctx.held(0.12):
        return "the ", f"{nth} day of {month} {year}"
    return rng.choice(options)


def date_pieces(ctx: Ctx, d: date, entity: str | None) -> list[Piece]:
    if ctx.written:
        lead, body = _written_date(ctx, d)
    elif ctx.num == "words":
        lead, body = _spoken_date(ctx, d)
    else:
        lead, body = _asr_numeral_date(ctx, d)
    if ctx.lower:
        lead, body = lead.lower(), body.lower()
    return [(lead, None), (body, entity)] if lead else [(body, entity)]


def s_dob(ctx: Ctx) -> list[Piece]:
    return date_pieces(ctx, ctx.person.dob, "DATE_OF_BIRTH")


def s_bday(ctx: Ctx) -> list[Piece]:
    """A birthday without the year (still the person's date of birth)."""
    d = ctx.person.dob
    if ctx.written or ctx.numerals:
        text = ctx.pick(
            [f"{ordinal_suffix(d.day)} of {MONTHS[d.month]}", f"{d.day} {MONTHS[d.month]}"]
            if ctx.uk
            else [f"{MONTHS[d.month]} {ordinal_suffix(d.day)}", f"{MONTHS[d.month]} {d.day}"]
        )
    else:
        nth, month = ordinal(d.day), MONTHS[d.month]
        text = f"{nth} of {month}" if ctx.uk else f"{month} {nth}"
    return (
        [("the ", None), (ctx.case(text), "DATE_OF_BIRTH")]
        if ctx.uk
        else [(ctx.case(text), "DATE_OF_BIRTH")]
    )


# Phones --------------------------------------------------------------------

UK_GROUPS = {
    "mobile": ([5, 6], [5, 3, 3], [4, 3, 4]), "london": ([3, 4, 4],), "geo3": ([3, 4, 4],),
    "geo4": ([4, 3, 4],), "geo5": ([5, 6], [5, 3, 3]),
}  # fmt: skip
UK_INTL_GROUPS = {"mobile": [4, 6], "london": [2, 4, 4], "geo3": [2, 4, 4], "geo4": [3, 3, 4],
                  "geo5": [4, 6]}  # fmt: skip


def _uk_phone_text(ctx: Ctx) -> str:
    kind, nat = uk_phone(ctx.rng)
    groups = ctx.rng.choice(UK_GROUPS[kind])
    ig = UK_INTL_GROUPS[kind]
    parts, iparts = split_groups(nat, groups), split_groups(nat[1:], ig)
    if ctx.written:
        options = (
            [" ".join(parts)] * 5
            + [nat] * 2
            + [
                "+44 " + " ".join(iparts),
                "+44" + nat[1:],
                "0044 " + " ".join(iparts),
            ]
        )
        if kind != "mobile":
            options.append(f"({parts[0]}) " + " ".join(parts[1:]))
        if ctx.holdout:
            options += ["+44 (0)" + " ".join(split_groups(nat[1:], ig)), "-".join(parts)]
        return ctx.pick(options)
    if ctx.numerals:
        return ctx.pick([" ".join(parts)] * 3 + [nat, "+44 " + " ".join(iparts)])
    if ctx.rng.random() < 0.2:
        lead = ctx.pick(["plus four four", "double oh four four", "oh oh four four"])
        return f"{lead} {say_number(ctx, nat[1:], ig)}"
    return say_number(ctx, nat, groups)


def _us_phone_text(ctx: Ctx) -> str:
    d = us_phone(ctx.rng)
    a, e, n = d[:3], d[3:6], d[6:]
    if ctx.written:
        options = [f"({a}) {e}-{n}"] * 3 + [f"{a}-{e}-{n}"] * 3 + [
            f"{a}.{e}.{n}", d, f"+1 {a} {e} {n}", f"1-{a}-{e}-{n}", f"+1 ({a}) {e}-{n}",
            f"{a} {e} {n}",
        ]  # fmt: skip
        if ctx.holdout:
            options += [f"+1-{a}-{e}-{n}", f"{a}/{e}-{n}"]
        return ctx.pick(options)
    if ctx.numerals:
        options = [f"{a} {e} {n}", d, f"{a}-{e}-{n}"]
        options += [f"({a}) {e}-{n}"] * 2 if ctx.style == "asr_punct" else []
        return ctx.pick(options)
    if ctx.rng.random() < 0.12:
        return say_number(ctx, "1" + d, [1, 3, 3, 4])
    return say_number(ctx, d, [3, 3, 4])


def s_phone(ctx: Ctx) -> list[Piece]:
    text = _uk_phone_text(ctx) if ctx.uk else _us_phone_text(ctx)
    return [(text, "PHONE_NUMBER")]


# E-mail -----------------------------------------------------------------------


def _email_parts(ctx: Ctx) -> list[tuple[str, str]]:
    p, rng = ctx.person, ctx.rng
    first = re.sub("[^a-z]", "", p.first.lower()) or "sam"
    last = re.sub("[^a-z]", "", p.last.lower()) or "lee"
    num = ("n", str(rng.choice([p.dob.year % 100, p.dob.year, rng.randint(1, 99)])))
    users = [
        [("w", first), (".", "."), ("w", last)],
        [("w", first), (".", "."), ("w", last)],
        [("w", first), ("w", last)],
        [("w", first[0]), ("w", last)],
        [("w", first), ("_", "_"), ("w", last)],
        [("w", first), (".", "."), ("w", last), num],
        [("w", last), ("w", first[0])],
        [("w", first), num],
        [("w", first), ("-", "-"), ("w", last)],
        [("w", first[0]), (".", "."), ("w", last)],
        [("w", first), ("w", last), num],
    ]
    domain = rng.choice(UK_DOMAINS if ctx.uk else US_DOMAINS).split(".")
    dom: list[tuple[str, str]] = [("w", domain[0])]
    for part in domain[1:]:
        dom += [(".", "."), ("w", part)]
    return [*rng.choice(users), ("@", "@"), *dom]


def _say_email_number(ctx: Ctx, value: str) -> str:
    if ctx.num != "words":
        return value
    if len(value) == 2 and ctx.rng.random() < 0.6:
        return two(int(value))
    return " ".join(say_singles(ctx, value, doubles=False))


def _say_email_part(ctx: Ctx, kind: str, value: str) -> str:
    rng = ctx.rng
    if kind == "n":
        return _say_email_number(ctx, value)
    if kind == "w":
        if value in SPOKEN_DOMAIN:
            return rng.choice(SPOKEN_DOMAIN[value])
        if len(value) <= 5 and rng.random() < 0.06:
            return " ".join(value)
        return value
    if kind == ".":
        return "full stop" if ctx.uk and ctx.held(0.25) else "dot"
    return {"@": "at", "_": "underscore", "-": rng.choice(["dash", "hyphen"])}[kind]


def s_email(ctx: Ctx) -> list[Piece]:
    parts = _email_parts(ctx)
    plain = "".join(v for _, v in parts)
    if ctx.written:
        text = plain
        if ctx.held(0.15):
            text = ".".join(x.capitalize() for x in plain.split(".", 1))
        return [(text, "EMAIL_ADDRESS")]
    style = ctx.rng.random()
    if ctx.style == "asr_punct" and style < 0.4:
        return [(plain, "EMAIL_ADDRESS")]
    if ctx.style == "asr_punct" and style < 0.6:
        user, dom = plain.split("@")
        return [(f"{user} at {dom}", "EMAIL_ADDRESS")]
    if ctx.style == "asr_digits" and style < 0.3:
        return [(plain, "EMAIL_ADDRESS")]
    text = " ".join(_say_email_part(ctx, k, v) for k, v in parts)
    return [(text, "EMAIL_ADDRESS")]


# Postcodes, addresses, names ---------------------------------------------------------------


def _say_postcode(ctx: Ctx, outward: str, inward: str) -> str:
    out = []
    for m in re.finditer(r"[A-Z]+|\d+", outward + " " + inward):
        chunk = m.group()
        if chunk.isalpha():
            out.append(" ".join(chunk.lower()))
        elif len(chunk) == 2 and ctx.rng.random() < 0.5:
            out.append(two(int(chunk)))
        else:
            out.append(" ".join(digit_word(ctx, c) for c in chunk))
    return " ".join(out)


def s_postcode(ctx: Ctx) -> list[Piece]:
    outward, inward = uk_postcode(ctx.rng)
    full = f"{outward} {inward}"
    if ctx.written:
        options = (
            [full] * 8
            + [outward + inward]
            + ([(outward + inward).lower()] * 2 if ctx.holdout else [])
        )
        return [(ctx.case(ctx.pick(options)), "POSTCODE")]
    if ctx.numerals:
        spaced = " ".join(outward) + " " + " ".join(inward)
        return [(ctx.case(ctx.pick([full, full, spaced])), "POSTCODE")]
    return [(_say_postcode(ctx, outward, inward), "POSTCODE")]


def s_zip(ctx: Ctx) -> list[Piece]:
    z = f"{ctx.rng.randint(1001, 99950):05d}"
    if ctx.written:
        return [(ctx.pick([z] * 4 + [f"{z}-{_digits(ctx.rng, 4)}"]), "POSTCODE")]
    return [(say_number(ctx, z, [5]), "POSTCODE")]


def _house_number(ctx: Ctx, n: int) -> str:
    """House numbers the way people say them: "forty two", "twelve thirty four", "five oh nine"."""
    if ctx.written or ctx.numerals:
        return str(n)
    head, rest = divmod(n, 100)
    if n >= 100 and ctx.rng.random() < 0.3:
        return " ".join(digit_word(ctx, c) for c in str(n))
    if n >= 100 and (n >= 1000 or not ctx.uk):
        if rest == 0:
            return f"{two(head)} hundred"
        return f"{two(head)} {two(rest) if rest >= 10 else 'oh ' + ONES[rest]}"
    return cardinal(n, ctx.uk)


def s_street(ctx: Ctx) -> list[Piece]:
    rng = ctx.rng
    if ctx.uk:
        name = rng.choice(UK_STREETS)
        if rng.random() < 0.5:
            name = f"{ctx.fake.last_name()} {rng.choice(UK_SUFFIXES)}"
        n = rng.choice([rng.randint(1, 60), rng.randint(1, 200)])
    else:
        name = rng.choice(US_STREETS)
        if rng.random() < 0.5:
            name = f"{ctx.fake.last_name()} {rng.choice(US_SUFFIXES)}"
        n = rng.choice([rng.randint(1, 99), rng.randint(100, 9999), rng.randint(100, 9999)])
    num = _house_number(ctx, n)
    if ctx.uk and rng.random() < 0.08:
        num += ctx.case(rng.choice(["a", "b"])) if ctx.written or ctx.numerals else " b"
    text = f"{num} {name}"
    flat = rng.random() < 0.15
    if flat and ctx.uk:
        f = rng.randint(1, 24)
        text = (
            f"Flat {_house_number(ctx, f)}, {text}"
            if ctx.written
            else (f"flat {_house_number(ctx, f)} {text}")
        )
    elif flat:
        apt = f"{rng.randint(1, 30)}{rng.choice(['', '', 'B', 'C'])}"
        text = (
            f"{text}, Apt {apt}"
            if ctx.written
            else f"{text} apartment {_house_number(ctx, int(apt.rstrip('BC')))}"
        )
    if ctx.style == "asr_raw":
        text = text.replace(",", "")
    return [(ctx.case(text), "STREET_ADDRESS")]


def s_town(ctx: Ctx) -> list[Piece]:
    if ctx.uk:
        return [(ctx.case(ctx.pick(UK_TOWNS)), None)]
    town, state = ctx.rng.choice(US_TOWNS)
    return [
        (ctx.case(f"{town}, {state}" if ctx.written or ctx.style == "asr_punct" else town), None)
    ]


def _name(ctx: Ctx, s: str) -> str:
    return s.lower() if ctx.lower else s


def _title(ctx: Ctx) -> str:
    t = ctx.person.title
    if ctx.style == "asr_raw":
        return ctx.pick({"Mr": ["mr", "mister"], "Dr": ["doctor", "dr"]}.get(t, [t.lower()]))
    if not ctx.uk and ctx.rng.random() < 0.7 and t != "Miss":
        t += "."
    return ctx.case(t)


def s_name(ctx: Ctx) -> list[Piece]:
    return [(_name(ctx, f"{ctx.person.first} {ctx.person.last}"), "PERSON")]


def s_first(ctx: Ctx) -> list[Piece]:
    return [(_name(ctx, ctx.person.first), "PERSON")]


def s_surname(ctx: Ctx) -> list[Piece]:
    return [(_name(ctx, ctx.person.last), "PERSON")]


def s_title_surname(ctx: Ctx) -> list[Piece]:
    return [(_title(ctx) + " ", None), (_name(ctx, ctx.person.last), "PERSON")]


def s_title_name(ctx: Ctx) -> list[Piece]:
    return [(_title(ctx) + " ", None), *s_name(ctx)]


def s_kin(ctx: Ctx) -> list[Piece]:
    """Who the named person is to the caller, matching the person's title."""
    return [(ctx.pick(["mother", "wife"] if ctx.person.female else ["father", "husband"]), None)]


def s_spelled_surname(ctx: Ctx) -> list[Piece]:
    """ "Jones, J-O-N-E-S": the name and its spelling are both the person's name."""
    last = re.sub("[^A-Za-z]", "", ctx.person.last)
    if ctx.written:
        spelled = "-".join(last.upper())
        return [(last, "PERSON"), (", ", None), (spelled, "PERSON")]
    spelled = " ".join(last.lower()) if ctx.style != "asr_punct" else "-".join(last.upper())
    sep = ", " if ctx.style == "asr_punct" else " "
    return [(_name(ctx, last), "PERSON"), (sep, None), (spelled, "PERSON")]


# ---------------------------------------------------------------------------
# Numbers that are not PII
# ---------------------------------------------------------------------------


def _money_words(ctx: Ctx, major: int, minor: int) -> str:
    unit, sub = ("pounds", "pence") if ctx.uk else ("dollars", "cents")
    options = [f"{cardinal(major, ctx.uk)} {unit}" + (f" {cardinal(minor)}" if minor else "")]
    if minor:
        options.append(f"{cardinal(major, ctx.uk)} {unit} and {cardinal(minor)} {sub}")
        if major < 100:
            options.append(f"{two(major)} {two(minor)}")
    else:
        options.append(f"{cardinal(major, ctx.uk)} {'quid' if ctx.uk else 'bucks'}")
    return ctx.pick(options)


def s_price(ctx: Ctx) -> list[Piece]:
    rng = ctx.rng
    major = rng.choice([rng.randint(1, 99), rng.randint(100, 999), rng.randint(1000, 4999)])
    minor = rng.choice([0, 0, 99, 50, 95, 49, rng.randint(1, 99)])
    cur = "£" if ctx.uk else "$"
    if ctx.written or ctx.numerals:
        text = f"{cur}{major:,}" + (f".{minor:02d}" if minor else "")
        if not ctx.written and rng.random() < 0.3:
            text = f"{major}.{minor:02d}"
        return [(text, None)]
    return [(_money_words(ctx, major, minor), None)]


def _count(ctx: Ctx, n: int) -> str:
    return str(n) if ctx.written or ctx.numerals else cardinal(n, ctx.uk)


def s_qty(ctx: Ctx) -> list[Piece]:
    rng = ctx.rng
    n = rng.choice([rng.randint(2, 12), rng.randint(2, 60), rng.randint(100, 900)])
    what = rng.choice(["boxes", "items", "parcels", "tins", "bottles", "packs", "bags", "units"])
    if rng.random() < 0.25:
        what = rng.choice(["grams", "litres" if ctx.uk else "gallons", "sheets", "tablets"])
    return [(f"{_count(ctx, n)} {what}", None)]


def s_small(ctx: Ctx) -> list[Piece]:
    return [(_count(ctx, ctx.rng.randint(2, 9)), None)]


def s_time(ctx: Ctx) -> list[Piece]:
    rng = ctx.rng
    h, m = rng.randint(7, 20), rng.choice([0, 0, 15, 30, 30, 45, 10, 20, 40, 5])
    h12 = h - 12 if h > 12 else h
    ampm = "pm" if h >= 12 else "am"
    if ctx.written or ctx.numerals:
        options = [f"{h:02d}:{m:02d}", f"{h12}:{m:02d}{ampm}", f"{h12}.{m:02d}{ampm}"]
        options += [f"{h12}{ampm}", f"{h12} {ampm}"] if m == 0 else [f"{h12}:{m:02d}"]
        if not ctx.written:
            options.append(f"{h12}:{m:02d} {ampm[0]}.m.")
        return [(ctx.pick(options), None)]
    nxt = h12 % 12 + 1
    options = {
        0: [f"{ONES[h12]} o'clock", f"{ONES[h12]} {ampm}", f"{ONES[h12]}"],
        15: [f"quarter past {ONES[h12]}", f"{ONES[h12]} fifteen"],
        30: [f"half past {ONES[h12]}", f"{ONES[h12]} thirty", f"half {ONES[h12]}"],
        45: [f"quarter to {ONES[nxt]}", f"{ONES[h12]} forty five"],
    }.get(m, [f"{two(m)} past {ONES[h12]}", f"{ONES[h12]} {two(m)}"])
    if m in (10, 20, 40):
        options = [f"{ONES[h12]} {two(m)}"]
    elif m < 10:
        options = [f"{two(m)} past {ONES[h12]}", f"{ONES[h12]} oh {ONES[m]}"]
    return [(ctx.pick(options), None)]


def s_date(ctx: Ctx) -> list[Piece]:
    """A date that is not a birth date: appointments, deliveries, policy dates."""
    d = date(2023, 1, 1) + timedelta(days=ctx.rng.randint(0, 5 * 365))
    return [(t, None) for t, _ in date_pieces(ctx, d, None)]


def s_dayref(ctx: Ctx, when: str = "next") -> list[Piece]:
    rng = ctx.rng
    day = rng.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"])
    n = rng.randint(1, 28)
    nth = ordinal_suffix(n) if ctx.written or ctx.numerals else ordinal(n)
    return [(ctx.case(rng.choice([f"{day} the {nth}", f"{when} {day}", f"on {day}"])), None)]


def s_pastday(ctx: Ctx) -> list[Piece]:
    return s_dayref(ctx, "last")


def s_year(ctx: Ctx) -> list[Piece]:
    y = ctx.rng.randint(1995, 2024)
    if ctx.written or ctx.numerals:
        return [(str(y), None)]
    return [(year_words(y, ctx.rng, ctx.uk), None)]


def _ref_number(ctx: Ctx, n: int) -> str:
    v = innocent_number(ctx.rng, n)
    if ctx.written:
        options = [v] * 6 + (["#" + v] if n < 12 else [" ".join(split_groups(v, [4] * 5))] * 3)
        return ctx.pick(options)
    if ctx.numerals:
        return ctx.pick([v, " ".join(split_groups(v, [4] * 5)), " ".join(split_groups(v, [3] * 6))])
    return say_number(ctx, v, ctx.rng.choice([[3] * 6, [4] * 5, [2] * 8]))


def s_order(ctx: Ctx) -> list[Piece]:
    n = ctx.rng.choice([6, 7, 8, 8, 9, 10, 10, 11, 12, 12, 13, 14, 15, 16, 16, 16])
    return [(_ref_number(ctx, n), None)]


def s_short_order(ctx: Ctx) -> list[Piece]:
    return [(_ref_number(ctx, ctx.rng.choice([6, 7])), None)]


def s_long_order(ctx: Ctx) -> list[Piece]:
    """A 12-16 digit number that fails Luhn: looks like a card number, is not one."""
    return [(_ref_number(ctx, ctx.rng.choice([12, 13, 14, 15, 16, 16, 16])), None)]


def s_ten_digit(ctx: Ctx) -> list[Piece]:
    """A 10-digit reference that fails NHS mod 11 and is no US phone number."""
    return [(_ref_number(ctx, 10), None)]


def s_eight_digit(ctx: Ctx) -> list[Piece]:
    return [(_ref_number(ctx, 8), None)]


def s_alnum_ref(ctx: Ctx) -> list[Piece]:
    rng = ctx.rng
    d = _digits
    ref = rng.choice(
        [
            f"ORD-{innocent_number(rng, 8)}",
            f"INV-{rng.randint(2019, 2025)}-{d(rng, 5)}",
            f"CLM{innocent_number(rng, 6)}",
            f"{rng.choice(['XKD', 'QPR', 'HTW', 'MZL'])}{d(rng, 4)}",
            f"PN{innocent_number(rng, 7)}",
            f"TKT-{d(rng, 6)}",
            (
                f"{rng.randint(1, 9)}{rng.choice('HKQRT')}{rng.randint(1, 9)}"
                f"{rng.choice('XWZ')}{d(rng, 3)}"
            ),
        ]
    )
    if ctx.written or ctx.numerals:
        return [(ctx.case(ref), None)]
    words = []
    for m in re.finditer(r"[A-Z]+|\d+", ref):
        chunk = m.group()
        words.append(
            " ".join(chunk.lower()) if chunk.isalpha() else say_number(ctx, chunk, [3] * 4)
        )
    return [(" ".join(words), None)]


def s_flight(ctx: Ctx) -> list[Piece]:
    rng = ctx.rng
    code = rng.choice(["BA", "EZY", "U2", "FR", "VS", "AA", "UA", "DL", "LH", "EI"])
    num = str(rng.randint(1, 9999))
    if ctx.written or ctx.numerals:
        return [(ctx.case(rng.choice([f"{code}{num}", f"{code} {num}"])), None)]
    said = " ".join(c.lower() if c.isalpha() else ONES[int(c)] for c in code)
    return [(f"{said} {say_number(ctx, num, [len(num)])}", None)]


def s_room(ctx: Ctx) -> list[Piece]:
    n = ctx.rng.randint(100, 999)
    if ctx.written or ctx.numerals:
        return [(str(n), None)]
    return [(ctx.pick([f"{ONES[n // 100]} {two(n % 100)}", cardinal(n, ctx.uk)]), None)]


def s_pct(ctx: Ctx) -> list[Piece]:
    rng = ctx.rng
    whole, frac = rng.randint(0, 29), rng.choice([0, 5, 9, 4, 1])
    if ctx.written or ctx.numerals:
        return [(f"{whole}.{frac}%" if frac else f"{whole}%", None)]
    return [(f"{two(whole)} point {ONES[frac]} percent" if frac else f"{two(whole)} percent", None)]


def s_height(ctx: Ctx) -> list[Piece]:
    rng = ctx.rng
    ft, inch, cm = rng.randint(4, 6), rng.randint(0, 11), rng.randint(150, 199)
    if ctx.written or ctx.numerals:
        return [(ctx.pick([f"{ft}ft {inch}in", f"{ft}'{inch}", f"{cm}cm", f"{cm} cm"]), None)]
    options = [
        f"{ONES[ft]} foot {two(inch)}",
        f"{ONES[ft]} {two(inch)}",
        f"{cardinal(cm)} centimetres",
    ]
    return [(ctx.pick(options), None)]


def s_weight(ctx: Ctx) -> list[Piece]:
    rng = ctx.rng
    kg, st = rng.randint(2, 120), rng.randint(8, 20)
    if ctx.written or ctx.numerals:
        return [(ctx.pick([f"{kg}kg", f"{kg} kilos", f"{st} stone", f"{kg} lbs"]), None)]
    return [
        (ctx.pick([f"{cardinal(kg)} kilos", f"{two(st)} stone", f"{cardinal(kg)} pounds"]), None)
    ]


def s_dist(ctx: Ctx) -> list[Piece]:
    rng = ctx.rng
    whole, frac = rng.randint(1, 40), rng.randint(1, 9)
    if ctx.written or ctx.numerals:
        return [(ctx.pick([f"{whole}.{frac} miles", f"{whole} miles", f"{whole}km"]), None)]
    return [(ctx.pick([f"{two(whole)} point {ONES[frac]} miles", f"{two(whole)} miles"]), None)]


def s_version(ctx: Ctx) -> list[Piece]:
    rng = ctx.rng
    a, b, c = rng.randint(1, 18), rng.randint(0, 12), rng.randint(0, 9)
    if ctx.written or ctx.numerals:
        return [(rng.choice([f"{a}.{b}.{c}", f"{a}.{b}"]), None)]
    return [(f"{two(a)} point {two(b)}", None)]


def s_ip(ctx: Ctx) -> list[Piece]:
    rng = ctx.rng
    ip = rng.choice(
        [
            f"192.168.{rng.randint(0, 2)}.{rng.randint(1, 254)}",
            f"10.0.{rng.randint(0, 9)}.{rng.randint(1, 254)}",
        ]
    )
    if ctx.written or ctx.numerals:
        return [(ip, None)]
    return [
        (" dot ".join(" ".join(digit_word(ctx, c) for c in part) for part in ip.split(".")), None)
    ]


def s_duration(ctx: Ctx) -> list[Piece]:
    n = ctx.rng.choice([5, 10, 15, 20, 25, 30, 40, 45, 50])
    unit = ctx.pick(["minutes", "minutes", "mins"]) if ctx.written else "minutes"
    return [(f"{_count(ctx, n)} {unit}", None)]


def s_age(ctx: Ctx) -> list[Piece]:
    return [(_count(ctx, 2025 - ctx.person.dob.year), None)]


def s_meter(ctx: Ctx) -> list[Piece]:
    v = f"{ctx.rng.randint(0, 99999):05d}"
    if ctx.written or ctx.numerals:
        return [(v, None)]
    return [(say_number(ctx, v, [5], pairs=False), None)]


def s_mileage(ctx: Ctx) -> list[Piece]:
    n = ctx.rng.randint(5, 140) * 1000
    if ctx.written or ctx.numerals:
        return [(f"{n:,}", None)]
    return [(cardinal(n, ctx.uk), None)]


def s_ext(ctx: Ctx) -> list[Piece]:
    v = str(ctx.rng.randint(200, 4999))
    if ctx.written or ctx.numerals:
        return [(v, None)]
    return [(say_number(ctx, v, [len(v)], pairs=False), None)]


def s_ndigits(ctx: Ctx) -> list[Piece]:
    n = ctx.rng.choice([16, 8, 10, 6, 9, 11, 3, 4])
    if ctx.written and ctx.rng.random() < 0.5:
        return [(str(n), None)]
    return [(ONES[n], None)]


def s_emergency(ctx: Ctx) -> list[Piece]:
    options = ["999", "111", "101"] if ctx.uk else ["911", "311", "411"]
    v = ctx.pick(options)
    if ctx.written or ctx.numerals:
        return [(v, None)]
    return [(" ".join(ONES[int(c)] for c in v), None)]


def s_postcode_any(ctx: Ctx) -> list[Piece]:
    """A UK postcode, or a US ZIP code (always in an address or "zip" context)."""
    return s_postcode(ctx) if ctx.uk else s_zip(ctx)


SLOTS: dict[str, Callable[[Ctx], list[Piece]]] = {
    # PII
    "CARD": s_card, "CARDFIX": s_card_fix, "CVV": s_cvv, "CVV4": s_cvv4, "EXP": s_expiry,
    "SSN": s_ssn, "SSND": s_ssn_dashed, "NINO": s_nino, "NHS": s_nhs, "SORT": s_sort,
    "UKACC": s_ukacc, "USACC": s_usacc, "IBAN": s_iban, "DOB": s_dob, "BDAY": s_bday,
    "PHONE": s_phone, "EMAIL": s_email, "POSTCODE": s_postcode_any, "STREET": s_street,
    "NAME": s_name, "FIRST": s_first, "SURNAME": s_surname, "TITLE_SURNAME": s_title_surname,
    "TITLE_NAME": s_title_name, "SPELLED": s_spelled_surname,
    # not PII
    "ROUTING": s_routing, "TOWN": s_town, "PRICE": s_price, "QTY": s_qty, "SMALL": s_small,
    "TIME": s_time, "DATE": s_date, "DAYREF": s_dayref, "PASTDAY": s_pastday, "KIN": s_kin,
    "SHORT_ORDER": s_short_order, "YEAR": s_year, "ORDER": s_order,
    "LONG_ORDER": s_long_order, "TEN": s_ten_digit, "EIGHT": s_eight_digit, "ALNUM": s_alnum_ref,
    "FLIGHT": s_flight, "ROOM": s_room, "PCT": s_pct, "HEIGHT": s_height, "WEIGHT": s_weight,
    "DIST": s_dist, "VERSION": s_version, "IP": s_ip, "DURATION": s_duration, "AGE": s_age,
    "METER": s_meter, "MILEAGE": s_mileage, "EXT": s_ext, "NDIGITS": s_ndigits,
    "EMERGENCY": s_emergency,
}  # fmt: skip

# ---------------------------------------------------------------------------
# Phrasings. Flags before "|": W = written only, S = spoken only, GB/US = locale only.
# ---------------------------------------------------------------------------

CARD = (
    "My card number is {CARD}.", "The card number is {CARD}.",
    "The long number on the front of the card is {CARD}.",
    "It's a debit card, the number is {CARD}.", "W|Card number: {CARD}", "W|Card Number: {CARD}",
    "Right, card number, {CARD}.", "S|yeah the long number across the front is {CARD}",
    "I'd like to pay by card. The number is {CARD}.",
    "Can you update the card on file to {CARD}?",
    "Please take the payment from my credit card, {CARD}.",
    "S|okay so the card number it's {CARD}", "S|have you got a pen the card number is {CARD}",
    "My new card's {CARD}, the old one was cancelled.", "W|Card no: {CARD}",
    "W|Please charge card {CARD} for the renewal.", "The digits on the front are {CARD}.",
    "Can I read you my card number? {CARD}.", "The card I want to use is {CARD}.",
    "S|card number {CARD}", "My husband's card, the number is {CARD}.",
    "The credit card number is {CARD}", "S|the number on my debit card is {CARD}",
)  # fmt: skip
CARD_HELD = (
    "The number embossed on the card is {CARD}.", "W|CC#: {CARD}",
    "S|so on the front of the card it says {CARD}", "Payment card {CARD}, please.",
    "S|right the number on the card is {CARD}", "W|Use my other card instead: {CARD}",
)  # fmt: skip
CARD_NOCTX = (
    "W|{CARD}", "Okay, ready? {CARD}.", "S|yeah it's {CARD}", "Here you go: {CARD}",
    "W|pls use {CARD}", "S|right {CARD}", "Got it here, {CARD}.",
    "W|{CARD} - let me know if it doesn't go through",
)  # fmt: skip
CARD_NOCTX_HELD = ("W|Number is {CARD}", "S|okay here goes {CARD}")
CARD_FIX = (
    "S|my card number is {CARDFIX}", "S|the long number is {CARDFIX}",
    "The card number is {CARDFIX}.", "S|yeah it's {CARDFIX}",
)  # fmt: skip
CARD_MULTI = (
    "W|Card: {CARD}\nExpiry: {EXP}\nCVV: {CVV}",
    "My card number is {CARD}, it expires {EXP} and the security code is {CVV}.",
    "S|card number {CARD} expiry date {EXP} and the three digits on the back are {CVV}",
    "The long number is {CARD}, expiry {EXP}.", "W|{CARD} exp {EXP} cvv {CVV}",
    "S|it's {CARD} and it expires {EXP}",
    "Number's {CARD}, valid until {EXP}, and on the back it's {CVV}.",
)  # fmt: skip
CARD_MULTI_HELD = (
    "W|card {CARD} / {EXP} / {CVV}",
    "S|so that's {CARD} expiring {EXP} security number {CVV}",
)  # fmt: skip
CVV = (
    "The security code on the back is {CVV}.", "The three digits on the back are {CVV}.",
    "W|CVV: {CVV}", "W|CVC {CVV}", "Security code {CVV}.",
    "S|and the last three digits on the back {CVV}", "The three digit security number is {CVV}.",
    "S|the c v v is {CVV}", "The CVV number is {CVV}",
    "It's an Amex, so the four digit code on the front is {CVV4}.",
    "S|the code on the signature strip is {CVV}",
)  # fmt: skip
CVV_HELD = (
    "W|Sec code {CVV}", "S|on the back it's {CVV}", "The little number by the signature is {CVV}.",
)  # fmt: skip
EXPIRY = (
    "It expires {EXP}.", "The expiry date is {EXP}.", "W|Expiry: {EXP}", "W|Exp {EXP}",
    "Valid until {EXP}.", "S|expiry {EXP}", "The end date on the card is {EXP}.",
    "S|expiry date's {EXP}", "The card's good until {EXP}.", "S|it expires on {EXP}",
)  # fmt: skip
EXPIRY_HELD = ("W|Good thru {EXP}", "S|the date on the front is {EXP}", "W|Valid to: {EXP}")
SSN = (
    "My social security number is {SSN}.", "My social is {SSN}.", "W|SSN: {SSN}",
    "W|Social Security Number: {SSN}",
    "S|social security number {SSN}", "You need my social? It's {SSN}.",
    "S|yeah the social is {SSN}", "For verification, my SSN is {SSN}.",
    "My husband's social security number is {SSN}.", "S|my social security is {SSN}",
    "W|SSN {SSN}", "The social on the account is {SSN}.", "S|okay my social {SSN}",
    "W|Social Security No. {SSN}", "S|it's {SSN} that's my social",
)  # fmt: skip
SSN_HELD = (
    "S|my soc sec number is {SSN}", "W|SS#: {SSN}",
    "S|the number on my social security card is {SSN}", "Tax ID is my social, {SSN}.",
)  # fmt: skip
SSN_NOCTX = (
    "W|{SSND}", "W|It's {SSND}.", "W|Here you go: {SSND}", "W|{SSND} is the one on file",
    "W|ok {SSND}",
)  # fmt: skip
SSN_NOCTX_HELD = ("W|Number: {SSND}",)
NINO_T = (
    "My national insurance number is {NINO}.", "W|NI number: {NINO}",
    "W|National Insurance Number: {NINO}",
    "S|national insurance {NINO}", "It's {NINO}, my national insurance number.",
    "S|my n i number is {NINO}", "My NI number's {NINO}.", "W|National Insurance No. {NINO}",
    "S|national insurance number is {NINO}",
    "I've got my national insurance number here, it's {NINO}.", "W|NINO: {NINO}",
    "S|right my national insurance number {NINO}", "Her national insurance number is {NINO}.",
)  # fmt: skip
NINO_HELD = (
    "S|ni number {NINO}", "The number on my national insurance letter is {NINO}.",
    "W|Nat Ins: {NINO}", "S|my n.i. is {NINO}",
)  # fmt: skip
NINO_NOCTX = ("W|{NINO}", "It's {NINO}.", "S|yeah it's {NINO}", "W|ok {NINO}", "Here: {NINO}")
NINO_NOCTX_HELD = ("S|okay that's {NINO}",)
NHS_T = (
    "My NHS number is {NHS}.", "W|NHS number: {NHS}", "W|NHS No {NHS}",
    "W|NHS Number: {NHS}",
    "S|the patient's nhs number is {NHS}", "His NHS number is {NHS}.",
    "It's {NHS}, that's my NHS number.", "S|i've got my nhs number here it's {NHS}",
    "The NHS number on the letter is {NHS}.", "S|nhs number {NHS}", "W|Patient NHS no. {NHS}",
    "My son's NHS number is {NHS}.", "Can I give you my NHS number? It's {NHS}.",
)  # fmt: skip
NHS_HELD = (
    "S|my n h s number is {NHS}", "W|NHS#: {NHS}", "The number on my NHS app is {NHS}.",
    "S|it's on the letter from the hospital {NHS}",
)  # fmt: skip
NHS_NOCTX = ("W|{NHS}", "It's {NHS}.", "S|yeah it's {NHS}", "Here you go: {NHS}", "S|okay {NHS}")
NHS_NOCTX_HELD = ("W|number is {NHS}",)
SORT = (
    "The sort code is {SORT}.", "W|Sort code: {SORT}", "S|sort code {SORT}",
    "W|Sort Code: {SORT}",
    "S|sort code's {SORT}", "My bank's sort code is {SORT}.", "It's sort code {SORT}.",
    "S|the sort code for my bank is {SORT}", "Sort code, {SORT}.",
)  # fmt: skip
SORT_HELD = ("W|S/C {SORT}", "S|the sort is {SORT}", "Branch sort code {SORT}.")
SORT_ACC = (
    "Sort code {SORT}, account number {UKACC}.", "S|sort code {SORT} account number {UKACC}",
    "W|Sort code: {SORT}\nAccount number: {UKACC}",
    "The sort code is {SORT} and the account number is {UKACC}.",
    "Please pay it into sort code {SORT}, account {UKACC}.",
    "S|the sort code is {SORT} and then the account number {UKACC}",
)  # fmt: skip
SORT_ACC_HELD = ("W|Bank details: {SORT} {UKACC}", "S|so that's sort code {SORT} account {UKACC}")
UKACC = (
    "My account number is {UKACC}.", "W|Account number: {UKACC}", "W|Acc no: {UKACC}",
    "W|Account Number: {UKACC}",
    "S|the account number's {UKACC}", "S|account number {UKACC}", "It's account {UKACC}.",
    "The eight digit account number is {UKACC}.", "My current account number is {UKACC}.",
)  # fmt: skip
UKACC_HELD = (
    "S|and then the account is {UKACC}",
    "W|A/C {UKACC}",
    "Savings account number {UKACC}.",
)
USACC = (
    "Routing number {ROUTING}, account number {USACC}.",
    "My checking account number is {USACC}.",
    "The routing is {ROUTING} and the account is {USACC}.", "W|Account #: {USACC}",
    "S|account number {USACC} routing {ROUTING}", "W|Routing: {ROUTING}\nAccount: {USACC}",
    "S|the routing number is {ROUTING} and my account number is {USACC}",
    "My account number is {USACC}.", "Direct deposit to account {USACC}, routing {ROUTING}.",
)  # fmt: skip
USACC_HELD = (
    "S|my savings account is {USACC}", "W|ABA {ROUTING} / Acct {USACC}",
    "The account you want is {USACC}.",
)  # fmt: skip
IBAN_T = (
    "My IBAN is {IBAN}.", "W|IBAN: {IBAN}", "W|IBAN Number: {IBAN}", "S|the iban is {IBAN}",
    "Please send it to IBAN {IBAN}.", "The international bank account number is {IBAN}.",
    "S|it's an iban {IBAN}", "My account abroad has the IBAN {IBAN}.", "S|iban {IBAN}",
    "The IBAN for the transfer is {IBAN}.", "Can you refund it to {IBAN}? That's my IBAN.",
)  # fmt: skip
IBAN_HELD = (
    "W|Bank details - {IBAN}", "S|eye ban {IBAN}",
    "Pay it into {IBAN}, that's my euro account.",
)  # fmt: skip
IBAN_NOCTX = (
    "W|{IBAN}",
    "Send it to {IBAN} please.",
    "S|it's {IBAN}",
    "W|{IBAN} thanks",
    "Here: {IBAN}.",
)
IBAN_NOCTX_HELD = ("W|use {IBAN}",)
DOB = (
    "My date of birth is {DOB}.", "W|Date of birth: {DOB}",
    "W|Date Of Birth: {DOB}", "W|DOB: {DOB}", "W|D.O.B. {DOB}",
    "I was born on {DOB}.", "S|born {DOB}", "S|yeah date of birth {DOB}",
    "Her date of birth is {DOB}.", "It's {DOB}, my date of birth.",
    "Can you confirm your date of birth? Yes, it's {DOB}.", "I'm {AGE}, born {DOB}.",
    "My son was born on {DOB}.", "Date of birth's {DOB}.", "W|born {DOB}",
    "S|my date of birth is {DOB}", "The patient's date of birth is {DOB}.",
    "My birthday is {DOB}.", "S|birthday's {BDAY}", "My birthday's {BDAY}, if that helps.",
    "S|it's {DOB} my date of birth", "My mum was born on {DOB}.",
)  # fmt: skip
DOB_HELD = (
    "W|Birthdate: {DOB}", "S|d o b {DOB}", "The patient was born {DOB}.", "S|dob is {DOB}",
    "W|DoB - {DOB}", "S|i was born {DOB}",
)  # fmt: skip
PHONE = (
    "You can reach me on {PHONE}.", "My mobile is {PHONE}.", "Call me back on {PHONE}.",
    "My number is {PHONE}.", "The best number to get me on is {PHONE}.", "W|Tel: {PHONE}",
    "W|Mob: {PHONE}", "S|my phone number's {PHONE}", "Text me on {PHONE}.",
    "S|you can get me on {PHONE}", "My landline is {PHONE}.", "My daytime number is {PHONE}.",
    "W|Phone: {PHONE}", "W|Phone Number: {PHONE}", "S|the number to call is {PHONE}",
    "US|You can call me at {PHONE}.",
    "US|My cell is {PHONE}.", "US|My phone number is {PHONE}.", "US|S|call me back at {PHONE}",
    "US|W|Cell: {PHONE}",
)  # fmt: skip
PHONE_HELD = (
    "S|ring me on {PHONE}", "W|Contact: {PHONE}", "S|the house phone is {PHONE}",
    "Get me on {PHONE} after six.", "US|Hit me up at {PHONE}.",
)  # fmt: skip
PHONE_NOCTX = (
    "W|{PHONE}", "It's {PHONE}.", "S|yeah {PHONE}", "W|{PHONE} any time after 5",
    "Okay, {PHONE}.",
)  # fmt: skip
PHONE_NOCTX_HELD = ("S|right so {PHONE}",)
EMAIL = (
    "My email is {EMAIL}.", "My email address is {EMAIL}.", "W|Email: {EMAIL}",
    "W|Email Address: {EMAIL}",
    "Send it to {EMAIL}.", "S|it's {EMAIL}", "You can email me at {EMAIL}.",
    "The email on the account is {EMAIL}.", "W|{EMAIL}", "S|email address {EMAIL}",
    "Can you send the confirmation to {EMAIL}?", "I've changed my email to {EMAIL}.",
)  # fmt: skip
EMAIL_HELD = (
    "S|drop me an email {EMAIL}", "W|E: {EMAIL}", "S|my e mail is {EMAIL}",
    "Reply to {EMAIL} please.",
)  # fmt: skip
POSTCODE = (
    "GB|My postcode is {POSTCODE}.", "GB|W|Postcode: {POSTCODE}", "GB|S|postcode {POSTCODE}",
    "GB|The post code's {POSTCODE}.", "GB|S|it's {POSTCODE} the postcode",
    "GB|S|postcode is {POSTCODE}", "GB|Postcode {POSTCODE}, if that helps.",
    "GB|What's the postcode? It's {POSTCODE}.", "GB|We're in {TOWN}, postcode {POSTCODE}.",
    "US|My zip code is {POSTCODE}.", "US|W|Zip: {POSTCODE}", "US|S|zip is {POSTCODE}",
    "US|The zip's {POSTCODE}.", "US|S|zip code {POSTCODE}", "US|I'm in {TOWN} {POSTCODE}.",
)  # fmt: skip
POSTCODE_HELD = (
    "GB|S|the post code is {POSTCODE}", "GB|W|Post code - {POSTCODE}",
    "GB|It's {POSTCODE} for the postcode.", "US|S|the zip there is {POSTCODE}",
    "US|W|ZIP code - {POSTCODE}",
)  # fmt: skip
ADDRESS = (
    "I live at {STREET}.", "My address is {STREET}, {TOWN}, {POSTCODE}.",
    "The first line of my address is {STREET}.", "We've just moved to {STREET}.",
    "W|Address: {STREET}, {TOWN}", "S|it's {STREET} {TOWN}", "I'm at {STREET}.",
    "Please send it to {STREET}, {TOWN}.", "S|my address is {STREET}",
    "The delivery address is {STREET}.", "GB|W|{STREET}\n{TOWN}\n{POSTCODE}",
    "US|W|{STREET}\n{TOWN} {POSTCODE}",
)  # fmt: skip
ADDRESS_HELD = (
    "S|the house is {STREET}", "W|Deliver to: {STREET}, {TOWN}", "I'm over at {STREET} now.",
    "US|Ship it to {STREET}, {TOWN} {POSTCODE}.",
)  # fmt: skip
PERSON = (
    "My name is {NAME}.", "Hi, this is {NAME} speaking.", "It's {TITLE_SURNAME} here.",
    "Hello, {FIRST} here.", "I'm {NAME}.", "S|my name's {NAME}",
    "The account holder is {TITLE_NAME}.", "W|Name: {NAME}", "This is {TITLE_NAME}.",
    "I'm calling on behalf of my {KIN}, {TITLE_NAME}.",
    "My name is {FIRST}, I'm calling about a bill.", "My surname is {SURNAME}.",
    "S|yeah it's {TITLE_SURNAME}", "The appointment is for {TITLE_NAME}.",
    "My surname's {SPELLED}.", "S|hi my name is {NAME} i'm calling about my account",
    "Hi, {NAME} here, I had a missed call.", "S|hiya it's {FIRST} here",
    "Can I speak to someone about {TITLE_NAME}'s account?",
)  # fmt: skip
PERSON_HELD = (
    "You're speaking to {NAME}.", "W|From: {NAME}", "S|yeah {FIRST} speaking",
    "S|the name on the account is {TITLE_NAME}", "W|Regards, {NAME}",
)  # fmt: skip
MULTI = (
    "My name is {NAME}, my date of birth is {DOB} and my postcode is {POSTCODE}.",
    "S|it's {NAME} born {DOB} postcode {POSTCODE}",
    "W|Name: {NAME}\nDOB: {DOB}\nPostcode: {POSTCODE}",
    "My name's {NAME} and you can reach me on {PHONE} or email {EMAIL}.",
    "GB|My name is {NAME}, NHS number {NHS}, date of birth {DOB}.",
    "US|This is {NAME}, my social is {SSN} and my date of birth is {DOB}.",
    "GB|Sort code {SORT}, account number {UKACC}, in the name of {TITLE_NAME}.",
    "I'm {NAME}, I live at {STREET}, {POSTCODE}.", "S|hi this is {NAME} my date of birth is {DOB}",
    "GB|S|my name's {NAME} national insurance number {NINO}",
    "W|{TITLE_NAME}, {STREET}, {TOWN}, {POSTCODE}",
    "Date of birth {DOB}, and the phone number is {PHONE}.",
)  # fmt: skip
MULTI_HELD = (
    "US|S|it's {NAME} social {SSN} zip code {POSTCODE}",
    "GB|W|Patient: {TITLE_NAME} | DOB {DOB} | NHS {NHS}",
    "S|okay so name {NAME} date of birth {DOB} and email {EMAIL}",
)  # fmt: skip
NEG = (
    "That's {PRICE} altogether.", "The total comes to {PRICE}.", "I was charged {PRICE} twice.",
    "It was {PRICE} in the sale.", "My monthly payment went up to {PRICE}.",
    "The balance is showing {PRICE}.", "Can I pay {PRICE} now and the rest next month?",
    "I ordered {QTY} but only {SMALL} arrived.", "We need {QTY} for the event.",
    "There were {SMALL} of them in the box.", "Can you call me back at {TIME}?",
    "The appointment's at {TIME} on {DATE}.", "Delivery is booked for {DATE}.",
    "My policy started on {DATE}.", "The payment is due on {DATE}.",
    "I rang on {DATE} and nobody called back.", "The renewal date is {DATE}.",
    "The engineer's coming {DAYREF} between {TIME} and {TIME}.", "My order number is {ORDER}.",
    "The reference is {ORDER}.", "Claim number {ORDER}.", "W|Case number: {ORDER}",
    "The tracking number is {LONG_ORDER}.", "It's invoice {ORDER}.", "Policy number {ORDER}.",
    "The booking reference is {ALNUM}.", "W|Order #{ORDER}", "S|it's order {LONG_ORDER}",
    "Your reference number is {TEN}.", "The ticket number is {TEN}.",
    "My customer reference is {EIGHT}.", "The parcel number is {LONG_ORDER}.", "W|Ref: {ALNUM}",
    "The case is {ALNUM}.", "I'm on flight {FLIGHT} at {TIME}.", "We're in room {ROOM}.",
    "Room {ROOM}, second floor.", "The interest rate is {PCT}.", "It's gone up by {PCT}.",
    "The APR is {PCT}, isn't it?", "He's {HEIGHT}.", "The parcel weighs {WEIGHT}.",
    "It's about {DIST} from the station.", "It's a {NDIGITS} digit number, isn't it?",
    "How many digits is the sort code?", "Do you need the long number or just the last four?",
    "I'm on version {VERSION} of the app.", "The router's IP address is {IP}.",
    "I'm running iOS {VERSION}.", "I've been on hold for {DURATION}.",
    "I've been with you since {YEAR}.", "I'm {AGE} years old.", "We've got {SMALL} kids.",
    "I don't have my card on me right now.", "GB|Where do I find my NHS number?",
    "Can I take your date of birth, please?",
    "US|I'd rather not give my social security number over the phone.",
    "I need to update my email address.", "GB|My postcode changed when we moved.",
    "GB|Hang on, let me find my national insurance number.",
    "Is it the long number on the front?", "The security code? Hang on a second.",
    "I'll text you my number later.", "The meter reading is {METER}.",
    "The mileage is about {MILEAGE}.", "I pressed {SMALL} like it said.",
    "Between {TIME} and {TIME} is best.", "I paid {PRICE} on {DATE} at {TIME}.",
    "Order {ORDER} was for {QTY} at {PRICE} each.", "W|Order #{ORDER} - {QTY} @ {PRICE}",
    "My daughter's {SMALL}, she's just started school.", "I called {EMERGENCY} last night.",
    "It's extension {EXT}.", "The next available appointment is {DATE} at {TIME}.",
    "I was born in {TOWN}, actually.",
    "I need to change the date of birth on my account, it's wrong.",
    "My birthday is next week, so can it arrive before then?",
    "I changed my date of birth in the app on {DATE} but it still shows the old one.",
    "The baby's due on {DATE}.", "I've had {SMALL} cards from you this year.",
    "My card was declined for {PRICE}.", "W|Total: {PRICE} (inc. VAT)",
    "Call me at {TIME} tomorrow.", "Text me after {TIME}.", "My phone's on {PCT} battery.",
    "Can you send the letter to my email instead?", "My name's on the policy as well.",
    "This is the third time I've called.", "It's me again, I called {PASTDAY}.",
    "Is this the right number for claims?", "I'm calling about my mum's account.",
    "The {TIME} train was cancelled.", "It's platform {SMALL}.",
    "The code they gave me was {ALNUM}.", "S|my order number is {LONG_ORDER}",
    "S|the reference they gave me was {TEN}", "S|okay the tracking number is {LONG_ORDER}",
    "W|Tracking: {LONG_ORDER}", "W|Invoice {TEN} for {PRICE}",
    "We spent {PRICE} on {DATE}, and another {PRICE} on {DATE}.",
    "GB|What's your sort code? I'll need it for the transfer.",
    "The delivery window is {TIME} to {TIME} on {DATE}.",
    "I renewed it on {DATE} for {PRICE}.", "S|it's order number {EIGHT}",
)  # fmt: skip
NEG_HELD = (
    "It came to {PRICE} with delivery.", "S|the parcel reference is {LONG_ORDER}",
    "W|Tracking no. {LONG_ORDER}", "Booking {ALNUM} for {SMALL} nights from {DATE}.",
    "I've been paying {PRICE} a month since {YEAR}.", "The code on the box is {ORDER}.",
    "Our appointment got moved to {DATE}.", "The bill's dated {DATE}.",
    "GB|What's an NHS number? Is that the one on my prescription?",
    "Can you read me the last transaction? I think it was {PRICE} on {DATE}.",
    "My flight's {FLIGHT} on {DATE}.", "It'll take {SMALL} to {SMALL} working days.",
    "The serial number is {LONG_ORDER}.", "S|i've got the reference here it's {TEN}",
    "We're at table {SMALL}.", "My start date was {DATE}.", "Version {VERSION} fixed it.",
    "W|Qty {SMALL} x {PRICE}", "The voucher code is {ALNUM}, it's worth {PRICE}.",
)  # fmt: skip
DISTRACTORS = (
    " I'm calling about order {SHORT_ORDER}.", " It's about the payment of {PRICE}.",
    " The delivery was meant to be {DATE}.", " I'm free after {TIME}.",
    " I've been on hold for {DURATION}.", " The reference is {ALNUM}.",
)  # fmt: skip


@dataclass(frozen=True)
class Family:
    name: str
    weight: float
    templates: tuple[str, ...]
    held: tuple[str, ...]
    gb_share: float  # share of en_GB records
    spoken: float  # share of spoken (ASR) records


FAMILIES = (
    Family("card", 170, CARD, CARD_HELD, 0.5, 0.55),
    Family("card_noctx", 70, CARD_NOCTX, CARD_NOCTX_HELD, 0.5, 0.45),
    Family("card_fix", 25, CARD_FIX, (), 0.5, 0.8),
    Family("card_multi", 60, CARD_MULTI, CARD_MULTI_HELD, 0.5, 0.55),
    Family("cvv", 50, CVV, CVV_HELD, 0.5, 0.6),
    Family("expiry", 50, EXPIRY, EXPIRY_HELD, 0.5, 0.6),
    Family("ssn", 170, SSN, SSN_HELD, 0.0, 0.6),
    Family("ssn_noctx", 45, SSN_NOCTX, SSN_NOCTX_HELD, 0.0, 0.0),
    Family("nino", 165, NINO_T, NINO_HELD, 1.0, 0.55),
    Family("nino_noctx", 40, NINO_NOCTX, NINO_NOCTX_HELD, 1.0, 0.4),
    Family("nhs", 165, NHS_T, NHS_HELD, 1.0, 0.55),
    Family("nhs_noctx", 40, NHS_NOCTX, NHS_NOCTX_HELD, 1.0, 0.4),
    Family("sort", 75, SORT, SORT_HELD, 1.0, 0.55),
    Family("sort_acc", 70, SORT_ACC, SORT_ACC_HELD, 1.0, 0.55),
    Family("uk_account", 45, UKACC, UKACC_HELD, 1.0, 0.55),
    Family("us_account", 70, USACC, USACC_HELD, 0.0, 0.55),
    Family("iban", 175, IBAN_T, IBAN_HELD, 0.85, 0.6),
    Family("iban_noctx", 40, IBAN_NOCTX, IBAN_NOCTX_HELD, 0.85, 0.4),
    Family("dob", 210, DOB, DOB_HELD, 0.5, 0.6),
    Family("phone", 150, PHONE, PHONE_HELD, 0.5, 0.55),
    Family("phone_noctx", 50, PHONE_NOCTX, PHONE_NOCTX_HELD, 0.5, 0.45),
    Family("email", 140, EMAIL, EMAIL_HELD, 0.5, 0.55),
    Family("postcode", 100, POSTCODE, POSTCODE_HELD, 0.65, 0.55),
    Family("address", 80, ADDRESS, ADDRESS_HELD, 0.5, 0.55),
    Family("person", 130, PERSON, PERSON_HELD, 0.5, 0.55),
    Family("multi", 100, MULTI, MULTI_HELD, 0.5, 0.5),
)
NEGATIVE = Family("negative", 0, NEG, NEG_HELD, 0.5, 0.5)


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------

SLOT_RE = re.compile(r"\{([A-Z_0-9]+)\}")
FLAGS = {"W", "S", "GB", "US"}


def parse_template(t: str) -> tuple[set[str], str]:
    flags: set[str] = set()
    while "|" in t and t.split("|", 1)[0] in FLAGS:
        flag, t = t.split("|", 1)
        flags.add(flag)
    return flags, t


def fits(t: str, spoken: bool, locale: str) -> bool:
    flags, _ = parse_template(t)
    if ("W" in flags and spoken) or ("S" in flags and not spoken):
        return False
    return not (("GB" in flags and locale != "en_GB") or ("US" in flags and locale != "en_US"))


def style_literal(s: str, ctx: Ctx) -> str:
    if ctx.style in ("asr_raw", "asr_digits"):
        s = re.sub(r"[.,!?;:\"#()|]", " ", s.lower())
        return re.sub(r"(?<=\S)[-/](?=\S)|\s[-/]\s|\n", " ", s)
    if ctx.style == "asr_punct":
        return s.replace("\n", " ").replace(" | ", ", ")
    return s.lower() if ctx.style == "typed_lower" else s


def squash(text: str, spans: list[list]) -> tuple[str, list[list]]:
    """Collapse whitespace runs to one space and trim, keeping span offsets right."""
    out: list[str] = []
    where = [0] * (len(text) + 1)
    for i, ch in enumerate(text):
        where[i] = len(out)
        if ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(ch)
    where[len(text)] = len(out)
    new = "".join(out).rstrip(" ")
    return new, [[where[s], where[e], ent] for s, e, ent in spans]


def render(template: str, ctx: Ctx) -> tuple[str, list[list]]:
    pieces: list[Piece] = []
    pos = 0
    for m in SLOT_RE.finditer(template):
        pieces.append((style_literal(template[pos : m.start()], ctx), None))
        pieces.extend(SLOTS[m.group(1)](ctx))
        pos = m.end()
    pieces.append((style_literal(template[pos:], ctx), None))
    for i in range(1, len(pieces)):  # "3:00 p.m." + "." -> one full stop
        if pieces[i - 1][0].endswith(".") and re.match(r"\.(?!\.)", pieces[i][0]):
            pieces[i] = (pieces[i][0][1:], pieces[i][1])
    text, spans = "", []
    for piece, entity in pieces:
        if entity:
            spans.append([len(text), len(text) + len(piece), entity])
        text += piece
    if ctx.form == "spoken":
        text, spans = squash(text, spans)
    return text, spans


def _lower_first(t: str) -> str:
    if len(t) > 1 and t[0].isupper() and t[1].islower() and not t.startswith(("I ", "I'")):
        return t[0].lower() + t[1:]
    return t


def dress(template: str, ctx: Ctx, *, distract: bool) -> str:
    """Add what callers and typists wrap around the information: greetings, thanks."""
    rng = ctx.rng
    if distract:
        template = template.rstrip(".") + "." + rng.choice(DISTRACTORS)
    if ctx.written:
        if "\n" in template:
            return template
        if rng.random() < 0.2:
            template = rng.choice(["Hi, ", "Hello, ", "Sure, ", "OK, ", "Hi there, "]) + (
                _lower_first(template)
            )
        if rng.random() < 0.15:
            end = "" if template[-1] in ".!?" else "."
            template += end + rng.choice([" Thanks", " Thanks!", " Many thanks.", " Cheers"])
        return template
    if rng.random() < 0.3:
        lead = ["Yeah, ", "Okay, ", "Um, ", "Yes, ", "Right, ", "Sure, ", "Oh, "]
        lead += ["Erm, "] if ctx.uk else ["Uh, "]
        template = rng.choice(lead) + _lower_first(template)
    if rng.random() < 0.2:
        end = "" if template[-1] in ".!?" else "."
        template += end + rng.choice([" Thanks.", " Thank you.", " Yeah.", " Is that okay?"])
    return template


def make_persona(rng: random.Random, fake: Faker) -> Persona:
    female = rng.random() < 0.5
    first = fake.first_name_female() if female else fake.first_name_male()
    title = rng.choice(["Mrs", "Ms", "Miss", "Dr"] if female else ["Mr", "Mr", "Dr"])
    dob = date(1940, 1, 1) + timedelta(days=rng.randint(0, 24_470))
    return Persona(first, fake.last_name(), title, dob, female)


def choose_template(
    rng: random.Random, fam: Family, spoken: bool, locale: str, holdout: bool
) -> str:
    shared = [t for t in fam.templates if fits(t, spoken, locale)]
    held = [t for t in fam.held if fits(t, spoken, locale)] if holdout else []
    if held and (not shared or rng.random() < 0.45):
        return rng.choice(held)
    return rng.choice(shared)


def make_record(rng: random.Random, fakers: dict[str, Faker], fam: Family, holdout: bool) -> dict:
    locale = "en_GB" if rng.random() < fam.gb_share else "en_US"
    spoken = rng.random() < fam.spoken
    pools = (fam.templates + (fam.held if holdout else ()),)
    if not any(fits(t, spoken, locale) for t in pools[0]):
        spoken = not spoken
    template = parse_template(choose_template(rng, fam, spoken, locale, holdout))[1]
    style = weighted(rng, SPOKEN_STYLES if spoken else WRITTEN_STYLES)
    zero = "oh" if rng.random() < (0.7 if locale == "en_GB" else 0.45) else "zero"
    ctx = Ctx(
        rng=rng,
        fake=fakers[locale],
        locale=locale,
        form="spoken" if spoken else "written",
        style=style,
        num=weighted(rng, NUM_MODES[style]),
        zero=zero,
        holdout=holdout,
        person=make_persona(rng, fakers[locale]),
    )
    distract = fam is not NEGATIVE and rng.random() < 0.2
    text, spans = render(dress(template, ctx, distract=distract), ctx)
    segments = None
    if spoken and rng.random() < (0.2 if fam is NEGATIVE else 0.45):
        segments = make_segments(rng, text, spans)
    return {
        "id": f"{fam.name}-{style}",
        "text": text,
        "form": ctx.form,
        "locale": locale,
        "spans": [{"start": s, "end": e, "entity": ent} for s, e, ent in spans],
        "segments": segments,
    }


def make_segments(rng: random.Random, text: str, spans: list[list]) -> list[dict]:
    """Cut a spoken text into 2-3 final ASR segments, often inside an entity."""
    words = text.split(" ")
    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += len(w) + 1

    def word_at(offset: int) -> int:
        return max(i for i, s in enumerate(starts) if s <= offset)

    ranges = [(word_at(s), word_at(e - 1)) for s, e, _ in spans]
    cuts: set[int] = set()
    inside = [(a, b) for a, b in ranges if b > a]
    roll = rng.random()
    if inside and roll < 0.7:
        a, b = rng.choice(inside)
        cuts.add(rng.randint(a + 1, b))
        if b - a >= 4 and rng.random() < 0.25:  # occasionally across three segments
            cuts.add(rng.randint(a + 1, b))
    elif ranges and roll < 0.85 and ranges[0][0] > 0:
        cuts.add(ranges[0][0])  # the context phrase in one segment, the value in the next
    if not cuts and len(words) > 1:
        cuts.add(rng.randint(1, len(words) - 1))
    bounds = [0, *sorted(cuts), len(words)]
    t = round(rng.uniform(0.5, 400.0), 2)
    segments = []
    for a, b in pairwise(bounds):
        seg_words = []
        for w in words[a:b]:
            dur = rng.uniform(0.25, 0.45)
            seg_words.append({"text": w, "start": round(t, 3), "end": round(t + dur, 3)})
            t += dur + rng.uniform(0.02, 0.12)
        segments.append({"words": seg_words, "final": True})
        t += rng.uniform(0.15, 0.85)
    return segments


# ---------------------------------------------------------------------------
# Self-checks: every label is right by its own definition, nothing else is PII
# ---------------------------------------------------------------------------

CHECKED = {
    "CARD_NUMBER": lambda v: 12 <= len(v) <= 19 and v.isdigit() and luhn_ok(v),
    "NHS_NUMBER": nhs_ok,
    "US_SSN": lambda v: v.isdigit() and ssn_ok(v),
    "UK_NINO": nino_ok,
    "IBAN": iban_ok,
}
WRITTEN_SUSPECTS = (
    re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),  # SSN shape
    re.compile(r"\b\d{2}-\d{2}-\d{2}\b"),  # sort code shape
    re.compile(r"\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", re.IGNORECASE),  # NINO shape
    re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2}\b", re.IGNORECASE),  # postcode
    re.compile(r"\w@\w"),  # e-mail
)
NUMBER_TOKENS = set(UNIT_WORDS) | set(TEEN_WORDS) | set(TENS_WORDS) | {"double", "triple"}


def span_value(text: str, form: str, entity: str) -> str | None:
    letters = entity in ("UK_NINO", "IBAN")
    if form == "written":
        return re.sub(r"[^0-9A-Za-z]" if letters else r"\D", "", text).upper()
    value = spoken_value(text, letters=letters)
    return value.upper() if value else value


def outside_numbers(text: str, form: str) -> list[str]:
    """Digit runs, written or said, in text outside the spans."""
    runs = [re.sub(r"\D", "", m.group()) for m in re.finditer(r"\d+(?:[ -]\d+)*", text)]
    if form == "written":
        return runs
    current: list[str] = []
    for tok in [*_tokens(re.sub(r"[.:/]", " | ", text)), "|"]:
        if tok.isdigit() or tok in NUMBER_TOKENS or (current and tok in FILLERS):
            current.append(tok)
            continue
        if current:
            value = spoken_value(" ".join(current), homophones=False)
            runs.append(value or "")
            current = []
    return runs


def check_record(rec: dict) -> bool:
    """Assert the labels are right; False when unlabelled text could pass for PII.

    A record whose unlabelled text holds something an honest engine could take
    for PII (a 10-digit stretch of a longer order number that is a valid US
    phone number, say) is made again rather than kept as an unfair negative.
    """
    text, spans = rec["text"], rec["spans"]
    last_end = -1
    outside = text
    for sp in sorted(spans, key=lambda s: s["start"]):
        s, e, ent = sp["start"], sp["end"], sp["entity"]
        value_text = text[s:e]
        assert 0 <= s < e <= len(text), rec
        assert s >= last_end, rec
        assert value_text == value_text.strip(), rec
        assert value_text[-1] not in ".,", rec
        last_end = e
        if ent in CHECKED:
            value = span_value(value_text, rec["form"], ent)
            assert value, (ent, value_text, rec["id"])
            assert CHECKED[ent](value), (ent, value_text, value, rec["id"])
        outside = outside[:s] + "|" * (e - s) + outside[e:]
    if rec["segments"] is not None:
        joined = " ".join(" ".join(w["text"] for w in seg["words"]) for seg in rec["segments"])
        assert joined == text, rec
    masked = outside.replace("|", " | ")
    if not all(innocent_digits(run) for run in outside_numbers(masked, rec["form"])):
        return False
    return not any(pattern.search(masked) for pattern in WRITTEN_SUSPECTS)


# ---------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------


def schedule(rng: random.Random, n: int) -> list[Family]:
    n_neg = round(n * NEGATIVE_SHARE)
    total = sum(f.weight for f in FAMILIES)
    counts = [round((n - n_neg) * f.weight / total) for f in FAMILIES]
    counts[0] += n - n_neg - sum(counts)
    plan = [NEGATIVE] * n_neg + [f for f, c in zip(FAMILIES, counts, strict=True) for _ in range(c)]
    rng.shuffle(plan)
    return plan


def generate(split: str, limit: int | None = None) -> list[dict]:
    """The records of one split; ``limit`` makes only the first ones (same as the full file's)."""
    n, seed, holdout = SPLITS[split]
    rng = random.Random(seed)  # noqa: S311 -- synthetic test data must be reproducible, not secret
    fakers = {loc: Faker(loc) for loc in LOCALES}
    for i, loc in enumerate(LOCALES):
        fakers[loc].seed_instance(seed + i)
    records = []
    for i, fam in enumerate(schedule(rng, n)[:limit]):
        while True:
            rec = make_record(rng, fakers, fam, holdout)
            if check_record(rec):
                break
        rec["id"] = f"{split}-{i:05d}-{rec['id']}"
        records.append(rec)
    return records


def dumps(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write(out_dir: Path, limit: int | None = None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for split in SPLITS:
        path = out_dir / f"{split}.jsonl"
        path.write_text(dumps(generate(split, limit)), encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    args = parser.parse_args()
    for path in write(args.out):
        print(path)


if __name__ == "__main__":
    main()
