"""Tokens with their character offsets: the map every recogniser reports through."""

from __future__ import annotations

import re
from bisect import bisect_right

# Words (letters, with an inner apostrophe), digit strings, or any other single non-space
# character. Linear: each alternative consumes at least one character, no backtracking.
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\d+|\S")


class Tokens:
    """The tokens of one text: raw and lower-cased strings with start/end offsets."""

    __slots__ = ("ends", "low", "raw", "starts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        raw: list[str] = _TOKEN.findall(text)
        starts: list[int] = []
        ends: list[int] = []
        pos = 0
        find = text.find
        for t in raw:  # tokens appear in order, separated by nothing or by whitespace
            pos = find(t, pos)
            starts.append(pos)
            pos += len(t)
            ends.append(pos)
        self.raw = raw
        self.starts = starts
        self.ends = ends
        lowered = text.lower()
        if len(lowered) == len(text):
            self.low = [lowered[s:e] for s, e in zip(starts, ends, strict=True)]
        else:  # a character whose lower case is longer ("İ"): lower each token alone
            self.low = [t.lower() for t in raw]
        if not text.isascii():
            # Digits outside ASCII ("²", "٣") are not read as numbers: int() refuses some of
            # them and the checksums assume 0-9. They stay in the text, unmatched.
            self.low = [("?" * len(t) if t.isdigit() and not t.isascii() else t) for t in self.low]

    def __len__(self) -> int:
        return len(self.raw)

    def index_at(self, offset: int) -> int:
        """Index of the last token starting at or before ``offset`` (-1 if none)."""
        return bisect_right(self.starts, offset) - 1

    def gap(self, i: int) -> str:
        """The characters between token ``i-1`` and token ``i``."""
        return self.text[self.ends[i - 1] : self.starts[i]] if i > 0 else ""

    def is_word(self, i: int) -> bool:
        return self.raw[i][0].isalpha()
