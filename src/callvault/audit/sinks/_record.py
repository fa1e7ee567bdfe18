"""One log entry on its way to a SIEM, and the OCSF-shaped JSON every transport sends.

A :class:`Record` is (origin, index, entry): the log's C2SP origin, the
entry's index in that log, and the entry's canonical JSON bytes exactly as the
log stores them. Delivery is at-least-once, so receivers MUST dedupe by
(origin, index); a jump in ``index`` for one origin is a gap.

The body (:func:`ocsf_event`) is an OCSF event built from the entry:

- ``class_uid`` is the entry's; ``category_uid`` follows from it; the
  activity is "Other" (99) named by the entry's ``action``, since actions are
  callvault's own vocabulary and guessing Create/Read/Update/Delete from them
  would be a lie some of the time.
- ``status``: allowed/success are Success, denied/failure are Failure;
  ``severity_id`` is Informational (1) or Medium (3) respectively.
- ``metadata.log_name`` / ``metadata.sequence`` / ``metadata.uid`` carry the
  origin, the index and ``"<origin>/<index>"``; ``metadata.tenant_uid`` the tenant.
- ``raw_data`` is the untouched canonical entry as a string, so a receiver can
  re-hash it (``unmapped.leaf_hash`` is its RFC 9162 leaf hash, to compare with
  the log's inclusion proofs) and the OCSF fields never need to be trusted.

Shaping never fails: an entry that is not a JSON object (which the log never
writes) still goes out with its metadata and raw bytes, so one bad entry cannot
wedge a sink behind it forever. The JSON is RFC 8785 canonical, so a retried
batch is byte-identical and holds no newline or other control character.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rfc8785

OCSF_VERSION = "1.3.0"
PRODUCT = {"name": "callvault", "vendor_name": "callvault"}
#: Outcomes that make an event adverse: a syslog warning, an OCSF failure.
ADVERSE_OUTCOMES = frozenset({"denied", "failure"})

_ACTIVITY_OTHER = 99
_STATUS_SUCCESS, _STATUS_FAILURE = 1, 2
_SEVERITY_INFORMATIONAL, _SEVERITY_MEDIUM = 1, 3


@dataclass(frozen=True, slots=True)
class Record:
    """Entry ``index`` of the log named ``origin``, as its canonical JSON bytes."""

    origin: str
    index: int
    entry: bytes

    def __post_init__(self) -> None:
        if type(self.origin) is not str or not self.origin:
            raise ValueError("record origin must be a non-empty string")
        if type(self.index) is not int or self.index < 0:
            raise ValueError("record index must be a non-negative integer")
        if type(self.entry) is not bytes:
            raise ValueError("record entry must be bytes")

    @property
    def uid(self) -> str:
        """``<origin>/<index>``: unique across every callvault log."""
        return f"{self.origin}/{self.index}"


@dataclass(frozen=True, slots=True)
class EntryView:
    """The few entry fields transports look at; absent ones are None."""

    tenant: str | None
    time: str | None
    action: str | None
    outcome: str | None
    fields: dict[str, Any] | None

    @property
    def adverse(self) -> bool:
        return self.outcome in ADVERSE_OUTCOMES

    @classmethod
    def parse(cls, entry: bytes) -> EntryView:
        try:
            fields = json.loads(entry)
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            return cls(None, None, None, None, None)
        return cls(
            _str(fields.get("tenant")),
            _str(fields.get("time")),
            _str(fields.get("action")),
            _str(fields.get("outcome")),
            fields,
        )


def epoch_seconds(time: str | None) -> float | None:
    """The entry's RFC 3339 time as seconds since the epoch, or None."""
    if time is None:
        return None
    try:
        at = datetime.fromisoformat(time)
    except ValueError:
        return None
    return at.timestamp() if at.tzinfo is not None else None


def ocsf_event(record: Record, view: EntryView | None = None) -> dict[str, Any]:
    """The OCSF event for ``record`` (see the module docstring for the mapping)."""
    view = EntryView.parse(record.entry) if view is None else view
    metadata: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": PRODUCT,
        "log_name": record.origin,
        "sequence": record.index,
        "uid": record.uid,
    }
    event: dict[str, Any] = {"metadata": metadata}
    unmapped: dict[str, Any] = {"leaf_hash": hashlib.sha256(b"\x00" + record.entry).hexdigest()}
    try:
        event["raw_data"] = record.entry.decode("utf-8")
    except UnicodeDecodeError:
        unmapped["raw_data_b64"] = base64.b64encode(record.entry).decode("ascii")
    fields = view.fields
    if fields is None:
        event.update(class_uid=0, category_uid=0, activity_id=0, type_uid=0, severity_id=0)
        event["unmapped"] = unmapped
        return event
    class_uid = fields.get("class_uid")
    class_uid = class_uid if type(class_uid) is int and class_uid >= 0 else 0
    event.update(
        class_uid=class_uid,
        category_uid=class_uid // 1000,
        activity_id=_ACTIVITY_OTHER,
        type_uid=class_uid * 100 + _ACTIVITY_OTHER,
    )
    if view.action is not None:
        event["activity_name"] = view.action
        event["api"] = {"operation": view.action}
        if (request_id := _str(fields.get("request_id"))) is not None:
            event["api"]["request"] = {"uid": request_id}
    if view.outcome is not None:
        failed = view.adverse
        event["status_id"] = _STATUS_FAILURE if failed else _STATUS_SUCCESS
        event["status"] = "Failure" if failed else "Success"
        event["status_detail"] = view.outcome
        event["severity_id"] = _SEVERITY_MEDIUM if failed else _SEVERITY_INFORMATIONAL
    seconds = epoch_seconds(view.time)
    if seconds is not None:
        event["time"] = round(seconds * 1000)
    if view.time is not None:
        metadata["original_time"] = view.time
    if view.tenant is not None:
        metadata["tenant_uid"] = view.tenant
    if (actor := _str(fields.get("actor"))) is not None:
        event["actor"] = {"user": {"uid": actor}}
    resource = fields.get("resource")
    if isinstance(resource, dict):
        event["resources"] = [
            {k: v for k, v in (("type", resource.get("kind")), ("uid", resource.get("id"))) if v}
        ]
    unmapped["entry_version"] = fields.get("v")
    unmapped["detail"] = fields.get("detail")
    event["unmapped"] = unmapped
    return event


def ocsf_json(record: Record, view: EntryView | None = None) -> bytes:
    """:func:`ocsf_event` as RFC 8785 canonical JSON (UTF-8, no control characters)."""
    event = ocsf_event(record, view)
    try:
        data: bytes = rfc8785.dumps(event)
    except rfc8785.CanonicalizationError:
        # A number outside I-JSON's range in ``detail``: the log never writes
        # one, but shaping must not fail; plain compact JSON still escapes
        # every control character.
        return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return data


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
