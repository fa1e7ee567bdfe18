"""The metadata schema (SQLAlchemy 2 declarative).

Plain columns hold metadata only: ids, names of configuration objects,
regions, timestamps, sizes, statuses. Customer content (prompts, knowledge-base
documents, tool definitions, caller numbers, transcript text, event detail)
lives only in ``*_sealed`` columns written through :mod:`callvault.crypto`.

Every table except ``tenants`` carries ``tenant_id``; on PostgreSQL every one of
them (``tenants`` by its ``id``) has a row-level security policy keyed on the
transaction setting ``callvault.tenant_id`` (see migration 0001).

Schema changes go through Alembic migrations in ``store/migrations``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = String(40)
VERSION_ID = String(64)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002 - SQLAlchemy's signature
    ) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Installation(Base):
    """One row, written by ``callvault init``. Not tenant-owned, so no row-level security:
    it is how a tenantless transaction learns the installation is initialised."""

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    initialised_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    current_version_id: Mapped[str | None] = mapped_column(VERSION_ID)


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(32))
    recording_retention_days: Mapped[int] = mapped_column(Integer)
    transcript_retention_days: Mapped[int] = mapped_column(Integer)
    key_provider: Mapped[str] = mapped_column(String(200))
    #: The customer's own key (ARN, key name, HSM label) when they bring one.
    key_ref: Mapped[str | None] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    current_version_id: Mapped[str | None] = mapped_column(VERSION_ID)


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (
        UniqueConstraint("deployment_id", "name"),
        Index("ix_agents_tenant_deployment", "tenant_id", "deployment_id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Prompt, knowledge-base documents and tool definitions live only in the
    #: sealed configuration version this points at.
    current_version_id: Mapped[str | None] = mapped_column(VERSION_ID)


class ConfigVersion(Base):
    """An immutable configuration version; ``sealed`` holds the canonical document."""

    __tablename__ = "config_versions"
    __table_args__ = (
        UniqueConstraint("subject_kind", "subject_id", "seq"),
        Index("ix_config_versions_tenant_subject", "tenant_id", "subject_id"),
    )

    id: Mapped[str] = mapped_column(VERSION_ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(ID, index=True)
    seq: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[str | None] = mapped_column(VERSION_ID)
    actor_id: Mapped[str] = mapped_column(ID)
    op: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class Principal(Base):
    """A user or a service account; API keys act as their principal."""

    __tablename__ = "principals"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RoleBinding(Base):
    __tablename__ = "role_bindings"
    __table_args__ = (
        UniqueConstraint("principal_id", "role", "scope_kind", "scope_id"),
        # A principal's bindings within its tenant: every request's authentication reads
        # them. One index for both columns, so no planner can choose the tenant alone and
        # scan every binding of a tenant of 10,000 users (migration 0010).
        Index("ix_role_bindings_tenant_principal", "tenant_id", "principal_id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    scope_kind: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[str] = mapped_column(ID)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(ID)


class ApiKey(Base):
    """A bearer key: only a salted SHA-256 of its 256-bit secret is stored."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_tenant_principal", "tenant_id", "principal_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        # Listing: newest first within the tenant, optionally one deployment or agent.
        Index("ix_calls_tenant_started", "tenant_id", "started_at"),
        Index("ix_calls_tenant_deployment_started", "tenant_id", "deployment_id", "started_at"),
        Index("ix_calls_tenant_agent_started", "tenant_id", "agent_id", "started_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id"), index=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    caller_number_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    segment_count: Mapped[int] = mapped_column(Integer, default=0)
    event_count: Mapped[int] = mapped_column(Integer, default=0)


class Recording(Base):
    """Where a call's sealed audio lives; the audio itself is never in the database."""

    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_tenant_call", "tenant_id", "call_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    object_ref: Mapped[str] = mapped_column(String(400))
    codec: Mapped[str] = mapped_column(String(16))
    sample_rate_hz: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(BigInteger)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    complete: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TranscriptSegment(Base):
    """One transcript segment; text and word timings are sealed together."""

    __tablename__ = "transcript_segments"
    __table_args__ = (Index("ix_transcript_segments_tenant_call", "tenant_id", "call_id", "seq"),)

    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    speaker: Mapped[str] = mapped_column(String(16))
    start_ms: Mapped[int] = mapped_column(BigInteger)
    end_ms: Mapped[int] = mapped_column(BigInteger)
    is_final: Mapped[bool] = mapped_column(Boolean)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class CallEvent(Base):
    """DTMF, tool calls, agent turns...; any detail is sealed."""

    __tablename__ = "call_events"
    __table_args__ = (Index("ix_call_events_tenant_call", "tenant_id", "call_id", "seq"),)

    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    kind: Mapped[str] = mapped_column(String(32))
    at_ms: Mapped[int] = mapped_column(BigInteger)
    detail_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)


