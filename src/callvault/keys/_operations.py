"""Key operations an operator runs: rotate a deployment's KEK, shred a call, destroy a KEK.

Each is an audit event in the tenant's log. Rotation rewraps key records only
(data is never re-encrypted) and is resumable: it works in committed batches,
and a rerun picks up the rows still wrapped by a retiring KEK.

Rotation, step by step:

1. In one transaction: if the scope has no retiring KEK, create KEK version
   n+1 (active) and mark version n ``retiring``; new data keys from now on
   are wrapped by the new KEK. Audit ``keys.rotate.start``.
2. In batches, each its own transaction: rewrap data keys still on a
   retiring KEK to the active one (the provider moves them; the plaintext
   key never leaves it where the provider supports rewrap natively).
3. When none remain: mark the retiring KEK ``retired``. Audit ``keys.rotate.finish``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, func, select

from callvault.audit import AuditEvent, AuditLog, Outcome
from callvault.audit._entry import OCSF_ENTITY_MANAGEMENT
from callvault.errors import ConflictError, NotFoundError
from callvault.keys._hierarchy import KeyHierarchy, KeyOwner
from callvault.store import Database
from callvault.store.models import DataKey, Deployment, Kek, utcnow

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class RotationResult:
    deployment_id: str
    new_version: int
    rewrapped: int
    retired_versions: tuple[int, ...]


def _event(action: str, actor: str, deployment_id: str, **detail: object) -> AuditEvent:
    return AuditEvent(
        action=action,
        outcome=Outcome.SUCCESS,
        actor=actor,
        resource_kind="deployment",
        resource_id=deployment_id,
        ocsf_class=OCSF_ENTITY_MANAGEMENT,
        detail=dict(detail),
    )


def _scope(deployment_id: str | None) -> ColumnElement[bool]:
    return (
        Kek.deployment_id.is_(None) if deployment_id is None else Kek.deployment_id == deployment_id
    )


def rotate(
    db: Database,
    keys: KeyHierarchy,
    audit: AuditLog,
    tenant_id: str,
    deployment_id: str,
    *,
    actor: str,
    batch: int = 200,
    progress: Progress | None = None,
) -> RotationResult:
    """Rotate a deployment's KEK (resumable); see the module docstring for the steps."""
    # (1)
    with db.tenant_tx(tenant_id) as s:
        if s.get(Deployment, deployment_id) is None:
            raise NotFoundError("deployment not found", field="deployment")
        keks = (
            s.execute(select(Kek).where(Kek.tenant_id == tenant_id, _scope(deployment_id)))
            .scalars()
            .all()
        )
        active = [k for k in keks if k.state == "active"]
        retiring = [k for k in keks if k.state == "retiring"]
        if not retiring:
            current = active[0] if active else keys.active_kek(s, tenant_id, deployment_id)
            current.state = "retiring"
            s.flush()
            new = keys.new_kek(s, tenant_id, deployment_id, version=current.version + 1)
            audit.append_in(
                s,
                tenant_id,
                _event(
                    "keys.rotate.start", actor, deployment_id, old=current.version, new=new.version
                ),
            )
        else:
            new = active[0]
        new_id, new_version = new.id, new.version
    # (2)
    total = _count_on_retiring(db, tenant_id, deployment_id)
    done = 0
    while True:
        with db.tenant_tx(tenant_id) as s:
            target = s.get_one(Kek, new_id)
            rows = s.execute(
                select(DataKey, Kek)
                .join(Kek, Kek.id == DataKey.kek_id)
                .where(
                    DataKey.tenant_id == tenant_id, Kek.state == "retiring", _scope(deployment_id)
                )
                .limit(batch)
            ).all()
            for dk, old in rows:
                dk.wrapped = _move(keys, old, target, dk)
                dk.kek_id = target.id
                keys.cache.forget(dk.id)
        done += len(rows)
        if progress is not None:
            progress(done, max(total, done))
        if len(rows) < batch:
            break
    # (3)
    with db.tenant_tx(tenant_id) as s:
        retired = []
        for k in s.execute(
            select(Kek).where(
                Kek.tenant_id == tenant_id, _scope(deployment_id), Kek.state == "retiring"
            )
        ).scalars():
            k.state, k.retired_at = "retired", utcnow()
            retired.append(k.version)
        audit.append_in(
            s,
            tenant_id,
            _event(
                "keys.rotate.finish",
                actor,
                deployment_id,
                new=new_version,
                rewrapped=done,
                retired=sorted(retired),
            ),
        )
    return RotationResult(deployment_id, new_version, done, tuple(sorted(retired)))


