"""What the installation admin changes in the operator realm, each change audited fail closed.

The CLI (``callvault operators ...``) calls these and nothing else. Each one:

1. opens a transaction confined to the installation log
   (``db.tenant_tx(INSTALLATION_LOG)``): the operator tables carry no tenant
   and no row-level security, the installation log's rows are walled under
   that id;
2. makes the change with the row functions of :mod:`callvault.operators._realm`;
3. appends its installation-log entry in the same transaction, last
   (:func:`~callvault.operators._installation_log.record_in`).

If the entry cannot be written the caller gets
:class:`~callvault.errors.AuditUnavailableError` and nothing of the change
commits: no operator, role, key or revocation exists without its entry.
Entries carry ids, role names and times, never a token, a secret or a name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from sqlalchemy.orm import Session

from callvault.audit import AuditEvent
from callvault.operators._installation_log import INSTALLATION_LOG, change, record_in
from callvault.operators._realm import (
    IssuedOperatorKey,
    OperatorRole,
    activate_operator,
    create_operator,
    deactivate_operator,
    issue_operator_key,
    revoke_operator_key,
    set_operator_role,
)
from callvault.runtime import Runtime
from callvault.store.models import OperatorKey

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CreatedOperator:
    id: str
    role: OperatorRole
    #: Its first key; the token is shown once.
    key: IssuedOperatorKey


def _audited(rt: Runtime, work: Callable[[Session], T]) -> T:
    # (1): (work does 2 and 3)
    with rt.db.tenant_tx(INSTALLATION_LOG) as s:
        return work(s)


def _key_issued(key: IssuedOperatorKey, actor: str) -> AuditEvent:
    return change(
        "operator.key.issue",
        actor=actor,
        kind="operator_key",
        resource_id=key.id,
        operator=key.operator_id,
        expires_at=key.expires_at.isoformat(),
    )


def create(
    rt: Runtime, *, name: str, role: OperatorRole, key_ttl: timedelta, actor: str
) -> CreatedOperator:
    """A new operator and its first key (entries ``operator.create``, ``operator.key.issue``)."""

    def work(s: Session) -> CreatedOperator:
        row = create_operator(s, name=name, role=role, created_by=actor)
        key = issue_operator_key(s, row.id, label="cli", ttl=key_ttl)
        record_in(
            s,
            rt.audit,
            change(
                "operator.create", actor=actor, kind="operator", resource_id=row.id, role=role.value
            ),
            _key_issued(key, actor),
        )
        return CreatedOperator(row.id, role, key)

    return _audited(rt, work)


def issue_key(rt: Runtime, operator_id: str, *, ttl: timedelta, actor: str) -> IssuedOperatorKey:
    """Another key for an active operator (``operator.key.issue``)."""

    def work(s: Session) -> IssuedOperatorKey:
        key = issue_operator_key(s, operator_id, label="cli", ttl=ttl)
        record_in(s, rt.audit, _key_issued(key, actor))
        return key

    return _audited(rt, work)


def revoke_key(rt: Runtime, key_id: str, *, actor: str) -> bool:
    """Revoke a key now (``operator.key.revoke``); return whether it was still live.

    Revoking a revoked key changes nothing and is still recorded (``already_revoked``).
    """

    def work(s: Session) -> bool:
        was_revoked = _is_revoked(s, key_id)
        row = revoke_operator_key(s, key_id)
        record_in(
            s,
            rt.audit,
            change(
                "operator.key.revoke",
                actor=actor,
                kind="operator_key",
                resource_id=key_id,
                operator=row.operator_id,
                already_revoked=was_revoked,
            ),
        )
        return not was_revoked

    return _audited(rt, work)


def _is_revoked(s: Session, key_id: str) -> bool:
    row = s.get(OperatorKey, key_id)
    return row is not None and row.revoked_at is not None


def set_role(rt: Runtime, operator_id: str, role: OperatorRole, *, actor: str) -> str:
    """Change an operator's role (``operator.role_change``, from and to); return the old one."""

    def work(s: Session) -> str:
        before = set_operator_role(s, operator_id, role)
        record_in(
            s,
            rt.audit,
            change(
                "operator.role_change",
                actor=actor,
                kind="operator",
                resource_id=operator_id,
                role_from=before,
                role_to=role.value,
            ),
        )
        return before

    return _audited(rt, work)


def deactivate(rt: Runtime, operator_id: str, *, actor: str) -> list[str]:
    """Disable an operator and revoke every live key (``operator.deactivate``, with the
    revoked key ids); return them."""

    def work(s: Session) -> list[str]:
        revoked = deactivate_operator(s, operator_id)
        record_in(
            s,
            rt.audit,
            change(
                "operator.deactivate",
                actor=actor,
                kind="operator",
                resource_id=operator_id,
                keys_revoked=revoked,
            ),
        )
        return revoked

    return _audited(rt, work)


def activate(rt: Runtime, operator_id: str, *, actor: str) -> bool:
    """Enable a disabled operator (``operator.activate``); it needs a new key to sign in.
    Return whether it was disabled."""

    def work(s: Session) -> bool:
        was_disabled = activate_operator(s, operator_id)
        record_in(
            s,
            rt.audit,
            change(
                "operator.activate",
                actor=actor,
                kind="operator",
                resource_id=operator_id,
                was_disabled=was_disabled,
            ),
        )
        return was_disabled

    return _audited(rt, work)
