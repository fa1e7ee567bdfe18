"""Owner recovery codes: a way in when the identity provider is down.

An active owner (kind ``user``, ``owner`` at tenant scope) generates a set of
ten codes, shown once. Each is 100 random bits written as 20 characters of an
unambiguous alphabet in groups of five. Only Argon2id hashes are stored, all
codes of a set under the set's random salt, so an attempt costs one slow hash
whatever the number of codes. Generating a new set revokes the unused codes
of the old one.

:meth:`RecoveryLogin.attempt` (``POST /v1/session/recovery``), one tenant
transaction that commits whatever the outcome:

1. The tenant must exist (else refused with nothing written).
2. A principal locked by earlier failures is refused until the lock ends
   (``locked``: no hash computed, nothing counted).
3. Hash the submitted code once (also for an unknown or ineligible principal,
   so the answer's timing does not tell owners from others).
4. The principal MUST be an active ``user`` holding ``owner`` at tenant scope,
   and the hash MUST equal an unused, unrevoked code of it (constant-time
   comparisons); the code is then marked used by a conditional UPDATE, so two
   concurrent uses of one code cannot both succeed.
5. Success: clear the failure count, open a session with method
   ``recovery_code`` (the tenant's shorter recovery lifetime), audit it with
   the number of codes left, log a warning.
6. Failure: count it against the (tenant, principal id) asked about, whether
   that id names a principal or nothing (``session_recovery_max_failures``
   within ``session_recovery_lockout_minutes`` lock the id for that long, so
   the answers never tell a real id from an id of nothing), audit it (and the
   lock). Counters whose window and lock have ended are pruned as it goes.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from argon2.low_level import Type, hash_secret_raw
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from callvault.access.roles import Role, ScopeKind
from callvault.audit import AuditEvent, AuditLog, Outcome
from callvault.audit._entry import OCSF_ACCOUNT_CHANGE, OCSF_AUTHENTICATION
from callvault.errors import AuthenticationError, ConflictError
from callvault.sessions._cookies import IssuedSession
from callvault.sessions._policy import RECOVERY_METHOD
from callvault.sessions._store import opaque_id, open_session
from callvault.store import Database
from callvault.store.db import insert_for
from callvault.store.models import (
    Principal,
    RecoveryCode,
    RecoveryLockout,
    RoleBinding,
    Tenant,
)

log = logging.getLogger("callvault.sessions")

CODE_COUNT: Final = 10
_ALPHABET: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 symbols: no 0/O, 1/I
_CODE_CHARS: Final = 20  # 100 bits
_GROUP: Final = 5
# Argon2id, OWASP's minimum for interactive logins (m=19 MiB, t=2, p=1).
_T, _M, _P = 2, 19_456, 1
KDF: Final = f"argon2id$v=19$t={_T}$m={_M}$p={_P}"


class RecoveryFailedError(AuthenticationError):
    """A recovery-code login was refused (one message whatever the reason)."""

    code = "recovery-failed"

    def __init__(self, reason: str) -> None:
        super().__init__("recovery code login failed")
        self.reason = reason


class RecoveryLockedError(RecoveryFailedError):
    """Too many failures: recovery-code login for this principal is locked until ``until``."""

    code = "recovery-locked"

    def __init__(self, until: datetime) -> None:
        super().__init__("locked")
        self.message = "too many failed recovery attempts: try again later"
        self.until = until


@dataclass(frozen=True, slots=True)
class GeneratedCodes:
    """A new set. ``codes`` are shown once and never stored."""

    set_id: str
    codes: tuple[str, ...]
    created_at: datetime
    revoked: int


@dataclass(frozen=True, slots=True)
class CodeStatus:
    set_id: str | None
    created_at: datetime | None
    remaining: int
    total: int


def _new_code() -> str:
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_CHARS))
    return "-".join(chars[i : i + _GROUP] for i in range(0, _CODE_CHARS, _GROUP))


def normalise(code: str) -> str | None:
    """The code's 20 symbols (case, spaces and hyphens ignored), or None if it is not one."""
    text = "".join(code.split()).replace("-", "").upper()
    if len(text) != _CODE_CHARS or any(c not in _ALPHABET for c in text):
        return None
    return text


def _hash(normalised: str, salt: bytes) -> bytes:
    return hash_secret_raw(
        normalised.encode("ascii"),
        salt,
        time_cost=_T,
        memory_cost=_M,
        parallelism=_P,
        hash_len=32,
        type=Type.ID,
    )