def _move(keys: KeyHierarchy, old: Kek, new: Kek, dk: DataKey) -> bytes:
    """Rewrap one data key from ``old`` to ``new`` (natively when one provider holds both)."""
    ctx = KeyOwner(dk.tenant_id, dk.deployment_id, dk.owner_kind, dk.owner_id, dk.purpose)
    wrap = ctx.wrap_context()
    if old.provider == new.provider:
        return keys.provider(new.provider).rewrap(
            old.provider_ref, new.provider_ref, dk.wrapped, wrap
        )
    plain = keys.provider(old.provider).unwrap(old.provider_ref, dk.wrapped, wrap)
    return keys.provider(new.provider).wrap(new.provider_ref, plain, wrap)


def _count_on_retiring(db: Database, tenant_id: str, deployment_id: str) -> int:
    with db.tenant_tx(tenant_id) as s:
        return int(
            s.execute(
                select(func.count())
                .select_from(DataKey)
                .join(Kek, Kek.id == DataKey.kek_id)
                .where(
                    DataKey.tenant_id == tenant_id, Kek.state == "retiring", _scope(deployment_id)
                )
            ).scalar_one()
        )


def shred_call(
    db: Database, keys: KeyHierarchy, audit: AuditLog, tenant_id: str, call_id: str, *, actor: str
) -> int:
    """Delete a call's data key: its recording, transcript and events become unrecoverable."""
    with db.tenant_tx(tenant_id) as s:
        removed = keys.shred(s, tenant_id, "call", call_id)
        if removed == 0:
            raise NotFoundError("no key for this call (already shredded?)", field="call")
        audit.append_in(
            s,
            tenant_id,
            AuditEvent(
                action="keys.shred",
                outcome=Outcome.SUCCESS,
                actor=actor,
                resource_kind="call",
                resource_id=call_id,
                ocsf_class=OCSF_ENTITY_MANAGEMENT,
                detail={"data_keys": removed},
            ),
        )
    return removed


def destroy_deployment_keys(
    db: Database,
    keys: KeyHierarchy,
    audit: AuditLog,
    tenant_id: str,
    deployment_id: str,
    *,
    actor: str,
) -> int:
    """Destroy every KEK of a deployment at its provider: all its data becomes unrecoverable."""
    with db.tenant_tx(tenant_id) as s:
        keks = (
            s.execute(
                select(Kek).where(
                    Kek.tenant_id == tenant_id, _scope(deployment_id), Kek.state != "destroyed"
                )
            )
            .scalars()
            .all()
        )
        if not keks:
            raise ConflictError("the deployment has no live keys")
        # The audit entry commits with the state change; the provider destroy follows.
        for k in keks:
            k.state, k.destroyed_at = "destroyed", utcnow()
        s.execute(
            delete(DataKey).where(
                DataKey.tenant_id == tenant_id, DataKey.deployment_id == deployment_id
            )
        )
        audit.append_in(
            s,
            tenant_id,
            _event("keys.destroy", actor, deployment_id, versions=sorted(k.version for k in keks)),
        )
        refs = [(k.provider, k.provider_ref) for k in keks]
    for provider, ref in refs:
        keys.provider(provider).destroy_kek(ref)
    keys.cache.clear()
    return len(refs)
