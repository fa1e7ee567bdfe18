"""Audit streaming to a real rsyslogd over RFC 5425 TLS: every entry arrives, receivers restart.

The receiver's output is rsyslog's own parse of each message (PRI, MSGID,
structured data, MSG), so these tests also pin that a stock syslog server
reads our RFC 5424 framing, escaping and fields the way we mean them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from callvault.audit import AuditEvent, Outcome
from callvault.audit.sinks import (
    Backoff,
    Record,
    SinkCursors,
    SinkDispatcher,
    SinkTarget,
    Transport,
    build_transport,
)
from callvault.bootstrap import create_tenant_with_owner
from callvault.runtime import Runtime
from tests.integration.rsyslog import Pki, Rsyslog, make_pki, require_rsyslogd

TLS13 = "NORMAL:+VERS-TLS1.3"
TLS12_ONLY = "NORMAL:-VERS-ALL:+VERS-TLS1.2"


@pytest.fixture(scope="module")
def rsyslogd() -> Path:
    return require_rsyslogd()


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture
def receiver(rsyslogd: Path, pki: Pki) -> Iterator[Rsyslog]:
    server = Rsyslog.create(rsyslogd, pki, priority=TLS13).start()
    try:
        yield server
    finally:
        server.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Log:
    """The runtime's audit log seen through the callables the dispatcher takes."""

    rt: Runtime
    origins: dict[str, str] = field(default_factory=dict)

    def read(self, tenant: str, start: int, limit: int) -> list[tuple[int, bytes]]:
        with self.rt.db.tenant_tx(tenant) as s:
            return self.rt.audit.read(s, tenant, start=start, limit=limit)

    def size(self, tenant: str) -> int:
        return len(self.read(tenant, 0, 1_000_000))

    def origin(self, tenant: str) -> str:
        return self.origins[tenant]

    def append(self, tenant: str, n: int) -> None:
        events = [
            AuditEvent(
                "sink.test",
                Outcome.DENIED if i % 3 == 0 else Outcome.SUCCESS,
                "prn_test",
                "call",
                f"call_{i}",
                detail={"label": "zürich ✓ 東京", "n": i},
            )
            for i in range(n)
        ]
        self.rt.audit.append(tenant, *events)


@pytest.fixture
def log(rt: Runtime) -> Log:
    log = Log(rt)
    for name in ("acme", "globex"):
        tenant = create_tenant_with_owner(rt, tenant_name=name, owner_name=f"{name}-owner")
        # The second origin needs every SD-PARAM escape: ", \ and ].
        suffix = "" if name == "acme" else '/"odd]\\'
        log.origins[tenant.tenant_id] = f"callvault.localhost/audit/{tenant.tenant_id}{suffix}"
    return log


def _syslog(receiver: Rsyslog, sink_id: str, **overrides: Any) -> Transport:
    config: dict[str, Any] = {"host": "127.0.0.1", "port": receiver.port}
    config["ca_pem"] = receiver.pki.ca_pem
    secret = overrides.pop("secret", None)
    config.update(overrides)
    return build_transport("syslog-tls", config, secret, sink_id=sink_id)


def _dispatcher(
    log: Log, targets: Sequence[SinkTarget], clock: Clock, *, batch_size: int = 7
) -> SinkDispatcher:
    return SinkDispatcher(
        cursors=SinkCursors(log.rt.db),
        targets=lambda: targets,
        read=log.read,
        origin=log.origin,
        size=log.size,
        batch_size=batch_size,
        max_batches=1000,
        backoff=Backoff(base_seconds=1, cap_seconds=60),
        workers=1,  # targets run in order: the tests choreograph failures between them
        clock=clock,
        jitter=lambda: 0.5,
    )


_SD_PARAM = re.compile(r' ([^=\s\]"]+)="((?:[^"\\\]]|\\.)*)"')


def _sd_params(sd: str) -> dict[str, str]:
    """The callvault@32473 element's PARAM-VALUEs, unescaped (RFC 5424 §6.3.3)."""
    assert sd.startswith("[callvault@32473 "), sd
    assert sd.endswith("]"), sd
    body = sd[len("[callvault@32473") : -1]
    params = {k: re.sub(r"\\(.)", r"\1", v) for k, v in _SD_PARAM.findall(body)}
    assert "".join(f' {k}="{v}"' for k, v in _SD_PARAM.findall(body)) == body
    return params


