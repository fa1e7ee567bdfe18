"""Browser sessions: the cookie, CSRF defence, the tenant's session policy, recovery codes.

A verified login (``callvault.sso``, or an owner's recovery code) calls
:func:`open_session` in its transaction and puts the cookie on the answer
with :func:`set_session_cookie`. The API's request context
(``callvault.api.deps``) authenticates a request that carries the cookie and
no bearer token with :func:`authenticate_session`: the session's principal
then passes the same gate as an API key's. Lifetimes and "SSO required" are
the tenant's versioned :class:`SessionPolicy`. See docs/adr/0015-browser-sessions.md.
"""

from callvault.sessions._cookies import (
    COOKIE_NAME,
    CookieParts,
    IssuedSession,
    clear_session_cookie,
    parse_cookie,
    set_session_cookie,
)
from callvault.sessions._csrf import (
    CSRF_HEADER,
    CsrfError,
    RequestFacts,
    cross_site_reason,
    expected_origin,
)
from callvault.sessions._policy import (
    EffectivePolicy,
    PolicyChange,
    SessionPolicy,
    read_policy,
    sso_required,
    update_policy,
)
from callvault.sessions._recovery import (
    CodeStatus,
    GeneratedCodes,
    RecoveryFailedError,
    RecoveryLockedError,
    RecoveryLogin,
    RecoveryResult,
    code_status,
    generate_codes,
)
from callvault.sessions._store import (
    AuthenticatedSession,
    SessionAuthError,
    SessionCredential,
    authenticate_session,
    end_session,
    get_session,
    list_sessions,
    open_session,
    record_failure,
    revoke_principal_sessions,
)

__all__ = [
    "COOKIE_NAME",
    "CSRF_HEADER",
    "AuthenticatedSession",
    "CodeStatus",
    "CookieParts",
    "CsrfError",
    "EffectivePolicy",
    "GeneratedCodes",
    "IssuedSession",
    "PolicyChange",
    "RecoveryFailedError",
    "RecoveryLockedError",
    "RecoveryLogin",
    "RecoveryResult",
    "RequestFacts",
    "SessionAuthError",
    "SessionCredential",
    "SessionPolicy",
    "authenticate_session",
    "clear_session_cookie",
    "code_status",
    "cross_site_reason",
    "end_session",
    "expected_origin",
    "generate_codes",
    "get_session",
    "list_sessions",
    "open_session",
    "parse_cookie",
    "read_policy",
    "record_failure",
    "revoke_principal_sessions",
    "set_session_cookie",
    "sso_required",
    "update_policy",
]
