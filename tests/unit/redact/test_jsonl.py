"""The JSON Lines filter: one answer per line, bad lines visible and never fatal."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callvault.redact import Finding, Pseudonyms, Redactor
from callvault.redact._jsonl import (
    ERROR_CODES,
    LineError,
    Summary,
    max_line_bytes_for,
    redact_jsonl,
)

CARD = "4111 1111 1111 1111"
SECRET = "Jane Q Secretname 4111 1111 1111 1111"


def run(
    data: bytes, redactor: Redactor | None = None, **kwargs: Any
) -> tuple[list[dict[str, Any]], list[LineError], Summary]:
    problems: list[LineError] = []
    sink = io.BytesIO()
    summary = redact_jsonl(
        io.BytesIO(data), sink, redactor or Redactor(), on_error=problems.append, **kwargs
    )
    out = sink.getvalue()
    assert out == b"" or out.endswith(b"\n")
    return [json.loads(line) for line in out.splitlines()], problems, summary


def line(id_: object, text: object) -> bytes:
    return json.dumps({"id": id_, "text": text}).encode() + b"\n"


def test_each_line_is_answered_in_order_with_the_engines_findings() -> None:
    texts = ["my card is " + CARD + " thanks", "nothing to see here", ""]
    data = b"".join(line(i, t) for i, t in enumerate(texts))
    records, problems, summary = run(data)
    assert summary == Summary(lines=3, failed=0)
    assert problems == []
    engine = Redactor()
    for i, (text, record) in enumerate(zip(texts, records, strict=True)):
        findings = engine.find(text)
        assert record == {
            "id": i,
            "redacted": engine.redact(text),
            "findings": [
                {"start": f.start, "end": f.end, "entity": f.entity, "score": f.score}
                for f in findings
            ],
        }
    assert CARD not in records[0]["redacted"]


def test_offsets_are_code_point_indices_into_the_input_text() -> None:
    text = "😀 ünïcode first, then " + CARD
    (record,), _, _ = run(line("call_1", text))
    (finding,) = record["findings"]
    assert text[finding["start"] : finding["end"]].replace(" ", "") == CARD.replace(" ", "")
    # Not byte or UTF-16 offsets: the emoji counts as one.
    assert finding["start"] == text.index("4111")


def test_string_and_integer_ids_come_back_as_given() -> None:
    records, _, _ = run(line("seg-7", "a") + line(12345678901234567890, "b"))
    assert [r["id"] for r in records] == ["seg-7", 12345678901234567890]


def test_empty_text_is_answered_with_no_findings() -> None:
    records, problems, _ = run(line("x", ""))
    assert records == [{"id": "x", "redacted": "", "findings": []}]
    assert problems == []


def test_a_byte_order_mark_is_dropped_from_the_first_line_only() -> None:
    data = b"\xef\xbb\xbf" + line(1, CARD) + b"\xef\xbb\xbf" + line(2, CARD)
    records, problems, summary = run(data)
    assert "redacted" in records[0]
    assert records[1] == {"id": None, "line": 2, "error": "invalid-json"}
    assert [(p.line, p.code) for p in problems] == [(2, "invalid-json")]
    assert summary == Summary(2, 1)


def test_crlf_line_ends_are_accepted() -> None:
    data = b'{"id": 1, "text": "a"}\r\n{"id": 2, "text": "b"}\r\n'
    records, problems, _ = run(data)
    assert [r["redacted"] for r in records] == ["a", "b"]
    assert problems == []


def test_a_last_line_without_a_newline_is_answered() -> None:
    records, _, summary = run(line(1, "a") + b'{"id": 2, "text": "b"}')
    assert [r["id"] for r in records] == [1, 2]
    assert summary.lines == 2


@pytest.mark.parametrize("blank", [b"\n", b"\r\n", b"   \t \n"])
def test_a_blank_line_is_an_error_so_output_line_n_answers_input_line_n(blank: bytes) -> None:
    records, problems, summary = run(line(1, "a") + blank + line(3, "c"))
    assert records[1] == {"id": None, "line": 2, "error": "blank-line"}
    assert [r.get("id") for r in records] == [1, None, 3]
    assert [(p.line, p.code) for p in problems] == [(2, "blank-line")]
    assert summary == Summary(3, 1)


@pytest.mark.parametrize(
    ("raw", "code", "id_"),
    [
        (b'{"id": 1, "text": "caf\xe9 ' + SECRET.encode() + b'"}', "invalid-utf8", None),
        (b"\xff\xfe" + SECRET.encode(), "invalid-utf8", None),
        (b'{"id": 1, "text": "' + SECRET.encode(), "invalid-json", None),
        (SECRET.encode(), "invalid-json", None),
        (b"[" * 100_000 + b"]" * 100_000, "invalid-json", None),
        (b'{"id": ' + b"9" * 5000 + b', "text": "x"}', "invalid-json", None),
        (json.dumps([SECRET]).encode(), "not-an-object", None),
        (json.dumps(SECRET).encode(), "not-an-object", None),
        (json.dumps({"text": SECRET}).encode(), "missing-id", None),
        (json.dumps({"id": 1.5, "text": SECRET}).encode(), "bad-id", None),
        (json.dumps({"id": True, "text": SECRET}).encode(), "bad-id", None),
        (json.dumps({"id": None, "text": SECRET}).encode(), "bad-id", None),
        (json.dumps({"id": [SECRET], "text": "x"}).encode(), "bad-id", None),
        (json.dumps({"id": "s1"}).encode(), "missing-text", "s1"),
        (json.dumps({"id": "s1", "text": None}).encode(), "bad-text", "s1"),
        (json.dumps({"id": 9, "text": [SECRET]}).encode(), "bad-text", 9),
    ],
)
def test_a_bad_line_is_answered_with_its_error_and_the_stream_goes_on(
    raw: bytes, code: str, id_: object
) -> None:
    data = line("before", "a") + raw + b"\n" + line("after", "b")
    records, problems, summary = run(data)
    assert records[0]["id"] == "before"
    assert records[1] == {"id": id_, "line": 2, "error": code}
    assert records[2]["id"] == "after"
    assert summary == Summary(3, 1)
    (problem,) = problems
    assert (problem.line, problem.code) == (2, code)
    assert code in ERROR_CODES
    for word in ("Secretname", "4111", "Jane"):
        assert word not in problem.message


def test_a_text_over_the_limit_is_refused_with_its_id() -> None:
    records, problems, _ = run(
        line("long", "x" * 11) + line("ok", "x" * 10), Redactor(max_chars=10)
    )
    assert records[0] == {"id": "long", "line": 1, "error": "text-too-long"}
    assert records[1]["redacted"] == "x" * 10
    assert problems[0].message == "text of 11 characters exceeds the limit of 10"


class CountingReader(io.BytesIO):
    """A stream that remembers the most bytes any one read handed out."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.largest = 0

    def readline(self, size: int | None = -1, /) -> bytes:
        assert size is not None
        assert size > 0, "the filter must always bound its reads"
        chunk = super().readline(size)
        self.largest = max(self.largest, len(chunk))
        return chunk

    def read(self, _size: int | None = -1, /) -> bytes:
        raise AssertionError("the filter reads lines, bounded")


