"""A login from start to session: connection, pending state, adapter, principal, audit, session.

:meth:`SsoLogin.start` (``GET /sso/{tenant}/{connection}/login``):

1. Load the connection in the path's tenant (unknown, another tenant's, or of
   the other protocol: 404; disabled: refused) with its parsed configuration.
2. The adapter builds the IdP request (``start_login``), outside any transaction.
3. Store the pending values sealed, single use, expiring, bound to a new
   random cookie value (:mod:`callvault.sso._states`); return the IdP URL and
   the cookie value.

:meth:`SsoLogin.finish` (SAML ACS POST, OIDC callback):

1. Load the connection as in start step 1 (disabled: a failed login).
2. Consume the pending state this browser's cookie names, and commit that
   (single use even if the login then fails).
3. The adapter verifies the IdP's answer against the pending values, with the
   database replay cache (``finish_login``); the identity MUST name this
   tenant, connection and protocol.
4. In one tenant transaction: resolve the principal and sync its roles
   (:mod:`callvault.sso._link`), open the browser session, append the audit
   entries (provisioning, role changes, the login) last, commit. If the
   audit append fails nothing commits: no principal, no role, no session.
5. Any failure after step 1 is a failed-login audit entry (reason code,
   connection id, subject HMAC when known; an unexpected error is
   ``internal-error``), committed before the error leaves; a denial commits
   the role removals it made with it. If that entry cannot be written the
   answer is 503. An answer the route refuses before it can be read (too
   large, a malformed form) is a failed login too (:meth:`SsoLogin.refuse`).

Nothing the IdP sent (subject, e-mail, groups, XML, tokens) is logged, put in
an error or in an audit entry: ids, reason codes and HMACs only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any, Final

from sqlalchemy.orm import Session

from callvault.audit import AuditEvent, AuditLog, Outcome
from callvault.audit._entry import OCSF_ACCOUNT_CHANGE, OCSF_AUTHENTICATION
from callvault.config import Settings
from callvault.crypto import Sealer
from callvault.errors import (
    AuditUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    SsoConfigError,
    SsoError,
)
from callvault.keys import KeyHierarchy
from callvault.sso._adapter import SsoAdapter
from callvault.sso._connections import Connection, ConnectionStore
from callvault.sso._identity import SsoIdentity
from callvault.sso._link import IdentityLinker, LinkOutcome
from callvault.sso._replay import DbReplayGuard
from callvault.sso._sp_metadata import sp_metadata
from callvault.sso._states import LoginStates
from callvault.store import Database
from callvault.store.ids import is_id
from callvault.store.models import utcnow

log = logging.getLogger("callvault.sso")

LOGIN_ACTION: Final = "authn.sso"


class SsoDeniedError(PermissionDeniedError):
    """The IdP's answer verified, but this user may not log in (``reason`` says why)."""

    code = "sso-denied"

    def __init__(self, message: str, *, reason: str, audited: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        #: Whether the failed-login entry was already appended (with the role removals).
        self.audited = audited


@dataclass(frozen=True, slots=True)
class LoginRedirect:
    redirect_url: str
    #: The state cookie's value (the server keeps only its hash).
    binding: str
    protocol: str
    max_age_seconds: int


@dataclass(frozen=True, slots=True)
class LoginDone:
    #: What :func:`callvault.sessions.open_session` returned (for ``set_session_cookie``).
    session: Any
    principal_id: str
    redirect_path: str
    protocol: str


def _check_path_ids(tenant_id: str, connection_id: str) -> None:
    if not (is_id(tenant_id, "ten") and is_id(connection_id, "sso")):
        raise NotFoundError("SSO connection not found", field="connection_id")


class SsoLogin:
    """Starts and finishes logins for any tenant (the path names it)."""

    def __init__(
        self,
        *,
        db: Database,
        keys: KeyHierarchy,
        sealer: Sealer,
        audit: AuditLog,
        settings: Settings,
        adapters: Mapping[str, SsoAdapter],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock
        self.store = ConnectionStore(keys, sealer, adapters, settings.public_base_url)
        self._states = LoginStates(
            sealer,
            ttl=timedelta(seconds=settings.sso_login_state_ttl_seconds),
            max_pending=settings.sso_max_pending_logins,
        )
        self._ttl = settings.sso_login_state_ttl_seconds
        self._linker = IdentityLinker(keys, sealer)

    # -- start -------------------------------------------------------------------------

    def _connection(
        self, s: Session, tenant_id: str, connection_id: str, protocol: str | None
    ) -> Connection:
        _check_path_ids(tenant_id, connection_id)
        conn = self.store.get(s, tenant_id, connection_id)
        if protocol is not None and conn.protocol != protocol:
            raise NotFoundError("SSO connection not found", field="connection_id")
        return conn

    def _parsed(self, s: Session, conn: Connection) -> Connection:
        try:
            return self.store.get(s, conn.tenant_id, conn.id, parse=True)
        except SsoConfigError:
            raise SsoError(
                "the connection's configuration is not usable", reason="connection-config"
            ) from None

    def start(self, tenant_id: str, connection_id: str) -> LoginRedirect:
        # (1)
        with self._db.tenant_tx(tenant_id) as s:
            conn = self._connection(s, tenant_id, connection_id, None)
            if not conn.enabled:
                raise SsoDeniedError(
                    "this SSO connection is disabled", reason="connection-disabled"
                )
            conn = self._parsed(s, conn)
        # (2)
        adapter = self.store.adapter(conn.protocol)
        begun = adapter.start_login(conn.parsed, tenant_id=tenant_id, connection_id=conn.id)
        # (3)
        with self._db.tenant_tx(tenant_id) as s:
            state = self._states.create(
                s, tenant_id, conn.id, dict(begun.pending), now=self._clock()
            )
        return LoginRedirect(
            redirect_url=begun.redirect_url,
            binding=state.binding,
            protocol=conn.protocol,
            max_age_seconds=self._ttl,
        )

    # -- finish ------------------------------------------------------------------------

    def finish(
        self,
        tenant_id: str,
        connection_id: str,
        protocol: str,
        *,
        binding: str | None,
        params: Mapping[str, str],
        request_id: str | None,
    ) -> LoginDone:
        # (1)
        with self._db.tenant_tx(tenant_id) as s:
            conn = self._connection(s, tenant_id, connection_id, protocol)
        try:
            return self._finish(conn, binding, params, request_id)
        except (SsoError, SsoDeniedError) as exc:
            if not isinstance(exc, SsoDeniedError) or not exc.audited:
                # (5)
                self._audit.append(
                    tenant_id, self._failure(conn, exc.reason, None, None, request_id)
                )
            raise
        except Exception as exc:
            # (5) An unexpected failure is a failed login too (the error itself leaves as it
            # is: a 500, or a 503 when it was the audit log that failed).
            if not isinstance(exc, AuditUnavailableError):
                self._audit_unexpected(conn, request_id)
            raise

    def _audit_unexpected(self, conn: Connection, request_id: str | None) -> None:
        try:
            self._audit.append(
                conn.tenant_id, self._failure(conn, "internal-error", None, None, request_id)
            )
        except Exception as exc:  # noqa: BLE001 - any failure here: the original error leaves, this one is only logged
            log.error(  # by type only: an exception's text could carry what the IdP sent
                "sso: failed login could not be audited: connection=%s error=%s",
                conn.id,
                type(exc).__name__,
            )

    def refuse(
        self,
        tenant_id: str,
        connection_id: str,
        protocol: str,
        reason: str,
        *,
        request_id: str | None,
    ) -> None:
        """Audit an IdP answer refused before it could be read (``too-large``,
        ``malformed`` form) as a failed login of the connection, if it exists; a path
        naming no connection of this protocol writes nothing."""
        try:
            with self._db.tenant_tx(tenant_id) as s:
                conn = self._connection(s, tenant_id, connection_id, protocol)
        except NotFoundError:
            return
        self._audit.append(tenant_id, self._failure(conn, reason, None, None, request_id))

    def _finish(
        self,
        conn: Connection,
        binding: str | None,
        params: Mapping[str, str],
        request_id: str | None,
    ) -> LoginDone:
        tenant_id = conn.tenant_id
        now = self._clock()
        if not conn.enabled:
            raise SsoDeniedError("this SSO connection is disabled", reason="connection-disabled")
        # (2)
        with self._db.tenant_tx(tenant_id) as s:
            pending = self._states.consume(s, tenant_id, conn.id, binding, now=now)
            conn = self._parsed(s, conn)
        # (3)
        identity = self._verify(conn, params, pending, now)
        # (4)
        denied: str | None = None
        with self._db.tenant_tx(tenant_id) as s:
            current = self.store.get(s, tenant_id, conn.id)
            if not current.enabled:
                raise SsoDeniedError(
                    "this SSO connection is disabled", reason="connection-disabled"
                )
            outcome = self._linker.resolve(s, current, identity, now=now)
            events = self._changes(current, outcome, request_id)
            principal_id = outcome.principal_id
            if outcome.denied is not None or principal_id is None:
                # (5): the role removals and the failure entry commit together; then refuse.
                denied = outcome.denied or "not-provisioned"
                events.append(
                    self._failure(current, denied, outcome.subject_ref, principal_id, request_id)
                )
                self._audit.append_in(s, tenant_id, *events)
            else:
                issued = _open_session(s, tenant_id, principal_id, current, now)
                events.append(self._success(current, outcome, principal_id, issued, request_id))
                self._audit.append_in(s, tenant_id, *events)
        if denied is not None or principal_id is None:
            raise SsoDeniedError(
                "this user may not log in here", reason=denied or "not-provisioned", audited=True
            )
        return LoginDone(
            session=issued,
            principal_id=principal_id,
            redirect_path=current.post_login_path,
            protocol=current.protocol,
        )

    def _success(
        self,
        conn: Connection,
        outcome: LinkOutcome,
        principal_id: str,
        issued: Any,
        request_id: str | None,
    ) -> AuditEvent:
        return AuditEvent(
            action=LOGIN_ACTION,
            outcome=Outcome.SUCCESS,
            actor=principal_id,
            resource_kind="sso_connection",
            resource_id=conn.id,
            request_id=request_id,
            ocsf_class=OCSF_AUTHENTICATION,
            detail={
                "protocol": conn.protocol,
                "subject": outcome.subject_ref,
                "session": str(getattr(issued, "id", "")),
                "roles_added": len(outcome.added),
                "roles_removed": len(outcome.removed),
            },
        )

    def _verify(
        self, conn: Connection, params: Mapping[str, str], pending: Mapping[str, str], now: datetime
    ) -> SsoIdentity:
        adapter = self.store.adapter(conn.protocol)
        try:
            identity = adapter.finish_login(
                conn.parsed,
                tenant_id=conn.tenant_id,
                connection_id=conn.id,
                params=params,
                pending=pending,
                now=now,
                replay=DbReplayGuard(self._db, conn.tenant_id, clock=self._clock),
            )
        except SsoError:
            raise
        except Exception as exc:  # noqa: BLE001 - any adapter failure is a failed login, never a 500 with its message
            log.error("sso adapter %s failed: %s", conn.protocol, type(exc).__name__)
            raise SsoError(
                "the identity provider's answer could not be verified", reason="adapter-error"
            ) from None
        if not isinstance(identity, SsoIdentity) or (
            identity.tenant_id,
            identity.connection_id,
            identity.protocol,
        ) != (conn.tenant_id, conn.id, conn.protocol):
            raise SsoError(
                "the verified identity is for another connection", reason="identity-mismatch"
            )
        if not identity.subject:
            raise SsoError("the identity has no subject", reason="malformed")
        return identity

    # -- audit -------------------------------------------------------------------------

    def _failure(
        self,
        conn: Connection,
        reason: str,
        subject_ref: str | None,
        principal_id: str | None,
        request_id: str | None,
    ) -> AuditEvent:
        detail: dict[str, Any] = {"protocol": conn.protocol, "reason": reason}
        if subject_ref is not None:
            detail["subject"] = subject_ref
        return AuditEvent(
            action=LOGIN_ACTION,
            outcome=Outcome.FAILURE,
            actor=principal_id or "anonymous",
            resource_kind="sso_connection",
            resource_id=conn.id,
            request_id=request_id,
            ocsf_class=OCSF_AUTHENTICATION,
            detail=detail,
        )

    def _changes(
        self, conn: Connection, outcome: LinkOutcome, request_id: str | None
    ) -> list[AuditEvent]:
        """Provisioning and role-change entries (actor: the connection, as SCIM's is its token)."""
        assert outcome.principal_id is not None or not (outcome.added or outcome.removed)  # noqa: S101
        pid = outcome.principal_id or ""
        events: list[AuditEvent] = []

        def change(action: str, detail: dict[str, Any]) -> None:
            events.append(
                AuditEvent(
                    action=action,
                    outcome=Outcome.SUCCESS,
                    actor=conn.id,
                    resource_kind="principal",
                    resource_id=pid,
                    request_id=request_id,
                    ocsf_class=OCSF_ACCOUNT_CHANGE,
                    detail=detail,
                )
            )

        if outcome.linked is not None and outcome.principal_id is not None:
            action = "sso.user.provision" if outcome.created else "sso.user.link"
            change(
                action,
                {"connection": conn.id, "subject": outcome.subject_ref, "via": outcome.linked},
            )
        for verb, items in (
            ("principal.unbind_role", outcome.removed),
            ("principal.bind_role", outcome.added),
        ):
            for b in items:
                change(
                    verb,
                    {
                        "binding": b.binding_id,
                        "role": b.role,
                        "scope_kind": b.scope_kind,
                        "scope": b.scope_id,
                        "source": "sso",
                        "connection": conn.id,
                    },
                )
        if outcome.skipped_scopes:
            change(
                "sso.roles.skipped",
                {"connection": conn.id, "missing_scopes": outcome.skipped_scopes},
            )
        return events


def _open_session(
    s: Session, tenant_id: str, principal_id: str, conn: Connection, now: datetime
) -> Any:
    """Open the browser session (``callvault.sessions``, built separately).

    Imported here, not at module load, so the SSO admin API works without it;
    a login without it fails loudly (ImportError → 500), never silently.
    """
    sessions = import_module("callvault.sessions")
    return sessions.open_session(
        s,
        tenant_id=tenant_id,
        principal_id=principal_id,
        method=conn.protocol,
        connection_id=conn.id,
        now=now,
    )


def saml_sp_metadata(login: SsoLogin, db: Database, tenant_id: str, connection_id: str) -> bytes:
    """Our SP metadata for a SAML connection (404 for anything else), public by design."""
    _check_path_ids(tenant_id, connection_id)
    with db.tenant_tx(tenant_id) as s:
        conn = login.store.get(s, tenant_id, connection_id)
    if conn.protocol != "saml":
        raise NotFoundError("SSO connection not found", field="connection_id")
    urls = login.store.urls("saml", tenant_id, connection_id)
    assert urls.sp_entity_id is not None  # noqa: S101 - SAML URLs have it
    assert urls.acs_url is not None  # noqa: S101
    cert = conn.config.get("sp_certificate_pem")
    fmt = conn.config.get("name_id_format")
    return sp_metadata(
        entity_id=urls.sp_entity_id,
        acs_url=urls.acs_url,
        certificate_pem=cert if isinstance(cert, str) else None,
        name_id_format=fmt if isinstance(fmt, str) else None,
        signs_requests=conn.config.get("sign_authn_requests") is True,
    )
