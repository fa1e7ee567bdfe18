"""The one exception root of callvault.

Every error callvault raises on purpose derives from :class:`Error`. The CLI
(`callvault.cli`) alone turns these into exit codes and one readable line; the
API (`callvault.api.problems`) alone turns them into RFC 9457
``application/problem+json``. Messages carry ids, counts, field names and
hashes only, never customer content: they are shown to API clients and end up
in logs.

::

    Error
    ├── ConfigError               a setting is missing or invalid (startup stops)
    ├── InvalidInputError         a request or argument is malformed      → 422
    │   ├── PayloadTooLargeError  a body exceeds the configured limit     → 413
    │   ├── SsoConfigError        an SSO connection's configuration is invalid
    │   └── EgressRefusedError    a tenant-supplied URL may not be fetched (callvault.egress)
    ├── AuthenticationError       no or bad credentials                   → 401
    │   └── SsoError              an IdP response failed a check (reason code only)
    ├── PermissionDeniedError     authenticated, but not allowed          → 403
    ├── NotFoundError             absent, or in another tenant            → 404
    ├── ConflictError             a precondition on current state failed  → 409
    ├── CryptoError               sealing failed
    │   └── DecryptionError       any failure to open a sealed object (one message)
    ├── ProofError                a Merkle proof, root, size or index does not verify
    ├── NoteError                 a signed note, verifier key or checkpoint is malformed or unsigned
    ├── KeyUnavailableError       the key provider cannot be used         → 503
    └── UnavailableError          a dependency is down                    → 503
        └── AuditUnavailableError audit log not writable: the guarded action must not happen
"""

from __future__ import annotations


class Error(Exception):
    """Root of every deliberate callvault error."""

    #: Stable machine-readable code, used as the problem ``type`` suffix.
    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ConfigError(Error):
    """A setting is missing or invalid; startup stops with one line naming it."""

    code = "bad-config"


class InvalidInputError(Error):
    """A request, argument or file is malformed."""

    code = "invalid-input"


class PayloadTooLargeError(InvalidInputError):
    """A request body exceeds the configured limit."""

    code = "payload-too-large"


class RangeNotSatisfiableError(InvalidInputError):
    """A ``Range`` asks for bytes the object does not have (HTTP 416).

    ``total`` is the object's length, for the ``Content-Range: bytes */N``
    the answer carries (RFC 9110 §15.5.17).
    """

    code = "range-not-satisfiable"

    def __init__(self, message: str, *, total: int) -> None:
        super().__init__(message, field="range")
        self.total = total


class AuthenticationError(Error):
    """Credentials are missing, malformed, unknown, expired or revoked."""

    code = "unauthenticated"


class SsoError(AuthenticationError):
    """An identity provider's response failed verification.

    ``reason`` is a short stable code (``signature``, ``audience``, ``replay``,
    ``expired``, ``in-response-to``, ``weak-algorithm``, ``malformed``,
    ``too-large``, ``issuer``, ``nonce``, ``state``, ``token-exchange`` ...)
    for the audit entry and the login page; the message never quotes the
    response, its attributes or the user's identifiers.
    """

    code = "sso-failed"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class SsoConfigError(InvalidInputError):
    """An SSO connection's configuration (or IdP metadata) is invalid; ``field`` names where."""

    code = "bad-sso-config"


class PermissionDeniedError(Error):
    """The principal is authenticated but the policy denies the action."""

    code = "forbidden"


class NotFoundError(Error):
    """The resource does not exist *for this principal* (it may exist in another tenant)."""

    code = "not-found"


class ConflictError(Error):
    """The request conflicts with the current state (for example: already initialised)."""

    code = "conflict"


class CryptoError(Error):
    """Sealing or key handling failed."""

    code = "crypto"


class DecryptionError(CryptoError):
    """A sealed object could not be opened. Deliberately says nothing more."""

    code = "decryption-failed"

    def __init__(self) -> None:
        super().__init__("sealed object could not be opened")


class ProofError(Error):
    """A Merkle inclusion or consistency proof, or a re-derived root, does not verify."""

    code = "bad-proof"


class NoteError(Error):
    """A signed note, verifier key or checkpoint is malformed or not validly signed."""

    code = "bad-note"


class KeyUnavailableError(Error):
    """The key provider cannot be reached or holds no usable key."""

    code = "key-unavailable"


class UnavailableError(Error):
    """A dependency (database, key provider, audit log) is not usable."""

    code = "unavailable"


class AuditUnavailableError(UnavailableError):
    """The audit log could not be written; the guarded action did not happen."""

    code = "audit-unavailable"
