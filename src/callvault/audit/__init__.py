"""Audit trail: every denial, content read, change and key operation, by id only.

Per-tenant RFC 9162 Merkle logs with signed checkpoints. The verifier
(:mod:`callvault.audit.verify`, with :mod:`~callvault.audit.merkle`,
:mod:`~callvault.audit.note` and :mod:`~callvault.audit.checkpoint`) is pure
functions depending on `cryptography` alone, so this package loads its
storage side lazily.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callvault.audit._entry import AuditEvent, Outcome, entry_bytes
    from callvault.audit._log import AuditLog

__all__ = ["AuditEvent", "AuditLog", "Outcome", "entry_bytes"]

_LAZY = {
    "AuditEvent": "callvault.audit._entry",
    "Outcome": "callvault.audit._entry",
    "entry_bytes": "callvault.audit._entry",
    "AuditLog": "callvault.audit._log",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(import_module(module), name)
