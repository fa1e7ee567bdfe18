"""The tenant's SSO connections (SAML, OIDC): create, list, read, change, delete.

A connection decides who may become a principal of the tenant and with which
roles, so writing one is managing principals (``principal:manage``), and a
connection whose mapping can grant ``owner`` also needs
``principal:grant_owner``; reading needs ``principal:read``. Secrets in the
configuration are never returned (only which secret fields are set). Every
change is an audit entry naming fields, never values; secrets appear as
HMAC references under the tenant's log key.
"""

from __future__ import annotations

from datetime import datetime
from importlib import import_module
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from sqlalchemy.orm import Session

from callvault import sso, tenancy
from callvault.access import Action, RoleRevocation
from callvault.api import resources, sso_wiring
from callvault.api.blocking import blocking
from callvault.api.deps import Ctx, CtxDep
from callvault.audit import AuditEvent, Outcome
from callvault.audit._entry import OCSF_ACCOUNT_CHANGE, OCSF_ENTITY_MANAGEMENT
from callvault.errors import Error, NotFoundError
from callvault.store.ids import is_id

router = APIRouter(prefix="/v1/tenant/sso/connections", tags=["sso"])

Name = Annotated[StrictStr, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Rules = Annotated[list[dict[str, Any]], Field(max_length=200)]
LocalPath = Annotated[StrictStr, Field(min_length=1, max_length=500)]


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    protocol: Literal["saml", "oidc"]
    name: Name
    config: dict[str, Any]
    role_mappings: Rules = Field(default_factory=list)
    default_role: StrictStr | dict[str, Any] | None = None
    allow_owner: StrictBool = False
    jit: StrictBool = True
    enabled: StrictBool = True
    link_scim: Literal["email", "subject"] | None = None
    post_login_path: LocalPath = "/"


class ConnectionPatch(BaseModel):
    """Absent fields stay. ``config`` is merged key by key (``null`` removes a key, so a
    stored secret is kept unless named); ``default_role``/``link_scim`` ``null`` clears.
    A SAML ``config.idp_metadata_url`` without ``idp_metadata_xml`` in the same patch
    (re)fetches the metadata from it, replacing the stored document."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name | None = None
    config: dict[str, Any] | None = None
    role_mappings: Rules | None = None
    default_role: StrictStr | dict[str, Any] | None = None
    allow_owner: StrictBool | None = None
    jit: StrictBool | None = None
    enabled: StrictBool | None = None
    link_scim: Literal["email", "subject"] | None = None
    post_login_path: LocalPath | None = None


class UrlsOut(BaseModel):
    login_url: str
    sp_entity_id: str | None = None
    acs_url: str | None = None
    metadata_url: str | None = None
    redirect_uri: str | None = None


class ConnectionOut(BaseModel):
    id: str
    protocol: str
    name: str
    enabled: bool
    jit: bool
    allow_owner: bool
    link_scim: str | None
    post_login_path: str
    role_mappings: list[dict[str, Any]]
    default_role: dict[str, Any] | None
    #: The adapter's configuration without its secret fields.
    config: dict[str, Any]
    #: Names of the secret fields that hold a value (never the values).
    secrets_set: list[str]
    #: What to configure at the IdP; null while CALLVAULT_PUBLIC_BASE_URL is unset.
    urls: UrlsOut | None
    created_at: datetime
    created_by: str
    updated_at: datetime


def _store(request: Request, ctx: Ctx) -> sso.ConnectionStore:
    # IdP metadata by URL, like every OIDC fetch, goes through the app's egress guard.
    return sso.ConnectionStore(
        ctx.rt.keys,
        ctx.rt.sealer,
        sso_wiring.sso_adapters(request),
        ctx.rt.settings.public_base_url,
        egress=sso_wiring.egress_guard(request),
    )


def _out(store: sso.ConnectionStore, conn: sso.Connection) -> ConnectionOut:
    doc = conn.policy.document()
    try:
        urls: UrlsOut | None = UrlsOut.model_validate(
            store.urls(conn.protocol, conn.tenant_id, conn.id), from_attributes=True
        )
    except Error:
        urls = None
    return ConnectionOut(
        id=conn.id,
        protocol=conn.protocol,
        name=conn.name,
        enabled=conn.enabled,
        jit=conn.jit,
        allow_owner=conn.policy.allow_owner,
        link_scim=conn.link_scim,
        post_login_path=conn.post_login_path,
        role_mappings=doc["role_mappings"],
        default_role=doc["default_role"],
        config=conn.public_config(),
        secrets_set=conn.secrets_set(),
        urls=urls,
        created_at=conn.created_at,
        created_by=conn.created_by,
        updated_at=conn.updated_at,
    )


def _gate(s: Session, ctx: Ctx, action: Action) -> None:
    tenant = resources.of_tenant(tenancy.read_tenant(s, ctx.tenant_id))
    ctx.enforce(action, tenant)


def _gate_owner(s: Session, ctx: Ctx, conn: sso.Connection) -> None:
    """Only an owner may write a connection that can make owners, or one that logs in as
    existing SCIM users (``link_scim``): whoever sets its IdP can sign in as any of them,
    administrators included, so it is at least an owner grant."""
    if conn.policy.allow_owner or conn.policy.grants_owner or conn.link_scim is not None:
        _gate(s, ctx, Action.PRINCIPAL_GRANT_OWNER)


def _secret_refs(ctx: Ctx, conn: sso.Connection, only: set[str] | None = None) -> dict[str, str]:
    key = ctx.rt.audit.log_key(ctx.tenant_id)
    return {
        name: key.secret_ref(value)
        for name, value in conn.secret_values().items()
        if only is None or name in only
    }


def _audit(s: Session, ctx: Ctx, action: str, conn_id: str, detail: dict[str, Any]) -> None:
    ctx.rt.audit.append_in(
        s,
        ctx.tenant_id,
        AuditEvent(
            action=action,
            outcome=Outcome.SUCCESS,
            actor=ctx.principal.id,
            resource_kind="sso_connection",
            resource_id=conn_id,
            request_id=ctx.request_id,
            ocsf_class=OCSF_ENTITY_MANAGEMENT,
            detail=detail,
        ),
    )


@router.post("", status_code=status.HTTP_201_CREATED)
@blocking
def create_sso_connection(body: ConnectionCreate, request: Request, ctx: CtxDep) -> ConnectionOut:
    ctx.rt.audit.log_key(ctx.tenant_id)  # made (if new) before this transaction writes
    store = _store(request, ctx)
    with ctx.tx() as s:
        _gate(s, ctx, Action.PRINCIPAL_MANAGE)
        data = sso.ConnectionInput(**body.model_dump())
        if data.allow_owner or data.link_scim is not None:  # before any write (_gate_owner)
            _gate(s, ctx, Action.PRINCIPAL_GRANT_OWNER)
        conn = store.create(s, ctx.tenant_id, data, actor=ctx.principal.id)
        _gate_owner(s, ctx, conn)
        _audit(
            s,
            ctx,
            "sso_connection.create",
            conn.id,
            {
                "protocol": conn.protocol,
                "enabled": conn.enabled,
                "jit": conn.jit,
                "rules": len(conn.policy.rules),
                "config_fields": sorted(conn.config),
                "secrets": _secret_refs(ctx, conn),
            },
        )
        return _out(store, conn)


@router.get("")
@blocking
def list_sso_connections(request: Request, ctx: CtxDep) -> list[ConnectionOut]:
    store = _store(request, ctx)
    with ctx.tx() as s:
        _gate(s, ctx, Action.PRINCIPAL_READ)
        return [_out(store, c) for c in store.list_all(s, ctx.tenant_id)]


def _connection_id(value: str) -> str:
    if not is_id(value, "sso"):
        raise NotFoundError("SSO connection not found", field="connection_id")
    return value


@router.get("/{connection_id}")
@blocking
def get_sso_connection(connection_id: str, request: Request, ctx: CtxDep) -> ConnectionOut:
    store = _store(request, ctx)
    with ctx.tx() as s:
        _gate(s, ctx, Action.PRINCIPAL_READ)
        return _out(store, store.get(s, ctx.tenant_id, _connection_id(connection_id)))


def _merged(old: sso.ConnectionInput, patch: ConnectionPatch) -> sso.ConnectionInput:
    given = patch.model_fields_set
    config = dict(old.config)
    if patch.config is not None:
        for key, value in patch.config.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        if (
            patch.config.get("idp_metadata_url") is not None
            and "idp_metadata_xml" not in patch.config
        ):
            config.pop("idp_metadata_xml", None)  # the store fetches it again from the URL
    return sso.ConnectionInput(
        protocol=old.protocol,
        name=patch.name if patch.name is not None else old.name,
        config=config,
        role_mappings=patch.role_mappings if patch.role_mappings is not None else old.role_mappings,
        default_role=patch.default_role if "default_role" in given else old.default_role,
        allow_owner=patch.allow_owner if patch.allow_owner is not None else old.allow_owner,
        jit=patch.jit if patch.jit is not None else old.jit,
        enabled=patch.enabled if patch.enabled is not None else old.enabled,
        link_scim=patch.link_scim if "link_scim" in given else old.link_scim,
        post_login_path=patch.post_login_path
        if patch.post_login_path is not None
        else old.post_login_path,
    )


def _changed(old: sso.Connection, new: sso.Connection) -> tuple[list[str], list[str]]:
    a, b = old.as_input(), new.as_input()
    fields = [
        name
        for name in (
            "name",
            "enabled",
            "jit",
            "allow_owner",
            "link_scim",
            "post_login_path",
            "role_mappings",
            "default_role",
        )
        if getattr(a, name) != getattr(b, name)
    ]
    keys = sorted(k for k in set(a.config) | set(b.config) if a.config.get(k) != b.config.get(k))
    if keys:
        fields.append("config")
    return fields, keys


@router.patch("/{connection_id}")
@blocking
def update_sso_connection(
    connection_id: str, body: ConnectionPatch, request: Request, ctx: CtxDep
) -> ConnectionOut:
    ctx.rt.audit.log_key(ctx.tenant_id)
    store = _store(request, ctx)
    with ctx.tx() as s:
        _gate(s, ctx, Action.PRINCIPAL_MANAGE)
        old = store.get(s, ctx.tenant_id, _connection_id(connection_id))
        _gate_owner(s, ctx, old)  # an owner-granting connection is an owner's to change
        data = _merged(old.as_input(), body)
        if data.allow_owner or data.link_scim is not None:  # before any write (_gate_owner)
            _gate(s, ctx, Action.PRINCIPAL_GRANT_OWNER)
        new = store.update(s, ctx.tenant_id, old.id, data)
        _gate_owner(s, ctx, new)
        fields, keys = _changed(old, new)
        withdrawn = store.withdraw_grants(s, ctx.tenant_id, new.id, new.policy)
        if fields:
            secrets = {k for k in keys if sso.is_secret_field(k)}
            _audit(
                s,
                ctx,
                "sso_connection.update",
                new.id,
                {
                    "changed": fields,
                    "config_fields": keys,
                    "secrets": _secret_refs(ctx, new, secrets),
                    "secrets_removed": sorted(secrets - set(new.secret_values())),
                    "enabled": new.enabled,
                    "roles_withdrawn": len(withdrawn),
                },
            )
        _audit_withdrawn(s, ctx, withdrawn, "sso-mapping-changed")
        return _out(store, new)


@router.delete("/{connection_id}", status_code=status.HTTP_204_NO_CONTENT)
@blocking
def delete_sso_connection(connection_id: str, request: Request, ctx: CtxDep) -> Response:
    """Delete the connection: its users cannot log in through it again, their links,
    pending logins and replay cache go, its keys are shredded, and the browser sessions
    of the principals it linked are revoked. The principals and their other roles stay."""
    store = _store(request, ctx)
    with ctx.tx() as s:
        _gate(s, ctx, Action.PRINCIPAL_MANAGE)
        conn = store.get(s, ctx.tenant_id, _connection_id(connection_id))
        _gate_owner(s, ctx, conn)
        withdrawn = store.withdraw_grants(s, ctx.tenant_id, conn.id, None)
        linked = store.delete(s, ctx.tenant_id, conn.id)
        revoked = _revoke_sessions(s, ctx.tenant_id, linked)
        _audit(
            s,
            ctx,
            "sso_connection.delete",
            conn.id,
            {
                "protocol": conn.protocol,
                "linked_principals": len(linked),
                "sessions_revoked": revoked,
                "roles_withdrawn": len(withdrawn),
            },
        )
        _audit_withdrawn(s, ctx, withdrawn, "sso-connection-deleted")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _audit_withdrawn(s: Session, ctx: Ctx, withdrawn: list[RoleRevocation], source: str) -> None:
    """One ``principal.unbind_role`` entry per binding the connection's change took back."""
    for r in withdrawn:
        ctx.rt.audit.append_in(
            s,
            ctx.tenant_id,
            AuditEvent(
                action="principal.unbind_role",
                outcome=Outcome.SUCCESS,
                actor=ctx.principal.id,
                resource_kind="principal",
                resource_id=r.principal_id,
                request_id=ctx.request_id,
                ocsf_class=OCSF_ACCOUNT_CHANGE,
                detail={
                    "binding": r.binding_id,
                    "role": r.role,
                    "scope_kind": r.scope_kind,
                    "scope": r.scope_id,
                    "source": source,
                    "connection": r.connection_id,
                },
            ),
        )


def _revoke_sessions(s: Session, tenant_id: str, principal_ids: list[str]) -> int:
    """Revoke the linked principals' browser sessions (``callvault.sessions``); without that
    package there are no browser sessions to revoke."""
    try:
        sessions = import_module("callvault.sessions")
    except ImportError:
        return 0
    return sum(
        int(
            sessions.revoke_principal_sessions(
                s, tenant_id=tenant_id, principal_id=p, reason="sso-connection-deleted"
            )
        )
        for p in principal_ids
    )
