"""Streaming redaction: ASR segments in, redacted segments out, in order.

:class:`RedactionStream` takes the segments of one call as the recogniser
produces them (final results and interim hypotheses, each with word timings)
and returns :class:`Released` segments: the segment's text with every
finding replaced, the findings in the segment's own character offsets and a
per-word mask for audio. An entity split across segments is caught because
the engine always reads the segments together, never one at a time.

Rules
-----

Joined text
    Every scan runs :meth:`Redactor.find` and :meth:`Redactor.open_tail` on
    one text: the *left context*, then the held finals, then the new
    segment, joined by single spaces (empty segments add nothing). Offsets
    map back to each segment; a finding that crosses a segment boundary is
    clipped to each segment it touches and keeps its entity and score, so
    every part of it is masked. The replacement label of each part is the
    label of the whole value (so ``Pseudonyms`` give a split card one
    ``[CARD_NUMBER_n]``, not one per part).

Left context
    The original text of the finals already released, at most
    ``context_chars`` characters (cut at a word boundary; default 512). It
    is read for finding only: a finding entirely inside it is ignored, one
    that starts in it and runs into new text masks the new part. This is
    how "my card number is" in a released segment, or the first half of a
    number forced out of the hold window, still informs the next segment.
    The joined text is kept within the redactor's ``max_chars`` by
    shortening the left context first.

Hold window
    After each final push, every held segment that ends at or before the
    open tail of the joined text is settled and released, oldest first.
    The rest are held while a partial match at the end could still
    complete, but never more than ``max_hold_segments`` segments (default
    2) and never more than ``max_hold_seconds`` (default 3.0) past their
    own end: a segment becomes available when its last word ends, and is
    forced out once the call clock (the latest word end pushed, or a time
    given to :meth:`RedactionStream.advance`) is more than the bound past
    that. The bound is on the delay the stream adds; the recogniser's own
    latency (a 6 s utterance is only final when it ends) is not counted.
    ``max_hold_segments=0`` never holds. Segments without text do not
    count: one is released right after the segment before it (at once when
    nothing is held), so order is kept without empty finals (which some
    recognisers send for silence) pushing text out early.

    Text before the open tail is trusted to be settled: if later text still
    turns it into part of an entity, only the later part can be masked. The
    engine's ``open_tail`` must cover everything a continuation could
    complete.

Forced release
    A segment pushed out of the window before its pending tail could be
    decided is released conservatively: the engine's findings are applied,
    and every other word that overlaps the pending tail (whole words, from
    the open tail to the segment's end) is replaced by ``[REDACTED]``
    (:data:`WITHHELD`). When a keyword just before the cut-off value announces
    what it is ("my NHS number is triple six oh ..."), those words are labelled
    with that entity instead (a finding with score 0.5, from
    :meth:`Redactor.pending_entity`). Otherwise the spans carry no entity,
    since the engine has not classified them: they are listed in
    :attr:`Released.withheld`, not
    in ``findings``, and are set in ``masked_words``. The segment's original
    text stays in the left context, so the continuation in the next segment
    is still found and masked. The same applies to segments pushed out
    because the held text and a new segment no longer fit in ``max_chars``
    together.

Interim hypotheses
    A non-final segment gets one ``Released(final=False)`` preview, read
    with the left context and the held finals before it; the engine's
    findings are applied and its whole open tail is withheld, so a trailing
    partial number is masked before it is classifiable. Interims never
    change the stream's state (no hold, no clock, no pseudonym numbers:
    previews use plain ``[ENTITY]`` labels). A later interim or the final
    with the same id replaces the preview; an interim for an id already
    pushed as final is stale and gets nothing.

End of call
    :meth:`RedactionStream.flush` releases everything held with the
    engine's findings only: nothing can complete a pending tail any more.

Bounds and failures
    One scan reads at most ``max_chars`` characters. A segment longer than
    the redactor's ``max_chars`` raises its :class:`PayloadTooLargeError`, a
    second final with an id already pushed as final raises
    :class:`InvalidInputError`; both before any state changes, so the
    stream stays usable. A stream holds one call's state and is not
    thread-safe: use one per call (per channel if channels are redacted
    separately), from one task at a time.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

from callvault.errors import InvalidInputError, PayloadTooLargeError
from callvault.redact._engine import Pseudonyms, Redactor, apply
from callvault.redact._types import Finding, Segment, Word, word_spans

#: Replaces words masked without a classification (forced release, interim tails).
WITHHELD = "[REDACTED]"
DEFAULT_MAX_HOLD_SEGMENTS = 2
DEFAULT_MAX_HOLD_SECONDS = 3.0
DEFAULT_CONTEXT_CHARS = 512


@dataclass(frozen=True, slots=True)
class Released:
    """One segment as the stream lets it out.

    ``findings`` and ``withheld`` are character offsets into the segment's
    original text (``" ".join(w.text for w in words)``); ``text`` is that
    text with each finding replaced by its label and each withheld span by
    :data:`WITHHELD`. ``masked_words[i]`` is true when word ``i`` overlaps a
    finding or a withheld span: the words to mask in the audio.
    """

    segment_id: str
    text: str
    findings: tuple[Finding, ...]
    words: tuple[Word, ...]
    masked_words: tuple[bool, ...]
    final: bool
    withheld: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class _Held:
    segment: Segment
    end: float  # call time the segment became available: its last word's end


@dataclass(frozen=True, slots=True)
class _Scan:
    text: str
    ranges: list[tuple[int, int]]  # each segment's characters in ``text``
    findings: list[Finding]
    tail: int


class _Mode(enum.Enum):
    NORMAL = "normal"  # release what is settled, force out what exceeds the window
    DRAIN = "drain"  # release all; withhold pending tails (a continuation will come)
    FLUSH = "flush"  # release all; end of call, nothing is pending


class RedactionStream:
    """Redacts one call's transcript segments as they arrive; see the module rules."""

    def __init__(
        self,
        redactor: Redactor,
        *,
        max_hold_segments: int = DEFAULT_MAX_HOLD_SEGMENTS,
        max_hold_seconds: float = DEFAULT_MAX_HOLD_SECONDS,
        context_chars: int = DEFAULT_CONTEXT_CHARS,
        pseudonyms: Pseudonyms | None = None,
    ) -> None:
        if max_hold_segments < 0:
            raise InvalidInputError("must be zero or more", field="max_hold_segments")
        if not (math.isfinite(max_hold_seconds) and max_hold_seconds >= 0):
            raise InvalidInputError(
                "must be a finite number, zero or more", field="max_hold_seconds"
            )
        if context_chars < 0:
            raise InvalidInputError("must be zero or more", field="context_chars")
        self._redactor = redactor
        self._max_segments = max_hold_segments
        self._max_seconds = max_hold_seconds
        self._context_chars = context_chars
        self._pseudonyms = pseudonyms
        self._context = ""
        self._held: list[_Held] = []
        self._clock = 0.0
        self._final_ids: set[str] = set()

    @property
    def held(self) -> int:
        """How many final segments with text are held back now."""
        return sum(1 for h in self._held if h.segment.text)

    def push(self, segment: Segment) -> list[Released]:
        """Take one segment; return what can be released now, in order.

        For a final segment: zero or more finals (older held ones first). For
        an interim one: its preview, or nothing when its id is already final.
        """
        if len(segment.text) > self._redactor.max_chars:
            raise PayloadTooLargeError(
                f"segment of {len(segment.text)} characters exceeds the redaction "
                f"limit of {self._redactor.max_chars}"
            )
        if not segment.final:
            return self._preview(segment)
        if segment.id in self._final_ids:
            raise InvalidInputError("a final segment with this id was already pushed", field="id")
        clock = max(self._clock, _last_end(segment.words, self._clock))
        entry = _Held(segment, _last_end(segment.words, clock))
        held = [*self._held, entry]
        context = self._context
        out: list[Released] = []
        if _joined_len([h.segment.text for h in held]) > self._redactor.max_chars:
            out, context, _ = self._run(context, self._held, clock, _Mode.DRAIN)
            held = [entry]
        released, context, held = self._run(context, held, clock, _Mode.NORMAL)
        self._commit(context, held, clock)
        self._final_ids.add(segment.id)
        return out + released

    def advance(self, now: float) -> list[Released]:
        """Move the call clock to ``now`` (seconds); force out what has been held too long.

        For silences: without it, the clock only moves when segments arrive.
        """
        if not math.isfinite(now):
            raise InvalidInputError("must be a finite number", field="now")
        clock = max(self._clock, now)
        if not self._held or not self._exceeds(self._held, clock):
            self._clock = clock
            return []
        released, context, held = self._run(self._context, self._held, clock, _Mode.NORMAL)
        self._commit(context, held, clock)
        return released

    def flush(self) -> list[Released]:
        """End of call: release everything held, in order."""
        if not self._held:
            return []
        released, context, _ = self._run(self._context, self._held, self._clock, _Mode.FLUSH)
        self._commit(context, [], self._clock)
        return released

    # -- internals ------------------------------------------------------------------------

    def _commit(self, context: str, held: list[_Held], clock: float) -> None:
        self._context = context
        self._held = held
        self._clock = clock

    def _exceeds(self, held: Sequence[_Held], clock: float) -> bool:
        """Whether ``held`` is over the window: only segments with text count."""
        texts = [h for h in held if h.segment.text]
        return bool(texts) and (
            len(texts) > self._max_segments or clock - texts[0].end > self._max_seconds
        )

    def _run(
        self, context: str, held: list[_Held], clock: float, mode: _Mode
    ) -> tuple[list[Released], str, list[_Held]]:
        """Release from ``held`` as ``mode`` says; the released, the new context, the rest."""
        texts = [h.segment.text for h in held]
        scan = self._scan(self._fit(context, texts), texts, tail=mode is not _Mode.FLUSH)
        out: list[Released] = []
        i = 0
        while i < len(held) and scan.ranges[i][1] <= scan.tail:
            out.append(self._release(held[i].segment, scan.ranges[i], scan, withhold_from=None))
            i += 1
        while (
            i < len(held)
            and (
                mode is not _Mode.NORMAL
                or not held[i].segment.text  # an empty segment only waits for the one before it
                or self._exceeds(held[i:], clock)
            )
        ):
            out.append(
                self._release(held[i].segment, scan.ranges[i], scan, withhold_from=scan.tail)
            )
            i += 1
        for h in held[:i]:
            context = self._extend(context, h.segment.text)
        return out, context, held[i:]

    def _preview(self, segment: Segment) -> list[Released]:
        if segment.id in self._final_ids:
            return []
        left, _ = _join(self._context, [h.segment.text for h in self._held])
        scan = self._scan(self._fit(left, [segment.text]), [segment.text], tail=True)
        return [
            self._release(
                segment, scan.ranges[0], scan, withhold_from=scan.tail, final=False, plain=True
            )
        ]

    def _fit(self, left: str, texts: list[str]) -> str:
        """The end of ``left`` that fits before ``texts`` within the redactor's limit."""
        n = _joined_len(texts)
        return _keep_end(left, self._redactor.max_chars - n - (1 if n else 0))

    def _extend(self, context: str, text: str) -> str:
        if not text:
            return context
        return _keep_end(f"{context} {text}" if context else text, self._context_chars)

    def _scan(self, left: str, texts: list[str], *, tail: bool) -> _Scan:
        text, ranges = _join(left, texts)
        findings = self._redactor.find(text)
        return _Scan(text, ranges, findings, self._redactor.open_tail(text) if tail else len(text))

    def _release(
        self,
        segment: Segment,
        span: tuple[int, int],
        scan: _Scan,
        *,
        withhold_from: int | None,
        final: bool = True,
        plain: bool = False,
    ) -> Released:
        """``segment`` (at ``span`` of the scanned text) with its part of the findings masked.

        With ``withhold_from``, every word from that offset of the scanned text
        on that no finding covers is withheld. ``plain`` gives ``[ENTITY]``
        labels instead of the stream's pseudonyms (previews must not number
        values that may never be final).
        """
        pseudonyms = None if plain else self._pseudonyms
        s, e = span
        text = segment.text
        masks: list[tuple[int, int, str]] = []
        findings: list[Finding] = []
        for f in scan.findings:
            cs, ce = max(f.start, s) - s, min(f.end, e) - s
            if cs >= ce:
                continue
            value = scan.text[f.start : f.end]
            label = apply(value, [Finding(0, len(value), f.entity, f.score)], pseudonyms)
            findings.append(Finding(cs, ce, f.entity, f.score))
            masks.append((cs, ce, label))
        withheld: list[tuple[int, int]] = []
        if withhold_from is not None and withhold_from < e:
            withheld = _withheld(
                text, segment.words, max(withhold_from - s, 0), [(m[0], m[1]) for m in masks]
            )
            # A value cut off by the window keeps the label its keyword announced, if any.
            announced = (
                self._redactor.pending_entity(scan.text, withhold_from) if withheld else None
            )
            if announced is not None:
                findings.extend(Finding(a, b, announced, 0.5) for a, b in withheld)
                masks.extend((a, b, f"[{announced}]") for a, b in withheld)
                withheld = []
            masks.extend((a, b, WITHHELD) for a, b in withheld)
        masks.sort()
        findings.sort(key=lambda f: f.start)
        spans = word_spans(segment.words)
        masked = tuple(any(ws < b and a < we for a, b, _ in masks) for ws, we in spans)
        return Released(
            segment_id=segment.id,
            text=_render(text, masks),
            findings=tuple(findings),
            words=segment.words,
            masked_words=masked,
            final=final,
            withheld=tuple(withheld),
        )


