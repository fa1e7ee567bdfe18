"""An operator's requests into a tenant: decided, audited in that tenant's log, then served.

Every method of :class:`OperatorAccess` follows the same steps:

1. The tenant (and the resource) is looked up inside the tenant's own
   transaction; one that does not exist is 404 and nothing is audited
   (there is no log to write to, and nothing was touched).
2. :func:`~callvault.operators._authorize.decide` (the operator policy).
3. An audit entry in **the tenant's** log — actor the operator id, realm
   ``operator``, role, key id — committed before anything is returned
   (``AuditLog.append``); a refusal is a ``denied`` entry and a 403. If the
   audit write fails, nothing is served (503).
4. Content only: the grant lends a principal
   (:func:`~callvault.operators._authorize.break_glass_principal`) and the
   tenant's own gate (Cedar, audit committed with realm and grant id) mints
   the :class:`~callvault.access.Grant` that the calls package's one read
   path requires: unwrap → decrypt → redact for a ``qa_reviewer``. There is
   no other decryption path for operators.

Break-glass expiry is recorded (and audited) on the way in to the tenant
(:func:`~callvault.operators._break_glass.expire_due`); access itself ends
at ``expires_at`` by the clock, whether or not that ran.

Before any of that, :func:`sign_in` authenticates the operator's key; a
refused well-formed key is an entry in the installation log (docs/adr/0017),
committed before the 401 (503 if it cannot be written). Every read under a
grant is mirrored there too (``break_glass.use``), committed before content.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault import calls, tenancy
from callvault.access import Grant, Resource
from callvault.audit import AuditEvent, Outcome
from callvault.calls import TranscriptView
from callvault.calls._listen import Playback, open_playback
from callvault.errors import PermissionDeniedError
from callvault.operators import _break_glass as bg
from callvault.operators import _clock
from callvault.operators import _installation_log as installation_log
from callvault.operators._authorize import (
    CONTENT,
    OperatorAction,
    OperatorDecision,
    break_glass_principal,
    decide,
)
from callvault.operators._realm import Operator, OperatorAuthError, authenticate_operator
from callvault.runtime import Runtime
from callvault.store.ids import INSTALLATION_LOG
from callvault.store.models import Agent, BreakGlassGrant, Call, Deployment, Tenant
from callvault.store.rows import TenantFields


def sign_in(rt: Runtime, token: str, request_id: str | None = None) -> Operator:
    """The operator ``token`` stands for; a refusal is recorded in the installation log.

    1. Authenticate in a tenantless transaction (:func:`authenticate_operator`).
    2. On :class:`OperatorAuthError` (a well-formed key that does not
       authenticate: unknown, bad secret, revoked, expired, operator disabled),
       append ``authn.operator_key`` (key id, reason code, operator id) to the
       installation log and wait for its commit, then re-raise (401). If that
       append fails the request fails with 503 instead: nothing is served
       either way. A malformed token never reaches a lookup and names no key:
       it is refused (401) without an entry, as on the tenant side.
    """
    try:
        with rt.db.system_tx() as s:  # (1):
            return authenticate_operator(s, token)
    except OperatorAuthError as exc:  # (2):
        installation_log.record(rt, installation_log.auth_failure(exc, request_id))
        raise


class OperatorAccess:
    """One operator request (module docstring). Not shared between requests."""

    def __init__(self, rt: Runtime, operator: Operator, request_id: str | None = None) -> None:
        self.rt = rt
        self.operator = operator
        self.request_id = request_id

    # -- steps 2 and 3 ------------------------------------------------------------------------

    def _audit(
        self, tenant_id: str, action: OperatorAction, kind: str, rid: str, d: OperatorDecision
    ) -> None:
        detail: dict[str, Any] = {
            "realm": "operator",
            "role": self.operator.role.value,
            "key": self.operator.key_id,
            "policies": [d.reason],
        }
        self.rt.audit.append(
            tenant_id,
            AuditEvent(
                action=action.value,
                outcome=Outcome.ALLOWED if d.allowed else Outcome.DENIED,
                actor=self.operator.id,
                resource_kind=kind,
                resource_id=rid,
                request_id=self.request_id,
                detail=detail,
            ),
        )

    def _check(
        self,
        tenant_id: str,
        action: OperatorAction,
        kind: str,
        rid: str,
        *,
        audit_allowed: bool = True,
        **context: Any,
    ) -> OperatorDecision:
        d = decide(self.operator, action, tenant_id=tenant_id, **context)
        if audit_allowed or not d.allowed:
            self._audit(tenant_id, action, kind, rid, d)
        if not d.allowed:
            raise PermissionDeniedError(f"operator may not {action.value}")
        return d

    def _expire(self, tenant_id: str, now: datetime) -> None:
        with self.rt.db.tenant_tx(tenant_id) as s:
            bg.expire_due(s, self.rt.audit, tenant_id, now)

    # -- metadata ------------------------------------------------------------------------------

    def tenants(self, limit: int) -> list[TenantFields]:
        """Tenants of the installation, oldest first; one audit entry in each one listed."""
        with self.rt.db.directory_tx() as s:
            ids = list(
                s.execute(
                    select(Tenant.id)
                    .where(Tenant.id != INSTALLATION_LOG)  # the installation log is no tenant
                    .order_by(Tenant.created_at)
                    .limit(limit)
                ).scalars()
            )
        return [self.tenant(tid) for tid in ids]

    def tenant(self, tenant_id: str) -> TenantFields:
        with self.rt.db.tenant_tx(tenant_id) as s:
            row = tenancy.read_tenant(s, tenant_id)
            self._check(tenant_id, OperatorAction.TENANT_READ, "tenant", tenant_id)
            return row

    def deployments(self, tenant_id: str) -> list[Deployment]:
        with self.rt.db.tenant_tx(tenant_id) as s:
            tenancy.read_tenant(s, tenant_id)
            self._check(tenant_id, OperatorAction.DEPLOYMENT_READ, "tenant", tenant_id)
            return tenancy.list_deployments(s, tenant_id)

    def agents(self, tenant_id: str, deployment_id: str) -> list[Agent]:
        with self.rt.db.tenant_tx(tenant_id) as s:
            tenancy.get_deployment(s, tenant_id, deployment_id)
            self._check(tenant_id, OperatorAction.AGENT_READ, "deployment", deployment_id)
            return tenancy.list_agents(s, tenant_id, deployment_id)

    def calls(
        self,
        tenant_id: str,
        *,
        deployment_id: str | None,
        agent_id: str | None,
        status: str | None,
        limit: int,
    ) -> list[Call]:
        with self.rt.db.tenant_tx(tenant_id) as s:
            kind, rid = "tenant", tenant_id
            if agent_id is not None:
                kind, rid = "agent", tenancy.get_agent(s, tenant_id, agent_id).id
            elif deployment_id is not None:
                kind, rid = "deployment", tenancy.get_deployment(s, tenant_id, deployment_id).id
            else:
                tenancy.read_tenant(s, tenant_id)
            self._check(tenant_id, OperatorAction.CALL_LIST, kind, rid)
            return calls.list_calls(
                s,
                tenant_id,
                deployment_id=deployment_id,
                agent_id=agent_id,
                status=status,
                limit=limit,
            )

    def call(self, tenant_id: str, call_id: str) -> Call:
        with self.rt.db.tenant_tx(tenant_id) as s:
            row = calls.get_call(s, tenant_id, call_id)
            self._check(tenant_id, OperatorAction.CALL_READ, "call", call_id)
            return row

    # -- content under break-glass -------------------------------------------------------------

    def transcript(
        self, tenant_id: str, call_id: str, view: Literal["full", "redacted"] | None
    ) -> TranscriptView:
        """A call's transcript, redacted, under an active grant for its deployment."""
        action = (
            OperatorAction.TRANSCRIPT_READ
            if view == "full"
            else OperatorAction.TRANSCRIPT_READ_REDACTED
        )
        now = _clock.now()
        self._expire(tenant_id, now)
        with self.rt.db.tenant_tx(tenant_id) as s:
            row = calls.get_call(s, tenant_id, call_id)
            grant = self._gate(s, tenant_id, row, action, now)
            return calls.read_transcript(s, self.rt.sealer, grant, row)

    def recording(
        self,
        tenant_id: str,
        call_id: str,
        view: Literal["full", "masked"] | None,
        range_header: str | None,
    ) -> Playback:
        """A call's recording, masked, under an active grant for its deployment."""
        action = (
            OperatorAction.RECORDING_READ
            if view == "full"
            else OperatorAction.RECORDING_READ_MASKED
        )
        now = _clock.now()
        self._expire(tenant_id, now)
        with self.rt.db.tenant_tx(tenant_id) as s:
            row = calls.get_call(s, tenant_id, call_id)
            grant = self._gate(s, tenant_id, row, action, now)
            return open_playback(self.rt, s, grant, row, range_header)

    def _gate(
        self, s: Session, tenant_id: str, row: Call, action: OperatorAction, now: datetime
    ) -> Grant:
        # (2) the operator policy, on the grant found for the call's own deployment
        active = bg.find_active(s, tenant_id, self.operator.id, row.deployment_id, now)
        d = self._check(
            tenant_id,
            action,
            "call",
            row.id,
            audit_allowed=False,  # the gate writes the allowed entry (with the grant id)
            deployment_id=row.deployment_id,
            grant=active,
            now=now,
        )
        if active is None or d.grant_id != active.id:  # pragma: no cover - decide() guarantees
            raise PermissionDeniedError("no break-glass grant covers this call")
        # (4) the tenant's gate, on the principal the grant lends
        principal = break_glass_principal(self.operator, active)
        resource = Resource.call(tenant_id, row.deployment_id, row.agent_id, row.id)
        grant = self.rt.gate.enforce(
            principal, CONTENT[action], resource, request_id=self.request_id
        )
        # (3) again, in the installation log: the read's mirror, committed before content
        installation_log.record(
            self.rt,
            installation_log.grant_use(
                self.operator,
                tenant_id=tenant_id,
                grant_id=active.id,
                deployment_id=row.deployment_id,
                call_id=row.id,
                read=CONTENT[action].value,
                request_id=self.request_id,
            ),
        )
        return grant

    # -- break-glass requests ------------------------------------------------------------------

    def _actor(self) -> bg.Actor:
        return bg.Actor(self.operator.id, "operator", self.request_id)

    def request_break_glass(
        self,
        tenant_id: str,
        *,
        deployment_id: str,
        reason: str,
        ticket_ref: str,
        duration: timedelta,
    ) -> BreakGlassGrant:
        """Ask the tenant for content access to one deployment (pending until approved)."""
        with self.rt.db.tenant_tx(tenant_id) as s:
            tenancy.read_tenant(s, tenant_id)
            self._check(
                tenant_id,
                OperatorAction.BREAK_GLASS_REQUEST,
                "tenant",
                tenant_id,
                audit_allowed=False,  # the request's own entry is the audit
            )
            return bg.request(
                s,
                self.rt.sealer,
                self.rt.audit,
                operator_id=self.operator.id,
                tenant_id=tenant_id,
                deployment_id=deployment_id,
                reason=reason,
                ticket_ref=ticket_ref,
                duration=duration,
                now=_clock.now(),
                actor=self._actor(),
            )

    def my_requests(
        self, tenant_id: str, status: bg.Status | None, limit: int
    ) -> list[bg.BreakGlassView]:
        now = _clock.now()
        self._expire(tenant_id, now)
        with self.rt.db.tenant_tx(tenant_id) as s:
            tenancy.read_tenant(s, tenant_id)
            self._check(tenant_id, OperatorAction.BREAK_GLASS_READ, "tenant", tenant_id)
            rows = bg.list_requests(
                s, tenant_id, operator_id=self.operator.id, status=status, now=now, limit=limit
            )
            return [bg.view(r, now) for r in rows]

    def revoke_break_glass(self, tenant_id: str, grant_id: str) -> bg.BreakGlassView:
        """Withdraw one's own request or end one's own grant early."""
        now = _clock.now()
        self._expire(tenant_id, now)
        with self.rt.db.tenant_tx(tenant_id) as s:
            tenancy.read_tenant(s, tenant_id)
            self._check(
                tenant_id,
                OperatorAction.BREAK_GLASS_REVOKE,
                "break_glass",
                grant_id,
                audit_allowed=False,  # the revocation's own entry is the audit
            )
            row = bg.revoke(
                s,
                self.rt.audit,
                tenant_id,
                grant_id,
                now=now,
                actor=self._actor(),
                operator_id=self.operator.id,
            )
            return bg.view(row, now)
