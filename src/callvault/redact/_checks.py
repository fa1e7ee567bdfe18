"""Checksums and structural rules: pure functions over digit and letter strings."""

from __future__ import annotations

from callvault.redact._lexicon import IBAN_LENGTHS


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_prefix_ok(d: str) -> bool:
    """A known issuer prefix (IIN range) for the length: Visa, Mastercard (incl. 2-series),
    Amex, Discover, JCB, Diners, Maestro, UnionPay, Mir."""
    n = len(d)
    p2 = int(d[:2])
    p4 = int(d[:4])
    if d[0] == "4":
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16
    if p2 in (34, 37):
        return n == 15
    if d.startswith("6011") or 644 <= int(d[:3]) <= 649 or p2 == 65:
        return 16 <= n <= 19
    if 3528 <= p4 <= 3589:
        return 16 <= n <= 19
    if p2 in (36, 38, 39) or 300 <= int(d[:3]) <= 305:
        return 14 <= n <= 19
    if p2 in (62, 81):
        return 16 <= n <= 19
    if 2200 <= p4 <= 2204:
        return 16 <= n <= 19
    if p2 == 50 or 56 <= p2 <= 69:
        return 12 <= n <= 19
    return False


def nhs_ok(d: str) -> bool:
    """NHS number: 10 digits, modulus 11 check digit (10 is invalid)."""
    if len(d) != 10 or d == d[0] * 10:
        return False
    total = sum((10 - i) * (ord(d[i]) - 48) for i in range(9))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == ord(d[9]) - 48


def ssn_ok(d: str) -> bool:
    """US SSN: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    if len(d) != 9:
        return False
    area = int(d[:3])
    return area not in (0, 666) and area < 900 and d[3:5] != "00" and d[5:] != "0000"


_NINO_BAD_FIRST = frozenset("DFIQUV")
_NINO_BAD_SECOND = frozenset("DFIOQUV")
_NINO_BAD_PREFIX = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def nino_prefix_ok(prefix: str) -> bool:
    p = prefix.upper()
    return (
        len(p) == 2
        and p.isalpha()
        and p.isascii()
        and p[0] not in _NINO_BAD_FIRST
        and p[1] not in _NINO_BAD_SECOND
        and p not in _NINO_BAD_PREFIX
    )


def iban_ok(s: str) -> bool:
    """IBAN: known country, its length, and ISO 7064 mod 97 == 1."""
    s = s.upper()
    if len(s) < 15 or IBAN_LENGTHS.get(s[:2]) != len(s) or not s[2:4].isdigit():
        return False
    if not s.isascii() or not s.isalnum():
        return False
    moved = s[4:] + s[:4]
    total = 0
    for ch in moved:
        v = ord(ch) - 48 if ch.isdigit() else ord(ch) - 55
        total = (total * 100 + v) % 97 if v > 9 else (total * 10 + v) % 97
    return total == 1


def aba_ok(d: str) -> bool:
    """US ABA routing number checksum."""
    if len(d) != 9:
        return False
    w = (3, 7, 1) * 3
    return sum(int(c) * w[i] for i, c in enumerate(d)) % 10 == 0


def valid_date(day: int, month: int, year: int) -> bool:
    if not (1 <= month <= 12 and 1 <= day <= 31 and 1880 <= year <= 2100):
        return False
    if month in (4, 6, 9, 11):
        return day <= 30
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return day <= (29 if leap else 28)
    return True