def _is_owner(s: Session, tenant_id: str, principal_id: str) -> bool:
    p = s.execute(
        select(Principal).where(Principal.tenant_id == tenant_id, Principal.id == principal_id)
    ).scalar_one_or_none()
    if p is None or not p.active or p.kind != "user":
        return False
    owner = s.execute(
        select(RoleBinding.id).where(
            RoleBinding.tenant_id == tenant_id,
            RoleBinding.principal_id == principal_id,
            RoleBinding.role == Role.OWNER.value,
            RoleBinding.scope_kind == ScopeKind.TENANT.value,
        )
    ).first()
    return owner is not None


def _lockout(s: Session, tenant_id: str, principal_id: str) -> RecoveryLockout | None:
    return s.execute(
        select(RecoveryLockout).where(
            RecoveryLockout.tenant_id == tenant_id, RecoveryLockout.principal_id == principal_id
        )
    ).scalar_one_or_none()


def _live_codes(s: Session, tenant_id: str, principal_id: str) -> list[RecoveryCode]:
    return list(
        s.execute(
            select(RecoveryCode).where(
                RecoveryCode.tenant_id == tenant_id,
                RecoveryCode.principal_id == principal_id,
                RecoveryCode.revoked_at.is_(None),
            )
        ).scalars()
    )


def generate_codes(
    s: Session, tenant_id: str, principal_id: str, *, now: datetime
) -> GeneratedCodes:
    """A new set for an active owner of kind ``user``; the old set's codes are revoked."""
    if not _is_owner(s, tenant_id, principal_id):
        raise ConflictError("recovery codes are for active owners (users) of the tenant")
    revoked = 0
    for row in _live_codes(s, tenant_id, principal_id):
        row.revoked_at = now
        revoked += row.used_at is None
    set_id = opaque_id("rcs")
    salt = secrets.token_bytes(16)
    codes = tuple(_new_code() for _ in range(CODE_COUNT))
    for i, code in enumerate(codes):
        s.add(
            RecoveryCode(
                id=f"{set_id}.{i:02d}",
                tenant_id=tenant_id,
                principal_id=principal_id,
                set_id=set_id,
                kdf=KDF,
                salt=salt,
                code_hash=_hash(code.replace("-", ""), salt),
                created_at=now,
                used_at=None,
                revoked_at=None,
            )
        )
    s.flush()
    return GeneratedCodes(set_id=set_id, codes=codes, created_at=now, revoked=revoked)


def code_status(s: Session, tenant_id: str, principal_id: str) -> CodeStatus:
    rows = _live_codes(s, tenant_id, principal_id)
    if not rows:
        return CodeStatus(None, None, 0, 0)
    return CodeStatus(
        set_id=rows[0].set_id,
        created_at=rows[0].created_at,
        remaining=sum(r.used_at is None for r in rows),
        total=len(rows),
    )


@dataclass(frozen=True, slots=True)
class RecoveryResult:
    session: IssuedSession
    remaining: int


