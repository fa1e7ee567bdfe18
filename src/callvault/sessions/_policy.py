"""A tenant's session policy: lifetimes and "SSO required", versioned like all configuration.

The policy is a configuration subject of its own (kind ``session_policy``,
id the tenant's): every change is a new immutable, sealed version in
``config_versions`` (canonical JSON, SHA-256 addressed, parent pointer,
actor) and an audit entry, and its plain projection (``tenant_session_policies``)
is what requests read. A tenant without one has the defaults below.

:func:`update_policy`:

1. Merge the patch into the current policy and validate it (bounds: absolute
   at most 24 h, idle at most the absolute, recovery sessions at most 4 h and
   at most the absolute); nothing changed: no version, no entry.
2. Turning "SSO required" on MUST leave a way in: an enabled SSO connection,
   and an active owner holding unused recovery codes (else 409).
3. Write the version, update the projection.
4. Shorten live sessions to the new limits (a tightened policy applies at
   once; a loosened one only to new sessions).
5. Append the audit entry in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from callvault.access.roles import Role, ScopeKind
from callvault.audit import AuditEvent, AuditLog, Outcome
from callvault.audit._entry import OCSF_ENTITY_MANAGEMENT
from callvault.crypto import Sealer
from callvault.errors import ConflictError, InvalidInputError
from callvault.store.models import (
    BrowserSession,
    Principal,
    RecoveryCode,
    RoleBinding,
    SsoConnection,
    TenantSessionPolicy,
)
from callvault.store.prepared import Prepared, Reader, connection_of
from callvault.tenancy import _versions as versions

SUBJECT_KIND: Final = "session_policy"
RECOVERY_METHOD: Final = "recovery_code"


class SessionPolicy(BaseModel):
    """What an administrator sets (minutes), with the defaults a tenant starts with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    absolute_timeout_minutes: Annotated[StrictInt, Field(ge=5, le=1440)] = 720
    idle_timeout_minutes: Annotated[StrictInt, Field(ge=1, le=1440)] = 30
    recovery_session_minutes: Annotated[StrictInt, Field(ge=5, le=240)] = 60
    sso_required: StrictBool = False

    @model_validator(mode="after")
    def _within_absolute(self) -> SessionPolicy:
        if self.idle_timeout_minutes > self.absolute_timeout_minutes:
            raise ValueError("idle_timeout_minutes must not exceed absolute_timeout_minutes")
        if self.recovery_session_minutes > self.absolute_timeout_minutes:
            raise ValueError("recovery_session_minutes must not exceed absolute_timeout_minutes")
        return self


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    policy: SessionPolicy
    #: The configuration version it comes from; None for the defaults.
    version_id: str | None
    updated_at: datetime | None

    def lifetime(self, method: str) -> timedelta:
        minutes = (
            self.policy.recovery_session_minutes
            if method == RECOVERY_METHOD
            else self.policy.absolute_timeout_minutes
        )
        return timedelta(minutes=minutes)

    def idle(self, method: str) -> timedelta:
        return min(timedelta(minutes=self.policy.idle_timeout_minutes), self.lifetime(method))


_P = TenantSessionPolicy.__table__
_READ = Prepared(select(_P).where(_P.c.tenant_id == bindparam("t")), name="session_policy")


def read_policy(db: Reader, tenant_id: str) -> EffectivePolicy:
    row = _READ.one_or_none(connection_of(db), {"t": tenant_id})
    if row is None:
        return EffectivePolicy(SessionPolicy(), None, None)
    policy = SessionPolicy(
        absolute_timeout_minutes=row.absolute_timeout_seconds // 60,
        idle_timeout_minutes=row.idle_timeout_seconds // 60,
        recovery_session_minutes=row.recovery_session_seconds // 60,
        sso_required=bool(row.sso_required),
    )
    return EffectivePolicy(policy, row.version_id, row.updated_at)


def sso_required(db: Reader, tenant_id: str) -> bool:
    """Whether the tenant refuses API keys of ``user`` principals (one primary-key read)."""
    row = _READ.one_or_none(connection_of(db), {"t": tenant_id})
    return row is not None and bool(row.sso_required)


@dataclass(frozen=True, slots=True)
class PolicyChange:
    policy: EffectivePolicy
    changed: tuple[str, ...]
    sessions_shortened: int


def _validated(merged: dict[str, Any]) -> SessionPolicy:
    try:
        return SessionPolicy.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"]) or "policy"
        message = str(err["msg"]).removeprefix("Value error, ")
        raise InvalidInputError(f"{field}: {message}", field=field) from None


