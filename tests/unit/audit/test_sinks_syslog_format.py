"""RFC 5424 messages and RFC 5425 octet-counting frames, byte for byte."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from callvault.audit import AuditEvent, Outcome, entry_bytes
from callvault.audit.sinks import Record, escape_param_value, frame, ocsf_json, syslog_message
from callvault.audit.sinks._syslog import printusascii

AT = datetime(2025, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)


def _record(
    action: str = "call.read", outcome: Outcome = Outcome.SUCCESS, origin: str = "cv/audit/t"
) -> Record:
    event = AuditEvent(action, outcome, "prn_1", "call", "call_1", detail={"city": "Zürich"})
    return Record(origin, 7, entry_bytes("ten_1", event, AT))


def test_octet_count_is_in_bytes_not_characters() -> None:
    message = "é✓東".encode()
    assert len(message) == 8
    assert frame(message) == b"8 " + message


def test_frames_split_back_by_their_counts() -> None:
    messages = [syslog_message(_record(), facility=13, hostname="h") for _ in range(3)]
    stream, out = b"".join(frame(m) for m in messages), []
    while stream:
        length, _, rest = stream.partition(b" ")
        out.append(rest[: int(length)])
        stream = rest[int(length) :]
    assert out == messages


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ('a"b', 'a\\"b'),
        ("a\\b", "a\\\\b"),
        ("a]b", "a\\]b"),
        ('\\"]', '\\\\\\"\\]'),
        ("plain/é", "plain/é"),
    ],
)
def test_sd_param_values_escape_quote_backslash_and_bracket(raw: str, escaped: str) -> None:
    assert escape_param_value(raw) == escaped


def test_message_layout() -> None:
    record = _record()
    message = syslog_message(record, facility=13, hostname="cv-host")
    header = (
        "<109>1 2025-03-01T12:30:45.123456Z cv-host callvault - call.read "
        '[callvault@32473 origin="cv/audit/t" index="7" tenant="ten_1"] '
    )
    assert message == header.encode() + ocsf_json(record)
    assert not message.startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize(
    ("outcome", "facility", "pri"),
    [
        (Outcome.SUCCESS, 13, 13 * 8 + 5),
        (Outcome.ALLOWED, 13, 13 * 8 + 5),
        (Outcome.DENIED, 13, 13 * 8 + 4),
        (Outcome.FAILURE, 10, 10 * 8 + 4),
    ],
)
def test_pri_is_facility_and_severity_from_the_outcome(
    outcome: Outcome, facility: int, pri: int
) -> None:
    message = syslog_message(_record(outcome=outcome), facility=facility, hostname="h")
    assert message.startswith(f"<{pri}>1 ".encode())


def test_sd_escapes_an_awkward_origin() -> None:
    message = syslog_message(_record(origin='o/"x]\\y'), facility=13, hostname="h")
    assert b'origin="o/\\"x\\]\\\\y"' in message


def test_msgid_is_printable_ascii_of_at_most_32() -> None:
    message = syslog_message(
        _record(action="très long action name " * 3), facility=13, hostname="h"
    )
    msgid = message.split(b" ")[5].decode()
    assert len(msgid) == 32
    assert re.fullmatch(r"[!-~]+", msgid)


def test_unusable_header_values_become_nil() -> None:
    assert printusascii("", 255) == "-"
    assert printusascii(None, 32) == "-"
    assert printusascii("a b\tc", 255) == "a_b_c"
    record = Record("o", 0, b'{"time":"yesterday"}')
    assert syslog_message(record, facility=13, hostname="h").startswith(
        b"<109>1 - h callvault - - "
    )
