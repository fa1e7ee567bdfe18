"""Settings: the one place callvault reads its environment.

Every setting is ``CALLVAULT_<NAME>``. The embedded defaults run everything in
one process on one machine: SQLite and files under ``data_dir``, the local
keyring, and a self-signed TLS certificate generated on first start.

Fail closed: a value that does not parse, or a ``CALLVAULT_*`` variable that
names no setting (a typo would otherwise be silently ignored), raises
:class:`~callvault.errors.ConfigError` naming the variable, never echoing its
value (it may be a secret).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from callvault.errors import ConfigError

ENV_PREFIX = "CALLVAULT_"

#: Variables with our prefix that are read elsewhere on purpose (not settings).
_NON_SETTING_VARS = frozenset({"CALLVAULT_API_KEY", "CALLVAULT_URL", "CALLVAULT_CA_FILE"})


class Settings(BaseSettings):
    """All of callvault's settings, with units in their names."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, validate_default=True
    )

    data_dir: Path = Field(
        default=Path(".callvault"),
        description="Directory for the embedded database, keyring and TLS files.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite under data_dir. PostgreSQL: "
        "postgresql+psycopg://user@host/db (the role must not be superuser or BYPASSRLS).",
    )
    migration_database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL: URL of the role that owns the schema and applies "
        "migrations, then grants CALLVAULT_DATABASE_URL's role only what the service needs "
        "(never UPDATE, DELETE or TRUNCATE on the audit log). The service refuses to run as "
        "a role that owns the audit tables or holds those privileges.",
    )
    auto_migrate: bool = Field(
        default=True, description="Apply database migrations when the service starts."
    )

    host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    port: int = Field(default=8443, ge=1, le=65535)
    tls_cert_file: Path | None = Field(default=None, description="PEM certificate chain.")
    tls_key_file: Path | None = Field(default=None, description="PEM private key.")
    hsts_max_age_seconds: int = Field(default=63_072_000, ge=0, le=63_072_000)

    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, le=64 * 1_048_576, description="Largest request body."
    )
    api_key_ttl_days: int = Field(
        default=90, ge=1, le=730, description="Lifetime of API keys created without an expiry."
    )
    root_key: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 random bytes sealing local data; default: a file in data_dir.",
    )
    root_passphrase: SecretStr | None = Field(
        default=None,
        description="Passphrase sealing the local keyring (Argon2id) instead of the root key.",
    )
    data_key_cache_size: int = Field(
        default=10_000, ge=0, le=1_000_000, description="Unwrapped data keys kept in memory."
    )
    data_key_cache_ttl_seconds: int = Field(
        default=300, ge=0, le=86_400, description="How long an unwrapped data key is reused."
    )
    # Key providers beyond the local keyring (issue 3; see keys/_registry.py).
    aws_kms_enabled: bool = Field(
        default=False, description="Allow deployments to use AWS KMS in their own region."
    )
    aws_kms_endpoint_url: str | None = Field(
        default=None, description="KMS endpoint override (VPC endpoint, or a test server)."
    )
    gcp_kms_project: str | None = Field(default=None, max_length=100)
    gcp_kms_key_ring: str | None = Field(
        default=None, max_length=100, description="Key ring name, in every region's location."
    )
    pkcs11_module: Path | None = Field(default=None, description="PKCS#11 library of the HSM.")
    pkcs11_token_label: str | None = Field(default=None, max_length=32)
    pkcs11_pin: SecretStr | None = Field(default=None, description="HSM user PIN.")
    vault_addr: str | None = Field(default=None, description="OpenBao/Vault address.")
    vault_token: SecretStr | None = None
    vault_mount: str = Field(default="transit", max_length=200)
    vault_namespace: str | None = Field(default=None, max_length=200)
    vault_ca_file: Path | None = None
    object_stores: str | None = Field(
        default=None,
        max_length=65_536,
        description="JSON: per region, where sealed objects go ({'eu-west-2': {'kind': 's3', "
        "'bucket': ...}}); regions not named use a local directory under data_dir.",
    )
    db_busy_timeout_ms: int = Field(default=5_000, ge=0, le=60_000)
    db_pool_size: int = Field(
        default=16,
        ge=1,
        le=200,
        description="Database connections kept open; request worker threads are half of it "
        "(a request holds at most two), so a request never waits for or opens one.",
    )
    audit_max_entry_bytes: int = Field(default=65_536, ge=1024, le=1_048_576)
    audit_origin_prefix: str = Field(
        default="callvault.localhost/audit",
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9._~:/-]+$",
        description="Checkpoint origin of each tenant's log is '<prefix>/<tenant id>'; "
        "name this installation (e.g. 'callvault.example.org/audit'). Fixed per tenant "
        "when its log key is made.",
    )
    audit_batch_max: int = Field(
        default=512, ge=1, le=10_000, description="Most entries one group commit writes."
    )
    audit_batch_wait_ms: float = Field(
        default=1.0,
        ge=0,
        le=100,
        description="Longest a group commit waits for more entries once it has one.",
    )
    audit_writers: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Group-commit writer threads on PostgreSQL, each with its own transaction; "
        "tenants are spread over them (a tenant always on the same one). SQLite uses one.",
    )
    audit_append_timeout_ms: int = Field(
        default=5_000,
        ge=10,
        le=120_000,
        description="An append not committed by then fails (503) and its action does not run.",
    )
    audit_checkpoint_interval_seconds: float = Field(
        default=60.0,
        ge=0,
        le=86_400,
        description="How often each grown log gets a signed checkpoint (0: only on demand).",
    )
    playback_url_ttl_seconds: int = Field(
        default=300,
        ge=10,
        le=3600,
        description="How long a signed playback URL (POST /v1/calls/{id}/recording/url) works.",
    )
    ingest_hold_ms: int = Field(
        default=2_000,
        ge=0,
        le=30_000,
        description="Live call audio held back before sealing, so spans the transcript "
        "redaction finds later (speech recognition lags) can still be silenced.",
    )
    ingest_max_hold_ms: int = Field(
        default=15_000,
        ge=1_000,
        le=120_000,
        description="Most call audio held at once; older audio is sealed as silence "
        "(never unsilenced) if it cannot be released in time.",
    )
    redact_max_chars: int = Field(
        default=65_536,
        ge=1,
        le=16_777_216,
        description="Longest text (characters) redacted in one piece; longer is refused. "
        "`callvault redact --jsonl` also refuses, without reading it whole, a line over "
        "4 bytes per character plus 64 KiB.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    public_base_url: str | None = Field(
        default=None,
        max_length=400,
        pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$",
        description="https:// URL at which browsers and identity providers reach this "
        "installation (no query). Single sign-on derives each connection's SP entity id, "
        "ACS URL and redirect URI from it; unset: SSO connections cannot be created or used.",
    )
    sso_login_state_ttl_seconds: int = Field(
        default=600,
        ge=60,
        le=600,
        description="How long a started SSO login may take before its pending state expires.",
    )
    sso_max_pending_logins: int = Field(
        default=10_000,
        ge=10,
        le=1_000_000,
        description="Unexpired pending logins kept per SSO connection; beyond it new logins "
        "are refused (429) until some finish or expire.",
    )
    sso_max_form_bytes: int = Field(
        default=524_288,
        ge=16_384,
        le=4_194_304,
        description="Largest form body POSTed to a SAML assertion consumer service.",
    )
    # Outbound requests to URLs a tenant supplies (callvault.egress; ADR 18), e.g. SAML
    # IdP metadata by URL. Set by the installation's operator, never by a tenant.
    egress_allow_cidrs: str = Field(
        default="",
        max_length=4096,
        description="Comma-separated CIDRs of on-premises networks tenant-supplied URLs may "
        "reach (an IdP behind the firewall); each must lie within 10.0.0.0/8, 172.16.0.0/12, "
        "192.168.0.0/16, 100.64.0.0/10 or fc00::/7. Loopback, link-local (cloud metadata) "
        "and other internal addresses are always refused. Default: none.",
    )
    egress_allow_ports: str = Field(
        default="443",
        max_length=200,
        pattern=r"^ *[0-9]{1,5} *(, *[0-9]{1,5} *)*$",
        description="Comma-separated TCP ports tenant-supplied https URLs may name.",
    )
    egress_timeout_seconds: float = Field(
        default=10.0,
        ge=1,
        le=60,
        description="Total time one outbound request to a tenant-supplied URL may take "
        "(name lookup, connect, TLS, body).",
    )
    egress_ca_file: Path | None = Field(
        default=None,
        description="PEM bundle of extra CAs trusted for tenant-supplied URLs (an on-premises "
        "IdP's internal CA), in addition to the system trust store.",
    )
    # Browser sessions (callvault.sessions). Lifetimes are per tenant (its session policy,
    # default 12 h absolute and 30 min idle); these bound the owner recovery-code login.
    session_recovery_max_failures: int = Field(
        default=5,
        ge=1,
        le=20,
        description="Failed recovery-code attempts against one owner, within the lockout "
        "period, that lock recovery-code login for that owner.",
    )
    session_recovery_lockout_minutes: int = Field(
        default=15,
        ge=1,
        le=1440,
        description="How long recovery-code login stays locked after too many failures "
        "(and the window in which failures are counted).",
    )
    payment_connector_url: str | None = Field(
        default=None,
        max_length=2000,
        description="https:// endpoint of the payment processor that receives card numbers "
        "from the tokenization vault (POST /v1/payments/tokens/{id}/handoff). Unset: no hand-off.",
    )
    payment_connector_secret: SecretStr | None = Field(
        default=None, description="Bearer secret for the payment connector."
    )
    payment_connector_ca_file: Path | None = Field(
        default=None, description="CA bundle that verifies the payment connector (default: system)."
    )

    @model_validator(mode="after")
    def _tls_files_come_in_pairs(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            missing = "TLS_KEY_FILE" if self.tls_key_file is None else "TLS_CERT_FILE"
            raise ValueError(f"{ENV_PREFIX}{missing} must be set with the other TLS file")
        return self

    @model_validator(mode="after")
    def _payment_connector_is_whole(self) -> Settings:
        if (self.payment_connector_url is None) != (self.payment_connector_secret is None):
            raise ValueError(
                f"{ENV_PREFIX}PAYMENT_CONNECTOR_URL and {ENV_PREFIX}PAYMENT_CONNECTOR_SECRET "
                "must be set together"
            )
        return self

    @model_validator(mode="after")
    def _ingest_hold_within_its_bound(self) -> Settings:
        if self.ingest_max_hold_ms < self.ingest_hold_ms:
            raise ValueError(
                f"{ENV_PREFIX}INGEST_MAX_HOLD_MS must be at least {ENV_PREFIX}INGEST_HOLD_MS"
            )
        return self

    @model_validator(mode="after")
    def _egress_lists_parse(self) -> Settings:
        _ = self.egress_allow_networks, self.egress_allowed_ports
        return self

    @property
    def egress_allow_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """``CALLVAULT_EGRESS_ALLOW_CIDRS`` parsed (``ValueError`` naming the entry's position)."""
        from callvault.egress._address import parse_allow_list  # noqa: PLC0415 - httpx and the egress package load only when a list is set

        if not self.egress_allow_cidrs.strip():
            return ()
        try:
            return parse_allow_list(self.egress_allow_cidrs.split(","))
        except ValueError as exc:
            raise ValueError(f"{ENV_PREFIX}EGRESS_ALLOW_CIDRS: {exc}") from None

    @property
    def egress_allowed_ports(self) -> frozenset[int]:
        ports = frozenset(int(p) for p in self.egress_allow_ports.split(","))
        if not all(1 <= p <= 65535 for p in ports):
            raise ValueError(f"{ENV_PREFIX}EGRESS_ALLOW_PORTS: ports are 1-65535")
        return ports

    @property
    def db_url(self) -> str:
        """The effective database URL (the embedded SQLite file by default)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'callvault.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from ``environ`` (default: the process environment).

    Raises :class:`ConfigError` with one line naming the offending variable.
    """
    env = os.environ if environ is None else environ
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    unknown = sorted(
        k for k in env if k.startswith(ENV_PREFIX) and k not in known and k not in _NON_SETTING_VARS
    )
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]}", field=unknown[0])
    values: dict[str, object] = {
        name: env[f"{ENV_PREFIX}{name.upper()}"]
        for name in Settings.model_fields
        if f"{ENV_PREFIX}{name.upper()}" in env
    }
    values.update(overrides)
    try:
        # Values are passed explicitly (not re-read from os.environ) so tests
        # and the CLI see exactly one source.
        return Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        loc = err["loc"]
        # err["msg"] never contains the input value (include_input=False above
        # drops it from the structure; pydantic's messages name the expectation).
        if not loc:  # a rule across settings; its message names the variables
            raise ConfigError(f"bad settings: {err['msg'].removeprefix('Value error, ')}") from None
        name = f"{ENV_PREFIX}{str(loc[0]).upper()}"
        raise ConfigError(f"bad setting {name}: {err['msg']}", field=name) from None
