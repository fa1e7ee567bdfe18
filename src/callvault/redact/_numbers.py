"""The spoken-number normaliser: number runs as digit streams mapped back to tokens.

A *run* is a maximal stretch of tokens that reads as digits: digit strings,
digit words ("four", "oh", "zero"), "double"/"triple", teens and tens ("forty
two" → 42, "forty one eleven" → 4111), year forms ("nineteen eighty four" →
1984, "two thousand and five" → 2005), hundreds, and the numeric homophones
for/to/too/won/ate only where they sit between two number tokens. Hyphens,
slashes, dots, brackets and fillers ("um", "er") may sit inside a run; a
comma or full stop followed by a space, or any other word, ends it.

Each digit keeps the tokens it came from, so a recogniser that accepts
``digits[i:j]`` reports the character span ``tokens.starts[first] ..
tokens.ends[last]`` of the original text.
"""

from __future__ import annotations

from dataclasses import dataclass

from callvault.redact._lexicon import (
    DIGIT_WORDS,
    FILLERS,
    HOMOPHONES,
    REPEATS,
    TEENS,
    TENS,
    WEAK_ZEROS,
)
from callvault.redact._tokens import Tokens

_INNER_PUNCT = frozenset("-/.(),")
# Hesitations and self-corrections a caller makes inside a number ("5020, sorry, 0689").
_CORRECTIONS = frozenset({"sorry", "pardon"})
_RUN_FILLERS = FILLERS | _CORRECTIONS
#: The separator recorded where a caller corrected themselves ("4804, sorry, 4808 ...").
CORRECTION = "!"
_NUMERIC_WORDS = (
    frozenset(DIGIT_WORDS) | frozenset(TEENS) | frozenset(TENS) | frozenset(REPEATS)
) - WEAK_ZEROS
_SCALE = {"hundred": 100, "thousand": 1000}
_STARTERS = _NUMERIC_WORDS | WEAK_ZEROS
# A homophone may open a run right after these ("the code is ate nine nine"), not "to".
_LEAD_IN = frozenset({"is", "are", "was", ":", "it's", "its"})
_LEAD_HOMOPHONES = frozenset(HOMOPHONES) - {"to", "too"}
# Separators said as words between digit groups ("oh nine slash twenty seven").
_SPOKEN_SEPS = {"slash": "/", "dash": "-", "hyphen": "-"}
_DIGIT_CHAR = {w: str(v) for w, v in DIGIT_WORDS.items()}


@dataclass(slots=True)
class Run:
    """One number run: its digits and, per digit, the first and last token it came from."""

    digits: str
    first_tok: list[int]
    last_tok: list[int]
    spoken: bool  # at least one digit came from a word
    seps: list[str]  # separator before each digit: "" inside a token, else the gap text

    def span(self, tokens: Tokens, i: int, j: int) -> tuple[int, int]:
        """Character span of ``digits[i:j]``."""
        return tokens.starts[self.first_tok[i]], tokens.ends[self.last_tok[j - 1]]

    def boundaries(self) -> list[int]:
        """Digit offsets where a token boundary falls (0 and len included)."""
        inner = [
            k
            for k in range(1, len(self.digits))
            if self.first_tok[k] != self.first_tok[k - 1] or self.seps[k]
        ]
        return [0, *inner, len(self.digits)]

    def groups(self) -> list[int]:
        """Lengths of the written digit groups (separated by any gap or punctuation)."""
        out: list[int] = []
        n = 0
        for k in range(len(self.digits)):
            if k and self.seps[k]:
                out.append(n)
                n = 0
            n += 1
        out.append(n)
        return out


def _is_numberish(tokens: Tokens, i: int) -> bool:
    low = tokens.low[i]
    return low.isdigit() or low in _NUMERIC_WORDS


def _scaled(low: list[str], i: int, end: int) -> tuple[int, int] | None:
    """Parse a cardinal with hundred/thousand starting at ``i``: (value, next index)."""
    total = 0
    current = 0
    k = i
    seen_scale = False
    while k < end:
        w = low[k]
        if w in DIGIT_WORDS and w not in WEAK_ZEROS and w != "zero":
            current += DIGIT_WORDS[w]
        elif w in TEENS:
            current += TEENS[w]
        elif w in TENS:
            current += TENS[w]
            if k + 1 < end and low[k + 1] in DIGIT_WORDS and DIGIT_WORDS[low[k + 1]] > 0:
                current += DIGIT_WORDS[low[k + 1]]
                k += 1
        elif w.isdigit() and len(w) <= 3 and not seen_scale:
            current += int(w)
        elif w in _SCALE:
            if current == 0:
                break
            if w == "hundred":
                current *= 100
            else:
                total += current * 1000
                current = 0
            seen_scale = True
        elif (
            (w == "and" and seen_scale and k + 1 < end and low[k + 1] in _NUMERIC_WORDS)
            or w in FILLERS
            or w == "-"
        ):
            pass
        else:
            break
        k += 1
        # A cardinal is only "scaled" if a scale word follows its first part.
        if (
            not seen_scale
            and k < end
            and low[k] not in _SCALE
            and low[k] != "-"
            and not (low[k] in DIGIT_WORDS and low[k - 1] in TENS)
        ):
            return None
    if not seen_scale:
        return None
    return total + current, k