def test_a_5mb_line_is_refused_without_being_held_whole_and_the_stream_goes_on() -> None:
    redactor = Redactor()  # the default limit: 1 Mi characters
    limit = max_line_bytes_for(redactor.max_chars)
    huge = b'{"id": "big", "text": "' + b"7" * (5 * 1024 * 1024) + b'"}\n'
    source = CountingReader(line(1, "a") + huge + line(3, "c"))
    sink = io.BytesIO()
    problems: list[LineError] = []
    summary = redact_jsonl(source, sink, redactor, on_error=problems.append)
    records = [json.loads(x) for x in sink.getvalue().splitlines()]
    assert records[1] == {"id": None, "line": 2, "error": "line-too-long"}
    assert [r["id"] for r in records] == [1, None, 3]
    assert summary == Summary(3, 1)
    assert problems[0].code == "line-too-long"
    assert source.largest <= limit + 1
    assert limit <= 4 * redactor.max_chars + 65_536


def test_a_line_exactly_at_the_limit_is_read_and_one_byte_more_is_not() -> None:
    fits = line("a", "x" * 50)
    limit = len(fits) - 1  # without its newline
    records, _, _ = run(fits + fits[:-1] + b" \n" + fits, max_line_bytes=limit)
    assert [r.get("error") for r in records] == [None, "line-too-long", None]
    # A last line with no newline is measured the same way.
    records, _, _ = run(fits[:-1] + b" ", max_line_bytes=limit)
    assert records == [{"id": None, "line": 1, "error": "line-too-long"}]


