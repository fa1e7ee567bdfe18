"""The logging pipeline's redaction filter: a second wall behind ids-only logging."""

from __future__ import annotations

import io
import json
import logging

from callvault.logs import JsonFormatter, RedactingFilter, scrub


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
    assert "943" not in stream.getvalue()
    assert "john@example.com" not in stream.getvalue()
    assert "ValueError" in line["msg"]
    assert "call_abc" in line["msg"]
