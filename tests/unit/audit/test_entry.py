"""Audit entries are exactly RFC 8785 canonical JSON, however their fields are spelled."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.audit._entry import AuditEvent, Outcome, entry_bytes, entry_object


def _result(fn: Callable[[], bytes]) -> bytes | type[Exception]:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - comparing which error each side raises
        return type(exc)


_text = st.text(max_size=30)
_detail = st.dictionaries(
    st.text(max_size=8),
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _text | st.lists(_text),
    max_size=4,
)


@settings(max_examples=800, deadline=None)
@given(
    tenant=_text,
    action=_text,
    actor=_text,
    kind=_text,
    rid=_text,
    request_id=st.none() | _text,
    outcome=st.sampled_from(list(Outcome)),
    ocsf=st.integers(0, 10_000),
    detail=_detail,
    micro=st.integers(0, 999_999),
)
def test_entries_are_the_reference_encoding_of_their_object(
    tenant: str,
    action: str,
    actor: str,
    kind: str,
    rid: str,
    request_id: str | None,
    outcome: Outcome,
    ocsf: int,
    detail: dict[str, object],
    micro: int,
) -> None:
    at = datetime(2026, 11, 27, 12, 0, 0, micro, tzinfo=UTC)
    event = AuditEvent(action, outcome, actor, kind, rid, request_id, ocsf, detail)
    expected = _result(lambda: rfc8785.dumps(entry_object(tenant, event, at)))
    assert _result(lambda: entry_bytes(tenant, event, at)) == expected


def test_a_lone_surrogate_anywhere_is_refused_like_the_reference_refuses_it() -> None:
    at = datetime(2026, 11, 27, tzinfo=UTC)
    for event in (
        AuditEvent("a\ud800", Outcome.SUCCESS, "p", "k", "r"),
        AuditEvent("a", Outcome.SUCCESS, "p", "k", "r", detail={"x": "\udfff"}),
    ):
        expected = _result(lambda e=event: rfc8785.dumps(entry_object("t", e, at)))
        assert isinstance(expected, type)
        assert _result(lambda e=event: entry_bytes("t", e, at)) == expected
