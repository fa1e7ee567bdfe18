"""Export one tenant's log as an offline-verifiable bundle (docs/formats/audit-bundle.md).

The export is itself audited (committed before anything is written), then a
checkpoint is signed over the log as it is, and exactly that prefix is
streamed page by page into the bundle: memory stays flat at any log size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from callvault.audit._entry import OCSF_API_ACTIVITY, AuditEvent, Outcome
from callvault.audit._log import AuditLog
from callvault.audit.bundle import BundleSummary, write_bundle
from callvault.store import Database

_PAGE = 5000


def export_bundle(
    db: Database, audit: AuditLog, tenant_id: str, out_dir: Path, *, actor: str
) -> BundleSummary:
    audit.append(
        tenant_id,
        AuditEvent(
            action="audit.export",
            outcome=Outcome.SUCCESS,
            actor=actor,
            resource_kind="tenant",
            resource_id=tenant_id,
            ocsf_class=OCSF_API_ACTIVITY,
        ),
    )
    signed = audit.checkpoint(tenant_id)
    with db.tenant_tx(tenant_id) as s:
        _origin, verifier_key = audit.keys.public(s, tenant_id)
    size = signed.checkpoint.size

    def entries() -> Iterator[tuple[int, bytes]]:
        start = 0
        while start < size:
            with db.tenant_tx(tenant_id) as s:
                page = audit.read(s, tenant_id, start=start, limit=min(_PAGE, size - start))
            if not page:
                return
            yield from page
            start = page[-1][0] + 1

    return write_bundle(
        out_dir,
        tenant=tenant_id,
        entries=entries(),
        checkpoint_note=signed.note,
        verifier_key=verifier_key,
    )