def _last_end(words: Sequence[Word], default: float) -> float:
    return max((w.end for w in words if math.isfinite(w.end)), default=default)


def _joined_len(texts: Sequence[str]) -> int:
    present = [len(t) for t in texts if t]
    return sum(present) + max(len(present) - 1, 0)


def _join(left: str, texts: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """``left`` and ``texts`` joined by single spaces, and where each of ``texts`` landed."""
    parts = [left]
    pos = len(left)
    ranges: list[tuple[int, int]] = []
    for t in texts:
        if t:
            if pos:
                parts.append(" ")
                pos += 1
            parts.append(t)
            ranges.append((pos, pos + len(t)))
            pos += len(t)
        else:
            ranges.append((pos, pos))
    return "".join(parts), ranges


def _keep_end(text: str, n: int) -> str:
    """At most the last ``n`` characters of ``text``, not starting inside a word."""
    if len(text) <= n:
        return text
    if n <= 0:
        return ""
    cut = text[len(text) - n :]
    if text[len(text) - n - 1] != " ":
        space = cut.find(" ")
        if space >= 0:
            cut = cut[space + 1 :]
    return cut.lstrip(" ")


def _withheld(
    text: str, words: Sequence[Word], start: int, covered: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Whole words of ``text`` reaching past ``start``, minus ``covered``, runs merged."""
    covered = sorted(covered)
    pieces: list[tuple[int, int]] = []
    for ws, we in word_spans(list(words)):
        if we <= start or ws == we:
            continue
        a = ws
        for cs, ce in covered:
            if ce <= a or cs >= we:
                continue
            if cs > a:
                pieces.append((a, cs))
            a = max(a, ce)
        if a < we:
            pieces.append((a, we))
    merged: list[tuple[int, int]] = []
    for a, b in pieces:
        if merged:
            pa, pb = merged[-1]
            gap_free = not text[pb:a].strip() and not any(pb <= cs < a for cs, _ in covered)
            if gap_free:
                merged[-1] = (pa, b)
                continue
        merged.append((a, b))
    return merged


def _render(text: str, masks: list[tuple[int, int, str]]) -> str:
    """``text`` with each (sorted) ``(start, end, label)`` span replaced; overlaps are unioned."""
    out: list[str] = []
    pos = 0
    for a, b, label in masks:
        if b <= pos:
            continue
        out.append(text[pos:a] if a > pos else "")
        out.append(label)
        pos = b
    out.append(text[pos:])
    return "".join(out)
