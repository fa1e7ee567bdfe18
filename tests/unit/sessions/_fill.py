"""Rows of one tenant in every session table, through the package's own code (for tests of
the tenant wall: ``tests/integration/test_sessions_postgres.py`` and the RLS suite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from callvault import access, sessions, sso
from callvault.access import Role, ScopeKind

WRONG_CODE = "AAAAA-AAAAA-AAAAA-AAAAA"


def fill_session_tables(rt: Any, tenant_id: str) -> dict[str, str]:
    """A session, a policy version, a recovery-code set and a failure count; their ids."""
    now = datetime.now(UTC)
    with rt.db.tenant_tx(tenant_id) as s:
        owner = access.create_principal(s, tenant_id, kind="user", name=f"rls-owner-{now:%f}")
        access.bind_role(
            s, tenant_id, owner.id, Role.OWNER, ScopeKind.TENANT, tenant_id, created_by="test"
        )
        issued = sessions.open_session(
            s,
            tenant_id=tenant_id,
            principal_id=owner.id,
            method="oidc",
            connection_id=sso.new_connection_id(),
            now=now,
        )
        sessions.update_policy(
            s,
            rt.sealer,
            rt.audit,
            tenant_id,
            {"idle_timeout_minutes": 20},
            actor_id="test",
            request_id=None,
            now=now,
        )
        codes = sessions.generate_codes(s, tenant_id, owner.id, now=now)
    login = sessions.RecoveryLogin(rt.db, rt.audit, max_failures=5, lockout=timedelta(minutes=15))
    try:
        login.attempt(tenant_id, owner.id, WRONG_CODE, now=now, request_id=None)
    except sessions.RecoveryFailedError:
        pass
    else:  # pragma: no cover - a wrong code never opens a session
        raise AssertionError("a wrong recovery code was accepted")
    return {"principal": owner.id, "session": issued.id, "code_set": codes.set_id}
