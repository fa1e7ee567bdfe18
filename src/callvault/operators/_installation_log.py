"""The installation audit log: the operator realm's own tamper-evident history (docs/adr/0017).

It is one more RFC 9162 log in the audit tables, kept under the reserved
tenant id :data:`~callvault.store.ids.INSTALLATION_LOG` (``installation``), so
it is written, checkpointed, signed (its own Ed25519 key, sealed under its own
KEK; origin ``<CALLVAULT_AUDIT_ORIGIN_PREFIX>/installation``), exported and
verified by exactly the code and formats of a tenant's log.

What goes in — ids, role names, reason codes, key ids; never a token, a
secret, key material or an operator's name:

========================  ==========================================================
``operator.create``       an operator was created (role)
``operator.role_change``  its role changed (from, to)
``operator.deactivate``   disabled, with the keys that revoked
``operator.activate``     enabled again
``operator.key.issue``    a key was issued (operator, expiry)
``operator.key.revoke``   a key was revoked
``authn.operator_key``    a well-formed operator key was refused (reason code)
``break_glass.<step>``    mirror of a tenant-log break-glass entry (+ ``tenant``)
``break_glass.use``       a content read under a grant (tenant, grant, call, view)
``audit.export``          the installation log was exported
========================  ==========================================================

The log's ``tenants`` row (a name, a time; no principal, key or content can
ever be added to it: migration 0011) is made on the log's first use by
:func:`claim`, so an installation that never uses the operator realm is unchanged.

Three ways in, all fail closed (:class:`~callvault.errors.AuditUnavailableError`):

- :func:`record_in` — a lifecycle change: the entry is written in the change's
  own transaction, which MUST be confined to the installation log
  (``db.tenant_tx(INSTALLATION_LOG)``), last.
- :func:`mirror_in` — a break-glass step, inside the *tenant's* transaction:
  the transaction moves to the installation log for the one append and back,
  so the step, its tenant entry and its mirror commit together or not at all.
  Call it immediately before the tenant's own ``append_in`` (heads are then
  locked installation first, the order the group committer uses too).
- :func:`record` — group-committed before the caller answers (a refused
  operator key, a read under a grant).
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from callvault.audit import AuditEvent, AuditLog, Outcome
from callvault.audit._entry import OCSF_ACCOUNT_CHANGE, OCSF_AUTHENTICATION
from callvault.audit._export import export_log
from callvault.errors import AuditUnavailableError
from callvault.operators._realm import Operator, OperatorAuthError
from callvault.store import Database
from callvault.store.db import insert_for, move_transaction
from callvault.store.ids import INSTALLATION_LOG
from callvault.store.models import Tenant, utcnow

if TYPE_CHECKING:
    from callvault.audit.bundle import BundleSummary
    from callvault.runtime import Runtime

__all__ = [
    "INSTALLATION_LOG",
    "auth_failure",
    "change",
    "checkpoint",
    "claim",
    "export",
    "grant_use",
    "log_key",
    "mirror",
    "mirror_in",
    "record",
    "record_in",
]

_ROW_NAME = "installation audit log"
#: Databases whose reserved row this process has made or seen (skips the insert).
_claimed: weakref.WeakSet[Database] = weakref.WeakSet()
_claimed_lock = threading.Lock()


# -- entries -----------------------------------------------------------------------------------


def change(
    action: str,
    *,
    actor: str,
    kind: str,
    resource_id: str,
    request_id: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """A lifecycle change of the operator realm. ``detail`` MUST hold ids, role names,
    times or counts only."""
    return AuditEvent(
        action=action,
        outcome=Outcome.SUCCESS,
        actor=actor,
        resource_kind=kind,
        resource_id=resource_id,
        request_id=request_id,
        ocsf_class=OCSF_ACCOUNT_CHANGE,
        detail={"realm": "operator", **detail},
    )


def auth_failure(exc: OperatorAuthError, request_id: str | None) -> AuditEvent:
    """A refused operator key: the key id, the reason code and (if known) its operator."""
    detail: dict[str, Any] = {"realm": "operator", "reason": exc.reason}
    if exc.operator_id is not None:
        detail["operator"] = exc.operator_id
    return AuditEvent(
        action="authn.operator_key",
        outcome=Outcome.FAILURE,
        actor="anonymous",
        resource_kind="operator_key",
        resource_id=exc.key_id,
        request_id=request_id,
        ocsf_class=OCSF_AUTHENTICATION,
        detail=detail,
    )


def grant_use(
    operator: Operator,
    *,
    tenant_id: str,
    grant_id: str,
    deployment_id: str,
    call_id: str,
    read: str,
    request_id: str | None,
) -> AuditEvent:
    """A content read under a break-glass grant (the tenant's gate wrote its own entry)."""
    return AuditEvent(
        action="break_glass.use",
        outcome=Outcome.ALLOWED,
        actor=operator.id,
        resource_kind="break_glass",
        resource_id=grant_id,
        request_id=request_id,
        detail={
            "realm": "operator",
            "tenant": tenant_id,
            "break_glass": grant_id,
            "deployment": deployment_id,
            "call": call_id,
            "read": read,
            "role": operator.role.value,
            "key": operator.key_id,
        },
    )


def mirror(event: AuditEvent, tenant_id: str) -> AuditEvent:
    """The installation log's copy of a tenant-log entry: the same fields, plus the tenant."""
    return AuditEvent(
        action=event.action,
        outcome=event.outcome,
        actor=event.actor,
        resource_kind=event.resource_kind,
        resource_id=event.resource_id,
        request_id=event.request_id,
        ocsf_class=event.ocsf_class,
        detail={**event.detail, "tenant": tenant_id},
    )


# -- writing -----------------------------------------------------------------------------------


def claim(session: Session) -> None:
    """Make the log's reserved ``tenants`` row if it is missing, in ``session``, which MUST be
    confined to the installation log (an insert that does nothing once the row exists)."""
    insert = insert_for(session)
    session.execute(
        insert(Tenant)
        .values(id=INSTALLATION_LOG, name=_ROW_NAME, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["id"])
    )


def _ensure(db: Database) -> None:
    """:func:`claim` in a transaction of its own, once per database per process."""
    with _claimed_lock:
        if db in _claimed:
            return
    try:
        with db.tenant_tx(INSTALLATION_LOG) as s:
            claim(s)
    except SQLAlchemyError:
        raise AuditUnavailableError("installation audit log is not writable") from None
    with _claimed_lock:
        _claimed.add(db)


def record_in(session: Session, audit: AuditLog, *events: AuditEvent) -> list[int]:
    """Append in the caller's transaction, which MUST be confined to the installation log."""
    try:
        claim(session)
    except SQLAlchemyError:
        raise AuditUnavailableError("installation audit log is not writable") from None
    return audit.append_in(session, INSTALLATION_LOG, *events)


def mirror_in(session: Session, audit: AuditLog, tenant_id: str, *events: AuditEvent) -> None:
    """Mirror ``events`` (a tenant's entries) into the installation log, in the tenant's
    transaction ``session`` (confined to ``tenant_id``).

    1. Move the transaction to the installation log (PostgreSQL's tenant setting).
    2. Append the mirrors (the head lock is held until the transaction ends).
    3. Move it back to ``tenant_id``.

    If any step fails the caller gets :class:`AuditUnavailableError` and MUST let the
    transaction roll back: the tenant's change does not happen.
    """
    mirrors = [mirror(e, tenant_id) for e in events]
    try:
        move_transaction(session, INSTALLATION_LOG)  # (1):
        claim(session)
        audit.append_in(session, INSTALLATION_LOG, *mirrors)  # (2):
        move_transaction(session, tenant_id)  # (3):
    except SQLAlchemyError:
        raise AuditUnavailableError("installation audit log is not writable") from None


def record(rt: Runtime, *events: AuditEvent) -> list[int]:
    """Append and return once committed (group commit)."""
    _ensure(rt.db)
    return rt.audit.append(INSTALLATION_LOG, *events)


# -- reading: what the installation admin pins and exports -------------------------------------


def log_key(rt: Runtime) -> str:
    """The installation log's verifier key (made on first use), to pin."""
    _ensure(rt.db)
    with rt.db.tenant_tx(INSTALLATION_LOG) as s:
        return rt.audit.keys.public(s, INSTALLATION_LOG)[1]


def checkpoint(rt: Runtime) -> bytes:
    """A C2SP signed checkpoint over the installation log now (reused at the same size)."""
    _ensure(rt.db)
    return rt.audit.checkpoint(INSTALLATION_LOG).note


def export(rt: Runtime, out_dir: Path, *, actor: str) -> BundleSummary:
    """Write the installation log as an audit bundle (docs/formats/audit-bundle.md): the
    export is itself an entry, then exactly the checkpointed prefix is written."""
    _ensure(rt.db)
    return export_log(rt.db, rt.audit, INSTALLATION_LOG, out_dir, actor=actor)