class Kek(Base):
    """A key-encryption key held by a provider: one active per deployment (or per
    tenant, for tenant-level objects, with ``deployment_id`` NULL)."""

    __tablename__ = "keks"
    __table_args__ = (UniqueConstraint("tenant_id", "deployment_id", "version"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    deployment_id: Mapped[str | None] = mapped_column(ForeignKey("deployments.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_ref: Mapped[str] = mapped_column(String(400))
    version: Mapped[int] = mapped_column(Integer)
    #: active | retired | destroyed
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DataKey(Base):
    """A data key wrapped by a KEK. Deleting the row shreds everything sealed under it."""

    __tablename__ = "data_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "owner_kind", "owner_id", "purpose"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    deployment_id: Mapped[str | None] = mapped_column(ForeignKey("deployments.id"), index=True)
    owner_kind: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[str] = mapped_column(String(120))
    purpose: Mapped[str] = mapped_column(String(64))
    kek_id: Mapped[str] = mapped_column(ForeignKey("keks.id"), index=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditHead(Base):
    """Size and Merkle state of each tenant's audit log (the row is locked to append)."""

    __tablename__ = "audit_heads"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    #: The serialised compact range (roots of the perfect subtrees covering [0, size)).
    compact: Mapped[bytes | None] = mapped_column(LargeBinary)


class AuditCheckpoint(Base):
    """Insert-only. Signed notes over the log at a size."""

    __tablename__ = "audit_checkpoints"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditLogKey(Base):
    """The tenant log's keys: Ed25519 signing seed and the HMAC key for secrets in
    entries, both in ``secret_sealed`` (sealed under the tenant's keys)."""

    __tablename__ = "audit_log_keys"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    origin: Mapped[str] = mapped_column(String(200))
    verifier_key: Mapped[str] = mapped_column(String(400))
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditSink(Base):
    """A SIEM destination for a tenant's audit log; its token or secret is sealed."""

    __tablename__ = "audit_sinks"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    #: ``syslog-tls``, ``splunk-hec`` or ``webhook``.
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    #: Canonical JSON of the non-secret settings (address, CA, options).
    config: Mapped[bytes] = mapped_column(LargeBinary)
    secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditSinkCursor(Base):
    """Durable delivery position of one sink over its tenant's log (at-least-once)."""

    __tablename__ = "audit_sink_cursors"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    sink_id: Mapped[str] = mapped_column(ID, primary_key=True)
    #: Every entry below this index has been acknowledged by the sink.
    next_index: Mapped[int] = mapped_column(BigInteger)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    #: The class of the last failure (never a message with content).
    last_error: Mapped[str | None] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEntry(Base):
    """Insert-only. ``entry`` is RFC 8785 canonical JSON with ids only."""

    __tablename__ = "audit_entries"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    #: The leaf hash, then the hash of each perfect subtree this leaf completes
    #: (lowest level first): where proofs read subtree hashes (audit/proofs.py).
    hashes: Mapped[bytes | None] = mapped_column(LargeBinary)


#: Tables that PostgreSQL row-level security walls off by ``tenant_id``.
TENANT_TABLES: tuple[str, ...] = (
    "deployments",
    "agents",
    "config_versions",
    "principals",
    "role_bindings",
    "api_keys",
    "calls",
    "recordings",
    "transcript_segments",
    "call_events",
    "audit_heads",
    "audit_entries",
    "keks",
    "data_keys",
    "audit_checkpoints",
    "audit_log_keys",
    "audit_sinks",
    "audit_sink_cursors",
    "payment_tokens",
    "twilio_auth_tokens",
    "scim_tokens",
    "scim_users",
    "scim_groups",
    "scim_group_members",
)


class PaymentToken(Base):
    """A card token of the payments vault (:mod:`callvault.payments`).

    The card number (PAN) is only in ``pan_sealed``, sealed under the data key
    of the deployment's vault (owner kind ``payments_vault``, purpose ``pan``),
    never under a call's key: shredding a call leaves its tokens, and shredding
    the vault leaves the call. The plain columns are what PCI DSS lets be shown
    (last four digits, brand) and counts. ``fingerprint`` is HMAC-SHA256 under
    the vault's own fingerprint key over (call id, PAN), so the same card in the
    same call finds its token; it is never a plain hash of the PAN.
    """

    __tablename__ = "payment_tokens"
    __table_args__ = (UniqueConstraint("tenant_id", "call_id", "fingerprint"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id"), index=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    #: ``dtmf``, ``speech`` or ``agent``: how the number reached callvault.
    source: Mapped[str] = mapped_column(String(16))
    digits: Mapped[int] = mapped_column(Integer)
    last4: Mapped[str] = mapped_column(String(4))
    brand: Mapped[str] = mapped_column(String(16))
    luhn_valid: Mapped[bool] = mapped_column(Boolean)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    pan_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TwilioAuthToken(Base):
    """A deployment's Twilio auth token, for ``X-Twilio-Signature`` on live ingest.

    The token is only in ``token_sealed``, sealed under a data key of its own
    (owner kind ``twilio-auth-token``, owner id the deployment id) wrapped by the
    deployment's KEK; replacing or removing the token shreds that key
    (:mod:`callvault.calls._twilio_token`). The API says whether one is
    configured and since when, never the token.
    """

    __tablename__ = "twilio_auth_tokens"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id"), primary_key=True)
    token_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    configured_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScimToken(Base):
    """A tenant's SCIM bearer token (``callvault.scim``): only SHA-256(salt ‖ secret) is kept.

    Revoking sets ``revoked_at``; the row stays, so audit entries naming it resolve.
    """

    __tablename__ = "scim_tokens"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(ID)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ScimUser(Base):
    """A principal provisioned over SCIM; its SCIM id is the principal's id.

    The profile (userName, displayName, externalId) is only in ``profile_sealed``,
    under a data key of the user's own (owner kind ``scim_user``), shredded when
    the user is deleted. ``user_name_ref`` and ``external_id_ref`` are HMACs under
    a tenant key, for uniqueness and ``eq`` filters; never plain values. A deleted
    user keeps this row (``deleted_at``, refs and profile cleared) so the audit
    trail's principal id still names a row. ``active`` is the principal's.
    """

    __tablename__ = "scim_users"
    __table_args__ = (UniqueConstraint("tenant_id", "user_name_ref"),)

    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    user_name_ref: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    external_id_ref: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    profile_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ScimGroup(Base):
    """A SCIM group; displayName and externalId only sealed (owner kind ``scim_group``)."""

    __tablename__ = "scim_groups"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    display_name_ref: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    external_id_ref: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    profile_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScimGroupMember(Base):
    """A SCIM user's membership of a SCIM group."""

    __tablename__ = "scim_group_members"
    __table_args__ = (Index("ix_scim_group_members_tenant_principal", "tenant_id", "principal_id"),)

    group_id: Mapped[str] = mapped_column(ForeignKey("scim_groups.id"), primary_key=True)
    principal_id: Mapped[str] = mapped_column(
        ForeignKey("scim_users.principal_id"), primary_key=True, index=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- SSO (issue 7) ---


class SsoConnection(Base):
    """A tenant's single sign-on connection (SAML 2.0 or OIDC), ``callvault.sso``.

    Everything an administrator configured beyond the plain columns (the
    adapter's configuration, which may hold an OIDC client secret or an SP
    private key, the group/claim → role mappings, which name the customer's
    groups, and the login policy) is only in ``settings_sealed``, under a data
    key of the connection's own (owner kind ``sso-connection``), replaced on
    every change and shredded on deletion.
    """

    __tablename__ = "sso_connections"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    #: ``saml`` or ``oidc``.
    protocol: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean)
    settings_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(ID)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SsoLoginState(Base):
    """A started login waiting for the IdP's answer: single use, short-lived, bound to a browser.

    ``binding_hash`` is SHA-256 of the random value in the browser's state
    cookie (never the value); ``pending_sealed`` is what the adapter asked to
    keep (request id, or state/nonce/PKCE verifier), sealed under the
    connection's login-state key. ``used_at`` is set by the one request that
    consumes it.
    """

    __tablename__ = "sso_login_states"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    connection_id: Mapped[str] = mapped_column(ForeignKey("sso_connections.id"), index=True)
    binding_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    pending_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SsoReplay(Base):
    """An assertion id a connection has accepted (SHA-256 of it), kept until it cannot be
    accepted again (NotOnOrAfter plus the largest clock skew); the primary key makes the
    first use atomic across processes."""

    __tablename__ = "sso_replay"

    connection_id: Mapped[str] = mapped_column(ForeignKey("sso_connections.id"), primary_key=True)
    assertion_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    keep_until: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SsoIdentityLink(Base):
    """Which principal an IdP user (connection, subject) is. The subject is only an HMAC
    under the tenant's SSO lookup key; the last profile seen (e-mail, display name) only
    sealed, under a key of the principal's own (owner kind ``sso-profile``)."""

    __tablename__ = "sso_identities"
    __table_args__ = (UniqueConstraint("connection_id", "principal_id"),)

    connection_id: Mapped[str] = mapped_column(ForeignKey("sso_connections.id"), primary_key=True)
    subject_ref: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"), index=True)
    profile_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime] = mapped_column(UTCDateTime())


TENANT_TABLES += ("sso_connections", "sso_login_states", "sso_replay", "sso_identities")


# --- Browser sessions (issue 7) ---


class BrowserSession(Base):
    """A browser session (``callvault.sessions``): the cookie holds the id and a 256-bit
    secret; only SHA-256 of the secret and of the session's CSRF token are stored.

    ``expires_at`` is the absolute end; ``idle_timeout_seconds`` is measured from
    ``last_seen_at`` (written at most once a minute). Both are fixed at open from the
    tenant's session policy and only ever shortened (a tightened policy applies to live
    sessions). ``ended_at``/``end_reason`` record a logout, a revocation or an expiry
    noticed; the row stays for the audit trail.
    """

    __tablename__ = "browser_sessions"
    __table_args__ = (Index("ix_browser_sessions_tenant_principal", "tenant_id", "principal_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    csrf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    #: ``saml``, ``oidc`` or ``recovery_code``.
    method: Mapped[str] = mapped_column(String(16))
    #: The SSO connection that opened it (no foreign key: the connection may be deleted,
    #: which revokes its users' sessions).
    connection_id: Mapped[str | None] = mapped_column(ID)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    idle_timeout_seconds: Mapped[int] = mapped_column(Integer)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(32))
    ended_by: Mapped[str | None] = mapped_column(ID)


class TenantSessionPolicy(Base):
    """The plain projection of a tenant's current session policy (a versioned, sealed
    configuration subject ``session_policy``): what every request reads. No row: the
    defaults of :class:`callvault.sessions.SessionPolicy`."""

    __tablename__ = "tenant_session_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    absolute_timeout_seconds: Mapped[int] = mapped_column(Integer)
    idle_timeout_seconds: Mapped[int] = mapped_column(Integer)
    recovery_session_seconds: Mapped[int] = mapped_column(Integer)
    sso_required: Mapped[bool] = mapped_column(Boolean)
    version_id: Mapped[str] = mapped_column(VERSION_ID)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RecoveryCode(Base):
    """One owner recovery code: a slow hash (``kdf`` names it and its parameters) under
    the set's salt; single use (``used_at``); a regenerated set revokes the old one."""

    __tablename__ = "recovery_codes"
    __table_args__ = (Index("ix_recovery_codes_tenant_principal", "tenant_id", "principal_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    set_id: Mapped[str] = mapped_column(ID)
    kdf: Mapped[str] = mapped_column(String(64))
    salt: Mapped[bytes] = mapped_column(LargeBinary(16))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RecoveryLockout(Base):
    """Failed recovery-code attempts against a principal id, and the lock they set."""

    __tablename__ = "recovery_lockouts"

    # Keyed by the id asked about, with no foreign key to ``principals``: an id that
    # names nobody is counted and locked like a real one (no existence oracle, ADR 15).
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    principal_id: Mapped[str] = mapped_column(ID, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


TENANT_TABLES += (
    "browser_sessions",
    "tenant_session_policies",
    "recovery_codes",
    "recovery_lockouts",
)


# --- Operators and break-glass (issue 7) ---


class Operator(Base):
    """A platform operator: installation staff, never a member of any tenant. Not
    tenant-owned, so no row-level security (like ``installation``); created from the
    server's CLI only (``callvault operators create``)."""

    __tablename__ = "operators"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))


class OperatorKey(Base):
    """An operator's bearer key (``cvop1.…``): only a salted SHA-256 of its secret."""

    __tablename__ = "operator_keys"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    operator_id: Mapped[str] = mapped_column(ForeignKey("operators.id"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BreakGlassGrant(Base):
    """An operator's request for content access to one deployment, and its fate.

    Tenant-owned (walled): the tenant decides. ``reason_sealed`` is the operator's
    free text, sealed under a key of the grant's own; ``ticket_ref`` is a short
    identifier (letters, digits, ``.-_:#/``). Access holds while ``status`` is
    ``approved`` and the clock is before ``expires_at`` (approved_at + duration).
    """

    __tablename__ = "break_glass_grants"
    __table_args__ = (
        Index("ix_break_glass_grants_tenant_operator", "tenant_id", "operator_id"),
        Index("ix_break_glass_grants_tenant_status", "tenant_id", "status"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id"))
    operator_id: Mapped[str] = mapped_column(ForeignKey("operators.id"))
    reason_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    ticket_ref: Mapped[str] = mapped_column(String(64))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: A request not decided by then can no longer be approved.
    decide_by: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(ID)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_by: Mapped[str | None] = mapped_column(ID)


TENANT_TABLES += ("break_glass_grants",)
