"""The OCSF body every sink receives: (origin, index) and the untouched entry, always."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from callvault.audit import AuditEvent, Outcome, entry_bytes
from callvault.audit.sinks import Record, ocsf_event, ocsf_json

AT = datetime(2025, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)
ORIGIN = "callvault.localhost/audit/ten_abc"


def _entry(outcome: Outcome = Outcome.DENIED, **detail: object) -> bytes:
    event = AuditEvent(
        "call.transcript.read",
        outcome,
        "prn_1",
        "call",
        "call_9",
        request_id="req_7",
        detail=dict(detail),
    )
    return entry_bytes("ten_abc", event, AT)


def test_event_maps_the_entry_and_names_its_log_position() -> None:
    entry = _entry(reason="policy")
    event = ocsf_event(Record(ORIGIN, 41, entry))
    assert event["metadata"] == {
        "version": "1.3.0",
        "product": {"name": "callvault", "vendor_name": "callvault"},
        "log_name": ORIGIN,
        "sequence": 41,
        "uid": f"{ORIGIN}/41",
        "tenant_uid": "ten_abc",
        "original_time": "2025-03-01T12:30:45.123456Z",
    }
    assert event["class_uid"] == 6003
    assert event["category_uid"] == 6
    assert (event["activity_id"], event["type_uid"]) == (99, 600399)
    assert event["activity_name"] == "call.transcript.read"
    assert event["api"] == {"operation": "call.transcript.read", "request": {"uid": "req_7"}}
    assert event["actor"] == {"user": {"uid": "prn_1"}}
    assert event["resources"] == [{"type": "call", "uid": "call_9"}]
    assert (event["status"], event["status_id"], event["severity_id"]) == ("Failure", 2, 3)
    assert event["status_detail"] == "denied"
    assert event["time"] == int(AT.timestamp() * 1000)
    assert event["unmapped"]["detail"] == {"reason": "policy"}
    assert event["unmapped"]["leaf_hash"] == hashlib.sha256(b"\x00" + entry).hexdigest()


def test_raw_data_is_the_exact_entry_so_receivers_can_rehash_it() -> None:
    entry = _entry(label="zürich ✓ 東京")
    body = json.loads(ocsf_json(Record(ORIGIN, 0, entry)))
    assert body["raw_data"].encode("utf-8") == entry


@pytest.mark.parametrize("outcome", [Outcome.SUCCESS, Outcome.ALLOWED])
def test_success_outcomes_are_informational(outcome: Outcome) -> None:
    event = ocsf_event(Record(ORIGIN, 0, _entry(outcome)))
    assert (event["status"], event["status_id"], event["severity_id"]) == ("Success", 1, 1)


def test_json_is_canonical_single_line_and_stable() -> None:
    record = Record(ORIGIN, 3, _entry(note="line\nbreak\ttab"))
    body = ocsf_json(record)
    assert body == ocsf_json(record)
    assert all(byte >= 0x20 for byte in body)
    assert json.loads(body)["unmapped"]["detail"] == {"note": "line\nbreak\ttab"}


@pytest.mark.parametrize("entry", [b"not json", b"[1,2]", b"\xff\xfe", b""])
def test_a_malformed_entry_still_goes_out_with_its_position(entry: bytes) -> None:
    event = json.loads(ocsf_json(Record(ORIGIN, 5, entry)))
    assert event["metadata"]["uid"] == f"{ORIGIN}/5"
    assert event["class_uid"] == 0
    raw = event.get("raw_data")
    assert raw.encode() == entry if raw is not None else event["unmapped"]["raw_data_b64"]


def test_numbers_outside_i_json_do_not_stop_shaping() -> None:
    entry = b'{"action":"x","detail":{"n":18446744073709551615},"outcome":"success"}'
    event = json.loads(ocsf_json(Record(ORIGIN, 0, entry)))
    assert event["unmapped"]["detail"] == {"n": 18446744073709551615}


@pytest.mark.parametrize(
    ("origin", "index", "entry"),
    [("", 0, b"{}"), (ORIGIN, -1, b"{}"), (ORIGIN, True, b"{}"), (ORIGIN, 0, "{}")],
)
def test_record_cannot_be_built_invalid(origin: str, index: int, entry: bytes) -> None:
    with pytest.raises(ValueError, match="record"):
        Record(origin, index, entry)