class RecoveryLogin:
    """Recovery-code logins with a per-principal failure lock (steps in the module doc)."""

    def __init__(
        self, db: Database, audit: AuditLog, *, max_failures: int, lockout: timedelta
    ) -> None:
        self._db = db
        self._audit = audit
        self._max_failures = max_failures
        self._lockout = lockout

    def attempt(
        self,
        tenant_id: str,
        principal_id: str,
        code: str,
        *,
        now: datetime,
        request_id: str | None,
    ) -> RecoveryResult:
        failure: RecoveryFailedError | None = None
        result: RecoveryResult | None = None
        with self._db.tenant_tx(tenant_id) as s:
            # (1)
            if s.get(Tenant, tenant_id) is None:
                _hash("A" * _CODE_CHARS, bytes(16))  # the same cost as any other refusal
                raise RecoveryFailedError("unknown-tenant")
            lock = _lockout(s, tenant_id, principal_id)
            # (2)
            if lock is not None and lock.locked_until is not None and lock.locked_until > now:
                failure = RecoveryLockedError(lock.locked_until)
                self._audit.append_in(
                    s, tenant_id, self._event(principal_id, "locked", request_id, locked=False)
                )
            else:
                result, reason = self._check(s, tenant_id, principal_id, code, now, request_id)
                if reason is not None:
                    failure = self._count_failure(s, tenant_id, principal_id, reason, now)
                    locked = isinstance(failure, RecoveryLockedError)
                    self._audit.append_in(
                        s, tenant_id, self._event(principal_id, reason, request_id, locked=locked)
                    )
        if failure is not None:
            raise failure
        assert result is not None  # noqa: S101 - either a failure or a result
        log.warning(
            "owner recovery code used: tenant=%s principal=%s session=%s remaining=%d",
            tenant_id,
            principal_id,
            result.session.id,
            result.remaining,
        )
        return result

    def _check(
        self,
        s: Session,
        tenant_id: str,
        principal_id: str,
        code: str,
        now: datetime,
        request_id: str | None,
    ) -> tuple[RecoveryResult | None, str | None]:
        # (3)
        text = normalise(code)
        eligible = _is_owner(s, tenant_id, principal_id)
        rows = [r for r in _live_codes(s, tenant_id, principal_id) if r.used_at is None]
        salt = rows[0].salt if rows else bytes(16)
        digest = _hash(text or "A" * _CODE_CHARS, salt)
        # (4)
        match = None
        for row in rows:
            if hmac.compare_digest(row.code_hash, digest) and row.kdf == KDF:
                match = row
        if text is None or not eligible or match is None:
            reason = "not-eligible" if not eligible else "wrong-code"
            return None, reason
        used = s.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.tenant_id == tenant_id,
                RecoveryCode.id == match.id,
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if used.rowcount != 1:  # type: ignore[attr-defined]
            return None, "code-used"
        # (5)
        lock = _lockout(s, tenant_id, principal_id)
        if lock is not None:
            s.delete(lock)
        issued = open_session(
            s,
            tenant_id=tenant_id,
            principal_id=principal_id,
            method=RECOVERY_METHOD,
            connection_id=None,
            now=now,
        )
        remaining = len(rows) - 1
        self._audit.append_in(
            s,
            tenant_id,
            AuditEvent(
                action="authn.recovery_code",
                outcome=Outcome.SUCCESS,
                actor=principal_id,
                resource_kind="browser_session",
                resource_id=issued.id,
                request_id=request_id,
                ocsf_class=OCSF_AUTHENTICATION,
                detail={
                    "alert": "owner-recovery-code-used",
                    "code_set": match.set_id,
                    "codes_remaining": remaining,
                    "expires_at": issued.expires_at.isoformat(),
                },
            ),
        )
        return RecoveryResult(issued, remaining), None

    def _count_failure(
        self, s: Session, tenant_id: str, principal_id: str, reason: str, now: datetime
    ) -> RecoveryFailedError:
        # (6) Any well-formed id is counted, whether it names a principal or nothing, so the
        # answers (401, then 429 while locked) never tell one from the other (ADR 15).
        self._prune(s, tenant_id, now)
        s.execute(
            insert_for(s)(RecoveryLockout)
            .values(
                tenant_id=tenant_id,
                principal_id=principal_id,
                failures=0,
                window_started_at=now,
                locked_until=None,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "principal_id"])
        )
        lock = s.execute(
            select(RecoveryLockout)
            .where(
                RecoveryLockout.tenant_id == tenant_id,
                RecoveryLockout.principal_id == principal_id,
            )
            .with_for_update()  # concurrent failures each count (PostgreSQL; SQLite serialises)
            .execution_options(populate_existing=True)
        ).scalar_one()
        if lock.window_started_at + self._lockout <= now:
            lock.failures, lock.window_started_at, lock.locked_until = 0, now, None
        lock.failures += 1
        if lock.failures >= self._max_failures:
            lock.locked_until = now + self._lockout
            s.flush()
            return RecoveryLockedError(lock.locked_until)
        s.flush()
        return RecoveryFailedError(reason)

    def _prune(self, s: Session, tenant_id: str, now: datetime) -> None:
        """Forget the tenant's counters whose window and lock have both ended (they would be
        reset on their next use anyway): the table holds only what can still lock someone."""
        s.execute(
            delete(RecoveryLockout)
            .where(
                RecoveryLockout.tenant_id == tenant_id,
                RecoveryLockout.window_started_at <= now - self._lockout,
                or_(RecoveryLockout.locked_until.is_(None), RecoveryLockout.locked_until <= now),
            )
            .execution_options(synchronize_session=False)
        )

    @staticmethod
    def _event(
        principal_id: str, reason: str, request_id: str | None, *, locked: bool
    ) -> AuditEvent:
        detail: dict[str, object] = {"reason": reason}
        if locked:
            detail["alert"] = "recovery-login-locked"
        return AuditEvent(
            action="authn.recovery_code",
            outcome=Outcome.FAILURE,
            actor="anonymous",
            resource_kind="principal",
            resource_id=principal_id,
            request_id=request_id,
            ocsf_class=OCSF_ACCOUNT_CHANGE if locked else OCSF_AUTHENTICATION,
            detail=detail,
        )
