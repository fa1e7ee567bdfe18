"""The logging pipeline's redaction filter: a second wall behind ids-only logging."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault import logs
from callvault.logs import MAX_DEPTH, JsonFormatter, RedactingFilter, scrub
from callvault.redact import Finding, Redactor, apply


def test_scrub_masks_long_numbers_and_emails_but_keeps_small_counts() -> None:
    out = scrub("card 4111 1111 1111 1111 from a@b.com took 12 ms, 3 segments")
    assert "4111" not in out
    assert "a@b.com" not in out
    assert "12 ms" in out
    assert "3 segments" in out


def test_exception_messages_never_reach_the_log() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("test.scrub")
    log.handlers[:] = [handler]
    log.propagate = False

    def fail() -> None:
        raise ValueError("caller said 943 476 5919 and john@example.com")

    try:
        fail()
    except ValueError:
        log.exception("failed for %s", "call_abc")
    line = json.loads(stream.getvalue())
    # (not just "943": the record's millisecond timestamp may read .943)
    assert "943 476" not in stream.getvalue()
    assert "5919" not in stream.getvalue()
    assert "john@example.com" not in stream.getvalue()
    assert "ValueError" in line["msg"]
    assert "call_abc" in line["msg"]


# -- the engine in the pipeline, and the second wall behind it ----------------------------

SPOKEN_CARD = "my card is four one one one one one one one one one one one one one one one"


def _logger(name: str, *, with_filter: bool = True) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    if with_filter:
        handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger(name)
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log, stream


def _line(stream: io.StringIO) -> dict[str, Any]:
    (only,) = stream.getvalue().splitlines()
    out: dict[str, Any] = json.loads(only)
    return out


def test_an_extra_field_goes_through_the_engine_as_it_finds_entities() -> None:
    log, stream = _logger("test.scrub.engine")
    log.info("segment done", extra={"note": SPOKEN_CARD})
    expected = apply(SPOKEN_CARD, Redactor().find(SPOKEN_CARD))
    assert _line(stream)["note"] == expected
    for finding in Redactor().find(SPOKEN_CARD):
        assert SPOKEN_CARD[finding.start : finding.end] not in _line(stream)["note"]


def test_a_spoken_card_number_in_an_extra_field_is_masked() -> None:
    log, stream = _logger("test.scrub.spoken")
    log.info("segment done", extra={"note": SPOKEN_CARD})
    note = _line(stream)["note"]
    assert "[CARD_NUMBER" in note
    assert "four one one one" not in note


def test_written_card_numbers_and_emails_are_masked_in_every_string_field() -> None:
    log, stream = _logger("test.scrub.fields")
    log.info(
        "caller %s gave %s",
        "call_01HXYZ",
        "4111 1111 1111 1111",
        extra={
            "plain": "card 4111-1111-1111-1111 from jo.bloggs@example.co.uk",
            "nested": {
                "jo.bloggs@example.co.uk": ["x", {"deep": "4111111111111111"}],
                "count": 3,
                "ok": True,
            },
            "items": ("5500 0000 0000 0004", 42, None),
        },
    )
    raw = stream.getvalue()
    for secret in ("4111", "1111", "5500", "0004", "jo.bloggs", "example.co.uk"):
        assert secret not in raw
    line = _line(stream)
    assert "call_01HXYZ" in line["msg"]
    assert line["nested"]["count"] == 3
    assert line["nested"]["ok"] is True
    assert line["items"][1:] == [42, None]


def test_ids_and_small_counts_survive_the_second_wall() -> None:
    text = "ten_01HX2345ABCD call_9876 took 12 ms, 3 segments, 2024 rows? no: v1.2.3"
    out = scrub(text)
    for kept in ("ten_01HX2345ABCD", "call_9876", "12 ms", "3 segments", "v1.2.3"):
        assert kept in out
    assert "2024" not in out


def test_non_string_extras_are_logged_as_scrubbed_text() -> None:
    class Holder:
        def __str__(self) -> str:
            return "holder of 4111 1111 1111 1111"

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("4111 1111 1111 1111")

    log, stream = _logger("test.scrub.objects")
    log.info("x", extra={"obj": Holder(), "broken": Broken(), "blob": b"4111111111111111"})
    assert "4111" not in stream.getvalue()
    line = _line(stream)
    assert line["obj"].startswith("holder of ")
    assert line["broken"] == "[redaction failed]"


def test_deep_or_cyclic_extras_are_cut_at_the_depth_bound() -> None:
    cyclic: list[object] = ["4111 1111 1111 1111"]
    cyclic.append(cyclic)
    log, stream = _logger("test.scrub.deep")
    log.info("x", extra={"cyclic": cyclic})
    assert "4111" not in stream.getvalue()
    node = _line(stream)["cyclic"]
    for _ in range(MAX_DEPTH):
        node = node[1]
    assert node == "[too deep]"


def test_an_engine_failure_writes_the_record_with_the_text_withheld(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Exploding(Redactor):
        def find(self, text: str) -> list[Finding]:
            raise RuntimeError(f"bug at {len(text)}")

    monkeypatch.setattr(logs, "_redactor", Exploding())
    log, stream = _logger("test.scrub.failure")
    log.warning("caller said %s", "jo@example.com", extra={"note": "4111 1111 1111 1111"})
    line = _line(stream)
    assert line["msg"] == "[redaction failed]"
    assert line["note"] == "[redaction failed]"
    assert line["level"] == "warning"


def test_a_text_over_the_engines_limit_is_replaced_by_its_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logs, "_redactor", Redactor(max_chars=20))
    log, stream = _logger("test.scrub.long")
    log.info("short", extra={"note": "x" * 21})
    line = _line(stream)
    assert line["msg"] == "short"
    assert line["note"] == "[too long: 21 chars]"


def test_a_bad_format_string_still_writes_a_record() -> None:
    log, stream = _logger("test.scrub.format")
    log.info("%s and %s", "only one 4111 1111 1111 1111")  # noqa: PLE1206 - the mismatch is the test
    assert _line(stream)["msg"] == "[message could not be formatted]"


def test_the_formatter_alone_still_scrubs_and_a_record_is_scrubbed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    class Counting(Redactor):
        def find(self, text: str) -> list[Finding]:
            calls.append(text)
            return super().find(text)

    monkeypatch.setattr(logs, "_redactor", Counting())
    log, stream = _logger("test.scrub.alone", with_filter=False)
    second = io.StringIO()
    other = logging.StreamHandler(second)
    other.addFilter(RedactingFilter())
    other.setFormatter(JsonFormatter())
    log.addHandler(other)
    log.info("card %s", "4111 1111 1111 1111", extra={"note": "a@b.com"})
    for out in (stream, second):
        assert "4111" not in out.getvalue()
        assert "a@b.com" not in out.getvalue()
    assert len(calls) == 2  # msg and note, once for both handlers


def test_importing_logs_does_not_load_the_engine() -> None:
    code = "import sys, callvault.logs; print('callvault.redact' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


_OLD_DIGITS = re.compile(r"(?<![A-Za-z0-9_])\d[\d \-]{2,}\d(?![A-Za-z0-9_])")
_OLD_EMAIL = re.compile(r"[^\s@\"']+@[^\s@\"']+\.[A-Za-z]{2,}")


def _old_wall(text: str) -> str:
    text = _OLD_EMAIL.sub("[EMAIL]", text)
    return _OLD_DIGITS.sub(
        lambda m: "[NUMBER]" if sum(c.isdigit() for c in m.group()) >= 4 else m.group(), text
    )


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="0123456789 -_@.'\"aZé٣\t\n", max_size=40))
def test_the_linear_second_wall_masks_exactly_what_the_old_regexes_did(text: str) -> None:
    # Same masks, without the regexes' quadratic backtracking on long runs.
    assert logs._mask_digits(logs._mask_emails(text)) == _old_wall(text)


def test_a_log_call_from_inside_the_engine_does_not_recurse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log, stream = _logger("test.scrub.reentrant")

    class Chatty(Redactor):
        def find(self, text: str) -> list[Finding]:
            log.info("engine saw %d chars", len(text), extra={"n": "4111 1111 1111 1111"})
            return super().find(text)

    monkeypatch.setattr(logs, "_redactor", Chatty())
    log.info("outer")
    first, second = (json.loads(x) for x in stream.getvalue().splitlines())
    assert first["msg"] == "engine saw 5 chars"
    assert first["n"] == "[NUMBER]"  # the second wall still stands
    assert second["msg"] == "outer"