def number_runs(tokens: Tokens) -> list[Run]:
    """Every number run in ``tokens``, in order."""
    low = tokens.low
    n = len(low)
    runs: list[Run] = []
    starts = [
        k
        for k, w in enumerate(low)
        if w in _STARTERS or w.isdigit() or (w in _LEAD_HOMOPHONES and k and low[k - 1] in _LEAD_IN)
    ]
    scaled_ok = not _SCALE.keys().isdisjoint(low)
    i = 0
    for i0 in starts:
        if i0 < i:
            continue
        i = i0
        if (
            not _is_numberish(tokens, i)
            and not (low[i] in WEAK_ZEROS and _weak_zero_ok(tokens, i, in_run=False))
            and low[i] not in _LEAD_HOMOPHONES
        ):
            continue
        run = Run(digits="", first_tok=[], last_tok=[], spoken=False, seps=[])
        digits: list[str] = []
        pending_sep = ""
        k = i
        while k < n:
            w = low[k]
            sep_in = pending_sep  # what stood between this token and the digits before it
            if w not in _INNER_PUNCT and w not in _RUN_FILLERS:
                pending_sep = ""
            if w.isdigit():
                sep = (sep_in or tokens.gap(k)) if digits else ""
                digits.extend(w)
                run.first_tok.extend([k] * len(w))
                run.last_tok.extend([k] * len(w))
                run.seps.append(sep)
                run.seps.extend([""] * (len(w) - 1))
                k += 1
                continue
            scaled = (
                _scaled(low, k, n)
                if scaled_ok and (w in DIGIT_WORDS or w in TEENS or w in TENS)
                else None
            )
            if scaled is not None:
                value, nxt = scaled
                text = str(value)
                for d_i, ch in enumerate(text):
                    digits.append(ch)
                    run.first_tok.append(k)
                    run.last_tok.append(nxt - 1)
                    run.seps.append((sep_in or " ") if d_i == 0 and len(digits) > 1 else "")
                run.spoken = True
                k = nxt
                continue
            if w in DIGIT_WORDS and (
                w not in WEAK_ZEROS or _weak_zero_ok(tokens, k, in_run=bool(digits))
            ):
                digits.append(_DIGIT_CHAR[w])
                run.first_tok.append(k)
                run.last_tok.append(k)
                run.seps.append((sep_in or " ") if len(digits) > 1 else "")
                run.spoken = True
                k += 1
                continue
            if w in TEENS:
                _push(run, digits, str(TEENS[w]), k, k, sep_in)
                k += 1
                continue
            if w in TENS:
                nxt = k + 1
                if nxt < n and low[nxt] == "-":
                    nxt += 1
                if (
                    nxt < n
                    and low[nxt] in DIGIT_WORDS
                    and DIGIT_WORDS[low[nxt]] > 0
                    and (low[nxt] not in WEAK_ZEROS)
                ):
                    _push(run, digits, str(TENS[w] + DIGIT_WORDS[low[nxt]]), k, nxt, sep_in)
                    k = nxt + 1
                else:
                    _push(run, digits, str(TENS[w]), k, k, sep_in)
                    k += 1
                continue
            if w in REPEATS:
                nxt = k + 1
                if nxt < n and (
                    low[nxt] in DIGIT_WORDS or (low[nxt].isdigit() and len(low[nxt]) == 1)
                ):
                    d = low[nxt] if low[nxt].isdigit() else str(DIGIT_WORDS[low[nxt]])
                    _push(run, digits, d * REPEATS[w], k, nxt, sep_in)
                    k = nxt + 1
                    continue
                break
            lead = (
                not digits
                and k > 0
                and low[k - 1] in _LEAD_IN
                and k + 2 < n
                and _is_numberish(tokens, k + 1)
                and _is_numberish(tokens, k + 2)
            )
            if (digits or lead) and w in HOMOPHONES and k + 1 < n and _is_numberish(tokens, k + 1):
                _push(run, digits, str(HOMOPHONES[w]), k, k, sep_in)
                k += 1
                continue
            if digits and w in _SPOKEN_SEPS and k + 1 < n and _is_numberish(tokens, k + 1):
                pending_sep = _SPOKEN_SEPS[w]
                k += 1
                continue
            if digits and (w in _INNER_PUNCT or w in _RUN_FILLERS) and k + 1 < n:
                if w == "." and (tokens.text[tokens.ends[k] : tokens.ends[k] + 1] == " "):
                    break  # a full stop, not a dot between digit groups
                nxt = k + 1
                if (
                    _is_numberish(tokens, nxt)
                    or low[nxt] in WEAK_ZEROS
                    or low[nxt] in _RUN_FILLERS
                    or (low[nxt] in _INNER_PUNCT and w not in _INNER_PUNCT)
                ):
                    if w in _CORRECTIONS or pending_sep == CORRECTION:
                        pending_sep = CORRECTION
                    else:
                        pending_sep = w if w not in _RUN_FILLERS else " "
                    k += 1
                    continue
            break
        if digits:
            run.digits = "".join(digits)
            runs.append(run)
        i = max(k, i + 1)
    return runs


def _weak_zero_ok(tokens: Tokens, k: int, *, in_run: bool) -> bool:
    """'oh'/'o'/'nil' is a zero inside a run or right before another number token."""
    raw = tokens.raw[k]
    if len(raw) == 2 and raw.isupper():
        return False  # "OH 20196": the state, not a zero
    if in_run:
        return True
    nxt = k + 1
    return nxt < len(tokens) and (_is_numberish(tokens, nxt) or tokens.low[nxt] in WEAK_ZEROS)


def _push(run: Run, digits: list[str], value: str, first: int, last: int, sep0: str) -> None:
    for d_i, ch in enumerate(value):
        sep = (sep0 or " ") if d_i == 0 and digits else ""
        digits.append(ch)
        run.first_tok.append(first)
        run.last_tok.append(last)
        run.seps.append(sep)
    run.spoken = True
