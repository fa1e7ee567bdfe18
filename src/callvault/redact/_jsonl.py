"""JSON Lines in, redacted JSON Lines out: the engine as a streaming filter.

Each input line is an object ``{"id": <string or integer>, "text": <string>}``;
other keys are ignored. Each input line gets exactly one output line, written
and flushed before the next input line is read, so the filter streams through
a pipe in constant memory:

* ``{"id": ..., "redacted": ..., "findings": [{"start", "end", "entity", "score"}]}``
  when the line was redacted. ``start``/``end`` are Python ``str`` indices
  (Unicode code points, not bytes or UTF-16 units) into the *input* text.
* ``{"id": <id, or null if it could not be read>, "line": N, "error": <code>}``
  when it was not (codes in :data:`ERROR_CODES`). The gap is visible
  downstream; the stream goes on with the next line.

Rules for the awkward cases:

1. A UTF-8 byte order mark is dropped from the first line only.
2. A line ends at ``\\n``; a ``\\r`` before it is whitespace (CRLF files work).
3. A blank (empty or whitespace-only) line is an error (``blank-line``), not
   skipped, so output line N always answers input line N.
4. A line longer than ``max_line_bytes`` is refused (``line-too-long``) and
   the rest of it is read and discarded in small chunks: the reader never
   holds more than ``max_line_bytes + 1`` bytes of one line.
5. A text longer than the redactor's ``max_chars`` is refused (``text-too-long``).
6. Error reports name the line number and the problem, never the content.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

from callvault.errors import PayloadTooLargeError
from callvault.redact._engine import Pseudonyms, Redactor, apply

_BOM: Final = b"\xef\xbb\xbf"
_JSON_SPACE: Final = b" \t\r\n"
_DRAIN_CHUNK: Final = 65_536

#: Bytes of JSON allowed per character of text (a non-BMP character escaped
#: as two ``\\u`` escapes takes 12; four covers any UTF-8 text written plainly).
BYTES_PER_CHAR: Final = 4
#: Room on a line for the id, the keys and the punctuation around the text.
LINE_OVERHEAD_BYTES: Final = 65_536

ERROR_CODES: Final = {
    "line-too-long": "line longer than {limit} bytes",
    "invalid-utf8": "not valid UTF-8 (byte {offset})",
    "blank-line": "blank line",
    "invalid-json": "not valid JSON",
    "not-an-object": "not a JSON object",
    "missing-id": 'no "id"',
    "bad-id": '"id" is not a string or an integer',
    "missing-text": 'no "text"',
    "bad-text": '"text" is not a string',
    "text-too-long": "text of {chars} characters exceeds the limit of {limit}",
    "redaction-failed": "the redactor failed ({kind})",
}


def max_line_bytes_for(max_chars: int) -> int:
    """The longest input line accepted for texts of up to ``max_chars`` characters."""
    return BYTES_PER_CHAR * max_chars + LINE_OVERHEAD_BYTES


@dataclass(frozen=True, slots=True)
class LineError:
    """One refused line: its number (from 1), a code and a message free of content."""

    line: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Summary:
    """How many lines were read, and how many of them were answered with an error."""

    lines: int
    failed: int


class _Refused(Exception):  # noqa: N818 - internal control flow, never escapes this module
    def __init__(self, code: str, id_: str | int | None = None, **details: object) -> None:
        super().__init__(code)
        self.code = code
        self.id = id_
        self.message = ERROR_CODES[code].format(**details)


def redact_jsonl(
    source: BinaryIO,
    sink: BinaryIO,
    redactor: Redactor,
    *,
    pseudonyms: Pseudonyms | None = None,
    on_error: Callable[[LineError], None] | None = None,
    max_line_bytes: int | None = None,
) -> Summary:
    """Redact every JSON line of ``source`` onto ``sink``; one output line per input line.

    ``pseudonyms``, when given, is shared by the whole stream: the same value
    gets the same ``[ENTITY_n]`` on every line (it remembers each distinct
    value seen, so memory then grows with the number of distinct values).
    ``on_error`` is called once per refused line, after its error record is
    written. ``max_line_bytes`` defaults to :func:`max_line_bytes_for` the
    redactor's ``max_chars``.
    """
    limit = max_line_bytes_for(redactor.max_chars) if max_line_bytes is None else max_line_bytes
    lines = failed = 0
    while True:
        raw = source.readline(limit + 1)
        if not raw:
            return Summary(lines, failed)
        lines += 1
        answer: dict[str, Any] | _Refused
        if len(raw) > limit and not raw.endswith(b"\n"):
            _discard_rest_of_line(source)
            answer = _Refused("line-too-long", limit=limit)
        else:
            try:
                answer = _answer(
                    raw.removeprefix(_BOM) if lines == 1 else raw, redactor, pseudonyms
                )
            except _Refused as exc:
                answer = exc
        if isinstance(answer, _Refused):
            failed += 1
            _write(sink, {"id": answer.id, "line": lines, "error": answer.code})
            if on_error is not None:
                on_error(LineError(lines, answer.code, answer.message))
        else:
            _write(sink, answer)


def _discard_rest_of_line(source: BinaryIO) -> None:
    while True:
        chunk = source.readline(_DRAIN_CHUNK)
        if not chunk or chunk.endswith(b"\n"):
            return


def _answer(raw: bytes, redactor: Redactor, pseudonyms: Pseudonyms | None) -> dict[str, Any]:
    if not raw.strip(_JSON_SPACE):
        raise _Refused("blank-line")
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refused("invalid-utf8", offset=exc.start + 1) from None
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and over-long integer literals;
        # deep nesting raises RecursionError. Neither message is echoed.
        raise _Refused("invalid-json") from None
    if not isinstance(obj, dict):
        raise _Refused("not-an-object")
    if "id" not in obj:
        raise _Refused("missing-id")
    id_ = obj["id"]
    if isinstance(id_, bool) or not isinstance(id_, str | int):
        raise _Refused("bad-id")
    if "text" not in obj:
        raise _Refused("missing-text", id_)
    text = obj["text"]
    if not isinstance(text, str):
        raise _Refused("bad-text", id_)
    if len(text) > redactor.max_chars:
        raise _Refused("text-too-long", id_, chars=len(text), limit=redactor.max_chars)
    try:
        findings = redactor.find(text)
        redacted = apply(text, findings, pseudonyms)
    except PayloadTooLargeError:
        raise _Refused("text-too-long", id_, chars=len(text), limit=redactor.max_chars) from None
    except Exception as exc:  # noqa: BLE001 - one line fails closed (no text out); the stream goes on
        raise _Refused("redaction-failed", id_, kind=type(exc).__name__) from None
    return {
        "id": id_,
        "redacted": redacted,
        "findings": [
            {"start": f.start, "end": f.end, "entity": f.entity, "score": f.score} for f in findings
        ],
    }


def _write(sink: BinaryIO, record: dict[str, Any]) -> None:
    try:
        data = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (from a "\ud800" escape in the input) has no UTF-8
        # form; write it escaped, as JSON allows, rather than drop the line.
        data = json.dumps(record, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    sink.write(data + b"\n")
    sink.flush()
