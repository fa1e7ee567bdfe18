"""Each tenant's SIEM sinks: stored settings, sealed secrets, and the dispatcher's targets.

A sink's non-secret settings are stored as canonical JSON; its one secret
(HEC token, webhook HMAC key, syslog client key) is sealed under the tenant's
keys and opened only to build the transport, in the background dispatcher.
Sinks are immutable: to change one, add the new one and remove the old (a new
sink starts at index 0 and replays the log; receivers dedupe by origin and
index).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from callvault.audit.sinks import SinkTarget, Transport, build_transport, canonical_config
from callvault.audit.sinks import parse_sink_config as _parse
from callvault.crypto import SealContext, Sealer
from callvault.store import Database, new_id
from callvault.store.ids import INSTALLATION_LOG
from callvault.store.models import AuditSink, AuditSinkCursor, Tenant, utcnow

log = logging.getLogger(__name__)

PURPOSE = "audit-sink-secret"


def _context(tenant_id: str, sink_id: str) -> SealContext:
    return SealContext(tenant_id=tenant_id, purpose=PURPOSE, object_id=sink_id)


class SinkStore:
    def __init__(self, db: Database, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer
        self._transports: dict[tuple[str, str], Transport] = {}
        self._lock = threading.Lock()

    def create(
        self,
        session: Session,
        tenant_id: str,
        *,
        kind: str,
        name: str,
        config: dict[str, Any],
        secret: str | None,
    ) -> AuditSink:
        """Validate (by building the transport once) and store a new sink."""
        sink_id = new_id("snk")
        parsed = _parse(kind, config)
        build_transport(kind, parsed, secret, sink_id=sink_id).close()
        row = AuditSink(
            tenant_id=tenant_id,
            id=sink_id,
            kind=kind,
            name=name,
            config=canonical_config(parsed),
            secret_sealed=None
            if secret is None
            else self._sealer.seal(session, secret.encode(), _context(tenant_id, sink_id)),
            enabled=True,
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        return row

    def rows(self, session: Session, tenant_id: str) -> list[AuditSink]:
        return list(
            session.execute(
                select(AuditSink).where(AuditSink.tenant_id == tenant_id).order_by(AuditSink.id)
            ).scalars()
        )

    def delete(self, session: Session, tenant_id: str, sink_id: str) -> bool:
        session.execute(
            delete(AuditSinkCursor).where(
                AuditSinkCursor.tenant_id == tenant_id, AuditSinkCursor.sink_id == sink_id
            )
        )
        gone = session.execute(
            delete(AuditSink).where(AuditSink.tenant_id == tenant_id, AuditSink.id == sink_id)
        )
        with self._lock:
            transport = self._transports.pop((tenant_id, sink_id), None)
        if transport is not None:
            transport.close()
        return bool(getattr(gone, "rowcount", 0))

    def targets(self) -> list[SinkTarget]:
        """Every enabled sink of every tenant, with a (cached) transport; for the dispatcher.

        The installation log has no SIEM sinks (docs/adr/0017): it is not visited.
        """
        with self._db.directory_tx() as session:
            tenants = list(
                session.execute(select(Tenant.id).where(Tenant.id != INSTALLATION_LOG)).scalars()
            )
        out: list[SinkTarget] = []
        for tenant_id in tenants:
            with self._db.tenant_tx(tenant_id) as session:
                for row in self.rows(session, tenant_id):
                    if not row.enabled:
                        continue
                    transport = self._transport(session, row)
                    if transport is not None:
                        out.append(SinkTarget(tenant_id, row.id, transport))
        return out

    def _transport(self, session: Session, row: AuditSink) -> Transport | None:
        key = (row.tenant_id, row.id)
        with self._lock:
            cached = self._transports.get(key)
        if cached is not None:
            return cached
        try:
            secret = (
                None
                if row.secret_sealed is None
                else self._sealer.open(
                    session, row.secret_sealed, _context(row.tenant_id, row.id)
                ).decode()
            )
            transport = build_transport(row.kind, json.loads(row.config), secret, sink_id=row.id)
        except Exception as exc:  # noqa: BLE001 - a broken sink is skipped and logged, never fatal
            log.error(
                "audit sink cannot be built",
                extra={
                    "tenant_id": row.tenant_id,
                    "sink_id": row.id,
                    "error_type": type(exc).__name__,
                },
            )
            return None
        with self._lock:
            self._transports[key] = transport
        return transport

    def close(self) -> None:
        with self._lock:
            transports, self._transports = list(self._transports.values()), {}
        for t in transports:
            t.close()
