"""``callvault init``: the first tenant, its owner, and an owner API key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from callvault import access, tenancy
from callvault.access import Role, ScopeKind
from callvault.audit import AuditEvent, Outcome
from callvault.audit._entry import OCSF_ACCOUNT_CHANGE
from callvault.config import Settings
from callvault.errors import ConflictError
from callvault.runtime import Runtime
from callvault.store import new_id
from callvault.store.models import Installation, utcnow


@dataclass(frozen=True, slots=True)
class InitResult:
    tenant_id: str
    principal_id: str
    key_id: str
    token: str


def create_tenant_with_owner(
    rt: Runtime,
    *,
    tenant_name: str,
    owner_name: str,
    actor: str = "system:init",
    first: bool = False,
) -> InitResult:
    """Create a tenant, an owner user bound at tenant scope, and an owner API key.

    With ``first``, also claim the installation marker in the same transaction:
    a second ``init`` fails with :class:`ConflictError` and writes nothing. (The
    marker is not tenant-owned because a tenantless transaction sees no tenant
    rows on PostgreSQL.)
    """
    tenant_id = new_id("ten")
    with rt.db.tenant_tx(tenant_id) as s:
        if first:
            s.add(Installation(id=1, initialised_at=utcnow()))
            try:
                s.flush()
            except IntegrityError:
                raise ConflictError("callvault is already initialised (a tenant exists)") from None
        tenancy.create_tenant(
            s,
            rt.sealer,
            rt.audit,
            tenancy.TenantSettings(name=tenant_name),
            tenancy.Change(actor_id=actor),
            tenant_id=tenant_id,
        )
        owner = access.create_principal(s, tenant_id, kind="user", name=owner_name)
        access.bind_role(
            s, tenant_id, owner.id, Role.OWNER, ScopeKind.TENANT, tenant_id, created_by=actor
        )
        key = access.issue_key(
            s, tenant_id, owner.id, label="init", ttl=timedelta(days=rt.settings.api_key_ttl_days)
        )
        rt.audit.append_in(
            s,
            tenant_id,
            AuditEvent(
                action="principal.bootstrap_owner",
                outcome=Outcome.SUCCESS,
                actor=actor,
                resource_kind="principal",
                resource_id=owner.id,
                ocsf_class=OCSF_ACCOUNT_CHANGE,
                detail={"key": key.id},
            ),
        )
    rt.audit.log_key(tenant_id)  # the tenant's audit log key, made now rather than on first use
    return InitResult(tenant_id=tenant_id, principal_id=owner.id, key_id=key.id, token=key.token)


def initialise(settings: Settings, *, tenant_name: str, owner_name: str) -> InitResult:
    """Create the root key (if none) and the first tenant; refuse if already initialised."""
    from callvault.keys import ROOT_KEY_FILE  # noqa: PLC0415 - keeps the import graph flat

    key_exists = (
        settings.root_key is not None
        or settings.root_passphrase is not None
        or (settings.data_dir / "keyring" / ROOT_KEY_FILE).exists()
    )
    rt = Runtime.open(settings, create_key=not key_exists, migrate=True)
    try:
        return create_tenant_with_owner(
            rt, tenant_name=tenant_name, owner_name=owner_name, first=True
        )
    finally:
        rt.close()