def test_pseudonyms_are_stable_across_the_whole_stream() -> None:
    text = "card " + CARD
    if not Redactor().find(text):
        pytest.skip("the engine finds no card here")
    records, _, _ = run(line(1, text) + line(2, text), pseudonyms=Pseudonyms())
    assert records[0]["redacted"] == records[1]["redacted"] == "card [CARD_NUMBER_1]"


class ExplodingRedactor(Redactor):
    def find(self, text: str) -> list[Finding]:
        if "boom" in text:
            raise RuntimeError(f"engine bug while reading {text}")
        return super().find(text)


def test_an_engine_failure_fails_that_line_closed_and_names_no_content() -> None:
    records, problems, summary = run(
        line(1, "boom " + SECRET) + line(2, "fine"), ExplodingRedactor()
    )
    assert records[0] == {"id": 1, "line": 1, "error": "redaction-failed"}
    assert records[1]["redacted"] == "fine"
    assert problems[0].message == "the redactor failed (RuntimeError)"
    assert summary == Summary(2, 1)


def test_a_lone_surrogate_in_the_text_is_written_as_valid_json() -> None:
    records, problems, _ = run(b'{"id": 1, "text": "a\\ud800b"}\n')
    assert problems == []
    assert records[0]["redacted"] == "a\ud800b"


class FlushCountingSink(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.lines_at_flush: list[int] = []

    def flush(self) -> None:
        self.lines_at_flush.append(self.getvalue().count(b"\n"))
        super().flush()


def test_every_answer_is_flushed_before_the_next_line_is_read() -> None:
    sink = FlushCountingSink()
    data = line(1, "a") + b"oops\n" + line(3, "c")
    redact_jsonl(io.BytesIO(data), sink, Redactor())
    assert sink.lines_at_flush == [1, 2, 3]


_json_line = st.builds(
    lambda id_, text: json.dumps({"id": id_, "text": text}).encode(),
    st.one_of(st.integers(), st.text(max_size=10), st.none(), st.floats()),
    st.one_of(st.text(max_size=80), st.integers()),
)
_any_line = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
    _json_line,
    st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass").replace(b"\n", b"")),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_any_line, max_size=12), crlf=st.booleans(), final_newline=st.booleans())
def test_fuzz_any_bytes_get_one_json_answer_per_line(
    lines: list[bytes], crlf: bool, final_newline: bool
) -> None:
    end = b"\r\n" if crlf else b"\n"
    data = end.join(lines) + (end if final_newline and lines else b"")
    records, problems, summary = run(data, Redactor(max_chars=50))
    expected = len(data.split(b"\n")) - (1 if data.endswith(b"\n") or not data else 0)
    assert summary.lines == len(records) == expected
    assert summary.failed == len(problems) == sum("error" in r for r in records)
    for n, record in enumerate(records, start=1):
        assert isinstance(record, dict)
        if "error" in record:
            assert record["line"] == n
            assert record["error"] in ERROR_CODES
        else:
            assert set(record) == {"id", "redacted", "findings"}
