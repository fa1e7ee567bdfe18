"""A tenant's SSO connections: stored sealed, validated by their adapter, never shown with secrets.

A connection is plain metadata (id, protocol, name, enabled, times) and one
sealed settings document: the adapter's configuration (an OIDC client
secret, an SP private key may be in it), the role mapping (it names the
customer's groups) and the login policy (``jit``, ``link_scim``,
``post_login_path``). The document is sealed under a data key of the
connection's own (owner kind :data:`OWNER_KIND`) bound to tenant and
connection; every write shreds the previous key first, so a copy of an old
row (a backup) never opens again, and deletion shreds it for good.

Writing a connection (:meth:`ConnectionStore.create`, :meth:`ConnectionStore.update`):

1. The configuration MUST NOT set what callvault derives (SP entity id, ACS
   URL, redirect URI: :func:`connection_urls`), and the installation MUST have
   a public base URL to derive them from.
   A SAML configuration with ``idp_metadata_url`` and no ``idp_metadata_xml``
   has its metadata fetched (:func:`fetch_metadata_guarded`: through the
   egress guard, so never from an internal address) and stored in
   ``idp_metadata_xml``; given both, the upload wins and nothing is fetched.
   A failed fetch is ``SsoConfigError(field="config.idp_metadata_url")``
   with a reason code, before anything is written.
2. The adapter parses the configuration with the derived values added
   (``parse_config``; :class:`SsoConfigError` names the field, prefixed
   ``config.``).
3. The mapping is parsed (:func:`callvault.sso._mapping.parse_policy`); the
   deployments and agents it names MUST exist in the tenant.
4. Shred the old key, seal the document under a new one, write the row.

What leaves (:meth:`ConnectionView`): the configuration without secret
fields (a top-level key whose name contains ``secret``, ``private_key``,
``password`` or ``passphrase``) and the names of those that are set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, Literal

import rfc8785
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from callvault import tenancy
from callvault.access import Binding, Role, RoleRevocation, ScopeKind
from callvault.crypto import SealContext, Sealer
from callvault.egress import EgressGuard
from callvault.errors import (
    InvalidInputError,
    NotFoundError,
    SsoConfigError,
    UnavailableError,
)
from callvault.keys import KeyHierarchy
from callvault.sso._adapter import SsoAdapter
from callvault.sso._mapping import MappingPolicy, parse_policy
from callvault.sso._metadata_url import MetadataFetcher, fetch_failed, fetch_metadata_guarded
from callvault.store.ids import new_id
from callvault.store.models import (
    RoleBinding,
    SsoConnection,
    SsoIdentityLink,
    SsoLoginState,
    SsoReplay,
    utcnow,
)

OWNER_KIND: Final = "sso-connection"
_PURPOSE: Final = "sso-connection"
ID_PREFIX: Final = "sso"
_SECRET_MARKERS: Final = ("secret", "private_key", "password", "passphrase")
#: A path on this installation: one leading slash, no scheme, no host, no backslash.
_LOCAL_PATH: Final = re.compile(r"^/(?![/\\])[A-Za-z0-9._~!$&'()*+,;=:@/?%-]{0,500}$")
LinkScim = Literal["email", "subject"]
Protocol = Literal["saml", "oidc"]


def new_connection_id() -> str:
    """``sso_`` and 128 random bits (the store's id format)."""
    return new_id(ID_PREFIX)


def is_secret_field(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


@dataclass(frozen=True, slots=True)
class ConnectionUrls:
    """Where the IdP and browsers reach one connection (derived, never configured)."""

    login_url: str
    #: SAML: our SP entity id, assertion consumer service and metadata.
    sp_entity_id: str | None = None
    acs_url: str | None = None
    metadata_url: str | None = None
    #: OIDC: the redirect URI to register with the provider.
    redirect_uri: str | None = None

    def derived_config(self) -> dict[str, str]:
        """What is added to the adapter's configuration before it is parsed."""
        if self.redirect_uri is not None:
            return {"redirect_uri": self.redirect_uri}
        assert self.sp_entity_id is not None  # noqa: S101 - SAML URLs come together
        assert self.acs_url is not None  # noqa: S101
        return {"sp_entity_id": self.sp_entity_id, "acs_url": self.acs_url}


def connection_urls(
    base_url: str | None, protocol: str, tenant_id: str, connection_id: str
) -> ConnectionUrls:
    """The connection's URLs under the installation's public base URL (fail closed if unset)."""
    if not base_url:
        raise UnavailableError(
            "single sign-on needs CALLVAULT_PUBLIC_BASE_URL (the installation's https:// URL)"
        )
    root = f"{base_url.rstrip('/')}/sso/{tenant_id}/{connection_id}"
    if protocol == "saml":
        return ConnectionUrls(
            login_url=f"{root}/login",
            sp_entity_id=f"{root}/saml/metadata",
            acs_url=f"{root}/saml/acs",
            metadata_url=f"{root}/saml/metadata",
        )
    return ConnectionUrls(login_url=f"{root}/login", redirect_uri=f"{root}/oidc/callback")


@dataclass(frozen=True, slots=True)
class ConnectionInput:
    """A whole connection as an administrator writes it (after merging a PATCH)."""

    protocol: Protocol
    name: str
    config: Mapping[str, Any]
    role_mappings: list[Any] = field(default_factory=list)
    default_role: Any = None
    allow_owner: bool = False
    jit: bool = True
    enabled: bool = True
    link_scim: LinkScim | None = None
    post_login_path: str = "/"


@dataclass(frozen=True, slots=True)
class Connection:
    """A stored connection, opened: the adapter's parsed configuration included."""

    id: str
    tenant_id: str
    protocol: Protocol
    name: str
    enabled: bool
    config: dict[str, Any]
    policy: MappingPolicy
    jit: bool
    link_scim: LinkScim | None
    post_login_path: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    #: What ``adapter.parse_config`` returned (derived URLs included).
    parsed: Any = None

    def as_input(self) -> ConnectionInput:
        doc = self.policy.document()
        return ConnectionInput(
            protocol=self.protocol,
            name=self.name,
            config=dict(self.config),
            role_mappings=doc["role_mappings"],
            default_role=doc["default_role"],
            allow_owner=self.policy.allow_owner,
            jit=self.jit,
            enabled=self.enabled,
            link_scim=self.link_scim,
            post_login_path=self.post_login_path,
        )

    def public_config(self) -> dict[str, Any]:
        return {k: v for k, v in self.config.items() if not is_secret_field(k)}

    def secrets_set(self) -> list[str]:
        return sorted(k for k, v in self.config.items() if is_secret_field(k) and v)

    def secret_values(self) -> dict[str, str]:
        """Secret fields as text, for HMAC references in audit entries (never shown)."""
        return {
            k: v if isinstance(v, str) else json.dumps(v, sort_keys=True)
            for k, v in self.config.items()
            if is_secret_field(k) and v
        }


def _context(tenant_id: str, connection_id: str) -> SealContext:
    return SealContext(
        tenant_id=tenant_id,
        purpose=_PURPOSE,
        object_id=connection_id,
        owner_kind=OWNER_KIND,
        owner_id=connection_id,
    )


class ConnectionStore:
    """Reads and writes connections inside the caller's tenant transaction.

    The caller MUST have passed the gate (``principal:manage`` to write,
    ``principal:read`` to read; ``principal:grant_owner`` too when the mapping
    can grant ``owner``).
    """

    def __init__(
        self,
        keys: KeyHierarchy,
        sealer: Sealer,
        adapters: Mapping[str, SsoAdapter],
        base_url: str | None,
        *,
        egress: EgressGuard | None = None,
        fetch_metadata: MetadataFetcher | None = None,
    ) -> None:
        """IdP metadata by URL is fetched with ``fetch_metadata`` if given, else
        :func:`fetch_metadata_guarded` through ``egress`` (default: a guard with the
        default policy: port 443, no allow-list, system trust; the API passes the
        installation's, from ``CALLVAULT_EGRESS_*``)."""
        self._keys = keys
        self._sealer = sealer
        self._adapters = adapters
        self._base_url = base_url
        self._fetch_metadata = fetch_metadata or fetch_metadata_guarded(egress or EgressGuard())

    def adapter(self, protocol: str) -> SsoAdapter:
        adapter = self._adapters.get(protocol)
        if adapter is None:
            raise UnavailableError(f"the {protocol} adapter is not available in this build")
        return adapter

    def urls(self, protocol: str, tenant_id: str, connection_id: str) -> ConnectionUrls:
        return connection_urls(self._base_url, protocol, tenant_id, connection_id)

    # -- checking ----------------------------------------------------------------------

    def _with_metadata(self, data: ConnectionInput) -> ConnectionInput:
        """Step (1), metadata by URL: fetched when the URL is given without an upload."""
        url = data.config.get("idp_metadata_url")
        if (
            data.protocol != "saml"
            or url is None
            or data.config.get("idp_metadata_xml") is not None
        ):
            return data  # no URL, or an upload: the upload wins, nothing is fetched
        if not isinstance(url, str):
            raise fetch_failed("url")
        try:
            xml = self._fetch_metadata(url).decode("utf-8")
        except UnicodeDecodeError:
            raise fetch_failed("not-metadata") from None
        return replace(data, config={**data.config, "idp_metadata_xml": xml})

    def _check(
        self, s: Session, tenant_id: str, connection_id: str, data: ConnectionInput
    ) -> tuple[ConnectionInput, Any, MappingPolicy]:
        """Steps (1)-(3); returns ``data`` with fetched metadata, the parsed config, the policy.

        Nothing is written before this returns, so a fetch (bounded by the egress
        timeout) never holds a write lock."""
        # (1)
        urls = self.urls(data.protocol, tenant_id, connection_id)
        derived = urls.derived_config()
        for key in derived:
            if key in data.config:
                raise InvalidInputError(
                    f"config.{key} is derived by callvault and cannot be set", field=f"config.{key}"
                )
        if not _LOCAL_PATH.match(data.post_login_path):
            raise InvalidInputError(
                "post_login_path must be a path on this installation (starting with one /)",
                field="post_login_path",
            )
        adapter = self.adapter(data.protocol)  # unavailable: 503 before any fetch
        data = self._with_metadata(data)
        # (2)
        try:
            parsed = adapter.parse_config({**data.config, **derived})
        except SsoConfigError as exc:
            where = f"config.{exc.field}" if exc.field else "config"
            raise SsoConfigError(f"{where} is invalid", field=where) from None
        # (3)
        policy = parse_policy(
            data.role_mappings,
            data.default_role,
            tenant_id=tenant_id,
            allow_owner=data.allow_owner,
        )
        for kind, scope_id in sorted(policy.scoped_ids):
            try:
                if kind is ScopeKind.DEPLOYMENT:
                    tenancy.get_deployment(s, tenant_id, scope_id)
                else:
                    tenancy.get_agent(s, tenant_id, scope_id)
            except NotFoundError:
                raise SsoConfigError(
                    f"a role mapping names a {kind.value} that does not exist in this tenant",
                    field="role_mappings",
                ) from None
        return data, parsed, policy

    # -- writing -----------------------------------------------------------------------

    def _seal(
        self, s: Session, row: SsoConnection, data: ConnectionInput, p: MappingPolicy
    ) -> None:
        # (4)
        doc = {
            "config": dict(data.config),
            **p.document(),
            "jit": data.jit,
            "link_scim": data.link_scim,
            "post_login_path": data.post_login_path,
        }
        self._keys.shred(s, row.tenant_id, OWNER_KIND, row.id)
        row.settings_sealed = self._sealer.seal(
            s, rfc8785.dumps(doc), _context(row.tenant_id, row.id)
        )

    def create(
        self, s: Session, tenant_id: str, data: ConnectionInput, *, actor: str
    ) -> Connection:
        connection_id = new_connection_id()
        data, _, policy = self._check(s, tenant_id, connection_id, data)
        now = utcnow()
        row = SsoConnection(
            id=connection_id,
            tenant_id=tenant_id,
            protocol=data.protocol,
            name=data.name,
            enabled=data.enabled,
            created_at=now,
            created_by=actor,
            updated_at=now,
        )
        self._seal(s, row, data, policy)
        s.add(row)
        s.flush()
        return self._open(s, row)

    def update(
        self, s: Session, tenant_id: str, connection_id: str, data: ConnectionInput
    ) -> Connection:
        row = self._row(s, tenant_id, connection_id)
        if data.protocol != row.protocol:
            raise InvalidInputError("protocol cannot change", field="protocol")
        data, _, policy = self._check(s, tenant_id, connection_id, data)
        row.name, row.enabled, row.updated_at = data.name, data.enabled, utcnow()
        self._seal(s, row, data, policy)
        s.flush()
        return self._open(s, row)

    def withdraw_grants(
        self, s: Session, tenant_id: str, connection_id: str, policy: MappingPolicy | None
    ) -> list[RoleRevocation]:
        """Delete the bindings this connection granted at logins (``created_by`` = its id)
        that ``policy`` can no longer give (None: all of them, the connection is going).

        A mapping that stops granting a role, or a deleted connection, takes the role
        back now, not at each user's next login (which may never come through this
        connection). Bindings an administrator made are never touched."""
        givable: set[Binding] = set()
        if policy is not None:
            givable = {r.binding for r in policy.rules}
            if policy.default is not None:
                givable.add(policy.default)
        rows = s.execute(
            select(RoleBinding)
            .where(RoleBinding.tenant_id == tenant_id, RoleBinding.created_by == connection_id)
            .order_by(RoleBinding.principal_id, RoleBinding.id)
        ).scalars()
        out: list[RoleRevocation] = []
        for row in rows:
            if Binding(Role(row.role), ScopeKind(row.scope_kind), row.scope_id) in givable:
                continue
            out.append(
                RoleRevocation(
                    principal_id=row.principal_id,
                    binding_id=row.id,
                    role=row.role,
                    scope_kind=row.scope_kind,
                    scope_id=row.scope_id,
                    connection_id=connection_id,
                )
            )
            s.delete(row)
        s.flush()
        return out

    def delete(self, s: Session, tenant_id: str, connection_id: str) -> list[str]:
        """Delete the connection, its pending logins, replay cache and identity links;
        shred its keys. Returns the ids of the principals that were linked to it."""
        row = self._row(s, tenant_id, connection_id)
        linked = sorted(
            s.execute(
                select(SsoIdentityLink.principal_id).where(
                    SsoIdentityLink.tenant_id == tenant_id,
                    SsoIdentityLink.connection_id == connection_id,
                )
            ).scalars()
        )
        for model in (SsoLoginState, SsoReplay, SsoIdentityLink):
            s.execute(
                delete(model).where(
                    model.tenant_id == tenant_id, model.connection_id == connection_id
                )
            )
        s.delete(row)
        s.flush()
        for kind in (OWNER_KIND, "sso-login-state"):
            self._keys.shred(s, tenant_id, kind, connection_id)
        return linked

    # -- reading -----------------------------------------------------------------------

    def _row(self, s: Session, tenant_id: str, connection_id: str) -> SsoConnection:
        row = s.execute(
            select(SsoConnection).where(
                SsoConnection.tenant_id == tenant_id, SsoConnection.id == connection_id
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFoundError("SSO connection not found", field="connection_id")
        return row

    def _open(self, s: Session, row: SsoConnection, *, parse: bool = False) -> Connection:
        doc = json.loads(self._sealer.open(s, row.settings_sealed, _context(row.tenant_id, row.id)))
        policy = parse_policy(
            doc["role_mappings"],
            doc["default_role"],
            tenant_id=row.tenant_id,
            allow_owner=bool(doc["allow_owner"]),
        )
        protocol: Protocol = "saml" if row.protocol == "saml" else "oidc"
        parsed = None
        if parse:
            urls = self.urls(protocol, row.tenant_id, row.id)
            parsed = self.adapter(protocol).parse_config({**doc["config"], **urls.derived_config()})
        return Connection(
            id=row.id,
            tenant_id=row.tenant_id,
            protocol=protocol,
            name=row.name,
            enabled=row.enabled,
            config=dict(doc["config"]),
            policy=policy,
            jit=bool(doc["jit"]),
            link_scim=doc.get("link_scim"),
            post_login_path=str(doc["post_login_path"]),
            created_at=row.created_at,
            created_by=row.created_by,
            updated_at=row.updated_at,
            parsed=parsed,
        )

    def get(
        self, s: Session, tenant_id: str, connection_id: str, *, parse: bool = False
    ) -> Connection:
        """The connection (404 if absent or another tenant's); ``parse``: with the adapter's
        parsed configuration, for a login."""
        return self._open(s, self._row(s, tenant_id, connection_id), parse=parse)

    def list_all(self, s: Session, tenant_id: str) -> list[Connection]:
        rows = s.execute(
            select(SsoConnection)
            .where(SsoConnection.tenant_id == tenant_id)
            .order_by(SsoConnection.created_at, SsoConnection.id)
        ).scalars()
        return [self._open(s, row) for row in rows]
