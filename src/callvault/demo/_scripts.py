"""The demo's three calls: who says what, and where the caller keys a card.

Synthetic people and numbers only: the NHS number passes the NHS checksum,
the card numbers are the card schemes' published test numbers (Luhn-valid),
so the redaction engine and the tokenization vault treat them as real.
Every line is plain words separated by single spaces (no punctuation), so
the words synthesised one by one spell the segment's text exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Speaker = Literal["caller", "agent"]

#: Keyed on the keypad in the card call (Visa's test number), then ``#``.
KEYED_CARD: Final = "4111111111111111"
#: Read aloud in the card call (Mastercard's test number).
SPOKEN_CARD: Final = "5555555555554444"


@dataclass(frozen=True, slots=True)
class Say:
    speaker: Speaker
    text: str


@dataclass(frozen=True, slots=True)
class Keys:
    """The caller presses ``digits`` on the keypad (in-band tones and Twilio ``dtmf`` events)."""

    digits: str


Turn = Say | Keys


@dataclass(frozen=True, slots=True)
class CallScript:
    #: Short name, used in the printed report.
    name: str
    #: What the call shows, for the printed report.
    shows: str
    turns: tuple[Turn, ...]


def _agent(text: str) -> Say:
    return Say("agent", text)


def _caller(text: str) -> Say:
    return Say("caller", text)


def _spoken(digits: str) -> str:
    names = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    return " ".join(names[int(d)] for d in digits)


SCRIPTS: Final[tuple[CallScript, ...]] = (
    CallScript(
        name="appointment booking",
        shows="a date of birth and an NHS number, spoken",
        turns=(
            _agent("Riverside Surgery can I take your date of birth"),
            _caller("Born on the fourteenth of March nineteen eighty four"),
            _agent("And your NHS number"),
            _caller(f"It is {_spoken('9434765919')}"),
            _agent("Thank you you are booked in"),
        ),
    ),
    CallScript(
        name="card payment",
        shows="a card number keyed on the keypad, and another read aloud",
        turns=(
            _agent("Please key your card number"),
            Keys(KEYED_CARD + "#"),
            _agent("Declined do you have another card"),
            _caller(f"Yes it is {_spoken(SPOKEN_CARD)}"),
            _agent("Thank you payment taken"),
        ),
    ),
    CallScript(
        name="account enquiry",
        shows="a caller's name and bank account number, spoken",
        turns=(
            _agent("Northbank how can I help"),
            _caller("Hi this is Jane Smith checking my balance"),
            _agent("Your account number please"),
            _caller(f"My account number is {_spoken('31926814')}"),
            _agent("Thanks I will text you your balance"),
        ),
    ),
)
