"""Export one tenant's log as an offline-verifiable bundle (docs/formats/audit-bundle.md).

The export is itself audited (committed before anything is written), then a
checkpoint is signed over the log as it is, and exactly that prefix is
streamed page by page into the bundle: memory stays flat at any log size.

The installation log (docs/adr/0017) is exported by the same code, from
``callvault operators audit export`` only: :func:`export_bundle`, the tenant
export, refuses its reserved id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from callvault.audit._entry import OCSF_API_ACTIVITY, AuditEvent, Outcome
from callvault.audit._log import AuditLog
from callvault.audit.bundle import BundleSummary, write_bundle
from callvault.errors import InvalidInputError
from callvault.store import Database
from callvault.store.ids import INSTALLATION_LOG

_PAGE = 5000


def export_bundle(
    db: Database, audit: AuditLog, tenant_id: str, out_dir: Path, *, actor: str
) -> BundleSummary:
    """A tenant's log (never the installation log: ``callvault operators audit export``)."""
    if tenant_id == INSTALLATION_LOG:
        raise InvalidInputError(
            "the installation log is not a tenant's; export it with "
            "`callvault operators audit export`",
            field="tenant",
        )
    return export_log(db, audit, tenant_id, out_dir, actor=actor)


def export_log(
    db: Database, audit: AuditLog, tenant_id: str, out_dir: Path, *, actor: str
) -> BundleSummary:
    """Export the log kept under ``tenant_id`` (a tenant's, or the installation log)."""
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