def _received(messages: list[dict[str, Any]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Messages grouped by (origin, index) from the structured data, after checking each."""
    seen: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for m in messages:
        params = _sd_params(m["sd"])
        event = json.loads(m["msg"])
        key = (params["origin"], int(params["index"]))
        assert m["app"] == "callvault"
        assert (event["metadata"]["log_name"], event["metadata"]["sequence"]) == key
        assert event["metadata"]["uid"] == f"{key[0]}/{key[1]}"
        seen.setdefault(key, []).append(event)
    return seen


def _assert_complete(log: Log, messages: list[dict[str, Any]]) -> int:
    """Every entry of every tenant arrived with its exact bytes; returns the duplicates."""
    received = _received(messages)
    expected = {
        (log.origins[tenant], index): entry
        for tenant in log.origins
        for index, entry in log.read(tenant, 0, 1_000_000)
    }
    assert set(received) == set(expected)  # nothing missing (no gap), nothing foreign
    for key, events in received.items():
        for event in events:
            assert event["raw_data"].encode("utf-8") == expected[key]
    return sum(len(events) - 1 for events in received.values())


def _wait_complete(receiver: Rsyslog, log: Log) -> list[dict[str, Any]]:
    total = sum(log.size(t) for t in log.origins)
    return receiver.wait_for(lambda ms: len({(m["sd"]) for m in ms}) >= total)


class _Hook(Transport):
    """Wraps a transport and runs ``after(n)`` once its ``n``-th batch was delivered."""

    kind = "syslog-tls"

    def __init__(self, inner: Transport, after: dict[int, Any]) -> None:
        super().__init__(inner.sink_id)
        self.inner, self.after, self.batches = inner, after, 0

    def _deliver(self, records: Sequence[Record]) -> None:
        self.inner.deliver(records)
        self.batches += 1
        if action := self.after.pop(self.batches, None):
            action()


def test_every_entry_arrives_once_after_dedup_across_receiver_restarts(
    log: Log, receiver: Rsyslog
) -> None:
    a, b = log.origins
    log.append(a, 25)
    log.append(b, 18)
    cursors = SinkCursors(log.rt.db)

    def lost_ack() -> None:
        raise ConnectionResetError  # delivered, but the acknowledgement never reached us

    hook_b = _Hook(_syslog(receiver, "snk_b"), {1: lost_ack})
    targets = [SinkTarget(a, "snk_a", _syslog(receiver, "snk_a")), SinkTarget(b, "snk_b", hook_b)]
    clock = Clock()
    dispatcher = _dispatcher(log, targets, clock)

    # Phase 1: a delivers everything; b's first batch lands but looks failed.
    results = dispatcher.run_once()
    assert results[(a, "snk_a")].error is None
    assert results[(b, "snk_b")].error == "ConnectionResetError"
    assert cursors.get(b, "snk_b").next_index == 0
    clock.now += 60
    assert dispatcher.run_once()[(b, "snk_b")].error is None
    assert dispatcher.backlog() == {(a, "snk_a"): 0, (b, "snk_b"): 0}
    assert _assert_complete(log, _wait_complete(receiver, log)) == 7  # b's batch, twice

    # Phase 2: the receiver stops in the middle of a's stream, after two batches.
    size_a, size_b = log.size(a), log.size(b)
    targets[0] = SinkTarget(a, "snk_a", _Hook(_syslog(receiver, "snk_a"), {2: receiver.stop}))
    log.append(a, 30)
    log.append(b, 10)
    results = dispatcher.run_once()
    assert results[(a, "snk_a")].delivered == 14
    assert results[(a, "snk_a")].error == "ConnectionRefusedError"
    assert results[(b, "snk_b")].error == "ConnectionRefusedError"
    cursor_a, cursor_b = cursors.get(a, "snk_a"), cursors.get(b, "snk_b")
    assert cursor_a.next_index == size_a + 14
    assert (cursor_b.next_index, cursor_b.failures) == (size_b, 1)
    assert cursor_b.last_error == "ConnectionRefusedError"
    assert dispatcher.backlog() == {(a, "snk_a"): 30 - 14, (b, "snk_b"): 10}
    # Backing off: nothing is tried until the delay (1 s, jitter 0.5 -> 0.75 s) has passed.
    assert dispatcher.run_once() == {}
    clock.now += 0.74
    assert dispatcher.run_once() == {}

    # Phase 3: the receiver is back; the next due pass delivers the rest.
    receiver.start()
    clock.now += 0.02
    results = dispatcher.run_once()
    assert {k: (r.delivered, r.error) for k, r in results.items()} == {
        (a, "snk_a"): (16, None),
        (b, "snk_b"): (10, None),
    }
    assert dispatcher.backlog() == {(a, "snk_a"): 0, (b, "snk_b"): 0}
    assert cursors.get(b, "snk_b").failures == 0
    _assert_complete(log, _wait_complete(receiver, log))


def test_messages_carry_rfc5424_fields_rsyslog_understands(log: Log, receiver: Rsyslog) -> None:
    a, _ = log.origins
    log.append(a, 3)
    dispatcher = _dispatcher(log, [SinkTarget(a, "snk_a", _syslog(receiver, "snk_a"))], Clock())
    assert dispatcher.run_once()[(a, "snk_a")].error is None
    messages = receiver.wait_for(lambda ms: len(ms) >= log.size(a))
    by_index = {int(_sd_params(m["sd"])["index"]): m for m in messages}
    for index, entry in log.read(a, 0, 1000):
        m, fields = by_index[index], json.loads(entry)
        severity = 4 if fields["outcome"] in {"denied", "failure"} else 5
        assert m["pri"] == str(13 * 8 + severity)
        assert m["msgid"] == fields["action"][:32]
        assert m["timestamp"] == fields["time"]
        assert _sd_params(m["sd"]) == {"origin": log.origins[a], "index": str(index), "tenant": a}


def test_server_certificate_from_another_ca_is_refused(log: Log, receiver: Rsyslog) -> None:
    a, _ = log.origins
    stranger = make_pki("some other CA")
    target = SinkTarget(a, "snk_a", _syslog(receiver, "snk_a", ca_pem=stranger.ca_pem))
    result = _dispatcher(log, [target], Clock()).run_once()[(a, "snk_a")]
    assert (result.delivered, result.error) == (0, "SSLCertVerificationError")
    cursor = SinkCursors(log.rt.db).get(a, "snk_a")
    assert (cursor.next_index, cursor.failures) == (0, 1)
    assert receiver.messages() == []


def test_server_certificate_for_another_name_is_refused(log: Log, receiver: Rsyslog) -> None:
    a, _ = log.origins
    target = SinkTarget(a, "snk_a", _syslog(receiver, "snk_a", server_name="siem.example.org"))
    result = _dispatcher(log, [target], Clock()).run_once()[(a, "snk_a")]
    assert result.error == "SSLCertVerificationError"
    assert SinkCursors(log.rt.db).get(a, "snk_a").next_index == 0
    assert receiver.messages() == []


def test_tls13_floor_is_refused_by_a_tls12_only_receiver(
    log: Log, rsyslogd: Path, pki: Pki
) -> None:
    a, _ = log.origins
    server = Rsyslog.create(rsyslogd, pki, priority=TLS12_ONLY).start()
    try:
        strict = SinkTarget(a, "snk_13", _syslog(server, "snk_13", tls_min_version="1.3"))
        lenient = SinkTarget(a, "snk_12", _syslog(server, "snk_12"))
        results = _dispatcher(log, [strict, lenient], Clock()).run_once()
        assert results[(a, "snk_13")].error is not None
        assert results[(a, "snk_12")].error is None
        assert SinkCursors(log.rt.db).get(a, "snk_13").next_index == 0
        assert SinkCursors(log.rt.db).get(a, "snk_12").next_index == log.size(a)
    finally:
        server.close()


@pytest.mark.parametrize("priority", [TLS13, TLS12_ONLY], ids=["tls1.3", "tls1.2"])
def test_receiver_demanding_a_client_certificate(
    log: Log, rsyslogd: Path, pki: Pki, priority: str
) -> None:
    a, _ = log.origins
    server = Rsyslog.create(rsyslogd, pki, authmode="x509/certvalid", priority=priority).start()
    try:
        anonymous = SinkTarget(a, "snk_anon", _syslog(server, "snk_anon"))
        mutual = SinkTarget(
            a,
            "snk_mtls",
            _syslog(
                server, "snk_mtls", client_cert_pem=pki.client_cert_pem, secret=pki.client_key_pem
            ),
        )
        results = _dispatcher(log, [anonymous, mutual], Clock()).run_once()
        # Under TLS 1.3 the refusal comes after our handshake finished, as an
        # alert or a reset while we wait for the receiver's close: still a failure.
        assert results[(a, "snk_anon")].error is not None
        assert results[(a, "snk_mtls")].error is None
        cursors = SinkCursors(log.rt.db)
        assert cursors.get(a, "snk_anon").next_index == 0
        assert cursors.get(a, "snk_mtls").next_index == log.size(a)
        messages = server.wait_for(lambda ms: len(ms) >= log.size(a))
        assert {int(_sd_params(m["sd"])["index"]) for m in messages} == set(range(log.size(a)))
    finally:
        server.close()