def _has_a_way_in(s: Session, tenant_id: str) -> None:
    enabled = s.execute(
        select(SsoConnection.id)
        .where(SsoConnection.tenant_id == tenant_id, SsoConnection.enabled.is_(True))
        .limit(1)
    ).first()
    if enabled is None:
        raise ConflictError(
            "SSO cannot be required without an enabled SSO connection", field="sso_required"
        )
    owner_codes = s.execute(
        select(RecoveryCode.id)
        .join(Principal, Principal.id == RecoveryCode.principal_id)
        .join(
            RoleBinding,
            (RoleBinding.principal_id == RecoveryCode.principal_id)
            & (RoleBinding.tenant_id == tenant_id)
            & (RoleBinding.role == Role.OWNER.value)
            & (RoleBinding.scope_kind == ScopeKind.TENANT.value),
        )
        .where(
            RecoveryCode.tenant_id == tenant_id,
            RecoveryCode.used_at.is_(None),
            RecoveryCode.revoked_at.is_(None),
            Principal.active.is_(True),
        )
        .limit(1)
    ).first()
    if owner_codes is None:
        raise ConflictError(
            "SSO cannot be required until an owner has generated recovery codes",
            field="sso_required",
        )


def _shorten_live_sessions(
    s: Session, tenant_id: str, policy: EffectivePolicy, now: datetime
) -> int:
    rows = s.execute(
        select(BrowserSession).where(
            BrowserSession.tenant_id == tenant_id,
            BrowserSession.ended_at.is_(None),
            BrowserSession.expires_at > now,
        )
    ).scalars()
    shortened = 0
    for row in rows:
        expires = min(row.expires_at, row.created_at + policy.lifetime(row.method))
        idle = min(row.idle_timeout_seconds, int(policy.idle(row.method).total_seconds()))
        if (expires, idle) != (row.expires_at, row.idle_timeout_seconds):
            row.expires_at, row.idle_timeout_seconds = expires, idle
            shortened += 1
    s.flush()
    return shortened


def update_policy(
    s: Session,
    sealer: Sealer,
    audit: AuditLog,
    tenant_id: str,
    patch: dict[str, Any],
    *,
    actor_id: str,
    request_id: str | None,
    now: datetime,
) -> PolicyChange:
    """Apply ``patch`` (top-level fields) to the tenant's policy (steps in the module doc)."""
    current = read_policy(s, tenant_id)
    # (1)
    before = current.policy.model_dump(mode="json")
    new = _validated({**before, **patch})
    after = new.model_dump(mode="json")
    changed = tuple(sorted(k for k in after if after[k] != before[k]))
    if not changed:
        return PolicyChange(current, (), 0)
    # (2)
    if new.sso_required and not current.policy.sso_required:
        _has_a_way_in(s, tenant_id)
    # (3)
    info = versions.write_version(
        s,
        sealer,
        tenant_id=tenant_id,
        deployment_id=None,
        subject_kind=SUBJECT_KIND,
        subject_id=tenant_id,
        content=after,
        actor_id=actor_id,
        op="update",
        parent_id=current.version_id,
    )
    row = s.get(TenantSessionPolicy, tenant_id)
    if row is None:
        row = TenantSessionPolicy(tenant_id=tenant_id)
        s.add(row)
    row.absolute_timeout_seconds = new.absolute_timeout_minutes * 60
    row.idle_timeout_seconds = new.idle_timeout_minutes * 60
    row.recovery_session_seconds = new.recovery_session_minutes * 60
    row.sso_required = new.sso_required
    row.version_id = info.id
    row.updated_at = now
    s.flush()
    effective = EffectivePolicy(new, info.id, now)
    # (4)
    shortened = _shorten_live_sessions(s, tenant_id, effective, now)
    # (5)
    audit.append_in(
        s,
        tenant_id,
        AuditEvent(
            action="session_policy.update",
            outcome=Outcome.SUCCESS,
            actor=actor_id,
            resource_kind="tenant",
            resource_id=tenant_id,
            request_id=request_id,
            ocsf_class=OCSF_ENTITY_MANAGEMENT,
            detail={
                "version": info.id,
                "parent": current.version_id,
                "changed": list(changed),
                "policy": after,
                "sessions_shortened": shortened,
            },
        ),
    )
    return PolicyChange(effective, changed, shortened)
